# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3. Variational Classification: the experiments
#
# Chapter 2 built the CE, GM and VC objectives. The paper {cite}`dhuliawala2023variational` (§5) argues that
# making the latents fill out their class priors buys more than a nicer picture, and states four hypotheses:
#
# - **H1, calibration** (its Table 1): VC's confidences match its accuracy better than CE's;
# - **H2, robustness to distribution shift** (Figure 3 on synthetic corruptions, where CE is also shown with
#   temperature scaling; Table 2 on natural shifts, not repeated here): VC stays better calibrated on shifted inputs;
# - **H3, adversarial robustness** (Figure 4): VC loses less accuracy under FGSM;
# - **H4, low data** (Table 4, Figure 5): VC classifies better from few labels;
#
# and reports that VC detects out-of-distribution inputs *as well as* CE (Table 3: parity, not an improvement).
#
# This chapter decides each claim with an experiment fixed before it runs (next section): paired seeds, one
# metric per claim, a stated α and number of comparisons, and `lvmcls.decisions` as the rule. The paper compares
# VC with a softmax CE; we add the two baselines that say *why* VC would win, if it does:
#
# - **CE + temperature scaling** (one scalar fitted on validation data {cite}`guo2017calibration`), the
#   practical calibration baseline: if VC does not beat it, VC buys nothing a practitioner cannot get post hoc;
# - **`ce_gaussian`**, CE on the same per-class Gaussian head as VC: the plain CE has a linear head, VC a
#   quadratic one, so "VC − CE" mixes the head with the objective; "VC − `ce_gaussian`" isolates the objective.
#
# Chapter 2 showed that with the paper's *linear* discriminator $T$ the encoder's KL gradient is the same for every
# latent of a class: it moves a class, never spreads it. So we also train a VC whose discriminator can see spread
# (`ClassDensityRatio(form="quadratic")`, the exact family for two diagonal Gaussians), and we measure every model's
# latent spread: calibration is credited to "filling out the prior" only if the prior is filled out.
#
# **What differs from the paper.** The paper runs ResNet-50 / WideResNet on CIFAR-10/100 and Tiny-ImageNet for
# hundreds of epochs. The `ci` profile (two CPU cores, a few minutes) moves the calibration, shift, FGSM and OOD
# questions to a regime a CPU can answer with seeds: **Fashion-MNIST** with an MLP encoder, trained on 10,000 images
# until CE is measurably over-confident (chosen on validation data, below), tested on all 10,000 test images; the
# shifts are corruptions "in the style of CIFAR-10-C" (`lvmcls.corruptions`) applied to Fashion-MNIST, the OOD set
# is MNIST. Low data (H4) trains on 500 MNIST images with the same MLP (the paper does not name its MNIST network);
# the CIFAR-10 low-data runs and the Figure 5 sweep are not in `ci` (a one-seed CIFAR run cannot resolve anything:
# the time goes to seeds). The `full` profile (one GPU) asks H1–H3 on CIFAR-10 with ResNet-18, 3 seeds
# (its design is at the end). `smoke` runs the `full` code for a few steps on tiny subsets.

# %% [markdown]
# ## Setup

# %% tags=["hide-input"]
import importlib.util
import subprocess
import sys

# on Colab: install the book's library (torch is already there), with the corruptions
if importlib.util.find_spec("lvmcls") is None:
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    subprocess.run(
        [*pip, "lvmcls[shift] @ git+https://github.com/lvmcls/lvmcls"], check=True
    )

import statistics

import matplotlib.pyplot as plt
import seaborn as sns
import torch

from lvmcls import attacks, calibration, estimators, metrics, plots
from lvmcls.corruptions import CIFAR_C_CORRUPTIONS, SEVERITIES, corrupt_images
from lvmcls.data import (
    DataUnavailableError,
    TensorSplit,
    balanced_subset,
    load_dataset,
    load_ood_images,
)
from lvmcls.decisions import claim, paired_decision, parity_decision
from lvmcls.models import evaluate_classifier
from lvmcls.notebook import figure, markdown, scorecard, setup, show
from lvmcls.train import pick_device
from lvmcls.vc import ood_auroc, train_vc_model

device = pick_device()

# %% tags=["parameters"]
profile = "auto"  # "auto" | "ci" | "full" | "smoke"
seed = 0  # the first seed; the profile sets how many
latent_dim = 32
beta = 0.01

# %% tags=["hide-input"]
# not measured: an estimate (see "What full decides" at the end); the previous design
# ran in 5.6 min on one H100
FULL_MINUTES_H100 = 8
run = setup(profile, seed, device, full_minutes_h100=FULL_MINUTES_H100)
# The GPU recipe for CIFAR-10 (full and smoke): one-cycle SGD, on-device crop + flip,
# bf16 (the Trainer's default on CUDA), channels-last; the class priors at 0.1 x the
# encoder's rate, as the reference code (SGD 0.1 for the encoder, 0.01 for the prior).
CIFAR_GPU_RECIPE = dict(
    optimizer="sgd",
    lr=0.2,
    prior_lr=0.02,
    weight_decay=5e-4,
    schedule="onecycle",
    augment="crop_flip",
    channels_last=True,
    grad_clip=5.0,
    batch_size=512,
)
# the trained arms; "+ TS" arms are post hoc (temperature fitted on validation)
ARMS_CI = ("ce", "ce_gaussian", "gm", "vc", "vc_reference", "vc_quadratic")
ARMS_GPU = ("ce", "ce_gaussian", "vc_reference")
FAST_CORRUPTIONS = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "fog",
    "contrast",
    "pixelate",
    "jpeg_compression",
)
KNOBS = {
    "ci": dict(
        data="fashion_mnist",
        encoder="mlp",
        train_images=10_000,
        epochs=10,
        seeds=5,
        arms=ARMS_CI,
        vc_arm="vc",  # the VC that the paper's claims are decided on
        options=dict(batch_size=128),  # Adam 1e-3 (the library's default)
        shift_images=2000,
        corruptions=FAST_CORRUPTIONS,
        fgsm_images=2000,
        eps=[0.01, 0.02, 0.05, 0.1],
        ood="mnist",
        lowdata_seeds=5,
        lowdata_steps=600,
        subsets=None,
    ),
    "full": dict(
        data="cifar10",
        encoder="resnet18",
        train_images=None,
        epochs=12,
        seeds=3,
        arms=ARMS_GPU,
        vc_arm="vc_reference",
        options=CIFAR_GPU_RECIPE,
        shift_images=1000,
        corruptions=tuple(c for c in CIFAR_C_CORRUPTIONS if c != "frost"),
        fgsm_images=2000,
        eps=[0.5 / 255, 1 / 255, 2 / 255, 4 / 255],
        ood="svhn",
        lowdata_seeds=5,
        lowdata_steps=600,
        subsets=None,
    ),
    # smoke: the full code path on tiny subsets, two corruptions (one of them glass
    # blur, the package's compiled one)
    "smoke": dict(
        data="cifar10",
        encoder="resnet18",
        train_images=100,
        epochs=1,
        seeds=2,
        arms=ARMS_GPU,
        vc_arm="vc_reference",
        options={**CIFAR_GPU_RECIPE, "batch_size": 32},
        shift_images=16,
        corruptions=("gaussian_noise", "glass_blur"),
        fgsm_images=32,
        eps=[1 / 255, 4 / 255],
        ood="svhn",
        lowdata_seeds=2,
        lowdata_steps=4,
        subsets=dict(val=200, test=200),
    ),
}[run.profile]
SEEDS = [run.seed + i for i in range(KNOBS["seeds"])]
TRAINED = KNOBS["arms"]
VC = KNOBS["vc_arm"]
ARMS = (
    *TRAINED[:1],
    "ce_ts",
    *TRAINED[1:],
    f"{VC}_ts",
)  # every arm, post hoc ones included
ALPHA = 0.05
OOD_MARGIN = (
    0.02  # parity band for AUROC: the largest CE-VC gap the paper calls comparable
)
STEM = "03_vc_experiments"
metrics_ = {}
print(KNOBS)


def label(arm):
    names = {"ce": "CE (linear head)", "ce_ts": "CE + TS", "ce_gaussian": "ce_gaussian"}
    if arm in names:
        return names[arm]
    if arm.endswith("_ts"):
        return label(arm[:-3]) + " + TS"
    return {
        "gm": "GM",
        "vc": "VC (Algorithm 1)",
        "vc_reference": "vc_reference",
        "vc_quadratic": "VC, quadratic T",
    }[arm]


# %% [markdown]
# ## The questions, fixed before the runs
#
# **Arms.** CE (linear softmax head); CE + TS (CE's logits divided by a temperature fitted on the validation split);
# `ce_gaussian` (CE on per-class diagonal Gaussians); GM (CE + λ log p(z|y), λ = 0.1); VC as Algorithm 1 (β = λ =
# 0.01, linear T); `vc_reference` (the reference scripts' gradient: the encoder also receives λ ∇ log p(z|y));
# VC with a quadratic T; VC + TS. `full` trains CE, `ce_gaussian` and `vc_reference` (the candidate VC there). All
# arms of one seed start from the **same initial encoder weights and see the same batches** (the seed fixes both,
# `lvmcls.train.fit_cached`); they share the optimiser, schedule, epochs and data, and differ only in the head and
# objective.
#
# **Metrics** (each per seed, on the test split): H1, the ECE (20 equal-width bins, as the paper's appendix C) on all
# test images; H2, the ECE on corrupted test images, averaged over every corruption × severity cell; H3, the accuracy
# under FGSM averaged over the attacked ε; H4, the accuracy after training on 500 MNIST images (a different
# class-balanced draw per seed, the same draw for every arm of a seed); OOD, the AUROC of $\max_y p(y\mid x)$ for
# telling the test set from the OOD set.
#
# **Rule.** `lvmcls.decisions.paired_decision` on the per-seed differences, two-sided α = 0.05, Bonferroni over
# every comparison in the table below (the count is printed with it): *supported* when the whole interval lies on
# the side the paper claims, *contradicted* when on the other side, *not resolved* otherwise, with the smallest
# effect the design detects with power 0.8. OOD is a parity claim: `parity_decision` (two one-sided tests) within
# ±0.02 AUROC, the largest CE–VC gap the paper's Table 3 calls comparable (0.88 against 0.86). The ledger records the
# comparison the paper makes (VC against CE) for each hypothesis; the others say why.

# %% tags=["hide-input"]
# (hypothesis, metric, candidate, baseline, direction): every comparison decided
COMPARISONS = [
    ("H1", "ece", VC, "ce", "lower"),
    ("H1", "ece", VC, "ce_ts", "lower"),
    ("H1", "ece", VC, "ce_gaussian", "lower"),
    ("H1", "ece", f"{VC}_ts", "ce_ts", "lower"),
    ("H1", "ece", "vc_reference", "ce", "lower"),
    ("H1", "ece", "vc_quadratic", "ce", "lower"),
    ("H2", "shift_ece", VC, "ce", "lower"),
    ("H2", "shift_ece", VC, "ce_ts", "lower"),
    ("H3", "fgsm_acc", VC, "ce", "higher"),
    ("H3", "fgsm_acc", VC, "ce_gaussian", "higher"),
    ("H4", "lowdata_acc", "vc", "ce", "higher"),
    ("OOD", "ood_auroc", VC, "ce", "parity"),
]
COMPARISONS = list(  # the comparisons whose arms this profile trains, once each
    dict.fromkeys(c for c in COMPARISONS if c[0] == "H4" or {c[2], c[3]} <= {*ARMS})
)
M = len(COMPARISONS)
METRIC_WORDS = {
    "ece": "test ECE",
    "shift_ece": "ECE under shift, mean over corruption × severity cells",
    "fgsm_acc": "accuracy under FGSM, mean over the attacked ε",
    "lowdata_acc": "test accuracy after 500 training images",
    "ood_auroc": f"OOD AUROC of max p(y|x), {KNOBS['ood']} as OOD set",
}
markdown(
    "| # | hypothesis | candidate | baseline | metric | paper's side |\n"
    + "|---|---|---|---|---|---|\n"
    + "\n".join(
        f"| {i + 1} | {h} | {label(a)} | {label(b)} | {METRIC_WORDS[k]} | {d} |"
        for i, (h, k, a, b, d) in enumerate(COMPARISONS)
    )
    + f"\n\n{M} comparisons at α = {ALPHA}: each interval is at "
    f"{100 * (1 - ALPHA / M):.2f} % (Bonferroni); {len(SEEDS)} paired seeds "
    f"({KNOBS['lowdata_seeds']} for H4)."
)

# %% [markdown]
# ## The regime, chosen on validation data
#
# MNIST is the wrong place to ask H1: a CE MLP there is already calibrated to about twice the ECE floor of a
# perfectly calibrated model, so there is nothing to improve. `bench/ch3_regime.py` chose the `ci` regime before
# any VC model was trained, looking at the plain CE arm's **validation** ECE only: among Fashion-MNIST training
# subsets of 5,000 or 10,000 images trained 10 or 20 epochs, the largest subset, then the fewest epochs, with a CE
# validation ECE of at least 3 % (its table is `bench/ch3_regime.md`: 10,000 images, 10 epochs). Everything else is
# the library's default (Adam 1e-3, batch 128, the MLP encoder 2 × 256, latent 32, β = 0.01), fixed in advance, and
# the class priors train at the encoder's rate (the reference code's 0.1× is used in `full`, where the recipe is
# the reference's SGD). The temperatures are fitted on the validation split; no knob is chosen on test data.

# %% tags=["hide-input"]
source = load_dataset(KNOBS["data"], device=run.device)
mnist = load_dataset("mnist", device=run.device)
if KNOBS["subsets"] is not None:  # smoke: class-balanced val / test subsets
    source = source.replace(
        val=balanced_subset(source.val, KNOBS["subsets"]["val"] // 10, seed=0),
        test=balanced_subset(source.test, KNOBS["subsets"]["test"] // 10, seed=0),
    )
data = source.replace(
    train=source.train
    if KNOBS["train_images"] is None
    else balanced_subset(source.train, KNOBS["train_images"] // 10, seed=0)
)
print(data)


def train_arm(arm, s):
    objective = "vc" if arm == "vc_quadratic" else arm
    extra = dict(ratio_form="quadratic") if arm == "vc_quadratic" else {}
    return train_vc_model(
        f"ch3-{KNOBS['data']}-{arm}-s{s}",
        data,
        objective,
        KNOBS["encoder"],
        10,
        latent_dim,
        epochs=KNOBS["epochs"],
        seed=s,
        device=run.device,
        beta=beta,
        **extra,
        **KNOBS["options"],
    )


models, histories = {}, {}
for s in SEEDS:
    for arm in TRAINED:
        models[(arm, s)], record = train_arm(arm, s)
        histories[(arm, s)] = record["history"]
# the post hoc arms: temperature on the validation split
temperatures = {}
for s in SEEDS:
    for arm in ("ce", VC):
        _, val_logits = evaluate_classifier(models[(arm, s)], data.val)
        temperatures[(f"{arm}_ts", s)] = calibration.fit_temperature(
            val_logits, data.val.y.cpu()
        )
        models[(f"{arm}_ts", s)] = models[(arm, s)]


def temperature(arm, s):
    return temperatures.get((arm, s), 1.0)


print(f"trained or loaded {len(TRAINED) * len(SEEDS)} models in {run.elapsed():.0f} s")

# %% [markdown]
# ## H1: calibration on the clean test set
#
# The temperature of the "+ TS" arms divides the logits by one scalar fitted on the validation split:

# %%
show(calibration.fit_temperature)

# %% [markdown]
# How small an ECE can be told from zero at this test size? We redraw the test labels from a model's own
# probabilities, so that the model is perfectly calibrated for them by construction, and measure the ECE anyway:
# that is the estimator's floor (`calibration.ece_floor`). Differences between arms are also bootstrapped over test
# images (`calibration.paired_ece_bootstrap`: the same resampled images for every arm and seed), the uncertainty
# that the seed-paired interval does not see, because every seed is tested on the same images.

# %%
show(calibration.ece_floor)

# %% tags=["hide-input"]
per_seed = {}  # (metric, arm) -> one number per seed
probs = {}  # (arm, seed) -> test probabilities
h1_rows = [
    "| arm | accuracy (%) | ECE (%) | NLL | T (val) | spread ratio | KL, kNN | KL, T |",
    "|---|---|---|---|---|---|---|---|",
]
spread = {}
for arm in ARMS:
    reports = []
    for s in SEEDS:
        report, logits = evaluate_classifier(
            models[(arm, s)], data.test, temperature(arm, s)
        )
        probs[(arm, s)] = (logits / temperature(arm, s)).softmax(1)
        reports.append(report)
    per_seed[("ece", arm)] = [r["ece"] for r in reports]
    per_seed[("acc", arm)] = [r["acc"] for r in reports]
    per_seed[("nll", arm)] = [r["nll"] for r in reports]
    if arm.endswith("_ts"):
        cells = ["—"] * 3
    else:  # the latent spread of every trained model, on the test latents
        ratios, kls, t_kls = [], [], []
        for s in SEEDS:
            model = models[(arm, s)]
            z = model.latents(data.test.x)
            y = data.test.y
            prior = model.prior
            ratios.append(
                statistics.fmean(estimators.spread_ratio(z, y, prior).values())
            )
            kls.append(statistics.fmean(estimators.latent_kl(z, y, prior).values()))
            if model.ratio is not None:
                with torch.no_grad():
                    t_kls.append(float(model.ratio.kl_estimate(z, y)))
        spread[arm] = {
            "spread_ratio": ratios,
            "latent_kl_knn": kls,
            "kl_estimate_T": t_kls or None,
        }
        cells = [
            f"{statistics.fmean(ratios):.2f}",
            f"{statistics.fmean(kls):.1f}",
            f"{statistics.fmean(t_kls):.3f}" if t_kls else "—",
        ]
    t_text = (
        f"{statistics.fmean(temperature(arm, s) for s in SEEDS):.2f}"
        if arm.endswith("_ts")
        else "—"
    )
    h1_rows.append(
        f"| {label(arm)} | {100 * statistics.fmean(per_seed[('acc', arm)]):.2f} | "
        f"{100 * statistics.fmean(per_seed[('ece', arm)]):.2f} ± "
        f"{100 * statistics.stdev(per_seed[('ece', arm)]):.2f} | "
        f"{statistics.fmean(per_seed[('nll', arm)]):.3f} | {t_text} | "
        + " | ".join(cells)
        + " |"
    )
floor = calibration.ece_floor(probs[("ce_ts", SEEDS[0])])
metrics_["ece_floor_test"] = floor
all_ratios = [r for v in spread.values() for r in v["spread_ratio"]]
filled = [arm for arm, v in spread.items() if statistics.fmean(v["spread_ratio"]) > 0.5]
markdown(
    "\n".join(h1_rows)
    + f"\n\nMeans over {len(SEEDS)} seeds (ECE ± its standard deviation over seeds). "
    f"**ECE floor** at {floor['n']:,} test images (CE + TS's confidences, "
    f"labels redrawn {floor['draws']} times): mean {100 * floor['mean']:.2f} %, "
    f"95th percentile {100 * floor['p95']:.2f} %. Spread ratio: tr Cov(z | y) over the "
    "trace of the class prior's covariance, averaged over classes (1 = the latents "
    "fill their prior; for CE the prior is the notional shared-isotropic Gaussian "
    "behind its linear head). KL, kNN: KL(q(z|y) ‖ p(z|y)) by the Kozachenko–Leonenko "
    "entropy (`estimators.latent_kl`); KL, T: the discriminator's own estimate E_q T. "
    f"Across the {len(all_ratios)} trained models the spread ratio lies between "
    f"{min(all_ratios):.2f} and {max(all_ratios):.2f}: "
    + (
        ", ".join(label(a) for a in filled)
        + " fill(s) out more than half of the prior."
        if filled
        else "no arm's latents fill out even half of their class prior, VC's included, "
        "so no calibration difference here can be credited to filling out the prior."
    )
)

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(5.5, 4.2))
for arm, color in (("ce", "C0"), ("ce_ts", "C2"), (VC, "C3")):
    plots.reliability_diagram(
        ax,
        metrics.reliability_curve(probs[(arm, SEEDS[0])], data.test.y.cpu(), 20),
        label=label(arm),
        color=color,
    )
ax.set_title(f"{data.name} test, seed {SEEDS[0]}")
fig.tight_layout()
figure(
    fig,
    "fig-ch3-reliability",
    "Reliability diagrams on the test split for CE, CE with temperature scaling and "
    "VC (first seed): accuracy of the images in each of 20 bins of the confidence "
    "$\\max_y p(y\\mid x)$, against the diagonal; ECE in the legend.",
)

# %% [markdown]
# ## H2: calibration under shift
#
# Every test image of the first `shift_images` is corrupted by each corruption at severities 1–5
# (`lvmcls.corruptions`, ImageNet-C code, cached; on Fashion-MNIST the grey images are repeated to RGB, corrupted
# and averaged back). For each seed and arm the metric is the ECE averaged over the corruption × severity cells;
# {numref}`fig-ch3-shift` draws the cells as boxes per severity, as the paper's Figure 3.

# %% tags=["hide-input"]
n_shift = min(KNOBS["shift_images"], len(data.test))
x_clean, y_clean = data.test.x[:n_shift], data.test.y[:n_shift]
shift_rows = []
for corruption in KNOBS["corruptions"]:
    for severity in SEVERITIES:
        split = TensorSplit(
            corrupt_images(x_clean, corruption, severity, seed=0), y_clean
        )
        for arm in ARMS:
            for s in SEEDS:
                report = evaluate_classifier(
                    models[(arm, s)], split, temperature(arm, s)
                )[0]
                shift_rows.append(
                    dict(
                        corruption=corruption,
                        severity=severity,
                        arm=arm,
                        seed=s,
                        ece=report["ece"],
                        acc=report["acc"],
                    )
                )
cells = sorted({(r["corruption"], r["severity"]) for r in shift_rows})
for arm in ARMS:
    per_seed[("shift_ece", arm)] = [
        statistics.fmean(
            r["ece"] for r in shift_rows if r["arm"] == arm and r["seed"] == s
        )
        for s in SEEDS
    ]
    per_seed[("shift_acc", arm)] = [
        statistics.fmean(
            r["acc"] for r in shift_rows if r["arm"] == arm and r["seed"] == s
        )
        for s in SEEDS
    ]
# the same question cell by cell (seeds averaged): in how many cells is VC below CE?
cell_ece = {
    (arm, c): statistics.fmean(
        r["ece"]
        for r in shift_rows
        if r["arm"] == arm and (r["corruption"], r["severity"]) == c
    )
    for arm in ARMS
    for c in cells
}
wins = {
    base: sum(cell_ece[(VC, c)] < cell_ece[(base, c)] for c in cells)
    for base in ("ce", "ce_ts")
}
shift_floor = calibration.ece_floor(probs[("ce_ts", SEEDS[0])][:n_shift])
metrics_["ece_floor_shift"] = shift_floor
metrics_["shift_cells"] = len(cells)
metrics_["shift_cells_vc_below"] = wins
markdown(
    "| arm | ECE under shift (%) | accuracy under shift (%) |\n|---|---|---|\n"
    + "\n".join(
        f"| {label(arm)} | "
        f"{100 * statistics.fmean(per_seed[('shift_ece', arm)]):.2f} | "
        f"{100 * statistics.fmean(per_seed[('shift_acc', arm)]):.2f} |"
        for arm in ARMS
    )
    + f"\n\nMeans over {len(cells)} cells ({len(KNOBS['corruptions'])} corruptions × "
    f"{len(SEVERITIES)} severities) of {n_shift:,} images and {len(SEEDS)} seeds. "
    f"{label(VC)} has the lower seed-mean ECE in {wins['ce']} of {len(cells)} cells "
    f"against CE and in {wins['ce_ts']} against CE + TS. ECE floor of one cell at "
    f"{n_shift:,} images: {100 * shift_floor['mean']:.2f} % (95th percentile "
    f"{100 * shift_floor['p95']:.2f} %)."
)

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
shown = [a for a in ("ce", "ce_ts", "ce_gaussian", VC, f"{VC}_ts") if a in ARMS]
for ax, value in zip(axes, ("ece", "acc")):
    rows = [r for r in shift_rows if r["arm"] in shown and r["seed"] == SEEDS[0]]
    sns.boxplot(
        x=[r["severity"] for r in rows],
        y=[100 * r[value] for r in rows],
        hue=[label(r["arm"]) for r in rows],
        hue_order=[label(a) for a in shown],
        ax=ax,
        whis=(0, 100),  # whiskers at min / max, as in the paper's Figure 3
        fliersize=2,
    )
    ax.set(xlabel="severity", ylabel="ECE (%)" if value == "ece" else "accuracy (%)")
axes[0].set_title(f"calibration under shift ({len(KNOBS['corruptions'])} corruptions)")
axes[1].set_title("accuracy under shift")
fig.tight_layout()
figure(
    fig,
    "fig-ch3-shift",
    "Corrupted test images: ECE (%, left) and accuracy (%, right) at each severity "
    "1–5, one box per arm pooling the corruption types (first seed).",
)

# %% [markdown]
# ## H3: FGSM, and whether the gradient is there to follow
#
# The fast gradient sign method perturbs each pixel by $\pm\varepsilon$ in the direction that increases the loss,
# $x' = \operatorname{clip}_{[0,1]}(x + \varepsilon\,\operatorname{sign}\nabla_x \mathcal L(x, y))$, white-box through
# each model's own $p(y\mid x)$ (the cross-entropy at the true label, the same $\mathcal L$ for every arm). A model can
# look robust to FGSM because its softmax saturates in fp32: the input gradient is then exactly zero, sign(0) = 0,
# and the attack does nothing (gradient masking). Gaussian heads with small variances produce huge logits, so we
# report for every arm the share of inputs whose input gradient is exactly zero (`attacks.zero_gradient_share`);
# a robustness claim needs it near zero.

# %%
show(attacks.zero_gradient_share)

# %% tags=["hide-input"]
n_fgsm = min(KNOBS["fgsm_images"], len(data.test))
x_adv, y_adv = data.test.x[:n_fgsm], data.test.y[:n_fgsm]
eps = KNOBS["eps"]
fgsm_curves, zero_share = {}, {}
for arm in TRAINED:
    fgsm_curves[arm] = [
        attacks.fgsm_accuracy_curve(models[(arm, s)], x_adv, y_adv, eps) for s in SEEDS
    ]
    per_seed[("fgsm_acc", arm)] = [statistics.fmean(c) for c in fgsm_curves[arm]]
    zero_share[arm] = [
        attacks.zero_gradient_share(models[(arm, s)], x_adv, y_adv) for s in SEEDS
    ]
metrics_["fgsm_zero_gradient_share"] = zero_share
markdown(
    "| arm | "
    + " | ".join(f"ε = {e:.3g}" for e in eps)
    + " | mean | inputs with a zero gradient (%) |\n|"
    + "---|" * (len(eps) + 3)
    + "\n"
    + "\n".join(
        f"| {label(arm)} | "
        + " | ".join(
            f"{100 * statistics.fmean(c[i] for c in fgsm_curves[arm]):.1f}"
            for i in range(len(eps))
        )
        + f" | {100 * statistics.fmean(per_seed[('fgsm_acc', arm)]):.1f} | "
        f"{100 * statistics.fmean(zero_share[arm]):.2f} |"
        for arm in TRAINED
    )
    + f"\n\nAccuracy (%) under FGSM on {n_fgsm:,} test images, mean over "
    f"{len(SEEDS)} seeds."
)

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(5.5, 3.8))
for arm in TRAINED:
    curves = torch.tensor(fgsm_curves[arm])
    ax.plot(eps, curves.mean(0), marker="o", label=label(arm))
ax.set(xlabel="ε (pixel units)", ylabel="accuracy", title=f"FGSM ({n_fgsm} images)")
ax.legend(frameon=False, fontsize=8)
fig.tight_layout()
figure(
    fig,
    "fig-ch3-fgsm",
    "FGSM: test accuracy against the attack's step ε (pixel units, images in [0, 1]) "
    "for every trained arm, mean over seeds.",
)

# %% [markdown]
# ## H4: low data
#
# The paper trains on 500 MNIST images (Table 4: CE 93.1 ± 0.2, GM 94.4 ± 0.1, VC 94.2 ± 0.2, mean ± standard
# error over 5 runs). Ours: a class-balanced draw of 500 training images per seed (the same draw for every arm of a
# seed), the MLP encoder, Adam 1e-3, batch 64 and exactly the same number of optimiser steps for every arm
# (`train_vc_model(..., steps=N)`), with no validation-based selection; every knob is the library's default, fixed
# before the runs. Arms: CE, `ce_gaussian` and VC (Algorithm 1).

# %% tags=["hide-input"]
LOWDATA_SEEDS = [run.seed + i for i in range(KNOBS["lowdata_seeds"])]
LOWDATA_ARMS = ("ce", "ce_gaussian", "vc")
steps_taken = set()
SQRT_N = len(LOWDATA_SEEDS) ** 0.5
for arm in LOWDATA_ARMS:
    accs = []
    for s in LOWDATA_SEEDS:
        small = mnist.replace(train=balanced_subset(mnist.train, 50, seed=s), val=None)
        model, record = train_vc_model(
            f"ch3-lowdata-mnist500-{arm}-s{s}",
            small,
            arm,
            "mlp",
            10,
            latent_dim,
            steps=KNOBS["lowdata_steps"],
            seed=s,
            device=run.device,
            beta=beta,
            batch_size=64,
        )
        steps_taken.add(record["history"]["steps"])
        accs.append(evaluate_classifier(model, mnist.test)[0]["acc"])
    per_seed[("lowdata_acc", arm)] = accs
metrics_["lowdata_steps_taken"] = sorted(steps_taken)
markdown(
    "| arm | paper (%, Table 4) | ours (%, mean ± s.e.) |\n|---|---|---|\n"
    + "\n".join(
        f"| {label(arm)} | {dict(ce='93.1 ± 0.2', vc='94.2 ± 0.2').get(arm, '—')} | "
        f"{100 * statistics.fmean(per_seed[('lowdata_acc', arm)]):.1f} ± "
        f"{100 * statistics.stdev(per_seed[('lowdata_acc', arm)]) / SQRT_N:.1f} |"
        for arm in LOWDATA_ARMS
    )
    + f"\n\n{len(LOWDATA_SEEDS)} seeds; optimiser steps read back from the training "
    f"histories: {sorted(steps_taken)} (one number: the same budget for every run)."
)

# %% [markdown]
# ## Out-of-distribution detection (Table 3)
#
# The models of H1 see the test images of another data set (`ci`: MNIST for the Fashion-MNIST models; `full`:
# SVHN for CIFAR-10, when torchvision can download it: it has no offline copy). AUROC of $\max_y p(y\mid x)$ and,
# as the paper also reports, of the latent density $\log p_\theta(z)$; 1 separates perfectly, 0.5 is chance.

# %% tags=["hide-input"]
x_out = None
if KNOBS["ood"] == "mnist":
    x_out = mnist.test.x
else:
    try:
        x_out, _ = load_ood_images(
            KNOBS["ood"], device=run.device, limit=len(data.test)
        )
    except DataUnavailableError as err:
        print(f"OOD not run: {err}")
ood_logpz = {}
if x_out is not None:
    for arm in TRAINED:
        per_seed[("ood_auroc", arm)] = [
            ood_auroc(models[(arm, s)], data.test.x, x_out, "max_prob") for s in SEEDS
        ]
        ood_logpz[arm] = [
            ood_auroc(models[(arm, s)], data.test.x, x_out, "log_pz") for s in SEEDS
        ]
    metrics_["ood_auroc_logpz"] = ood_logpz
    markdown(
        "| arm | AUROC, max p(y\\|x) | AUROC, log p(z) |\n|---|---|---|\n"
        + "\n".join(
            f"| {label(arm)} | {statistics.fmean(per_seed[('ood_auroc', arm)]):.3f} | "
            f"{statistics.fmean(ood_logpz[arm]):.3f} |"
            for arm in TRAINED
        )
        + f"\n\n{len(SEEDS)} seeds; {KNOBS['ood']} test images as the OOD set."
    )

# %% [markdown]
# (ch3-decisions)=
# ## Decisions
#
# Each row applies the rule fixed above to the per-seed numbers of its two arms (the code is
# `lvmcls.decisions.paired_decision`; the parity row `parity_decision`). For the ECE rows the last column is the
# bootstrap interval over test images of the same difference (95 %, 500 resamples), which the seed-paired interval
# does not include.

# %%
show(paired_decision)

# %% tags=["hide-input"]
decisions, boot = {}, {}
for h, key, a, b, direction in COMPARISONS:
    if (key, a) not in per_seed or (key, b) not in per_seed:
        continue  # e.g. no OOD set offline in full
    common = dict(
        what=METRIC_WORDS[key], names=(label(a), label(b)), alpha=ALPHA, comparisons=M
    )
    if direction == "parity":
        d = parity_decision(
            per_seed[(key, a)], per_seed[(key, b)], margin=OOD_MARGIN, **common
        )
    else:
        d = paired_decision(
            per_seed[(key, a)], per_seed[(key, b)], direction=direction, **common
        )
    decisions[(h, key, a, b)] = d
    if key == "ece":
        boot[(h, key, a, b)] = calibration.paired_ece_bootstrap(
            [probs[(a, s)] for s in SEEDS],
            [probs[(b, s)] for s in SEEDS],
            data.test.y,
            resamples=500,
        )
rows = [
    "| hypothesis | comparison | verdict | difference [interval] | MDE | "
    "bootstrap over images (ECE) |",
    "|---|---|---|---|---|---|",
]
for (h, key, a, b), d in decisions.items():
    lo, hi = d.interval
    bt = boot.get((h, key, a, b))
    bt_text = (
        f"{100 * bt['difference']:+.2f} [{100 * bt['interval'][0]:+.2f}, "
        f"{100 * bt['interval'][1]:+.2f}]"
        if bt
        else "—"
    )
    scale, unit = (100, " pts") if key != "ood_auroc" else (1, "")
    rows.append(
        f"| {h} | {label(a)} − {label(b)} ({METRIC_WORDS[key]}) | **{d.verdict}** | "
        f"{scale * d.mean_difference:+.2f}{unit} "
        f"[{scale * lo:+.2f}, {scale * hi:+.2f}] | "
        f"{scale * d.minimum_detectable_effect:.2f}{unit} | {bt_text} |"
    )
markdown(
    "\n".join(rows)
    + f"\n\nDifferences in percentage points (AUROC in its own units), {len(SEEDS)} "
    f"paired seeds ({len(LOWDATA_SEEDS)} for H4), "
    f"{100 * (1 - ALPHA / M):.2f} % intervals ({M} comparisons; the parity row's "
    f"two one-sided tests give a {100 * (1 - 2 * ALPHA / M):.2f} % interval, margin "
    f"±{OOD_MARGIN}). MDE: the smallest difference this design detects with power 0.8."
)

# %% tags=["hide-input"]
LEDGER = {
    "H1": (
        "vc/h1-calibration",
        "VC is better calibrated (lower ECE) than softmax CE, with comparable accuracy",
        "Table 1 (ECE %, mean ± std over 5 runs)",
        "CIFAR-10 ResNet-50: CE 3.8 ± 0.3, VC 3.2 ± 0.2; "
        "WRN: CE 3.1 ± 0.2, VC 2.1 ± 0.2",
    ),
    "H2": (
        "vc/h2-shift",
        "VC stays better calibrated than CE under synthetic distribution shift",
        "Figure 3 (CIFAR-10-C ECE by severity; CE with and without "
        "temperature scaling)",
        "VC's ECE boxes below CE's at every severity (read from the figure)",
    ),
    "H3": (
        "vc/h3-fgsm",
        "VC keeps a higher accuracy than CE under FGSM attacks",
        "Figure 4 (accuracy against ε, MNIST and CIFAR-10)",
        "VC above CE at every ε (read from the figure)",
    ),
    "H4": (
        "vc/h4-lowdata",
        "VC classifies more accurately than CE from 500 MNIST training images",
        "Table 4 (accuracy %, mean ± s.e. over 5 runs)",
        "MNIST-500: CE 93.1 ± 0.2, GM 94.4 ± 0.1, VC 94.2 ± 0.2",
    ),
    "OOD": (
        "vc/ood-parity",
        "VC detects out-of-distribution inputs as well as CE (AUROC of max p(y|x))",
        "Table 3 (AUROC, CIFAR-10 against SVHN / CIFAR-100 / CelebA)",
        "CE 0.92 / 0.88 / 0.90, VC 0.93 / 0.86 / 0.89",
    ),
}
claims = []
for h, (key, statement, source_, paper_value) in LEDGER.items():
    primary = next(
        (d for (h_, _, a, b), d in decisions.items() if h_ == h and b == "ce"), None
    )
    measured = (
        {"decision": primary}
        if primary is not None
        else {
            "verdict": "not run (no OOD set on this machine)",
            "ours": "no measurement",
        }
    )
    claims.append(
        claim(
            key,
            paper="vc",
            statement=statement,
            source=source_,
            paper_value=paper_value,
            section="ch3-decisions",
            **measured,
        )
    )
markdown(
    "\n".join(
        f"- **{c['key']}** ({c['verdict']}): {c['statement']}. Ours: {c['ours']}."
        for c in claims
    )
)

# %% [markdown]
# ## What `full` decides, and its cost
#
# `ci` cannot say whether the paper's claims hold *where the paper made them*. The `full` profile (one GPU) asks H1,
# H2 and H3 on CIFAR-10 with ResNet-18 (the paper: ResNet-50 and WideResNet-28-10, so accuracies differ): 3 paired
# seeds × {CE, CE + TS, `ce_gaussian`, `vc_reference`, `vc_reference` + TS} on all 45,000 training images, 12
# epochs of one-cycle SGD (peak 0.2, Nesterov, weight decay 5e-4, batch 512, crop + flip on the GPU, bf16), the class
# priors at 0.1 × the encoder's rate as in the reference code (`prior_lr` passes through `train_vc_model`); H1 on
# the 10,000 test images; H2 on 1,000 test images under 14 corruptions × 5 severities (70 cells); H3 on 2,000;
# OOD against SVHN when it can be downloaded; H4 as in `ci`. `vc_reference` is the candidate VC there (the gradient
# of the reference scripts, plausibly what produced Table 1). Its cost is an estimate, not a measurement: the
# previous design's `full` run took 5.6 minutes on one H100 for 75 ResNet-18 epochs plus about 40 small models, so
# about 3 s per ResNet-18 epoch; 9 runs × 12 epochs ≈ 5.5 min, plus the corruptions (generated on the CPU) and
# evaluation ≈ 2 min: `FULL_MINUTES_H100 = 8`, to be replaced by the measured time of the first run. With 3 seeds
# the design resolves only effects larger than about 5 standard errors of the paired difference (the printed
# MDE says how large): a gap like the paper's VC against CE (3.8 against 3.2 % ECE, Table 1) may well not resolve.

# %% [markdown]
# ## Scorecard
#
# The paper's numbers beside ours where they measure the same thing: only the MNIST-500 accuracies of H4 (Table 4).
# Its Tables 1–3 are measured on other networks and data (CIFAR with ResNet-50) and are in the decision ledger with
# their sources, not here as if they were comparable. The `full` column comes from
# `results/full/03_vc_experiments.json`.

# %% tags=["hide-input"]
for (key, arm), values in per_seed.items():
    metrics_[f"{key}_{arm}_per_seed"] = [float(v) for v in values]
    metrics_[f"{key}_{arm}"] = statistics.fmean(values)
metrics_["spread"] = spread
metrics_["temperatures"] = {
    arm: [temperatures[(arm, s)] for s in SEEDS] for arm in ("ce_ts", f"{VC}_ts")
}
metrics_["decisions"] = {
    f"{h}: {a} vs {b} ({key})": d.to_dict() for (h, key, a, b), d in decisions.items()
}
metrics_["ece_bootstrap"] = {
    f"{h}: {a} vs {b}": v for (h, key, a, b), v in boot.items()
}
PAPER = {"lowdata_acc_ce": 0.931, "lowdata_acc_vc": 0.942}
SCORE_KEYS = [
    f"{k}_{arm}"
    for k in ("acc", "ece", "shift_ece", "fgsm_acc", "ood_auroc")
    for arm in ARMS
    if f"{k}_{arm}" in metrics_
] + [f"lowdata_acc_{arm}" for arm in LOWDATA_ARMS]
path = run.write_results(
    STEM,
    seeds=SEEDS,
    data_source={
        KNOBS["data"]: source.source,
        "mnist": mnist.source,
        "shift": (
            "corruptions in the style of CIFAR-10-C (imagecorruptions-imaug 1.1.5)"
        ),
    },
    metrics=metrics_,
    paper=PAPER,
    claims=claims,
    design={
        "comparisons": [list(c) for c in COMPARISONS],
        "alpha": ALPHA,
        "ood_margin": OOD_MARGIN,
        "arms": list(ARMS),
        "seeds": SEEDS,
        "lowdata_seeds": LOWDATA_SEEDS,
        "knobs_chosen_on": "validation (bench/ch3_regime.py; temperatures)",
    },
    knobs={**KNOBS, "latent_dim": latent_dim, "beta": beta},
)
print(f"wrote {path.name} after {run.elapsed():.0f} s")
scorecard(STEM, {k: metrics_[k] for k in SCORE_KEYS}, PAPER)

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
print({k: round(v, 3) for k, v in sorted(metrics_.items()) if isinstance(v, float)})

# %% [markdown]
# ## Conclusion
#
# The decisions above are what this design, at this size, can say about the paper's hypotheses in a small regime
# chosen to let calibration differ; they are not a reproduction of the paper's CIFAR tables (the `full` profile asks
# those, with three seeds). Read each verdict with its MDE: "not resolved" with a small MDE says the effect, if any,
# is small; with a large MDE it says the design could not see it.
#
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# ```
