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
# VC with a "CE" that it calls "equivalent to standard softmax cross-entropy under the above assumptions", and
# those assumptions include diagonal Gaussian class priors: its CE can be read as the plain linear softmax (the
# reference code's CE) or as CE on per-class Gaussians (chapter 2). We decide its claims against both readings
# where the design has both, and add two baselines that say *why* VC would win, if it does (the second is also the
# Gaussian reading of the paper's CE):
#
# - **CE + temperature scaling** (one scalar fitted on validation data {cite}`guo2017calibration`), the
#   practical calibration baseline: if VC does not beat it, VC buys nothing a practitioner cannot get post hoc;
# - **`ce_gaussian`**, CE on the same per-class Gaussian head as VC: the plain CE has a linear head, VC a
#   quadratic one, so "VC − CE" mixes the head with the objective; "VC − `ce_gaussian`" isolates the objective.
#
# With the paper's *linear* discriminator $T^y(z) = w_y^\top z + b_y$ the encoder's KL gradient is
# $\nabla_z T^y(z) = w_y$, the same for every latent of a class (chapter 2): it moves a class, never spreads it. So we also train a VC whose discriminator can see spread
# (`ClassDensityRatio(form="quadratic")`, the exact family for two diagonal Gaussians), and we measure every model's
# latent spread: calibration is credited to "filling out the prior" only if the prior is filled out.
#
# **What differs from the paper.** The paper runs ResNet-50 / WideResNet on CIFAR-10/100 and Tiny-ImageNet (it
# does not say for how long; the reference code trains 90 epochs). The `ci` profile (two CPU cores, a few minutes) moves the calibration, shift, FGSM and OOD
# questions to a regime a CPU can answer with seeds: **Fashion-MNIST** with an MLP encoder, trained on 10,000 images
# until CE is measurably over-confident (chosen on validation data, below), tested on all 10,000 test images; the
# shifts are corruptions "in the style of CIFAR-10-C" (`lvmcls.corruptions`) applied to Fashion-MNIST, the OOD set
# is MNIST. Low data (H4) trains on 500 MNIST images with the same MLP (the paper does not name its MNIST network);
# the CIFAR-10 low-data runs and the Figure 5 sweep are not run in any profile (a one-seed CIFAR run cannot resolve
# anything: the time goes to seeds). The `full` profile (one GPU) asks H1–H3 on CIFAR-10 with ResNet-18, 3 seeds
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

import json
import statistics
import tempfile

import matplotlib.pyplot as plt
import seaborn as sns
import torch
from scipy import stats

from lvmcls import attacks, calibration, estimators, metrics, plots
from lvmcls.corruptions import CIFAR_C_CORRUPTIONS, SEVERITIES, corrupt_images
from lvmcls.data import (
    DataUnavailableError,
    TensorSplit,
    balanced_subset,
    load_dataset,
    load_ood_images,
)
from lvmcls.decisions import POWER, claim, paired_decision, parity_decision
from lvmcls.models import evaluate_classifier
from lvmcls.notebook import figure, markdown, setup, show
from lvmcls.paths import results_dir
from lvmcls.results import scorecard_markdown
from lvmcls.train import pick_device
from lvmcls.vc import ood_auroc, train_vc_model

device = pick_device()

# %% tags=["parameters"]
profile = "auto"  # "auto" | "ci" | "full" | "smoke"
seed = 0  # the first seed; the profile sets how many
latent_dim = 32
beta = 0.01

# %% tags=["hide-input"]
# estimate (see "What full decides" at the end): about 3 s per ResNet-18 epoch (the
# previous design's measured run, results/full/03_vc_experiments.json: 334 s on one H100
# for 75 epochs plus 1,500 low-data ResNet steps and about 40 small models); 3 arms x 3
# seeds x 5 epochs = 45 epochs ≈ 135 s, H4's 15 MLP runs x 600 steps x 2.5 ms ≈ 25 s,
# 70,000 corrupted images on the CPU ≈ 50 s, start-up, data and evaluation ≈ 25 s: 235 s
FULL_MINUTES_H100 = 3.9
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
PROFILES = {
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
        epochs=5,
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
}
KNOBS = PROFILES[run.profile]
SEEDS = [run.seed + i for i in range(KNOBS["seeds"])]
TRAINED = KNOBS["arms"]
VC = KNOBS["vc_arm"]


def all_arms(knobs):
    """A profile's arms, the post hoc "+ TS" ones included."""
    trained = knobs["arms"]
    return (*trained[:1], "ce_ts", *trained[1:], f"{knobs['vc_arm']}_ts")


ARMS = all_arms(KNOBS)
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
# VC with a quadratic T; VC + TS. (β and λ are the reference code's weights: the paper gives none.) `full` trains CE, `ce_gaussian` and `vc_reference` (the candidate VC there). All
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
# the side tested, *contradicted* when on the other side, *not resolved* otherwise. Each row also gives an MDE,
# computed after the runs from the spread of the paired differences they show (`lvmcls.decisions`, "at the observed
# spread"), not by a power analysis before them: the smallest difference a design with that spread would detect
# with power 0.8. OOD is a parity claim: `parity_decision` (two one-sided tests) within ±0.02 AUROC, the largest
# CE–VC gap the paper's Table 3 calls comparable (0.88 against 0.86). The last column marks the paper's own claims:
# H1 against CE (Table 1), H2 against CE and CE + TS (Figure 3), H3 against CE (Figure 4), H4 (Table 4) and OOD
# (Table 3), and, since its "CE" can also be read as `ce_gaussian` (chapter 2), the same claims against
# `ce_gaussian` where the design has that row. The other rows are controls that say why; for them the side tested
# is ours, not the paper's. The ledger records each claim with all of its rows.

# %% tags=["hide-input"]


def design(knobs):
    """(hypothesis, metric, candidate, baseline, side tested): every comparison whose
    arms the profile trains, once each."""
    vc = knobs["vc_arm"]
    rows = [
        ("H1", "ece", vc, "ce", "lower"),
        ("H1", "ece", vc, "ce_ts", "lower"),
        ("H1", "ece", vc, "ce_gaussian", "lower"),
        ("H1", "ece", f"{vc}_ts", "ce_ts", "lower"),
        ("H1", "ece", "vc_reference", "ce", "lower"),
        ("H1", "ece", "vc_quadratic", "ce", "lower"),
        ("H2", "shift_ece", vc, "ce", "lower"),
        ("H2", "shift_ece", vc, "ce_ts", "lower"),
        ("H3", "fgsm_acc", vc, "ce", "higher"),
        ("H3", "fgsm_acc", vc, "ce_gaussian", "higher"),
        ("H4", "lowdata_acc", "vc", "ce", "higher"),
        ("OOD", "ood_auroc", vc, "ce", "parity"),
    ]
    arms = {*all_arms(knobs)}
    return list(dict.fromkeys(c for c in rows if c[0] == "H4" or {c[2], c[3]} <= arms))


COMPARISONS = design(KNOBS)
M = len(COMPARISONS)
# the paper's own claims: its baselines per hypothesis (Figure 3 shows CE with and
# without temperature scaling); ce_gaussian is the other reading of its "CE"
PAPER_BASELINES = {
    "H1": ("ce",),
    "H2": ("ce", "ce_ts"),
    "H3": ("ce",),
    "H4": ("ce",),
    "OOD": ("ce",),
}
CONTROL = "a control"


def role(h, a, b):
    """Whose claim a comparison decides: the paper's, or a control of ours."""
    if a == ("vc" if h == "H4" else VC):
        if b in PAPER_BASELINES[h]:
            return "the paper's"
        if b == "ce_gaussian":
            return "the paper's, its CE read as `ce_gaussian`"
    return CONTROL


METRIC_WORDS = {
    "ece": "test ECE",
    "shift_ece": "ECE under shift, mean over corruption × severity cells",
    "fgsm_acc": "accuracy under FGSM, mean over the attacked ε",
    "lowdata_acc": "test accuracy after 500 training images",
    "ood_auroc": f"OOD AUROC of max p(y|x), {KNOBS['ood']} as OOD set",
}
markdown(
    "| # | hypothesis | candidate | baseline | metric | side tested | claim |\n"
    + "|---|---|---|---|---|---|---|\n"
    + "\n".join(
        f"| {i + 1} | {h} | {label(a)} | {label(b)} | {METRIC_WORDS[k]} | {d} | "
        f"{role(h, a, b)} |"
        for i, (h, k, a, b, d) in enumerate(COMPARISONS)
    )
    + f"\n\n{M} comparisons at α = {ALPHA}: each interval is at "
    f"{100 * (1 - ALPHA / M):.2f} % (Bonferroni); {len(SEEDS)} paired seeds "
    f"({KNOBS['lowdata_seeds']} for H4)."
)

# %% [markdown]
# ## The regime, chosen on validation data
#
# H1 needs a regime in which CE is measurably over-confident, or there is nothing for VC to improve.
# `bench/ch3_regime.py` chose the `ci` regime before
# any VC model was trained, looking at the plain CE arm's **validation** ECE only: among Fashion-MNIST training
# subsets of 5,000 or 10,000 images trained 10 or 20 epochs, the largest subset, then the fewest epochs, with a CE
# validation ECE of at least 3 % (its table is `bench/ch3_regime.md`: 10,000 images, 10 epochs). Everything else is
# the library's default (Adam 1e-3, batch 128, the MLP encoder 2 × 256, latent 32, β = 0.01), fixed in advance, and
# the class priors train at the encoder's rate (the reference code's 0.1× is used in `full`, where the recipe is
# the reference's SGD). The temperatures are fitted on the validation split; no knob of H1–H3 or OOD is chosen on
# test data (for H4's settings, see its section).

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
# CE's prior is notional: its linear head is the same for every shared variance
# σ² > 0, so its spread ratio is shown but left out of the range and the comparison
ranked = {arm: v for arm, v in spread.items() if arm != "ce"}
all_ratios = [r for v in ranked.values() for r in v["spread_ratio"]]
filled = [arm for arm, v in ranked.items() if statistics.fmean(v["spread_ratio"]) > 0.5]
markdown(
    "\n".join(h1_rows)
    + f"\n\nMeans over {len(SEEDS)} seeds (ECE ± its standard deviation over seeds). "
    f"**ECE floor** at {floor['n']:,} test images (CE + TS's confidences, "
    f"labels redrawn {floor['draws']} times): mean {100 * floor['mean']:.2f} %, "
    f"95th percentile {100 * floor['p95']:.2f} %. Spread ratio: tr Cov(z | y) over the "
    "trace of the class prior's covariance, averaged over classes (1 = the latents "
    "fill their prior; for CE the prior is the notional shared-isotropic Gaussian "
    "behind its linear head, whose variance the data do not determine: any σ² > 0 "
    "gives the same head, so CE's ratio and KL depend on an arbitrary σ² and are left "
    "out of the range below). KL, kNN: KL(q(z|y) ‖ p(z|y)) by the "
    "Kozachenko–Leonenko entropy (`estimators.latent_kl`); in d = "
    f"{latent_dim} with about {len(data.test) // 10:,} latents per class that "
    "estimate is heavily biased, so read it as a rough comparison between arms, not "
    "as a KL in nats. KL, T: the discriminator's own estimate E_q T. "
    f"Across the {len(all_ratios)} trained models other than CE's the spread ratio "
    "lies between "
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
# (`lvmcls.corruptions`, ImageNet-C code, cached; on Fashion-MNIST the grey 28 × 28 images are repeated to RGB,
# zero-padded to 32 × 32, the size the corruptions are written for, corrupted, cropped back and averaged to grey).
# The paper's Figure 3 pools 16 types of synthetic shift; we use fewer (`ci` the fastest of the package's
# corruptions, `full` all but frost; the count is printed under the table). For each seed and arm the metric is
# the ECE averaged over the corruption × severity cells; {numref}`fig-ch3-shift` draws the cells as boxes per
# severity, as the paper's Figure 3.

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
    + f"\n\nMeans over {len(cells)} cells ({len(KNOBS['corruptions'])} corruptions "
    "(the paper's Figure 3: 16 types) × "
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
# each model's own $p(y\mid x)$ (the cross-entropy at the true label, the same $\mathcal L$ for every arm). The paper
# takes $\mathcal L(x, y)$ to be "the model loss", which for GM and VC would include their prior and KL terms; we
# depart from it so that every arm faces the same attack. A model can
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
# seed), the MLP encoder, Adam 1e-3 (the library's default), batch 64 and 600 optimiser steps, the same for every
# arm (`train_vc_model(..., steps=N)`), with no validation-based selection. Batch 64 and 600 steps are our choices,
# not defaults (the library's default batch is 128, and `steps` has none), and they are not independent of the test
# set: an earlier search over MNIST-500 settings (`bench/lowdata_configs.md`: a ConvNet encoder, Adam 3e-3, other
# schedules, weights and step counts) scored every row on **test** accuracy, and its rows include batch 64 and 600
# steps. The settings here (a different encoder and learning rate) were fixed before these runs, but that search
# was a look at the test set and H4 should be read with it in mind. Arms: CE, `ce_gaussian` and VC (Algorithm 1).
# Our network is an MLP; the paper does not name its MNIST network.

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
    "| hypothesis | comparison | claim | verdict | difference [interval] | MDE | "
    "bootstrap over images (ECE) |",
    "|---|---|---|---|---|---|---|",
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
        f"| {h} | {label(a)} − {label(b)} ({METRIC_WORDS[key]}) | {role(h, a, b)} | "
        f"**{d.verdict}** | "
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
    f"±{OOD_MARGIN}). MDE: (t at the interval's level + t at {POWER}) × the standard "
    "error observed in this run, computed after the runs: the smallest difference a "
    f"design with this spread detects with power {POWER}. On the parity row it is the "
    "same quantity at the one-sided tests' level, the smallest departure from zero "
    "such a test would detect; it is not the power of the equivalence test to show "
    "parity. A verdict on a control row is about our question, not the paper's."
)

# %% tags=["hide-input"]
LEDGER = {
    "H1": (
        "vc/h1-calibration",
        "VC is better calibrated (lower ECE) than softmax CE",
        "Table 1 (ECE %, mean ± std over 5 runs)",
        "CIFAR-10 ResNet-50: CE 3.8 ± 0.3, VC 3.2 ± 0.2; "
        "CIFAR-10 WRN-28-10: CE 3.1 ± 0.2, VC 2.1 ± 0.2",
    ),
    "H2": (
        "vc/h2-shift",
        "VC stays better calibrated than CE, with and without temperature scaling, "
        "under synthetic distribution shift",
        "Figure 3 and §5.2 (ECE by severity on CIFAR-10-C, CIFAR-100-C and "
        "Tiny-ImageNet-C, 16 shift types; CE with and without temperature scaling)",
        '"the VC model has a consistently lower calibration error as the corruption '
        'intensity increases" (no numbers)',
    ),
    "H3": (
        "vc/h3-fgsm",
        "VC keeps a higher accuracy than CE under FGSM attacks",
        "Figure 4 and §5.3 (accuracy against ε, MNIST and CIFAR-10)",
        '"the VC model is consistently more (FGSM) adversarially robust relative to '
        'the standard CE model, across attack magnitudes on both datasets" '
        "(no numbers)",
    ),
    "H4": (
        "vc/h4-lowdata",
        "VC classifies more accurately than CE from 500 MNIST training images",
        "Table 4 (accuracy %, mean ± s.e. over 5 runs)",
        "MNIST, 500 images (network not named): CE 93.1 ± 0.2, GM 94.4 ± 0.1, "
        "VC 94.2 ± 0.2",
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
    # every row that decides the paper's claim: its baselines, and ce_gaussian (the
    # other reading of its "CE") where the design has it; one verdict only where all
    # of them agree
    rows_h = [
        (b, d)
        for (h_, _, a, b), d in decisions.items()
        if h_ == h and role(h, a, b) != CONTROL
    ]
    verdicts = {d.verdict for _, d in rows_h}
    if not rows_h:
        measured = {
            "verdict": "not run (no OOD set on this machine)",
            "ours": "no measurement",
        }
    elif len(rows_h) == 1:
        measured = {"decision": rows_h[0][1]}
    else:
        measured = {
            "verdict": verdicts.pop() if len(verdicts) == 1 else "not resolved",
            "ours": "; ".join(f"against {label(b)}: {d.sentence()}" for b, d in rows_h),
        }
    row = claim(
        key,
        paper="vc",
        statement=statement,
        source=source_,
        paper_value=paper_value,
        section="ch3-decisions",
        **measured,
    )
    if rows_h and "ce_gaussian" not in {b for b, _ in rows_h}:
        row["ours"] += (
            " (not decided against `ce_gaussian`, the Gaussian reading of the "
            "paper's CE: no such row in this design)"
        )
    claims.append(row)
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
# seeds × {CE, CE + TS, `ce_gaussian`, `vc_reference`, `vc_reference` + TS} on all 45,000 training images, 5 epochs of one-cycle
# SGD (peak 0.2, Nesterov, weight decay 5e-4, batch 512, crop + flip on the GPU, bf16), the class priors at 0.1 × the
# encoder's rate as in the reference code (`prior_lr` passes through `train_vc_model`); H1 on the 10,000 test
# images; H2 on 1,000 test images under 14 corruptions × 5 severities (70 cells); H3 on 2,000; OOD against SVHN when it
# can be downloaded; H4 as in `ci`. `vc_reference` is the candidate VC there (the gradient of the reference scripts,
# plausibly what produced Table 1). `ce_gaussian`, the control that separates the head from the objective, is
# trained there too, so "VC − `ce_gaussian`" isolates the objective. Within the book's one-GPU window (12 minutes
# for all seven chapters) this chapter's share is 3.9 minutes, an estimate, not a measurement: the previous
# design's `full` run took 5.6 minutes on one H100 for 75 ResNet-18 epochs plus about 40 small models, so about 3 s
# per ResNet-18 epoch; 9 runs × 5 epochs ≈ 2.3 min, H4 ≈ 0.4 min, the 70,000 corrupted images (generated on the
# CPU) ≈ 0.8 min, start-up and evaluation ≈ 0.4 min: `FULL_MINUTES_H100 = 3.9`,
# to be replaced by the measured time of the first run. The paper does not say how long it trained (the reference
# code trains 90 epochs); CE's over-confidence tends to grow with training, so five epochs may leave VC a smaller
# gap to close. The candidate VC differs by profile (VC as Algorithm 1 in `ci`, `vc_reference` in `full`), so a
# claim key of the ledger records a different arm in each profile; its sentences name the arm. How large an effect
# `full`'s few seeds can resolve is computed below from its number of seeds and comparisons: a gap like the paper's
# VC against CE on CIFAR-10 with ResNet-50 (3.8 against 3.2 % ECE, Table 1) may well not resolve.

# %% tags=["hide-input"]


def mde_in_se(m, n):
    """A paired row's MDE in standard errors of the paired difference, for m
    comparisons (Bonferroni) and n seeds: t_(1−α/2m, n−1) + t_(power, n−1)."""
    return stats.t.ppf(1 - ALPHA / (2 * m), n - 1) + stats.t.ppf(POWER, n - 1)


M_FULL, N_FULL = len(design(PROFILES["full"])), PROFILES["full"]["seeds"]
t_full = stats.t.ppf(1 - ALPHA / (2 * M_FULL), N_FULL - 1)
markdown(
    f"`full`: {N_FULL} seeds and {M_FULL} comparisons, so t_(1−α/2M, {N_FULL - 1}) = "
    f"{t_full:.2f} and a paired row resolves "
    f"only effects larger than about {mde_in_se(M_FULL, N_FULL):.1f} standard errors "
    f"of the paired difference (power {POWER}); this run's design ({run.profile}: "
    f"{len(SEEDS)} seeds, {M} comparisons): {mde_in_se(M, len(SEEDS)):.1f}. H4 has its "
    "own seeds; the MDE column above gives each row's value in its metric's units."
)

# %% [markdown]
# ## Scorecard
#
# The paper's numbers beside ours where they measure the same thing: only the MNIST-500 accuracies of H4 (Table 4;
# our MLP against the paper's unnamed network). Its other tables are measured elsewhere and are in the decision
# ledger with their sources, not here as if they were comparable: Table 1 on CIFAR-10, CIFAR-100 and Tiny-ImageNet
# with ResNet-50 and WideResNet-28-10; Table 2 under natural shift, NLI (trained on SNLI, tested on MNLI) and
# Camelyon17, networks not named; Table 3 by models trained on CIFAR-10, network not named. The `full` column comes
# from `results/full/03_vc_experiments.json` when that file was written by this design; the sentence under the
# table says which design wrote the committed file.

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
# the committed full file: shown only if this design wrote it (its comparisons match)
full_file = results_dir() / "full" / f"{STEM}.json"
full_record = json.loads(full_file.read_text()) if full_file.is_file() else None
full_design = [list(c) for c in design(PROFILES["full"])]
this_design = bool(full_record) and (
    full_record.get("design", {}).get("comparisons") == full_design
)
LOWDATA_WORDS = (
    "low data, MNIST with 500 training images (ours: the MLP encoder; the paper's "
    "network is not named) · test accuracy (fraction) · "
)
with tempfile.TemporaryDirectory() as no_full:  # an empty folder: no full column
    card = scorecard_markdown(
        STEM,
        {k: metrics_[k] for k in SCORE_KEYS},
        PAPER,
        folder=None if this_design else no_full,
        labels={f"lowdata_acc_{a}": LOWDATA_WORDS + label(a) for a in LOWDATA_ARMS},
    )
if full_record and not this_design:
    shared = [k for k in SCORE_KEYS if k in full_record["metrics"]]
    card += (
        f"\n\nThe committed `{full_file.name}` "
        f"(commit `{full_record['git_commit'][:7]}`, "
        f"written {full_record['written'][:10]}) was not written by this design: it "
        "records no design, or another one (other data, arms and knobs), so the "
        "`full` design described above has no committed run and the full column is "
        f"left empty. {len(shared)} of its metric keys have names of this scorecard's "
        + (
            f"({', '.join(f'`{k}`' for k in shared)}), but they come from that other "
            "design (other data and models) and are not shown."
            if shared
            else "(none)."
        )
    )
markdown(card)

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
