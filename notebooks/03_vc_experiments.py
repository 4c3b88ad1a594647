# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
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
# - **H2, robustness to distribution shift** (Figure 3 on synthetic corruptions; §5.2 says CE is compared "with
#   and without temperature scaling", which we read as Figure 3 showing both; Table 2 on natural shifts, not
#   repeated here): VC stays better calibrated on shifted inputs;
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
# $\nabla_z T^y(z) = w_y$, the same for every latent of a class (chapter 2): it moves a class, never spreads it.
# Whether VC's KL term does what the paper says it does, pull $q(z\mid y)$ toward $p(z\mid y)$, is therefore a
# question of its own here, asked before the claims with a gate fixed in advance ({ref}`ch3-mechanism`): a
# calibration difference is credited to "filling out the prior" only if the prior is filled out.
#
# **What differs from the paper.** The paper runs ResNet-50 / WideResNet on CIFAR-10/100 and Tiny-ImageNet (it
# does not say for how long; the reference code trains 90 epochs). The `ci` profile (two CPU cores; its measured time is printed at the end) moves the calibration, shift, FGSM and OOD
# questions to a regime a CPU can answer with seeds: **Fashion-MNIST** with an MLP encoder, trained on 10,000 images
# until CE is measurably over-confident (chosen on validation data, below), tested on all 10,000 test images; the
# shifts are corruptions "in the style of CIFAR-10-C" (`lvmcls.corruptions`) applied to Fashion-MNIST, the OOD set
# is MNIST. Low data (H4) trains on 500 MNIST images with the same MLP (the paper does not name its MNIST network);
# the CIFAR-10 low-data runs and the Figure 5 sweep are not run in any profile (a one-seed CIFAR run cannot resolve
# anything: the time goes to seeds). The `long` profile runs the same design on two CPU cores for the seeds the
# registry's power calculation asks for (one seed per run, resumable). The `full` profile (one GPU) asks H1–H3 on CIFAR-10 with ResNet-18, 3 seeds
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

from lvmcls import attacks, calibration, metrics, plots, registry
from lvmcls.corruptions import CIFAR_C_CORRUPTIONS, SEVERITIES, corrupt_images
from lvmcls.data import (
    DataUnavailableError,
    TensorSplit,
    balanced_subset,
    load_dataset,
    load_ood_images,
)
from lvmcls.decisions import POWER, minimum_detectable_effect, power
from lvmcls.models import evaluate_classifier
from lvmcls.notebook import display, figure, markdown, setup, show
from lvmcls.paths import project_root, results_dir
from lvmcls.results import describe_age, result_age, scorecard_markdown
from lvmcls.train import pick_device
from lvmcls.vc import (
    mechanism_diagnostic,
    mechanism_gate,
    ood_auroc,
    train_vc_model,
)

device = pick_device()


def show_md(text):
    """Markdown shown from inside a block (a cell shows only its last expression)."""
    shown = markdown(text)  # None where there is no IPython: markdown printed it
    if shown is not None:
        display(shown)


# %% tags=["parameters"]
profile = "auto"  # "auto" | "ci" | "long" | "full" | "smoke"
seed = 0  # the first seed; the profile sets how many
latent_dim = 32
beta = 0.01
long_design = "main"  # long only: "main" or "engaged" (VC where its mechanism works)

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
ARMS_CI = ("ce", "ce_gaussian", "vc")
ARMS_LONG = ("ce", "ce_gaussian", "vc", "vc_reference")
ARMS_GPU = ("ce", "ce_gaussian", "vc_reference")
# VC's settings in ci and long: the reference code's weights (β = λ = 0.01, a linear
# discriminator trained by AdamW at 1e-3) unless bench/ch3_mechanism.py found, on
# validation latents, a setting inside the paper's and the reference code's ranges
# that engages the mechanism (see "Is the mechanism at work?")
VC_OPTIONS = dict(ratio_form="linear", ratio_lr=1e-3)
# Arms that train an objective at other settings: name -> (objective, settings).
# vc_beta01 is the one setting bench/ch3_mechanism.py found to pass the mechanism gate
# on validation latents (β = 0.1, linear T at 1e-3); the long design "engaged" trains
# it.
VARIANTS = {"vc_beta01": ("vc", {"beta": 0.1})}
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
CI = dict(
    data="fashion_mnist",
    encoder="mlp",
    train_images=10_000,
    epochs=10,
    seeds=8,
    arms=ARMS_CI,
    vc_arm="vc",  # the VC that the paper's claims are decided on
    options=dict(batch_size=128),  # Adam 1e-3 (the library's default)
    shift_images=1000,
    # one corruption of each family: noise, blur, weather / digital, compression
    corruptions=("gaussian_noise", "defocus_blur", "contrast", "jpeg_compression"),
    fgsm_images=2000,
    eps=[0.01, 0.02, 0.05, 0.1],
    fgsm_mnist=False,
    ood="mnist",
    lowdata_seeds=12,
    lowdata_steps=600,
    lowdata_arms=("ce", "vc"),
    subsets=None,
)
PROFILES = {
    "ci": CI,
    # long: one seed per run (lvmcls.long runs the seeds the registry asks for and
    # merges them); the ci networks, four trained arms, one low-data draw per seed,
    # the eight fast corruptions on 2,000 images, FGSM also on MNIST (Figure 4's data)
    "long": {
        **CI,
        "seeds": 1,
        "arms": ARMS_LONG,
        "shift_images": 2000,
        "corruptions": FAST_CORRUPTIONS,
        "fgsm_mnist": True,
        "lowdata_seeds": 1,
    },
    # long, design "engaged" (registered before its data, `vc/engaged-*`): the same
    # regime with VC at β = 0.1 in place of the reference weights; no MNIST FGSM and
    # no VC low-data draw (H4 is not among its claims)
    "long-engaged": {
        **CI,
        "seeds": 1,
        "arms": ("ce", "ce_gaussian", "vc_beta01"),
        "vc_arm": "vc_beta01",
        "shift_images": 2000,
        "corruptions": FAST_CORRUPTIONS,
        "lowdata_seeds": 1,
        "lowdata_arms": ("ce",),
    },
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
        fgsm_mnist=False,
        ood="svhn",
        lowdata_seeds=5,
        lowdata_steps=600,
        lowdata_arms=("ce", "ce_gaussian", "vc"),
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
        fgsm_mnist=False,
        ood="svhn",
        lowdata_seeds=2,
        lowdata_steps=4,
        lowdata_arms=("ce", "vc"),
        subsets=dict(val=200, test=200),
    ),
}
if long_design not in ("main", "engaged"):
    raise ValueError(f"long_design must be 'main' or 'engaged', got {long_design!r}")
KNOBS = PROFILES[
    "long-engaged"
    if run.profile == "long" and long_design == "engaged"
    else run.profile
]
SEEDS = [run.seed + i for i in range(KNOBS["seeds"])]
TRAINED = KNOBS["arms"]
VC = KNOBS["vc_arm"]


def all_arms(knobs):
    """A profile's arms, the post hoc "+ TS" ones included."""
    trained = knobs["arms"]
    return (*trained[:1], "ce_ts", *trained[1:], f"{knobs['vc_arm']}_ts")


ARMS = all_arms(KNOBS)
STEM = "03_vc_experiments"
CLAIMS = {c["key"]: c for c in registry.claims_of(STEM)}  # the design, fixed before
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
        "vc_beta01": "VC at β = 0.1",
    }[arm]


# %% [markdown]
# (ch3-questions)=
# ## The questions, fixed before the runs
#
# **Arms.** CE (linear softmax head); CE + TS (CE's logits divided by a temperature fitted on the validation split);
# `ce_gaussian` (CE on per-class diagonal Gaussians, no KL term); VC as Algorithm 1 (β = λ = 0.01, linear T: the
# reference code's weights, the paper gives none); VC + TS. `long` also trains `vc_reference` (the reference
# scripts' gradient: the encoder also receives λ ∇ log p(z|y)); `full` trains CE, `ce_gaussian` and `vc_reference`
# (the candidate VC there). All arms of one seed start from the **same initial encoder weights and see the same
# batches** (the seed fixes both, `lvmcls.train.fit_cached`); they share the optimiser, schedule, epochs and data,
# and differ only in the head and objective.
#
# **Claims, metrics and rule: the registry.** Every claim this chapter decides is an entry of
# `lvmcls/registry/vc.toml`, written before the runs: its statement and source in the paper, the paper's numbers,
# the effect of interest (the paper's, or where the paper gives no number the book's choice, with its source), the
# metric, the arms compared and the family. The **primaries** are the paper's five claims, H1–H4 and OOD parity,
# with Holm's correction over the five at α = 0.05; the **secondaries** are the controls that say why (VC against
# `ce_gaussian`, against CE + TS, VC + TS against CE + TS, `vc_reference` against CE, and H2 against CE + TS, our
# reading of Figure 3), Holm among themselves, so that the controls cost the primaries no power. Each claim is
# decided by `lvmcls.registry.decide` on the paired per-seed differences (`lvmcls.decisions`): **supported** when
# the interval lies wholly on the paper's side of 0, **contradicted** when wholly on the other side, **smaller
# than the paper's effect** when it excludes the effect of interest on the paper's side, **not resolved**
# otherwise; the parity claim by two one-sided tests within ±0.02 AUROC. The same function decides the `ci` run
# here and the `long` run's merged seeds. The table is the registry's, printed as it stands; its last column is
# the number of paired seeds `long` needs for power 0.8 at the effect of interest, computed by
# `python -m lvmcls.long power` from this chapter's `ci` pilot (its paired SD at the upper 80 % bound) or, for the
# `engaged` design's claims, from the main `long` run's spread ({ref}`ch3-engaged`); `vc_reference` trains in no
# `ci` run, so its claim has no pilot and no planned seed count: its `long` verdict is exploratory.
#
# **Is the mechanism at work? The gate, fixed before the runs.** VC's claim is that its KL term pulls the
# class-conditional latents $q_\phi(z\mid y)$ toward the class priors $p_\theta(z\mid y)$ so that they fill them
# out (the paper's §3 and Figure 1). For every trained arm we measure, on the validation latents, the **spread
# ratio** (tr Cov(z | y) over the trace of the prior's covariance, mean over classes; 1 = the latents fill their
# prior) and **KL(q(z|y) ‖ p(z|y))** by the Kozachenko–Leonenko estimate, with their seed intervals. An arm is
# credited with "the paper's mechanism" only when, against `ce_gaussian` of the same seed (the same head trained
# without the KL term), its spread ratio is higher by at least **0.10** on average with the paired 95 % interval
# above 0, **and** its KL is lower (paired 95 % interval below 0). VC runs with the reference code's weights
# (β = λ = 0.01, a linear T trained by AdamW at 1e-3), fixed before the runs; whether another setting inside the
# paper's and the reference code's ranges engages the mechanism is screened by this diagnostic on validation
# latents, never by a test ECE (`bench/ch3_mechanism.py`, next section).

# %% tags=["hide-input"]
# display units: ECE, accuracies in points; AUROC in its own units
SCALE = {"ece": 100, "shift_ece": 100, "fgsm_acc": 100, "lowdata_acc": 100}
design_text = registry.design_table(STEM, scale=SCALE)
FAMILIES = {
    fam: [k for k, c in CLAIMS.items() if c["family"] == fam and c["kind"] != "check"]
    for fam in ("primary", "secondary")
}
ALPHA = CLAIMS["vc/h1-calibration"]["_families"]["primary"]["alpha"]
markdown(
    design_text
    + "\n\n"
    + f"{len(FAMILIES['primary'])} primaries (Holm at α = {ALPHA}) and "
    f"{len(FAMILIES['secondary'])} secondaries (Holm among themselves). Effects in "
    "points of ECE or accuracy (AUROC in its own units). This run: "
    f"{run.profile}, {len(SEEDS)} paired seed(s), {KNOBS['lowdata_seeds']} low-data "
    "draw(s); a claim whose arms this profile does not train is left to `long`."
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
    objective, settings = VARIANTS.get(arm, (arm, {}))
    extra = {"beta": beta}
    if objective == "vc" and run.profile in ("ci", "long"):
        extra.update(VC_OPTIONS)
    extra.update(settings)
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
    "| arm | accuracy (%) | ECE (%) | NLL | T (val) |",
    "|---|---|---|---|---|",
]
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
    t_text = (
        f"{statistics.fmean(temperature(arm, s) for s in SEEDS):.2f}"
        if arm.endswith("_ts")
        else "—"
    )
    sd = (
        f" ± {100 * statistics.stdev(per_seed[('ece', arm)]):.2f}"
        if len(SEEDS) > 1
        else ""
    )
    h1_rows.append(
        f"| {label(arm)} | {100 * statistics.fmean(per_seed[('acc', arm)]):.2f} | "
        f"{100 * statistics.fmean(per_seed[('ece', arm)]):.2f}{sd} | "
        f"{statistics.fmean(per_seed[('nll', arm)]):.3f} | {t_text} |"
    )
floor = calibration.ece_floor(probs[("ce_ts", SEEDS[0])])
metrics_["ece_floor_test"] = floor
markdown(
    "\n".join(h1_rows)
    + f"\n\nMeans over {len(SEEDS)} seed(s) (ECE ± its standard deviation over "
    f"seeds). **ECE floor** at {floor['n']:,} test images (CE + TS's confidences, "
    f"labels redrawn {floor['draws']} times): mean {100 * floor['mean']:.2f} %, "
    f"95th percentile {100 * floor['p95']:.2f} %."
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
# (ch3-mechanism)=
# ## Is the mechanism at work?
#
# The gate was stated before the runs ({ref}`ch3-questions`): an arm is credited with the paper's mechanism only
# when, against `ce_gaussian` of the same seeds, its spread ratio on the validation latents is higher by at least
# 0.10 (paired 95 % interval above 0) and its KL(q(z|y) ‖ p(z|y)) is lower. The screen for other settings,
# `bench/ch3_mechanism.py`, trains VC on seed 0 at β ∈ {0.01 (the reference scripts), 0.1, 1 (the paper's
# analysis)}, the discriminator's form ∈ {linear (the paper's), a 512-unit tanh MLP (the reference code's option)}
# and its learning rate ∈ {1e-3 (the reference code's), 1e-2 (at β = 1)}, and prints each setting's validation
# diagnostic against `ce_gaussian`'s; it looks at no ECE. A setting that passes the gate there becomes a new VC arm,
# registered before its data; the claims below are decided on VC with the reference weights. CE's prior is notional
# (its linear head is the same for every shared variance σ² > 0, so its spread ratio depends on an arbitrary σ²):
# it is shown, not gated.

# %%
show(mechanism_gate)

# %% tags=["hide-input"]
x_diag, y_diag = data.val.x, data.val.y
diagnostic = {
    arm: [mechanism_diagnostic(models[(arm, s)], x_diag, y_diag) for s in SEEDS]
    for arm in TRAINED
}
for arm in TRAINED:
    for key in ("spread_ratio", "latent_kl"):
        per_seed[(key, arm)] = [d[key] for d in diagnostic[arm]]
gates = {}
mech_rows = [
    "| arm | spread ratio | KL, kNN (nats) | spread gain over ce_gaussian "
    "[95 %] | KL − ce_gaussian's [95 %] | gate |",
    "|---|---|---|---|---|---|",
]


def mean_sd(values, digits=3):
    sd = f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else ""
    return f"{statistics.fmean(values):.{digits}f}{sd}"


for arm in TRAINED:
    cells = ["—", "—", "not gated (its prior is notional)" if arm == "ce" else "—"]
    if arm not in ("ce", "ce_gaussian") and len(SEEDS) > 1:
        g = mechanism_gate(
            per_seed[("spread_ratio", arm)],
            per_seed[("spread_ratio", "ce_gaussian")],
            per_seed[("latent_kl", arm)],
            per_seed[("latent_kl", "ce_gaussian")],
        )
        gates[arm] = g
        cells = [
            f"{g['spread_gain']:+.3f} [{g['spread_interval'][0]:+.3f}, "
            f"{g['spread_interval'][1]:+.3f}]",
            f"{g['kl_change']:+.1f} [{g['kl_interval'][0]:+.1f}, "
            f"{g['kl_interval'][1]:+.1f}]",
            f"**{g['verdict']}**",
        ]
    elif arm == "ce_gaussian":
        cells[2] = "the baseline"
    mech_rows.append(
        f"| {label(arm)} | {mean_sd(per_seed[('spread_ratio', arm)])} | "
        f"{mean_sd(per_seed[('latent_kl', arm)], 1)} | " + " | ".join(cells) + " |"
    )
metrics_["mechanism"] = {"gates": gates, "vc_options": VC_OPTIONS}
vc_gate = gates.get(VC)
markdown(
    "\n".join(mech_rows)
    + f"\n\nMean ± standard deviation over {len(SEEDS)} seed(s), on the "
    f"{len(y_diag):,} validation images; the intervals are paired over seeds. "
    + (
        f"**{label(VC)}: the mechanism is {vc_gate['verdict']}** (gain "
        f"{vc_gate['spread_gain']:+.3f} of the prior's trace against the gate's "
        f"{vc_gate['gain']:.2f}). "
        + (
            "The calibration comparisons below therefore test VC as run, not the "
            "paper's mechanism: whatever they find cannot be credited to latents that "
            "fill out their priors."
            if vc_gate["verdict"] != "engaged"
            else "The comparisons below test VC with its mechanism at work."
        )
        if vc_gate
        else "One seed: the gate needs the paired seeds of `ci` or the merged `long`."
    )
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

# %% tags=["hide-input"]
# long only: FGSM also on MNIST, the paper's Figure 4 (left) data set, for CE and VC
# trained as above on 10,000 MNIST images; reported beside H3, not a registry claim
EPS_MNIST = [0.05, 0.1, 0.2, 0.3]
if KNOBS["fgsm_mnist"]:
    mnist_train = mnist.replace(
        train=balanced_subset(mnist.train, KNOBS["train_images"] // 10, seed=0)
    )
    for arm in ("ce", "vc"):
        values = []
        for s in SEEDS:
            extra = {"beta": beta, **(VC_OPTIONS if arm == "vc" else {})}
            model_m, _ = train_vc_model(
                f"ch3-mnist-{arm}-s{s}",
                mnist_train,
                arm,
                KNOBS["encoder"],
                10,
                latent_dim,
                epochs=KNOBS["epochs"],
                seed=s,
                device=run.device,
                **extra,
                **KNOBS["options"],
            )
            curve = attacks.fgsm_accuracy_curve(
                model_m, mnist.test.x[:n_fgsm], mnist.test.y[:n_fgsm], EPS_MNIST
            )
            values.append(statistics.fmean(curve))
        per_seed[("fgsm_acc_mnist", arm)] = values
    show_md(
        "FGSM on MNIST (ε = "
        + ", ".join(f"{e:g}" for e in EPS_MNIST)
        + f"; {n_fgsm:,} test images), accuracy averaged over ε: "
        + ", ".join(
            f"{label(a)} "
            f"{100 * statistics.fmean(per_seed[('fgsm_acc_mnist', a)]):.1f} %"
            for a in ("ce", "vc")
        )
        + "."
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
# was a look at the test set and H4 should be read with it in mind. Arms: CE and VC (Algorithm 1) in `ci` and
# `long`; `full` also trains `ce_gaussian`.
# Our network is an MLP; the paper does not name its MNIST network.

# %% tags=["hide-input"]
LOWDATA_SEEDS = [run.seed + i for i in range(KNOBS["lowdata_seeds"])]
LOWDATA_ARMS = KNOBS["lowdata_arms"]
steps_taken = set()
SQRT_N = len(LOWDATA_SEEDS) ** 0.5
for arm in LOWDATA_ARMS:
    accs = []
    extra = {"beta": beta}
    if arm == "vc" and run.profile in ("ci", "long"):
        extra.update(VC_OPTIONS)
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
            batch_size=64,
            **extra,
        )
        steps_taken.add(record["history"]["steps"])
        accs.append(evaluate_classifier(model, mnist.test)[0]["acc"])
    per_seed[("lowdata_acc", arm)] = accs


def mean_se(values):
    se = statistics.stdev(values) / SQRT_N if len(values) > 1 else float("nan")
    return f"{100 * statistics.fmean(values):.1f} ± {100 * se:.1f}"


metrics_["lowdata_steps_taken"] = sorted(steps_taken)
ce_low = statistics.fmean(per_seed[("lowdata_acc", "ce")])
markdown(
    "| arm | paper (%, Table 4) | ours (%, mean ± s.e.) |\n|---|---|---|\n"
    + "\n".join(
        f"| {label(arm)} | {dict(ce='93.1 ± 0.2', vc='94.2 ± 0.2').get(arm, '—')} | "
        f"{mean_se(per_seed[('lowdata_acc', arm)])} |"
        for arm in LOWDATA_ARMS
    )
    + f"\n\n{len(LOWDATA_SEEDS)} draw(s); optimiser steps read back from the training "
    f"histories: {sorted(steps_taken)} (one number: the same budget for every run). "
    f"Our CE reaches {100 * ce_low:.1f} %, {100 * (ce_low - 0.931):+.1f} points "
    "against Table 4's CE (93.1 %): "
    + (
        "our baseline is weaker than the paper's, so a VC gain here is measured "
        "from a lower starting point than Table 4's."
        if ce_low < 0.931 - 0.01
        else "within a point of the paper's baseline."
    )
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
    show_md(
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
# Every registered claim whose arms this profile trains, decided by the one code path that also decides the `long`
# run (`lvmcls.registry.decide`): the paired per-seed differences of its two arms, Holm's correction within its
# family (the printed level is the per-test level the step-down gave it), and the verdict of
# `lvmcls.decisions.decide_claim`. For the ECE rows the last column is the bootstrap interval over test images of
# the same difference (95 %, 500 resamples, the same images for every arm and seed), an uncertainty the
# seed-paired interval does not see, because every seed is tested on the same images.

# %%
show(registry.decide)

# %% tags=["hide-input"]
# per_seed in the registry's shape: {arm: {metric: [value per seed]}}
PER_SEED = {}
for (key, arm), values in per_seed.items():
    PER_SEED.setdefault(arm, {})[key] = [float(v) for v in values]
decided = registry.decide(STEM, PER_SEED) if len(SEEDS) > 1 else {}
boot = {}
for key, made in decided.items():
    c = made["claim"]
    if c["metric"] == "ece":
        boot[key] = calibration.paired_ece_bootstrap(
            [probs[(c["candidate"], s)] for s in SEEDS],
            [probs[(c["baseline"], s)] for s in SEEDS],
            data.test.y,
            resamples=500,
        )


def fmt(value, metric, signed=True):
    k = SCALE.get(metric, 1)
    digits = 2 if k == 100 else 3
    return f"{k * value:{'+' if signed else ''}.{digits}f}"


def decision_rows(decided_, boot_=None):
    rows = [
        "| claim | family (Holm level) | comparison | verdict | difference "
        "[interval] | smallest detectable | the paper's effect | bootstrap over "
        "images (ECE) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, made in decided_.items():
        c, d = made["claim"], made["decisions"][0]
        m = c["metric"]
        lo, hi = d.interval
        bt = (boot_ or {}).get(key)
        bt_text = (
            f"{100 * bt['difference']:+.2f} [{100 * bt['interval'][0]:+.2f}, "
            f"{100 * bt['interval'][1]:+.2f}]"
            if bt
            else "—"
        )
        if c["kind"] == "parity":
            mde = f"±{fmt(d.smallest_margin, m, False)} (margin it establishes)"
            effect = f"parity within ±{fmt(c['margin'], m, False)}"
        else:
            mde = fmt(d.minimum_detectable_effect, m, False)
            effect = fmt(c["effect"], m)
        rows.append(
            f"| `{key}` | {c['family']} ({made['level']:.4f}) | "
            f"{label(c['candidate'])} − {label(c['baseline'])} ({c['what']}) | "
            f"**{made['verdict']}** | {fmt(d.mean_difference, m)} "
            f"[{fmt(lo, m)}, {fmt(hi, m)}] | {mde} | {effect} | {bt_text} |"
        )
    return "\n".join(rows)


if decided:
    show_md(
        decision_rows(decided, boot)
        + f"\n\nDifferences in points of ECE or accuracy (AUROC in its own units, "
        f"3 decimals), {len(SEEDS)} paired seeds ({len(LOWDATA_SEEDS)} low-data draws "
        "for H4). Smallest detectable: the |difference| this design, at the spread "
        f"observed here and the claim's Holm level, detects with power {POWER} "
        "(noncentral t); for the parity row, the smallest margin the interval "
        "establishes. A verdict on a secondary row answers the book's control "
        "question, not the paper's."
    )
else:
    show_md(
        f"This is a `{run.profile}` run of one seed: it decides nothing by itself. Its "
        "per-seed values are recorded under `results/long/` and `python -m lvmcls.long "
        "merge` decides them with every other seed through the same function."
    )

# %% tags=["hide-input"]
# the mechanism check (a rule in words, decided from the gate above)
MECH_KEY = "vc/mechanism"
if vc_gate:
    mech_verdict = {
        "engaged": "supported",
        "not engaged": "contradicted",
        "undecided": "not resolved",
    }[vc_gate["verdict"]]
    mech_ours = (
        f"{label(VC)} − ce_gaussian: spread ratio {vc_gate['spread_gain']:+.3f} "
        f"[{vc_gate['spread_interval'][0]:+.3f}, {vc_gate['spread_interval'][1]:+.3f}]"
        f" (gate: ≥ +{vc_gate['gain']:.2f}), kNN KL {vc_gate['kl_change']:+.1f} "
        f"[{vc_gate['kl_interval'][0]:+.1f}, {vc_gate['kl_interval'][1]:+.1f}] nats; "
        f"{vc_gate['n']} paired seeds, validation latents, 95 % intervals"
    )
else:
    mech_verdict, mech_ours = "not resolved", "one seed: no paired interval"
claims = registry.claim_rows(STEM, decided) + [
    registry.check_row(MECH_KEY, verdict=mech_verdict, ours=mech_ours)
]
markdown(
    "\n".join(
        f"- **{c['key']}** ({c['verdict']}): {c['statement']} Ours: {c['ours']}."
        for c in claims
    )
)

# %% [markdown]
# ### What `ci` can decide, and what `long` adds
#
# `ci` is the pilot: 8 paired seeds and 12 low-data draws (its wall time is printed with the scorecard). At the
# spread it shows, a claim whose effect of interest is below its smallest detectable effect cannot be decided by
# `ci` whatever the truth is; the list below says which. `long` runs the seeds the registry asks for (its last
# column above), one seed per run, each record committed as it finishes; the table after it is the merged `long`
# run when one exists.

# %% tags=["hide-input"]
short = []
for key, made in decided.items():
    c, d = made["claim"], made["decisions"][0]
    mde = d.minimum_detectable_effect
    if c["kind"] == "difference" and mde > abs(c["effect"]):
        short.append(
            f"`{key}` (smallest detectable {fmt(mde, c['metric'], False)} against "
            f"the effect of interest {fmt(c['effect'], c['metric'])})"
        )
    if c["kind"] == "parity" and mde > c["margin"]:
        short.append(
            f"`{key}` (with power 0.8 it establishes ±{mde:.3f}, wider than "
            f"the margin ±{c['margin']:.3f})"
        )
if decided:
    show_md(
        "At this run's spread `ci` cannot decide: "
        + ("; ".join(short) if short else "none of the registered claims")
        + "."
    )

# %% tags=["hide-input"]
long_file = results_dir() / "long" / f"{STEM}.json"
long_record = None
if long_file.is_file():
    long_record = json.loads(long_file.read_text())
    asked = max(
        (
            c.get("long", {}).get("seeds") or 0
            for c in CLAIMS.values()
            if c.get("long", {}).get("design", "main") == "main"
        ),
        default=0,
    )
    show_md(
        "| claim | `long` verdict | ours |\n|---|---|---|\n"
        + "\n".join(
            f"| `{r['key']}` | **{r['verdict']}** | {r['ours']} |"
            for r in long_record["claims"]
        )
        + f"\n\n`long`: {len(long_record['seeds'])} paired seeds merged (the registry "
        f"asks for up to {asked}); " + describe_age(result_age(long_record, STEM)) + "."
    )
    # where the pilot sized a design too small: the planned seeds' spread vs the pilot's
    shortfall = []
    for r in long_record["claims"]:
        c, d = CLAIMS.get(r["key"]), r.get("decision")
        pilot = (c or {}).get("long", {}).get("pilot")
        if not (d and pilot and d.get("power_at_effect") is not None):
            continue
        if d["power_at_effect"] < POWER:
            sd = d["standard_error"] * d["n"] ** 0.5
            shortfall.append(
                f"`{r['key']}`: the pilot's paired SD {pilot['sd']:.3g} (upper 80 % "
                f"bound {pilot['sd_upper80']:.3g}, {pilot['n']} seeds) planned "
                f"{d['n']} seeds; on those seeds the SD is {sd:.3g}, so the power at "
                f"the paper's effect was {d['power_at_effect']:.2f}, not {POWER}"
            )
    if shortfall:
        show_md(
            "Where the pilot under-sized the design: "
            + "; ".join(shortfall)
            + ". The spread was larger than the pilot's bound allowed for, so the "
            "verdict is this design's answer at the power it turned out to have; "
            "deciding now on more of the recorded seeds would be a new look at the "
            "data, not the registered design."
        )
    # the long seeds that are the ci pilot's own (the same seeds train the same models)
    ci_seeds = set(range(PROFILES["ci"]["seeds"]))
    reused = sorted(ci_seeds & set(long_record["seeds"]))
    if reused:
        pilot_only = [
            key
            for key, n in long_record["planned_seeds"].items()
            if n and n <= len(reused)
        ]
        show_md(
            f"`long` seeds {reused[0]}–{reused[-1]} are the `ci` pilot's seeds "
            "(the same seeds train the same models), so every `long` decision includes "
            "the data that sized it"
            + (
                "; "
                + ", ".join(f"`{k}`" for k in pilot_only)
                + " planned no more seeds than the pilot had, so their `long` verdicts "
                "are the pilot's data decided again at their Holm level"
                if pilot_only
                else ""
            )
            + "."
        )
    long_seed = long_record["per_seed"]
    long_gates = [
        (
            arm,
            mechanism_gate(
                long_seed[arm]["spread_ratio"],
                long_seed["ce_gaussian"]["spread_ratio"],
                long_seed[arm]["latent_kl"],
                long_seed["ce_gaussian"]["latent_kl"],
            ),
        )
        for arm in ("vc", "vc_reference")
        if arm in long_seed
        and "ce_gaussian" in long_seed
        and len(long_record["seeds"]) > 1
    ]
    if long_gates:
        show_md(
            "The mechanism gate on the `long` seeds: "
            + "; ".join(
                f"{label(arm)} − ce_gaussian, spread ratio {g['spread_gain']:+.3f} "
                f"[{g['spread_interval'][0]:+.3f}, {g['spread_interval'][1]:+.3f}], "
                f"kNN KL {g['kl_change']:+.1f} [{g['kl_interval'][0]:+.1f}, "
                f"{g['kl_interval'][1]:+.1f}]: **{g['verdict']}**"
                for arm, g in long_gates
            )
            + f" ({len(long_record['seeds'])} paired seeds, 95 % intervals)."
        )
else:
    show_md(
        "`long` has not run for this chapter yet: `make long CHAPTERS=03` (resumable)."
    )

# %% [markdown]
# (ch3-engaged)=
# ## VC where its mechanism works: the `engaged` design
#
# The screen of {ref}`ch3-mechanism` (`bench/ch3_mechanism.py`, validation latents, seed 0, no ECE looked at) asks
# whether any setting inside the paper's and the reference code's ranges passes the gate. Its rows and its last
# line (the eligible setting with the largest spread gain, and whether it passes), as the script printed them:

# %% tags=["hide-input"]
screen = project_root() / "bench" / "ch3_mechanism.md"
if screen.is_file():
    show_md(screen.read_text().split("\n", 2)[2])

# %% [markdown]
# One seed passing near the gate's edge is a screen, not a finding. So the setting that passed (β = 0.1 on the KL
# term, the reference code's λ = 0.01 on the prior's likelihood term where Algorithm 1 weights both by β, the
# linear discriminator at its reference learning rate) became a new arm, `vc_beta01`, and a second
# `long` design, **`engaged`**, registered before any of its data (`lvmcls/registry/vc.toml`): the mechanism is
# checked first, in a family of its own (`vc/engaged-mechanism`: `vc_beta01` − `ce_gaussian` in spread ratio, the
# gate's +0.10 as the effect of interest), and the consequences H1–H3 against CE form a Holm family of three that
# is tested only when the mechanism is supported (a fixed sequence: the family-wise error stays at α over both, and
# the main design's families keep the levels they were given before their data). Its seeds come from the main
# `long` design's paired spreads (57 seeds, upper 80 % bound): VC − CE for H1–H3, VC − `ce_gaussian` in spread
# ratio for the mechanism, which assumes that β = 0.1 spreads no more from seed to seed than β = 0.01 does (an
# assumption: no `ci` run trains this arm); the mechanism claim is decided on all the design's seeds, more than its
# power needs. Seed 0 chose the setting in the screen, so the design starts at seed 1. H4 is not among its claims:
# it would take the 57 low-data draws again (one CE low-data model per seed is trained, not decided). The design
# was revised after a review before any of its data was read; the one seed of its first registration that ran is
# kept, unread, under `results/long/superseded/`.

# %% tags=["hide-input"]
engaged_keys = [
    k for k, c in CLAIMS.items() if c.get("long", {}).get("design") == "engaged"
]
show_md(
    "| claim | comparison | metric | effect of interest | seeds (pilot: main `long`) "
    "|\n"
    "|---|---|---|---|---|\n"
    + "\n".join(
        f"| `{k}` | {CLAIMS[k]['candidate']} − {CLAIMS[k]['baseline']} | "
        f"{CLAIMS[k]['what']} | {CLAIMS[k]['effect']:+g} | "
        f"{CLAIMS[k]['long'].get('seeds', '—')} |"
        for k in engaged_keys
    )
)
engaged_file = results_dir() / "long" / f"{STEM}--engaged.json"
if engaged_file.is_file():
    engaged = json.loads(engaged_file.read_text())
    show_md(
        "| claim | `long` verdict (engaged) | ours |\n|---|---|---|\n"
        + "\n".join(
            f"| `{r['key']}` | **{r['verdict']}** | {r['ours']} |"
            for r in engaged["claims"]
        )
        + f"\n\n`long` (engaged): {len(engaged['seeds'])} paired seeds merged; "
        + describe_age(result_age(engaged, STEM))
        + "."
    )
    eng_seed = engaged["per_seed"]
    if {"vc_beta01", "ce_gaussian"} <= set(eng_seed) and len(engaged["seeds"]) > 1:
        g = mechanism_gate(
            eng_seed["vc_beta01"]["spread_ratio"],
            eng_seed["ce_gaussian"]["spread_ratio"],
            eng_seed["vc_beta01"]["latent_kl"],
            eng_seed["ce_gaussian"]["latent_kl"],
        )
        show_md(
            "The chapter's full gate on these seeds, "
            f"{label('vc_beta01')} − ce_gaussian: "
            f"spread ratio {g['spread_gain']:+.3f} [{g['spread_interval'][0]:+.3f}, "
            f"{g['spread_interval'][1]:+.3f}], kNN KL {g['kl_change']:+.1f} "
            f"[{g['kl_interval'][0]:+.1f}, {g['kl_interval'][1]:+.1f}]: "
            f"**{g['verdict']}** ({len(engaged['seeds'])} paired seeds, 95 % "
            "intervals). The consequences above "
            "are VC's mechanism at work only where this gate passes."
        )
else:
    show_md(
        "The `engaged` design has not run yet: "
        "`python -m lvmcls.long run --chapters 03 --design engaged --commit` "
        "(resumable)."
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
# plausibly what produced Table 1). Within the book's one-GPU window this chapter's share is 3.9 minutes, an
# estimate, not a measurement (`FULL_MINUTES_H100`). The candidate VC differs by profile (VC as Algorithm 1 in `ci`
# and `long`, `vc_reference` in `full`); the sentences name the arm. With 3 seeds `full` cannot decide H1 at the
# paper's effect: its power there is computed below from the paired spread of the merged `long` run where it
# exists (the `ci` pilot's spread proved too small for H1, see the `long` section), else from this run's.

# %% tags=["hide-input"]
N_FULL = PROFILES["full"]["seeds"]
full_lines = []
for key, made in decided.items():
    c, d = made["claim"], made["decisions"][0]
    if c["family"] != "primary" or c["kind"] != "difference":
        continue
    sd = d.standard_error * len(d.candidate) ** 0.5
    if long_record is not None and c["candidate"] in long_record["per_seed"]:
        diffs = [
            x - y
            for x, y in zip(
                long_record["per_seed"][c["candidate"]][c["metric"]],
                long_record["per_seed"][c["baseline"]][c["metric"]],
            )
        ]
        sd = statistics.stdev(diffs)
    a_first = ALPHA / len(FAMILIES["primary"])
    full_lines.append(
        f"| `{key}` | {fmt(c['effect'], c['metric'])} | "
        f"{power(c['effect'], sd, N_FULL, a_first):.2f} | "
        f"{fmt(minimum_detectable_effect(sd, N_FULL, a_first), c['metric'], False)} |"
    )
if full_lines:
    show_md(
        "| claim | the paper's effect | `full`'s power at it | `full`'s smallest "
        "detectable effect |\n|---|---|---|---|\n"
        + "\n".join(full_lines)
        + f"\n\n{N_FULL} paired seeds at the first Holm level "
        f"(α / {len(FAMILIES['primary'])}), at the paired SD "
        + (
            f"of the merged `long` run ({len(long_record['seeds'])} seeds)"
            if long_record is not None
            else "this `ci` run observed"
        )
        + " (the CIFAR spread may differ)."
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
    metrics_[f"{key}_{arm}"] = statistics.fmean(values)
metrics_["temperatures"] = {
    arm: [temperatures[(arm, s)] for s in SEEDS] for arm in ("ce_ts", f"{VC}_ts")
}
metrics_["ece_bootstrap"] = boot
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
    per_seed=PER_SEED,
    registry=registry.hashes(STEM),
    design={
        "arms": list(ARMS),
        "seeds": SEEDS,
        "lowdata_seeds": LOWDATA_SEEDS,
        "vc_options": VC_OPTIONS,
        "knobs_chosen_on": "validation (bench/ch3_regime.py, bench/ch3_mechanism.py; "
        "temperatures)",
    },
    knobs={**KNOBS, "latent_dim": latent_dim, "beta": beta},
)
print(f"wrote {path.relative_to(results_dir().parent)} after {run.elapsed():.0f} s")
# the committed full file: shown only if this design wrote it (its arms match)
full_file = results_dir() / "full" / f"{STEM}.json"
full_record = json.loads(full_file.read_text()) if full_file.is_file() else None
this_design = bool(full_record) and (
    full_record.get("design", {}).get("arms") == list(all_arms(PROFILES["full"]))
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
if run.profile != "long":
    show_md(card)

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
print({k: round(v, 3) for k, v in sorted(metrics_.items()) if isinstance(v, float)})

# %% [markdown]
# ## Conclusion
#
# The decisions above are what this design can say about the paper's hypotheses in a small regime chosen (on
# validation data) to let calibration differ; they are not a reproduction of the paper's CIFAR tables: `ci` runs
# none of Table 1, Figure 3, Figure 4 or Table 3 on the paper's data, and of Table 4 only the MNIST-500 row, with
# our MLP; `long` adds FGSM on MNIST (Figure 4's left panel, reported, not decided), and `full` asks H1–H3 on
# CIFAR-10 with a ResNet-18. Read each verdict with the mechanism gate above: a calibration difference can be credited to VC's
# latents filling out their priors only where the gate says the mechanism is engaged. A "not resolved" whose
# smallest detectable effect exceeds the paper's effect says that the design could not see an effect of the paper's
# size; where the interval excludes the paper's effect the verdict says so ("smaller than the paper's effect").
#
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# ```
