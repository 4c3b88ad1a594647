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
# # 5. VAE-AS: mutual information from an auxiliary softmax
#
# Chapter 4 split the ELBO's KL into the mutual information $I_q(z; x)$ and the marginal divergence
# $\mathrm{KL}(q(z)\,\|\,p(z))$, and estimated both by Monte Carlo over the aggregate posterior, an estimate whose bias
# depends on how many data points stand in for $q(z)$. VAE-AS (the seed paper 002) estimates them instead with a
# classifier: a softmax over the *indices* of the training samples, trained to say which sample a latent came
# from. Chapter 1 showed that a cross-entropy-trained softmax estimates a posterior; here the posterior is
# $q(x_e\mid z)$, and the mutual information follows from its entropy. With the two terms in hand, VAE-AS trains
#
# $$
# \mathcal L_{\alpha,\beta} = \mathbb E \log p_\theta(x\mid z) - \alpha\, \hat I_q(z; x) - \beta\,\widehat{\mathrm{KL}}\big(q(z)\,\|\,p(z)\big) \qquad \text{(its Eq. 3)}.
# $$ (eq-vaeas-objective)
#
# With the true $I$ and MD, $\alpha = \beta = 1$ would be the ELBO; with the paper's estimators it is not, and this
# chapter derives by how much, and why the encoder's gradient differs even where the value does not. It fixes in
# advance how the VAE-AS question will be decided, then trains five arms over paired seeds with common random
# numbers (the VAE; a placebo; VAE-AS with its learned classifier; VAE-AS with the exact posterior over indices held
# fixed, the paper's algorithm, as we read it, with a perfect classifier; and Eq. 3 with the exact posterior's full gradient, a
# control that must train like the VAE), and a sixth without them (the VAE with its own ε), with the depths of the paper's Table 2 (`ci`: narrower layers), compares the estimators
# with the exact aggregate posterior (the paper's Figures 2–3), runs part of the
# $\alpha/\beta$ grid and shows reconstructions at small and large $\alpha$ (the paper's Figure 4) where the run's grid
# has them, at small and large $\beta$ otherwise.
#
# Run it yourself: the launch menu at the top of the page (the rocket) opens this notebook on Colab;
# on a GPU runtime `profile="auto"` selects the `full` profile (all 50,000 training images, so N = 50,000 indices,
# short of the paper's 55,000, with the binary-tree softmax; 500-unit layers, 3 of the paper's 12 grid points);
# `ci` shrinks widths, data and epochs (listed below), never the depths; `smoke` runs the same code for a few steps
# on tiny subsets.

# %% [markdown]
# ## Setup

# %% tags=["hide-input"]
import importlib.util
import subprocess
import sys

if (
    importlib.util.find_spec("lvmcls") is None
):  # on Colab: install the book's library (torch is already there)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "git+https://github.com/lvmcls/lvmcls",
        ],
        check=True,
    )

import json
import math
import statistics
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from scipy.stats import f as scipy_f
from scipy.stats import t as scipy_t

from lvmcls import plots, registry
from lvmcls import vae as V
from lvmcls import vae_as as AS
from lvmcls.data import Dataset, TensorSplit, balanced_subsets, binarized, load_dataset
from lvmcls.decisions import headline
from lvmcls.long import seed_records
from lvmcls.notebook import display, figure, markdown, scorecard, setup, show
from lvmcls.paths import project_root, results_dir
from lvmcls.results import describe_age, result_age
from lvmcls.train import Trainer, fit_cached, pick_device

device = pick_device()

# %% tags=["parameters"]
profile = "auto"  # "auto" | "ci" | "long" | "full" | "smoke"
seed = 0
latent_dim = 40
hidden = (
    None  # units per hidden layer of encoder and decoder (None: the profile's default)
)
n_train = None  # training images, so N sample indices (None: the profile's default)
epochs = None
long_design = "main"  # long only: "main" (the ci design) or "paper_regime"

# %% tags=["hide-input"]
# an estimate, not a measurement (no GPU was available when the design changed), at
# batch 512 (a step of these small networks costs about what it does at 256): 3 seeds x
# 2 VAE-AS arms + 2 grid points = 8 models x 6 epochs x 98 steps = 4,704 steps at about
# 13 ms (the last measured full run: 365 s for 12 models x 2,350 steps on one H100
# shared with three chapters, estimators included) ≈ 61 s; 3 VAEs x 588 steps x 3.7 ms
# (chapter 4's rate) ≈ 7 s; the classifier's refits, 8 x 2 x 150 online + 2,000 for
# the estimators' figure = 4,400 steps of 1,024 at about 7 ms
# (bench/index_classifier_scale.md) ≈ 31 s; start-up, gates, IW NLL and the exact
# aggregate posterior ≈ 20 s: ≈ 2.0 min
FULL_MINUTES_H100 = 2.0
run = setup(profile, seed, device, full_minutes_h100=FULL_MINUTES_H100)
# The paper's Table 2 depths: MLP encoder, decoder and index classifier with 2, 5 and
# 2 hidden layers (widths: the profile's `hidden`, the paper's 500 in `full` only).
ENCODER_DEPTH, DECODER_DEPTH, CLASSIFIER_DEPTH = 2, 5, 2
# tanh in the classifier (the paper gives tanh and ReLU as examples of g(·), §3.3, and
# does not say which it used): with ReLU units most of the classifier's units were dead
# by the end of training, all of them at N = 50,000 at learning rate 3e-3 (0.92 at 1e-3,
# 0.69 at 3e-4; bench/index_classifier_scale.md)
CLASSIFIER_ACTIVATION = "tanh"
CI_GRID = [
    (1.0, 0.2),
    (1.0, 5.0),
]  # besides (1, 1), which every profile trains over all seeds
FULL_GRID = CI_GRID
# hidden / classifier_hidden: layer widths; seeds: every arm is trained with seeds seed,
# seed + 1, ...; arms: the registry's arm ids this profile trains; classifier_samples:
# draws of z per example for the classifier's step; classifier_steps / classifier_fresh
# / classifier_lr: the classifier's schedule (steps per encoder step, on indices drawn
# afresh or on the batch's; chosen on seed 0's training points,
# bench/index_classifier_schedule.md); online_every / online_steps: the gate's
# measurement every that many epochs and a refit of that many steps after it (0: none);
# tree: the binary-tree head; refit_*: the classifier's own fresh fit on the final
# encoder for the estimators' figure; mc_samples: S for Monte Carlo over S < N points;
# exact_draws: z per point for the exact mixture; iw_k: importance samples for the
# NLL (the paper: 4096); batch: the mini-batch; subsets: smoke's class-balanced cut
# of train and test (`balanced_subsets`)
VAE_LR = 1e-3  # Adam for encoder and decoder (the paper states no optimiser)
ALL_ARMS = [
    "vae",
    "placebo",
    "vae_as",
    "vae_as_exact",
    "vae_as_exact_full",
    "vae_own_noise",
]
# the schedule the rule of bench/index_classifier_schedule.py chose (its last line)
SCHEDULE = json.loads(
    next(
        line.split("=", 1)[1]
        for line in (
            Path("../bench/index_classifier_schedule.md")
            if Path("../bench/index_classifier_schedule.md").is_file()
            else Path("bench/index_classifier_schedule.md")
        )
        .read_text()
        .splitlines()
        if line.startswith("CHOSEN =")
    )
    .replace("True", "true")
    .replace("False", "false")
)
CI = {
    "n_train": 1000,
    "epochs": 60,
    "hidden": 200,
    "classifier_hidden": 128,
    "seeds": 5,
    "arms": ALL_ARMS,
    "grid": CI_GRID,
    "classifier_samples": 2,
    **SCHEDULE,
    "online_every": 10,
    "online_steps": 0,
    "tree": False,
    "refit_steps": 2000,
    "refit_batch": 512,
    "refit_lr": 1e-2,
    "mc_samples": [10, 100, 500],
    "mc_repeats": 3,
    "exact_draws": 4,
    "iw_k": 50,
    "iw_images": 1000,
    "batch": 128,
    "amp": None,
    "subsets": None,
}
PROFILES = {
    "ci": CI,
    # long: the ci design for ONE seed, all arms (lvmcls.long runs the seeds the
    # registry asks for, one record per seed, and merges them)
    "long": {**CI, "seeds": 1},
    "full": {
        "n_train": 50_000,
        "epochs": 6,
        "hidden": 500,
        "classifier_hidden": 500,
        "seeds": 3,  # the fewest a paired decision should rest on (the window's budget)
        # the exact arms sum over all N = 50,000 points at every step: not in `full`
        "arms": ["vae", "placebo", "vae_as"],
        "grid": FULL_GRID,
        "classifier_samples": 2,
        # with ReLU units 3e-3 killed every unit of the classifier at N = 50,000; with
        # tanh none was constant (bench/index_classifier_scale.md; training points)
        "classifier_lr": 3e-3,
        "classifier_steps": 1,  # the tree head: one step, the Trainer's SparseAdam
        "classifier_fresh": False,
        "online_every": 3,
        "online_steps": 150,
        "tree": True,
        "refit_steps": 2000,
        "refit_batch": 1024,
        "refit_lr": 1e-2,
        "mc_samples": [100, 1000, 10_000],
        "mc_repeats": 3,
        "exact_draws": 1,
        "iw_k": 1000,
        "iw_images": 2000,
        "batch": 512,
        "lr": 1.4e-3,  # encoder and decoder: VAE_LR x sqrt(2) at the doubled batch
        "amp": False,
        "subsets": None,
    },
    "smoke": {
        "n_train": 500,
        "epochs": 1,
        "hidden": 500,
        "classifier_hidden": 500,
        "seeds": 2,
        "arms": ALL_ARMS,
        "grid": CI_GRID,
        "classifier_samples": 2,
        "classifier_lr": 3e-3,
        "classifier_steps": 1,
        "classifier_fresh": False,
        "online_every": 1,
        "online_steps": 5,
        "tree": True,
        "refit_steps": 5,
        "refit_batch": 256,
        "refit_lr": 1e-2,
        "mc_samples": [10, 100],
        "mc_repeats": 2,
        "exact_draws": 1,
        "iw_k": 100,
        "iw_images": 20,
        "batch": 256,
        "amp": False,
        "subsets": {"train": 500, "test": 500},
    },
}
# long, design "paper_regime" (registered before its data, `vae-as/nll-paper-regime`):
# Table 2's regime as far as two CPU cores go, one seed per run: the paper's widths
# (500) and depths, the binary-tree head, the VAE against VAE-AS (1, 1) with its learned
# classifier (common random numbers), N = 10,000 and 20 epochs. N = 50,000 was judged
# too slow from a one-epoch timing on a machine shared with two other runs (not a
# committed record; the page estimates the cost again from this design's records);
# the classifier's refits (150 online steps a block, 1,000 for the estimators' figure)
# would cost more than the training, so the gate is measured without refits and the
# figure's refit has 50 steps. IW NLL with 1,000 samples on 1,000 test images.
PROFILES["long-paper_regime"] = {
    **PROFILES["full"],
    "n_train": 10_000,
    "seeds": 1,
    "arms": ["vae", "vae_as"],
    "grid": [],
    "epochs": 20,
    "online_every": 10,
    "online_steps": 0,
    "refit_steps": 50,
    "mc_samples": [100, 1000],
    "mc_repeats": 2,
    "iw_images": 1000,
}
if long_design not in ("main", "paper_regime"):
    raise ValueError(
        f"long_design must be 'main' or 'paper_regime', got {long_design!r}"
    )
PAPER_REGIME = run.profile == "long" and long_design == "paper_regime"
KNOBS = PROFILES["long-paper_regime" if PAPER_REGIME else run.profile]
n_train = n_train or KNOBS["n_train"]
epochs = epochs or KNOBS["epochs"]
hidden = hidden or KNOBS["hidden"]
SEEDS = [run.seed + i for i in range(KNOBS["seeds"])]
STEM = "05_vae_as"
LOG_N = math.log(n_train)
PAPER_N = (
    55_000  # MNIST training images in the paper's §5.1; its MI, MD, SC refer to it
)
LARGEST_N = max(p["n_train"] for p in PROFILES.values())
# Table 2's first two rows, every column
# (NNLtest, KLtest, AU, NNLtrain, KLtrain, MI, MD, SC)
TABLE2_COLUMNS = (
    "nll_test",
    "kl_test",
    "au",
    "nll_train",
    "kl_train",
    "mi",
    "md",
    "sc",
)
PAPER_TABLE2_ROWS = {
    "VAE": dict(zip(TABLE2_COLUMNS, (100.99, 18.39, 8, 73.45, 18.57))),
    "VAE-AS (1, 1)": dict(
        zip(TABLE2_COLUMNS, (96.32, 21.84, 11, 71.66, 21.22, 10.78, 10.66, 0.35))
    ),
}
# every VAE-AS row of Table 2, transcribed: (α, β) -> (KLtrain, MI, MD, SC)
PAPER_TABLE2 = {
    (1.0, 1.0): (21.22, 10.78, 10.66, 0.35),
    (1.0, 0.1): (65.70, 10.86, 54.89, 0.11),
    (1.0, 0.2): (45.14, 10.87, 34.35, 0.12),
    (1.0, 0.5): (29.40, 10.83, 18.71, 0.22),
    (1.0, 2.0): (15.87, 10.58, 5.78, 0.82),
    (1.0, 5.0): (5.56, 3.34, 2.27, 7.62),
    (0.1, 1.0): (21.22, 10.80, 10.63, 0.31),
    (0.2, 1.0): (20.92, 10.81, 10.32, 0.31),
    (0.5, 1.0): (20.91, 10.80, 10.32, 0.33),
    (2.0, 1.0): (20.99, 10.75, 10.48, 0.41),
    (5.0, 1.0): (19.79, 10.44, 9.80, 0.93),
    (10.0, 1.0): (20.28, 9.00, 12.60, 3.23),
}
metrics_ = {}

mnist = load_dataset("mnist", device=run.device)
if KNOBS["subsets"] is not None:  # smoke: class-balanced subsets
    mnist = balanced_subsets(mnist, KNOBS["subsets"]["train"], KNOBS["subsets"]["test"])
train_bin = binarized(mnist.train, 0)
# The label of each training image is its own index e in [0, N): the auxiliary
# classifier's target.
data = Dataset(
    "binarized_mnist_indices",
    TensorSplit(train_bin.x[:n_train], torch.arange(n_train, device=run.device)),
    None,
    binarized(mnist.test, 2),
    tuple(range(n_train)),
    f"{mnist.source}, binarised (seed 0 train, 2 test); "
    f"first {n_train} training images",
)

# %% tags=["hide-input"]
depths = f"{ENCODER_DEPTH} / {DECODER_DEPTH} / {CLASSIFIER_DEPTH}"
iw_bench = project_root() / "bench" / "iw_k_gap.md"
head = "binary-tree" if KNOBS["tree"] else "flat"
markdown(
    f"**This run ({run.profile}).** N = {n_train} training images "
    f"(log N = {LOG_N:.3f}; the paper: N = {PAPER_N:,}, log N = "
    f"{math.log(PAPER_N):.3f}; MI, MD and SC all depend on N, and no profile's "
    f"default reaches the paper's: the largest, `full`, has N = {LARGEST_N:,}), "
    f"{epochs} epochs at batch {KNOBS['batch']} "
    f"(the paper: 300 at 128), hidden layers of {hidden} units in encoder and "
    f"decoder and {KNOBS['classifier_hidden']} in the classifier (the paper: 500), "
    f"depths {depths} as in the paper, {CLASSIFIER_ACTIVATION} units in the "
    "classifier (the paper's examples are tanh and ReLU; it does not say which it "
    "used); "
    f"seeds {SEEDS} for the arms {', '.join(KNOBS['arms'])}, "
    f"seed {run.seed} for the other grid points; NLL with k = {KNOBS['iw_k']} "
    f"importance samples (the paper: 4096) on the first "
    f"{min(KNOBS['iw_images'], len(data.test.x)):,} of the {len(data.test.x):,} "
    f"test images (the paper: all 10,000); a {head} softmax head. Adam with "
    f"learning rate {KNOBS.get('lr', VAE_LR):g} for "
    f"encoder and decoder and {KNOBS['classifier_lr']:g} for the classifier, and "
    f"{KNOBS['classifier_samples']} draws of z per example for the classifier's "
    "step, are the book's choices: the paper states none of them."
    + (
        " Whether the arms' NLL gaps depend on k (`bench/iw_k_gap.md`, three seeds "
        "of the main `long` design): " + iw_bench.read_text().strip().splitlines()[-1]
        if iw_bench.is_file()
        else ""
    )
)

# %% [markdown]
# ## The estimators
#
# **An index classifier estimates $q(x\mid z)$.** Treat the sample index $e \in \{1,\dots,N\}$ as a label, uniform:
# $p(x_e) = 1/N$. The joint $q(x_e, z) = \frac1N q_\phi(z\mid x_e)$ has the posterior (Eq. 10)
#
# $$
# q(x_e\mid z) = \frac{q_\phi(z\mid x_e)}{\sum_{e'} q_\phi(z\mid x_{e'})} = \frac{q_\phi(z\mid x_e)}{N\,q(z)} .
# $$
#
# A softmax $s_\omega(e\mid z)$ trained with cross-entropy (Eq. 12) on pairs $(e, z \sim q_\phi(z\mid x_e))$ has this
# posterior as its optimum (Chapter 1: cross-entropy is a KL to the true posterior plus a constant); how close a
# finite classifier, trained alongside a moving encoder, comes to it is a measurement, made below (the quality gate).
#
# **Mutual information, the paper's estimator** (Eq. 9 with Eq. 13). $I_q(z;x) = H(x) - H(x\mid z)
# = \log N - \mathbb E_z H(q(\cdot\mid z))$; the paper puts the classifier's whole distribution in place of $q(\cdot\mid z)$:
#
# $$
# \hat I = \log N - \mathbb E_{z}\, H\big(s_\omega(\cdot\mid z)\big),\qquad
# H\big(s_\omega(\cdot\mid z)\big) = -\sum_{e=1}^{N} s_\omega(e\mid z)\log s_\omega(e\mid z).
# $$ (eq-vaeas-mi)
#
# It is a plug-in estimate, neither a lower nor an upper bound: a classifier that is confidently wrong has a small
# entropy and makes $\hat I$ too large. The **cross-entropy bound** replaces the entropy by the classifier's
# cross-entropy on the true index, $\mathrm{SC} = \mathbb E[-\log s_\omega(e\mid z)]$ (Table 2's SC column); since
# $\mathbb E_z\,\mathrm{CE}(q(\cdot\mid z), s_\omega(\cdot\mid z)) \ge \mathbb E_z H(q(\cdot\mid z))$,
#
# $$
# \hat I_{\mathrm{CE}} = \log N - \mathrm{SC} \;\le\; I_q(z; x)
# $$ (eq-vaeas-ce-bound)
#
# for any classifier: a lower bound, the MINE / InfoNCE form with the $N$ samples as contrasts (Theorem 3.2). The book
# keeps it as a diagnostic.
#
# **The marginal divergence** (Eq. 14): $\log q(z) = \log q_\phi(z\mid x_e) - \log s_\omega(e\mid z) - \log N$, so
#
# $$
# \widehat{\mathrm{MD}} = \mathbb E\big[\log q_\phi(z\mid x_e) - \log p(z)\big] - \mathbb E \log s_\omega(e\mid z) - \log N
# = \overline{\mathrm{KL}} - \hat I_{\mathrm{CE}},
# $$ (eq-vaeas-md)
#
# with $\overline{\mathrm{KL}} = \mathbb E_x\mathrm{KL}(q_\phi(z\mid x)\,\|\,p(z))$ taken in closed form (the expectation of the first
# term; the paper samples it).
#
# **Fano** (the step inside the proof of Theorem 3.3). The paper's Theorem 3.3 is an estimator: with $P_e$ the
# classifier's soft error $s_\omega(\hat e \ne e\mid z)$, the error of the randomised guess
# $\hat e \sim s_\omega(\cdot\mid z)$, it sets $\hat I = \log N - H_b(P_e)$ (averaged over the samples; the paper
# prints the binary entropy's second term as $(1-P_e)\log(P_e)$, which we read as a typo for
# $(1-P_e)\log(1-P_e)$) and shows
# $\hat I - I \le P_e \log N$. Its proof uses Fano's inequality, which holds for any guess $\hat e$ of the index made
# from $z$ alone ($x \to z \to \hat e$ is a Markov chain), the paper's randomised one included:
# $H(x\mid z) \le H_b(P_e) + P_e \log(N-1)$, so
#
# $$
# I \ge \log N - H_b(P_e) - P_e\log(N-1).
# $$ (eq-vaeas-fano)
#
# The book reports this inequality, the Fano step, as a lower bound, with $P_e$ the error of the classifier's top-1
# over **all** $N$ indices on a random subset of $z$: a choice (a deterministic guess, counted exactly), not a
# necessity; the paper's soft error would give a bound as well.
#
# **A binary-tree softmax** (§3.5). A balanced binary tree over the indices, one logistic decision per internal node,
# gives $\log s(e\mid z)$ in $O(h\log N)$. Its entropy over the $N$ leaves follows from the chain rule of entropy:
# $H = \sum_n P(\text{reach } n)\,H_b\big(P(\text{left}\mid n)\big)$ over the internal nodes, $O(hN)$ per $z$, the cost of a
# flat softmax. Since Eq. {eq}`eq-vaeas-mi` enters every training step, the tree cannot save its $O(hN)$ entropy; it
# saves on the classifier's own cross-entropy step. `bench/tree_softmax.py` measures a whole VAE-AS training step with
# each head at three sizes of $N$ (below); the `full` profile uses the tree at $N = 50{,}000$, `ci` the flat head at
# $N = 1{,}000$. The tree's entropy is tested against a brute-force sum over its leaves.

# %% tags=["hide-input"]
bench_md = Path("../bench/tree_softmax.md")
bench_md = bench_md if bench_md.is_file() else Path("bench/tree_softmax.md")
bench_rows = [
    [c.strip() for c in line.strip("|").split("|")]
    for line in bench_md.read_text().splitlines()
    if line.startswith("| ") and line[2].isdigit()
]
markdown(
    "Tree against flat (`bench/tree_softmax.md`, "
    + bench_md.read_text().splitlines()[2].strip()
    + "): one VAE-AS step (Eq. 9/13 entropy over all N included) takes "
    + "; ".join(f"{r[3]}× the flat head's time at N = {r[0]}" for r in bench_rows)
    + "; the classifier's cross-entropy step alone "
    + "; ".join(f"{r[6]}× at N = {r[0]}" for r in bench_rows)
    + " (ratios tree / flat: below 1 the tree is faster)."
)

# %%
show(AS.index_mi_plugin)

# %%
show(AS.index_mi_cross_entropy_bound)

# %%
show(AS.index_marginal_divergence)

# %%
show(AS.BinaryTreeSoftmax.entropy)

# %% [markdown]
# ## What $\alpha = \beta = 1$ optimises
#
# Put Eqs. {eq}`eq-vaeas-mi` and {eq}`eq-vaeas-md` into {eq}`eq-vaeas-objective`:
#
# $$
# -\mathcal L_{\alpha,\beta} = -\mathbb E\log p_\theta(x\mid z) + \alpha\big(\log N - \mathbb E_z H(s_\omega(\cdot\mid z))\big)
# + \beta\big(\overline{\mathrm{KL}} - \log N - \mathbb E\log s_\omega(e\mid z)\big),
# $$
#
# and at $\alpha = \beta = 1$ the $\log N$ cancel:
#
# $$
# \mathcal L_{1,1} = \mathrm{ELBO} + \mathbb E_{e,\,z\sim q_\phi(z\mid x_e)}\big[H(s_\omega(\cdot\mid z)) + \log s_\omega(e\mid z)\big]
# = \mathrm{ELBO} + \mathbb E_z\big[H(s_\omega(\cdot\mid z)) - H(q(\cdot\mid z)) - \mathrm{KL}\big(q(\cdot\mid z)\,\|\,s_\omega(\cdot\mid z)\big)\big].
# $$ (eq-vaeas-11)
#
# The extra term vanishes when the classifier is exact, $s_\omega = q(\cdot\mid z)$; otherwise it rewards the encoder (the
# classifier held fixed) for latents where the classifier's entropy exceeds its cross-entropy on the true index,
# places where it spreads its mass but still favours the right sample. The classifier itself only minimises its
# cross-entropy. So VAE-AS (1, 1) is the VAE plus a term set by the classifier's *mismatch* to $q(\cdot\mid z)$, not by
# how far it lags the encoder: the term is zero for an exact classifier, but also, e.g., for a uniform one
# ($H = \log N = -\log s_\omega(e\mid z)$ at every $z$), and in general wherever
# $\mathbb E_z H(s_\omega) = \mathbb E_z \mathrm{CE}(q, s_\omega)$; a classifier trained to convergence need not
# reach it (what the paper's Table 2 implies for it is computed below).
# `test_vae_as_at_alpha_beta_one_is_the_elbo_plus_the_entropy_gap` checks the identity on a fixed batch, and the
# runs below measure what it changes.
#
# **The value vanishes, the gradient does not.** Write the extra term with the classifier frozen at the exact
# posterior of the current encoder, $s = q_{\phi_0}(\cdot\mid z)$, as the encoder's parameters $\phi$ move:
#
# $$
# T(\phi) = \mathbb E_{e,\,z\sim q_\phi(z\mid x_e)}\big[H(s(\cdot\mid z)) + \log s(e\mid z)\big],\qquad T(\phi_0) = 0 .
# $$
#
# With $q_\phi(z) = \frac1N\sum_e q_\phi(z\mid x_e)$ and $C(\phi) = \mathbb E_{z\sim q_\phi(z)} H(q_\phi(\cdot\mid z))$, the
# conditional entropy in $I_q = \log N - C$: the $\log s$ part is $-C$ at $\phi_0$, and its gradient is $-\nabla C$
# there too, because the one part of $\nabla C$ it lacks (the derivative of $\log q_\phi(e\mid z)$ at fixed $z$) is
# $\mathbb E_z\sum_e q(e\mid z)\nabla\log q_\phi(e\mid z) = \mathbb E_z \nabla \sum_e q_\phi(e\mid z) = 0$. The entropy part,
# $B(\phi) = \mathbb E_{z\sim q_\phi(z)} H(s(\cdot\mid z))$, moves only through where the $z$ go. Splitting
# $\nabla C = \nabla B + \mathbb E_{z\sim q_{\phi_0}(z)}\nabla_\phi H(q_\phi(\cdot\mid z))$,
#
# $$
# \nabla_\phi T(\phi_0) = -\nabla C + \nabla B = -\,\mathbb E_{z\sim q_{\phi_0}(z)}\,\nabla_\phi H\big(q_\phi(\cdot\mid z)\big)\Big|_{\phi_0}
# \;\ne\; 0,
# $$ (eq-vaeas-grad)
#
# the gradient of the posterior's entropy over the indices with the $z$ held where they are. So even with a perfect
# classifier VAE-AS (1, 1) does not train the VAE: its encoder gradient is the ELBO's plus
# $\nabla I_q + \nabla B$ ($-\nabla C = \nabla I_q$): the gradient of the true mutual information (which the ELBO
# penalises) plus that of the frozen classifier's entropy along the moving $z$
# (`test_the_encoder_gradient_of_the_one_one_term_is_grad_i_plus_grad_b` checks the identity by quadrature). With the
# exact posterior *and its full gradient* (the classifier not held fixed) $T(\phi) = 0$ for every $\phi$, so that
# objective is the ELBO in value and gradient (`test_exact_full_control_is_the_elbo_in_value_and_gradient`). With an
# exact classifier held fixed this gradient is the only way VAE-AS
# (1, 1) can train differently from the VAE; with an inexact one (this chapter's, see the gate below) the mismatch
# term's own value and gradient act as well. The gradient is non-zero in general, not always: it vanishes where the
# posteriors do not overlap ($H(q(\cdot\mid z)) = 0$ for every $z$ that is drawn). `test_alpha_beta_one_term_vanishes_in_value_but_not_in_its_encoder_gradient` checks it through
# `VAEAS.training_step` on a 1-d Gaussian model (value ≈ 0, gradient equal to the quadrature of Eq.
# {eq}`eq-vaeas-grad` and far from 0).

# %%
show(AS.VAEAS.training_step)

# %% [markdown]
# (ch5-decision)=
# ## The question, fixed before the data
#
# The paper's Table 2 reports that VAE-AS (1, 1) beats the VAE on active units (8 → 11) and test likelihood (NLL
# 100.99 → 96.32); that it does so through more mutual information between $x$ and $z$ is the paper's argument
# (§2.2 and the abstract), not a Table 2 number. The derivation above says where a difference at $(1, 1)$ can come
# from: with the exact posterior over indices *and its full gradient* the objective is the ELBO
# (`test_exact_full_control_is_the_elbo_in_value_and_gradient`), so a gain can come only from the paper's algorithm
# holding the classifier fixed during the encoder step (the $\nabla I + \nabla B$ of Eq. {eq}`eq-vaeas-grad`) or from
# the classifier's error. That the classifier is held fixed is our reading: the paper trains the classifier by its
# cross-entropy beside the VAE but does not say how the two updates interleave, nor which gradients flow through the
# classifier in the encoder's step. The
# design separates the two. Its arms, metrics and rules were written before the `ci` pilot; one primary
# (`vae-as/nll-exact`) and the sixth arm were added after a review of that pilot and before any `long` data, and the
# classifier's schedule was chosen on seed 0's training points (the run shown as seed 0 below), never on test data:
#
# - **Arms** (ids as in the registry). `vae`: the plain negative ELBO. `vae_as`: VAE-AS (1, 1), the paper's
#   algorithm with its learned index classifier. `vae_as_exact`: the same algorithm with a perfect classifier, the
#   exact posterior $q_\phi(e\mid z)$ over the $N$ training points, held fixed (detached) during the encoder step.
#   `vae_as_exact_full`: the exact posterior with its full gradient, Eq. 3 itself, which must train like the VAE (a
#   control of the code). `placebo`: VAE-AS's classifier trained exactly as in `vae_as`, its terms reaching the
#   encoder with weight 0. All use Glorot initialisation, as in Chapter 4.
# - **Pairing with common random numbers.** Seed $s$ builds every arm's VAE from the same initial weights (checked
#   below), feeds the same batches, and draws the VAE's $\varepsilon$ from one stream: the classifier's own draws come
#   from its own generator (`VAEAS`'s docstring), so the VAE and the placebo see the same $\varepsilon$ at every step
#   (`test_common_random_numbers_give_the_vae_and_placebo_arms_the_same_weights`). Without this, the placebo would train
#   on other draws of ε than the VAE, and their NLLs would differ by noise alone. What the common random numbers
#   do to the spread of the arms that do differ is measured by a sixth arm, `vae_own_noise`: the VAE with its own ε
#   stream (`lvmcls.vae.OwnNoiseVAE`: the same initial weights and batches, other ε); each comparison's paired SD
#   against the VAE (common ε) and against `vae_own_noise` (independent ε) is printed with the decisions.
# - **Claims, metrics, families** (the registry, `lvmcls/registry/vae_as.toml`, printed below). Primaries, Holm over
#   the three: does the objective, run with a perfect classifier, help (`vae_as_exact − vae`), in the exact MI of the
#   aggregate posterior (+0.5 nats of interest, the paper gives no MI for the VAE) and in the importance-weighted test
#   NLL (Table 2's −4.67 nats, asked of the perfect classifier; added after a review, before any `long` data of this
#   design); and does the paper's algorithm with its learned classifier lower the NLL (`vae_as − vae`, Table 2's
#   comparison, −4.67 nats). Secondaries, Holm over three:
#   active units at the paper's Cov ≥ 0.01 (+3 units; decided, though `ci`'s five seeds cannot resolve it: the
#   design table below gives the seeds the pilot asks for, which `long` runs; a count near its ceiling, the latent
#   dimension, leaves a gain little room), and the cost of the learned classifier, `vae_as` against `vae_as_exact`, as parity within ±0.5 nats of MI
#   and ±2.3 nats of NLL. Active units at Cov ≥ 0.1 and the threshold-free effective dimensionality
#   (`effective_dimensionality`) are reported beside them, not decided.
# - **Rule.** `registry.decide`: the paired $t$-interval at the claim's Holm level; *supported*, *contradicted*,
#   *smaller than the paper's effect* or *not resolved* (`lvmcls.decisions`); parity claims print the smallest margin
#   the design could establish.
# - **The classifier gate, in nats.** The learned arm runs the paper's algorithm with a classifier that keeps up
#   only if, averaged over the blocks of `online_every` epochs, the classifier at the end of each block lies
#   within 0.5 nats of the exact MI of the encoder at the block's end, both by its Eq. 9/13 estimate and by its
#   cross-entropy bound: mean $|\hat I - I| \le 0.5$ and mean $|\hat I_{\mathrm{CE}} - I| \le 0.5$ (a ratio gate is
#   lax near saturation and undefined near collapse). A seed that fails it is reported; the cost-of-approximation
#   claims measure what the lag does to the outcome.
# - **The classifier's schedule** was chosen on the training points of seed 0 alone, in the run this page shows
#   as seed 0
#   (`bench/index_classifier_schedule.md`): steps of the classifier per encoder step, on the batch's indices or on
#   indices drawn afresh, and its learning rate, by the smallest mean lag over blocks among the schedules that cost at
#   most 4 times the single step. No knob was chosen on test data.
# - **Networks.** The paper's depths; widths of `hidden` units (`ci`: 200, narrower than Chapter 4's `ci` 256 and
#   the paper's 500), Adam at a constant learning rate at this chapter's batch size.

# %%
show(AS.exact_index_log_posterior)

# %% tags=["hide-input"]
markdown(registry.design_table(STEM))

# %% [markdown]
# ## Training: the six arms over seeds, and part of the $\alpha/\beta$ grid
#
# The plain VAE maximises the ELBO without a classifier. VAE-AS trains its classifier alongside by the schedule
# above; between blocks of `online_every` epochs the `Trainer` calls `VAEAS.on_epoch_end`, which measures the
# classifier against the exact MI (the gate). The placebo does the same. The exact arms need no classifier: each
# step computes the posterior over all $N$ training points from the current encoder.


# %% tags=["hide-input"]
def trainer_for(s):
    return Trainer(
        max_epochs=epochs,
        batch_size=KNOBS["batch"],
        lr=KNOBS.get("lr", VAE_LR),
        device=run.device,
        seed=s,
        amp=KNOBS["amp"],
    )


def new_vae(cls=V.VAE):
    return cls(
        latent_dim=latent_dim,
        hidden=hidden,
        encoder_depth=ENCODER_DEPTH,
        decoder_depth=DECODER_DEPTH,
        init="glorot",
    )


def new_vae_as(alpha, beta, placebo=False, posterior="classifier"):
    return AS.VAEAS(
        new_vae(),  # built first: the same initial VAE as new_vae() under the seed
        n_train,
        alpha,
        beta,
        hidden=KNOBS["classifier_hidden"],
        tree=KNOBS["tree"],
        classifier_lr=KNOBS["classifier_lr"],
        classifier_depth=CLASSIFIER_DEPTH,
        classifier_samples=KNOBS["classifier_samples"],
        classifier_activation=CLASSIFIER_ACTIVATION,
        placebo=placebo,
        refit_every=KNOBS["online_every"],
        refit_steps=KNOBS["online_steps"],
        refit_batch=KNOBS["refit_batch"],
        refit_lr=KNOBS["classifier_lr"],
        posterior=posterior,
        classifier_steps=KNOBS["classifier_steps"],
        classifier_fresh=KNOBS["classifier_fresh"],
    )


def new_vae_own_noise():  # the VAE without common random numbers: its own ε stream
    return new_vae(V.OwnNoiseVAE)


BUILD = {
    "vae": new_vae,
    "vae_own_noise": new_vae_own_noise,
    "placebo": lambda: new_vae_as(1.0, 1.0, placebo=True),
    "vae_as": lambda: new_vae_as(1.0, 1.0),
    "vae_as_exact": lambda: new_vae_as(1.0, 1.0, posterior="exact"),
    "vae_as_exact_full": lambda: new_vae_as(1.0, 1.0, posterior="exact_full"),
}
ARMS = [a for a in BUILD if a in KNOBS["arms"]]
LEARNED = [a for a in ARMS if a in ("vae_as", "placebo")]  # the arms with a classifier


def initial_vae_state(build, seed):
    torch.manual_seed(seed)
    model = build()
    return getattr(model, "vae", model).state_dict()


def same_initial_vae(seed):  # the pairing: every arm's builder gives one initial VAE
    reference = {
        k: v
        for k, v in initial_vae_state(new_vae, seed).items()
        if not k.startswith("draws")
    }
    return all(
        all(
            torch.equal(v, initial_vae_state(BUILD[arm], seed)[k])
            for k, v in reference.items()
        )
        for arm in ARMS
    )


same_init = all(same_initial_vae(s) for s in SEEDS)
assert same_init, "the arms do not start from the same VAE"

trained, gate, seconds = {}, {}, {}
for s in SEEDS:
    for arm in ARMS:
        model, record = fit_cached(f"ch5-{arm}-s{s}", BUILD[arm], data, trainer_for(s))
        trained[(arm, s)] = model
        h = record["history"]
        seconds[(arm, s)] = h["seconds"]
        if arm in LEARNED and h["train"].get("gate_epoch"):  # a block or more ran
            gate[(arm, s)] = {
                k: h["train"][f"gate_{k}"]
                for k in ("epoch", "mi", "mi_exact", "sc", "gap", "bound_gap")
            }
models = {(1.0, 1.0, s): trained[("vae_as", s)] for s in SEEDS}
for alpha, beta in KNOBS["grid"]:
    models[(alpha, beta, run.seed)], _ = fit_cached(
        f"ch5-vae_as-a{alpha}-b{beta}-s{run.seed}",
        lambda a=alpha, b=beta: new_vae_as(a, b),
        data,
        trainer_for(run.seed),
    )

# %% [markdown]
# Table 2's columns, as the paper defines them: NLL$_\text{test}$ by importance sampling (Burda et al.), KL on
# test and training sets, AU (active units, $\mathrm{Cov}_x \mathbb E_q[z_d] \ge 0.01$), NLL$_\text{train}$ the
# reconstruction error $-\mathbb E_q \log p_\theta(x\mid z)$ on the training set (the paper's definition, not a
# likelihood), and for the arms with a classifier its MI (Eq. {eq}`eq-vaeas-mi`), MD (Eq. {eq}`eq-vaeas-md`) and SC,
# read on the training samples from the classifier as trained. Not in the paper: AU$_{0.1}$, the active units at
# $\mathrm{Cov} \ge 0.1$, the effective dimensionality $d_\text{eff}$ (threshold-free), and MI$_\text{exact}$, the
# mutual information of the exact aggregate posterior over the $N$ training points, for every model.


# %% tags=["hide-input"]
AU_CLEAR = 0.1  # the stated secondary threshold (the paper's Table 2: 0.01)


@torch.no_grad()
def table2_row(name, model):
    vae = getattr(model, "vae", model)
    vae.eval()  # evaluated alike: `vae_own_noise` draws ε from the global stream too
    torch.manual_seed(run.seed)
    t_train = vae.elbo_terms(data.train.x)
    mean_tr, log_var_tr = V.posterior_params(vae, data.train.x)
    mean_te = V.posterior_params(vae, data.test.x)[0]
    out = {
        "model": name,
        "nll_test": V.importance_weighted_nll(
            vae, data.test.x[: KNOBS["iw_images"]], k=KNOBS["iw_k"]
        )
        .mean()
        .item(),
        "kl_test": V.mean_kl(*V.posterior_params(vae, data.test.x)),
        "au_paper": V.active_units(mean_te),
        "au_clear": V.active_units(mean_te, threshold=AU_CLEAR),
        "eff_dim": V.effective_dimensionality(mean_te),
        "nll_train": -t_train["rec"].mean().item(),
        "kl_train": t_train["kl"].mean().item(),
        "mi_exact": V.exact_aggregate_posterior_terms(
            mean_tr, log_var_tr, KNOBS["exact_draws"], run.seed
        )["mi"],
    }
    if isinstance(model, AS.VAEAS) and model.posterior == "classifier":
        t = AS.index_classifier_terms(model, data.train.x, data.train.y, seed=run.seed)
        out.update({"mi": t["mi"], "md": t["md"], "sc": t["sc"]})
    else:
        out.update({"mi": None, "md": None, "sc": None})
    return out


rows = {
    (arm, s): table2_row(f"{arm} (seed {s})", trained[(arm, s)]) for arm, s in trained
}
rows_as = {(1.0, 1.0, s): rows[("vae_as", s)] for s in SEEDS} | {
    k: table2_row(f"vae_as α={k[0]:g}, β={k[1]:g} (seed {k[2]})", m)
    for k, m in models.items()
    if k[:2] != (1.0, 1.0)
}
table = list(rows.values()) + [r for k, r in rows_as.items() if k[:2] != (1.0, 1.0)]


def fmt(v):
    return "—" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))


cols = [
    "model",
    "nll_test",
    "kl_test",
    "au_paper",
    "au_clear",
    "eff_dim",
    "nll_train",
    "kl_train",
    "mi",
    "md",
    "sc",
    "mi_exact",
]
paper_11 = dict(zip(("kl_train", "mi", "md", "sc"), PAPER_TABLE2[(1.0, 1.0)]))
markdown(
    "\n".join(
        ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        + ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in table]
    )
    + f"\n\nN = {n_train}, log N = {LOG_N:.2f}. MI, MD and SC all depend on N: the "
    f"paper's refer to N = {PAPER_N:,}, log N = {math.log(PAPER_N):.2f}, which no "
    f"profile's default reaches (the largest, `full`, has N = {LARGEST_N:,}); read "
    "them against log N. Paper (Table 2, rows VAE and VAE-AS α = β = 1): "
    + "; ".join(
        f"{name} " + ", ".join(f"{column} {value:g}" for column, value in row.items())
        for name, row in PAPER_TABLE2_ROWS.items()
    )
    + "."
)

# %% [markdown]
# ## The decisions
#
# Per seed and arm, the registry's metrics; then every registered claim whose arms this profile trains, decided by
# the one code path that also decides the merged `long` run (`lvmcls.registry.decide`), and the controls.

# %%
show(registry.decide)

# %% tags=["hide-input"]
METRICS = ("mi_exact", "nll_test", "au_paper", "au_clear", "eff_dim")
per_seed = {
    arm: {k: [float(rows[(arm, s)][k]) for s in SEEDS] for k in METRICS} for arm in ARMS
}
if PAPER_REGIME:  # the paper-regime NLL is its own metric: no other design decides it
    for arm in ARMS:
        per_seed[arm]["nll_test_paper_regime"] = per_seed[arm]["nll_test"]
decided = registry.decide(STEM, per_seed) if len(SEEDS) > 1 else {}


def summary(values):
    mean = statistics.mean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else float("nan")


lines = ["| arm | " + " | ".join(METRICS) + " | s per model |", "|---|" + "---|" * 6]
for arm in ARMS:
    cells = ["{:.2f} ± {:.2f}".format(*summary(per_seed[arm][k])) for k in METRICS] + [
        f"{statistics.mean(seconds[(arm, s)] for s in SEEDS):.0f}"
    ]
    lines.append(f"| `{arm}` | " + " | ".join(cells) + " |")


def decision_rows(decided_):
    out = [
        (
            "| claim | family (Holm level) | comparison | verdict | difference "
            "[interval] | smallest detectable "
            "| effect of interest (source: the paper's or the book's) |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    for key, made in decided_.items():
        c, d = made["claim"], made["decisions"][0]
        lo, hi = d.interval
        if c["kind"] == "parity":
            mde = f"±{d.smallest_margin:.3g} (margin it establishes)"
            effect = f"parity within ±{c['margin']:g}"
        else:
            mde, effect = f"{d.minimum_detectable_effect:.3g}", f"{c['effect']:+g}"
        whose = (
            "the book's"
            if c["effect_source"].startswith(("the book", "parity, the book"))
            else "the paper's, asked of an arm it lacks"
            if "is asked of" in c["effect_source"]
            else "the paper's"
        )
        effect += f" ({whose})"
        out.append(
            f"| `{key}` | {c['family']} ({made['level']:.4f}) | `{c['candidate']}` − "
            f"`{c['baseline']}` ({c['what']}) | **{headline(made)}** | "
            f"{d.mean_difference:+.3f} [{lo:+.3f}, {hi:+.3f}] | {mde} | {effect} |"
        )
    return "\n".join(out)


def differences(values, a, b, k):  # arm a − arm b in metric k, seed by seed
    return [x - y for x, y in zip(values[a][k], values[b][k])]


def paired(a, b, k):
    return summary(differences(per_seed, a, b, k))


def t_interval(d):  # the 95 % t-interval of a mean
    half = scipy_t.ppf(0.975, len(d) - 1) * statistics.stdev(d) / len(d) ** 0.5
    return statistics.fmean(d) - half, statistics.fmean(d) + half


def sd_ratio_band(n):
    """The central 95 % of a ratio of two SDs, each on n seeds, when the true SDs are
    equal: the square root of F's band (as if the two were independent; they share
    seeds)."""
    return tuple(scipy_f.ppf(q, n - 1, n - 1) ** 0.5 for q in (0.025, 0.975))


CONTROLS = [
    (a, b)
    for a, b in (
        ("placebo", "vae"),
        ("vae_as_exact_full", "vae"),
        ("vae_as_exact", "vae"),
        ("vae_as", "vae"),
        ("vae_as", "vae_as_exact"),
    )
    if a in ARMS and b in ARMS
]
exact_full_interval = {}
if "vae_as_exact_full" in ARMS and len(SEEDS) >= 2:
    for k in ("nll_test", "mi_exact"):
        d = differences(per_seed, "vae_as_exact_full", "vae", k)
        exact_full_interval[k] = t_interval(d)
# what the common random numbers do: each arm's paired SD against the VAE (the same ε)
# and against `vae_own_noise` (the VAE's weights and batches, its own ε)
crn_sd = {}
if "vae_own_noise" in ARMS and len(SEEDS) >= 2:
    for a in ("placebo", "vae_as", "vae_as_exact", "vae_as_exact_full"):
        if a in ARMS:
            crn_sd[a] = {
                k: (paired(a, "vae", k)[1], paired(a, "vae_own_noise", k)[1])
                for k in ("nll_test", "mi_exact")
            }
df_sd = max(len(SEEDS) - 1, 1)
sd_band = sd_ratio_band(df_sd + 1)
metrics_["crn_paired_sd"] = {
    a: {k: list(v) for k, v in d.items()} for a, d in crn_sd.items()
}
exact_full_halfwidth = (
    (exact_full_interval["nll_test"][1] - exact_full_interval["nll_test"][0]) / 2
    if exact_full_interval
    else None
)
metrics_["exact_full_control_interval"] = {
    k: list(v) for k, v in exact_full_interval.items()
}
control_lines = [
    "| difference | " + " | ".join(METRICS) + " |",
    "|---|" + "---|" * len(METRICS),
] + [
    f"| `{a}` − `{b}` | "
    + " | ".join("{:+.2f} (SD {:.2f})".format(*paired(a, b, k)) for k in METRICS)
    + " |"
    for a, b in CONTROLS
]
markdown(
    "\n".join(lines)
    + f"\n\nMean ± standard deviation over seeds {SEEDS} (the same seeds and "
    "batches in every arm, the same ε in all but `vae_own_noise`), and the mean "
    "training time per model (s, on this run's "
    "machine; the learned classifier's share is its cost in time).\n\n"
    + (
        decision_rows(decided)
        + "\n\nSmallest detectable: the |difference| this design, at the spread "
        "observed here and the claim's Holm level, detects with power 0.8 "
        "(noncentral t); for a parity row, the smallest margin the interval "
        "establishes.\n\n"
        if decided
        else f"This `{run.profile}` run has one seed: it decides nothing by itself; "
        "its per-seed values are recorded for `python -m lvmcls.long merge`.\n\n"
    )
    + "Paired differences, mean (SD over seeds), every arm against its reference:\n\n"
    + "\n".join(control_lines)
    + "\n\nThe first two rows are controls that must read about 0: the placebo "
    "(same ε as the VAE, so it trains the VAE's very weights) and Eq. 3 with the "
    "exact posterior's full gradient (the ELBO in expectation; its SD shows how far "
    "two objectives equal in expectation drift apart over training). "
    + (
        "Eq. 3's control, 95 % t-interval of `vae_as_exact_full` − `vae` over the "
        "seeds: "
        + "; ".join(
            f"{k} [{lo:+.2f}, {hi:+.2f}]"
            + (" (contains 0)" if lo <= 0 <= hi else " (**excludes 0**)")
            for k, (lo, hi) in exact_full_interval.items()
        )
        + (
            ": no defect detected at this width (the NLL interval's half-width is "
            f"{exact_full_halfwidth:.1f}"
            " nats, so a defect smaller than that would pass unseen)."
            if all(lo <= 0 <= hi for lo, hi in exact_full_interval.values())
            else ": the control fails, a sign of a defect in the code or of an "
            "objective that is not Eq. 3."
        )
        if exact_full_interval
        else ""
    )
    + (
        "\n\n**What the common random numbers do.** Paired SD over the seeds of each "
        "arm's difference from the VAE with the same ε (common random numbers) and "
        "from `vae_own_noise`, the VAE with its own ε (the same initial weights and "
        "batches):\n\n| arm | SD of NLL difference: same ε / own ε | SD of exact-MI "
        "difference: same ε / own ε |\n|---|---|---|\n"
        + "\n".join(
            f"| `{a}` | "
            + " | ".join(
                f"{d[k][0]:.2f} / {d[k][1]:.2f}" for k in ("nll_test", "mi_exact")
            )
            + " |"
            for a, d in crn_sd.items()
        )
        + f"\n\nWith {len(SEEDS)} seeds the ratio of two estimated SDs whose true "
        f"values are equal falls between {sd_band[0]:.2f} and {sd_band[1]:.2f} with "
        f"probability 0.95 (the square root of F with {df_sd} and {df_sd} degrees "
        "of freedom, treating the two SDs as independent, which they are not quite: "
        "they share seeds), so only a ratio of same-ε to own-ε SD outside that band "
        "reads as an effect of the common random numbers: "
        + "; ".join(
            f"`{a}` {k} {d[k][0] / d[k][1]:.2f}"
            + (
                " (outside)"
                if not sd_band[0] <= d[k][0] / d[k][1] <= sd_band[1]
                else ""
            )
            for a, d in crn_sd.items()
            for k in ("nll_test", "mi_exact")
            if d[k][1] > 0
        )
        + "."
        if crn_sd
        else ""
    )
)

# %% tags=["hide-input"]
GATE_NATS = 0.5  # the gate, stated in advance: mean lag over blocks, nats
more_schedules = project_root() / "bench" / "index_classifier_schedule_more.md"
gate_lag = {
    key: (
        statistics.mean(abs(v) for v in g["gap"]),
        statistics.mean(abs(v) for v in g["bound_gap"]),
    )
    for key, g in gate.items()
}
gate_pass = {
    s: bool(max(gate_lag[("vae_as", s)]) <= GATE_NATS)
    for s in SEEDS
    if ("vae_as", s) in gate_lag
}
gate_rows = []
if gate:
    epochs_logged = next(iter(gate.values()))["epoch"]
    gate_rows = [
        "| seed | arm | "
        + " | ".join(f"epoch {int(e)}" for e in epochs_logged)
        + " | mean lag |",
        "|---|---|" + "---|" * (len(epochs_logged) + 1),
    ]
    for (arm, s), g in gate.items():
        gate_rows.append(
            f"| {s} | `{arm}` | "
            + " | ".join(
                f"{a:+.2f} / {b:+.2f}" for a, b in zip(g["gap"], g["bound_gap"])
            )
            + " | {:.2f} / {:.2f} |".format(*gate_lag[(arm, s)])
        )
markdown(
    "**The classifier gate, in nats.** The lag of the classifier at the end of "
    f"each block of {KNOBS['online_every']} epochs: Î (Eq. 9/13) − exact MI "
    " / (log N − SC) − exact MI at the block's end (nats; schedule: "
    f"{KNOBS['classifier_steps']} classifier step(s) per encoder step on "
    f"{'indices drawn afresh' if KNOBS['classifier_fresh'] else 'the batch'} at "
    f"learning rate {KNOBS['classifier_lr']:g}):\n\n"
    + "\n".join(gate_rows)
    + f"\n\n`vae_as` passes the gate (both mean lags ≤ {GATE_NATS} nats) on "
    f"{sum(gate_pass.values())} of {len(gate_pass)} seeds"
    + (
        ": no block of training was completed, so nothing was measured."
        if not gate_pass
        else ": its classifier keeps up, so `vae_as` runs the paper's algorithm "
        "as meant."
        if all(gate_pass.values())
        else ": its classifier lags the encoder, so `vae_as` runs the paper's "
        "algorithm with an approximation the paper does not assume; the cost claims "
        "(`vae_as` against `vae_as_exact`) measure what that lag does to MI and NLL."
    )
    + (
        "\n\nMore inner steps, measured after the fact on seed 0's training points "
        "(`bench/index_classifier_schedule_more.md`; the registered schedule stays): "
        + more_schedules.read_text().strip().splitlines()[-1]
        if more_schedules.is_file()
        else ""
    )
)

# %% tags=["hide-input"]
# Eq. (eq-vaeas-11)'s extra term E[H(s) + log s(e|z)] = (log N - Î) - SC, per seed
extra = [
    LOG_N - rows_as[(1.0, 1.0, s)]["mi"] - rows_as[(1.0, 1.0, s)]["sc"] for s in SEEDS
]
# the same term implied by the paper's transcribed Table 2 (N = 55,000)
paper_term_kl = paper_11["kl_train"] - paper_11["mi"] - paper_11["md"]
paper_term_sc = math.log(PAPER_N) - paper_11["mi"] - paper_11["sc"]
paper_terms = [math.log(PAPER_N) - mi - sc for _, mi, _, sc in PAPER_TABLE2.values()]
diff = {k: paired("vae_as", "vae", k)[0] for k in METRICS}
markdown(
    f"The paper reports −4.67 nats of NLL and +3 active units after 300 epochs on "
    f"55,000 images; this run ({epochs} epochs, N = {n_train:,}) gives `vae_as` − "
    f"`vae` = {diff['nll_test']:+.2f} nats and {diff['au_paper']:+.2f} units (Cov ≥ "
    "0.01) on average. At the end of training the term that separates "
    "$\\mathcal L_{1,1}$ from the ELBO, "
    "$\\mathbb E[H(s(\\cdot\\mid z)) + \\log s(e\\mid z)]$, is "
    + ", ".join(f"{v:+.3f}" for v in extra)
    + " nats (seeds "
    + ", ".join(map(str, SEEDS))
    + ") on the training samples. The paper's Table 2 implies for (1, 1) "
    f"KL_train − MI − MD = {paper_term_kl:+.2f} nats (= log N − MI − SC = "
    f"{paper_term_sc:+.3f} with N = {PAPER_N:,}); over its {len(PAPER_TABLE2)} "
    f"VAE-AS rows log N − MI − SC runs from {min(paper_terms):+.2f} to "
    f"{max(paper_terms):+.2f} nats."
)

# %% [markdown]
# ## Figures 2–3: the estimators against the exact aggregate posterior
#
# {numref}`fig-ch5-estimators` sets each estimator of the paper's Figures 2–3 against the exact aggregate posterior.
# The paper draws its Figures 2–3 with the §5.2 model (encoder, decoder and classifier of 2, 3 and 2 layers, 120
# epochs at mini-batch 100, and a variant whose softmax has V = 10,000 labels, fewer than the N training images); this chapter uses its Table 2 (1, 1) model instead,
# so that the figure and the decision share one set of trained models.

# %% tags=["hide-input"]
markdown(
    f"For VAE-AS (1, 1), seed {run.seed}: with $N = {n_train:,}$ the aggregate "
    + r"""posterior $q(z) = \frac1N\sum_j q_\phi(z\mid x_j)$ is computable exactly,
so the mutual information and MD of the trained encoder are known up to the Monte
Carlo error of the $z$ draws (`exact_aggregate_posterior_terms`, which Chapter 4 can
call too). Against them:

- Monte Carlo over $S < N$ points. Each $z_i$'s own component gets weight $1/S$
  instead of $1/N$, so $\hat q(z_i) \ge q(z_i\mid x_i)/S$ and MI is capped at
  $\log S$: that much is certain. Each other point's weight falls, in expectation,
  from $1/N$ to $(S-1)/(S(N-1))$, so $\hat q(z_i)$ is typically, not always, too
  large: MI typically underestimated and MD overestimated;
- the classifier as trained (in `full`, after its last short refit; `ci` has none), and
  a fresh classifier fit to the final encoder
  (`fit_index_classifier`, its own cross-entropy only, the encoder frozen). Neither
  is a bound: an entropy too large makes $\hat I$ too small, a confidently wrong
  classifier has too small an entropy and makes $\hat I$ too large; the sentence
  under the figure gives the sign of each gap;
- the cross-entropy bound and the Fano bound, which must lie below the exact MI.

The right panel sums MI and MD: for Monte Carlo and for the pair (cross-entropy
bound, Eq. 14) the sum is the Monte Carlo estimate of the mean KL whatever the
estimate of $q(z)$ (the terms telescope), so it checks nothing; the paper's pair
(Eq. 9/13, Eq. 14) differs from it by $\mathbb E[H(s) + \log s(e\mid z)]$, the term
of Eq. {eq}`eq-vaeas-11`."""
)

# %%
show(V.exact_aggregate_posterior_terms)

# %% tags=["hide-input"]
ref = models[(1.0, 1.0, run.seed)]
mean_tr, log_var_tr = V.posterior_params(ref.vae, data.train.x)
exact = V.exact_aggregate_posterior_terms(
    mean_tr, log_var_tr, draws=KNOBS["exact_draws"], seed=run.seed
)
online = AS.index_classifier_terms(ref, data.train.x, data.train.y, seed=run.seed)
refit_losses = AS.fit_index_classifier(
    ref,
    data.train.x,
    steps=KNOBS["refit_steps"],
    batch_size=KNOBS["refit_batch"],
    lr=KNOBS["refit_lr"],
    seed=run.seed,
)
refit = AS.index_classifier_terms(ref, data.train.x, data.train.y, seed=run.seed)
mc = {
    s: [
        V.aggregate_posterior_terms(mean_tr, log_var_tr, samples=s, seed=r)
        for r in range(KNOBS["mc_repeats"])
    ]
    for s in KNOBS["mc_samples"]
    if s < n_train
}
fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
for ax, key, label in (
    (axes[0], "mi", "I_q(z; x)"),
    (axes[1], "md", "KL(q(z) ‖ p(z))"),
):
    xs = list(mc) + [n_train]
    vals = [[e[key] for e in mc[s]] for s in mc] + [[exact[key]]]
    ax.errorbar(
        xs,
        [statistics.mean(v) for v in vals],
        yerr=[(max(v) - min(v)) / 2 for v in vals],
        marker="o",
        capsize=3,
        label="Monte Carlo over S points (S = N: exact)",
    )
    ax.axhline(refit[key], color="C3", label="classifier, refit (Eq. 9/13, 14)")
    ax.axhline(online[key], color="C1", ls="-.", label="classifier as trained")
    if key == "mi":
        ax.axhline(
            refit["mi_ce_bound"],
            color="C4",
            ls="--",
            label="cross-entropy bound (refit)",
        )
        ax.axhline(refit["fano"], color="C2", ls="--", label="Fano bound (refit)")
        ax.axhline(LOG_N, color="gray", ls=":", label="log N")
    ax.set(xscale="log", xlabel="S", ylabel="nats", title=label)
    ax.legend(frameon=False, fontsize=7)
sums = {
    "MC, S = N": exact["mi"] + exact["md"],
    "CE bound + Eq. 14": refit["mi_ce_bound"] + refit["md"],
    "Eq. 9/13 + Eq. 14": refit["mi"] + refit["md"],
    "mean KL": exact["kl"],
}
axes[2].bar(range(len(sums)), list(sums.values()), color=["C0", "C4", "C3", "black"])
axes[2].set_xticks(range(len(sums)), list(sums), fontsize=8)
axes[2].set(ylabel="nats", title="I + MD against the mean KL")
fig.tight_layout()
figure(
    fig,
    "fig-ch5-estimators",
    "VAE-AS (α = β = 1): the mutual information $I_q(z;x)$ (left) and the marginal "
    "divergence KL(q(z) ‖ p(z)) (middle), in nats, estimated by Monte Carlo over S "
    "training points (x axis, log scale; S = N is the exact mixture; bars: range over "
    "repeats), beside the index classifier's Eq. 9/13 and Eq. 14 estimates, the "
    "cross-entropy and Fano bounds and log N. Right: I + MD from each estimator "
    "against the mean KL.",
)

metrics_.update(
    {
        "mi_classifier_vae_as": refit["mi"],
        "mi_classifier_online_vae_as": online["mi"],
        "mi_mc_vae_as": exact["mi"],
        "mi_mc_se_vae_as": exact["mi_se"],
        "md_mc_vae_as": exact["md"],
        "mi_ce_bound_vae_as": refit["mi_ce_bound"],
        "fano_bound_vae_as": refit["fano"],
        "top1_error_vae_as": refit["top1_error"],
        "mi_mc_by_samples": {
            str(s): round(statistics.mean(e["mi"] for e in v), 4) for s, v in mc.items()
        }
        | {str(n_train): round(exact["mi"], 4)},
        "md_mc_by_samples": {
            str(s): round(statistics.mean(e["md"] for e in v), 4) for s, v in mc.items()
        }
        | {str(n_train): round(exact["md"], 4)},
    }
)


# %% tags=["hide-input"]
gap_online, gap_refit = online["mi"] - exact["mi"], refit["mi"] - exact["mi"]
tol = 0.1 * LOG_N


def side(gap):
    return "below" if gap < 0 else "above"


def near(gap):
    return "within" if abs(gap) <= tol else "outside"


limit = exact["mi"] + 4 * exact["mi_se"]  # 4 Monte Carlo standard errors above
ce_below = "lies below" if refit["mi_ce_bound"] <= limit else "does NOT lie below"
fano_below = "lies below" if refit["fano"] <= limit else "does NOT lie below"
mc_text = ", ".join(
    f"S = {s}: {statistics.mean(e['mi'] for e in v):.3f} (log S = {math.log(s):.3f})"
    for s, v in mc.items()
)
markdown(
    f"Exact (S = N = {n_train}): MI = {exact['mi']:.3f} ± {exact['mi_se']:.3f}, "
    f"MD = {exact['md']:.3f} ± {exact['md_se']:.3f} nats. The classifier as "
    f"trained gives Î = {online['mi']:.3f} ({gap_online:+.3f}, {side(gap_online)} "
    f"the exact MI, {near(gap_online)} 0.1·log N = {tol:.3f}); refit for "
    f"{KNOBS['refit_steps']} steps (cross-entropy {refit_losses[:50].mean():.2f} → "
    f"{refit_losses[-50:].mean():.2f} nats) it gives Î = {refit['mi']:.3f} "
    f"({gap_refit:+.3f}, {side(gap_refit)} the exact MI, {near(gap_refit)} "
    f"0.1·log N); its MD̂ (Eq. 14) is "
    f"{refit['md']:.3f} ({refit['md'] - exact['md']:+.3f}). The cross-entropy "
    f"bound {refit['mi_ce_bound']:.3f} {ce_below} the exact MI; the Fano bound "
    f"{refit['fano']:.3f} {fano_below} it (top-1 error {refit['top1_error']:.3f} "
    f"over all {n_train} indices on {refit['top1_subset']} random z). Monte Carlo "
    f"over S points: {mc_text}."
)

# %% [markdown]
# ## Reconstructions at small and large $\alpha$ (the paper's Figure 4) or $\beta$
#
# The paper's Figure 4 shows test and training reconstructions at $\alpha = 0.2$ and $\alpha = 5$ ($\beta = 1$): a
# small $\alpha$ puts little price on the mutual information, a large one much. Where the run's grid has no
# $\alpha \ne 1$, {numref}`fig-ch5-reconstructions` shows $\beta$ instead, which the paper's Figure 4 does not: a small $\beta$ makes the
# marginal divergence cheap and a large one expensive. The sentence under it says which.

# %% tags=["hide-input"]
alpha_keys = sorted(k for k in models if k[1] == 1.0 and k[0] != 1.0)
beta_keys = sorted(k for k in models if k[0] == 1.0 and k[1] != 1.0)
HAS_GRID = bool(alpha_keys or beta_keys)  # the paper_regime design trains no grid
if HAS_GRID:
    varied = "α" if alpha_keys else "β"
    small, large = (alpha_keys or beta_keys)[0], (alpha_keys or beta_keys)[-1]
    fig, axes = plt.subplots(2, 2, figsize=(13, 4.2))
    for col, key in enumerate((small, large)):
        for r, (split_name, x) in enumerate(
            (("train", data.train.x[:10]), ("test", data.test.x[:10]))
        ):
            recon = models[key].vae.reconstruct(x).cpu()
            plots.image_grid(
                axes[r, col],
                torch.cat([x.cpu().flatten(1), recon]),
                ncol=10,
                title=f"α = {key[0]:g}, β = {key[1]:g}: {split_name}, reconstructions",
            )
    fig.tight_layout()
    figure(
        fig,
        "fig-ch5-reconstructions",
        f"Reconstructions of binarised MNIST at {varied} = {small[varied == 'β']:g}"
        f" (left) and {large[varied == 'β']:g} (right): in each panel the top "
        "row holds 10 images and the bottom row their reconstructions (mean of "
        "p(x|z) at the posterior mean); top panels training images, bottom panels test "
        "images.",
    )


# %% tags=["hide-input"]
if HAS_GRID:
    full_alphas = sorted(
        a for a, b in PROFILES["full"]["grid"] if b == 1.0 and a != 1.0
    )
    what = (
        "the paper's Figure 4 (α = 0.2 and 5.0 at β = 1)"
        if varied == "α" and (small[0], large[0]) == (0.2, 5.0)
        else f"α = {small[0]:g} and {large[0]:g} at β = 1, the paper's Figure 4 shows "
        "α = 0.2 and 5.0"
        if varied == "α"
        else "not the paper's Figure 4, which varies α: this run's grid has no α ≠ 1 ("
        + (
            f"the `full` profile has α = {', '.join(f'{a:g}' for a in full_alphas)}"
            if full_alphas
            else "nor has the `full` profile's"
        )
        + "), so it varies β at α = 1"
    )
    # The paper's Table 2 at the grid's extremes, transcribed: (NLL_test, NLL_train)
    PAPER_NLL = {
        (0.2, 1.0): (97.51, 71.84),
        (5.0, 1.0): (97.33, 75.94),
        (1.0, 0.2): (106.92, 61.16),
        (1.0, 5.0): (141.38, 145.04),
    }
    i = 0 if varied == "α" else 1
    paper_pair = [PAPER_NLL.get(k[:2]) for k in (small, large)]
    paper_text = (
        f" (the paper's Table 2 there: NLL_train {paper_pair[0][1]} and "
        f"{paper_pair[1][1]}, NLL_test {paper_pair[0][0]} and {paper_pair[1][0]})"
        if None not in paper_pair
        else ""
    )
    markdown(
        f"Top: 10 training images above their reconstructions; bottom: 10 test images "
        f"above theirs; {varied} = {small[i]:g} on the left and {varied} = "
        f"{large[i]:g} on the right, seed {small[2]}: {what}. Their training "
        f"reconstruction errors (NLL_train) are {rows_as[small]['nll_train']:.2f} and "
        f"{rows_as[large]['nll_train']:.2f} nats, their test NLLs "
        f"{rows_as[small]['nll_test']:.2f} and {rows_as[large]['nll_test']:.2f}"
        f"{paper_text}."
    )


# %% [markdown]
# ## Scorecard
#
# The *full profile* column is read from `results/full/05_vae_as.json`, a run of this chapter's `full` profile on
# a GPU, when one is committed (the line under the table then names that GPU, the commit and the wall time); none
# of this chapter's present design is committed, so the column is empty until the `full` profile is run.

# %% tags=["hide-input"]
markdown(
    f"`nll_*`, `au_*`, `mi_exact_*` and `mi_vae_as`, `md_vae_as`, `sc_vae_as` "
    f"(the classifier as trained) are means over seeds {SEEDS}, their spread in "
    f"`*_std`; the `*_classifier*`, `*_mc*`, `*_bound*` and `top1_error` rows are "
    f"VAE-AS (1, 1) at seed {run.seed} (the estimators' figure). MI, MD and SC all "
    f"depend on N: the paper's refer to N = {PAPER_N:,}, which no profile's default "
    f"reaches (the largest, `full`, has N = {LARGEST_N:,}), so read them against "
    "`log_n` beside them."
)

# %% tags=["hide-input"]
as_terms = {
    k: summary([rows_as[(1.0, 1.0, s)][k] for s in SEEDS]) for k in ("mi", "md", "sc")
}
for arm in ARMS:
    for k in ("nll_test", "au_paper", "mi_exact"):
        mean_, std_ = summary(per_seed[arm][k])
        metrics_[f"{k}_{arm}"] = mean_
        metrics_[f"{k}_{arm}_std"] = std_
metrics_.update(
    {
        "nll_test_difference": diff["nll_test"],
        "au_vae": metrics_["au_paper_vae"],
        "au_vae_as": metrics_["au_paper_vae_as"],
        "mi_vae_as": as_terms["mi"][0],
        "mi_vae_as_std": as_terms["mi"][1],
        "md_vae_as": as_terms["md"][0],
        "md_vae_as_std": as_terms["md"][1],
        "sc_vae_as": as_terms["sc"][0],
        "sc_vae_as_std": as_terms["sc"][1],
        "log_n": LOG_N,
        "table": table,
        "per_seed": per_seed,
        "paired_sd": {
            f"{a}-{b}": {k: paired(a, b, k)[1] for k in METRICS} for a, b in CONTROLS
        },
        "seconds_per_model": {
            arm: statistics.mean(seconds[(arm, s)] for s in SEEDS) for arm in ARMS
        },
        "gate_nats": GATE_NATS,
        "gate_lag_by_seed": {str(s): list(gate_lag[("vae_as", s)]) for s in gate_pass},
        "gate_pass_by_seed": {str(s): gate_pass[s] for s in gate_pass},
        "gate_history": {f"{a}_s{s}": g for (a, s), g in gate.items()},
        "classifier_schedule": {
            k: KNOBS[k]
            for k in ("classifier_steps", "classifier_fresh", "classifier_lr")
        },
        "paired_initial_weights_equal": same_init,
    }
)
claims = registry.claim_rows(STEM, decided)
# the claims that run the learned classifier carry the gate's outcome in their row
learned_keys = {
    c["key"] for c in registry.claims_of(STEM) if c.get("candidate") == "vae_as"
}
for row in claims:
    if row["key"] in learned_keys and row["key"] in decided and gate_pass:
        row["ours"] += (
            f"; the learned classifier passed the gate (mean lag ≤ {GATE_NATS} nats) "
            f"on {sum(gate_pass.values())} of {len(gate_pass)} seeds"
        )
PAPER = {
    "nll_test_vae": PAPER_TABLE2_ROWS["VAE"]["nll_test"],
    "nll_test_vae_as": PAPER_TABLE2_ROWS["VAE-AS (1, 1)"]["nll_test"],
    "nll_test_difference": PAPER_TABLE2_ROWS["VAE-AS (1, 1)"]["nll_test"]
    - PAPER_TABLE2_ROWS["VAE"]["nll_test"],
    "au_vae": PAPER_TABLE2_ROWS["VAE"]["au"],
    "au_vae_as": PAPER_TABLE2_ROWS["VAE-AS (1, 1)"]["au"],
    "mi_vae_as": paper_11["mi"],
    "md_vae_as": paper_11["md"],
    "sc_vae_as": paper_11["sc"],
    "log_n": math.log(PAPER_N),
}
path = run.write_results(
    STEM,
    seeds=SEEDS,
    data_source=data.source,
    metrics=metrics_,
    paper=PAPER,
    claims=claims,
    per_seed=per_seed,
    registry=registry.hashes(STEM),
    knobs={
        **{k: v for k, v in KNOBS.items() if k != "grid"},
        "grid": [list(g) for g in KNOBS["grid"]],
        "n_train": n_train,
        "epochs": epochs,
        "latent_dim": latent_dim,
        "hidden": hidden,
        "depths": [ENCODER_DEPTH, DECODER_DEPTH, CLASSIFIER_DEPTH],
        "classifier_activation": CLASSIFIER_ACTIVATION,
    },
)
print(f"wrote {path.name}")
# the per-seed values, the decisions and the gate's history are shown above
LONG = ("table", "per_seed", "paired_sd", "gate_history", "seconds_per_model")
scorecard(
    STEM,
    {k: v for k, v in metrics_.items() if k not in LONG and not isinstance(v, dict)},
    PAPER,
    sources={
        "nll_test_vae": "Table 2, row VAE, column NNLtest",
        "nll_test_vae_as": "Table 2, row VAE-AS α = β = 1, column NNLtest",
        "nll_test_difference": "Table 2, column NNLtest, VAE-AS α = β = 1 − VAE",
        "au_vae": "Table 2, row VAE, column AU",
        "au_vae_as": "Table 2, row VAE-AS α = β = 1, column AU",
        "mi_vae_as": "Table 2, row VAE-AS α = β = 1, column MI",
        "md_vae_as": "Table 2, row VAE-AS α = β = 1, column MD",
        "sc_vae_as": "Table 2, row VAE-AS α = β = 1, column SC",
        "log_n": f"log N for the paper's N = {PAPER_N:,} (§5.1)",
    },
)

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
print({k: round(v, 3) for k, v in sorted(metrics_.items()) if isinstance(v, float)})

# %% [markdown]
# ### What `ci` decides, and what `long` adds
#
# `ci` is the pilot: five paired seeds of the six arms in a few minutes. `long` runs the same design for the seeds
# the registry asks for (`python -m lvmcls.long power --chapters 05` computes them from this pilot's paired SDs),
# one seed per run from seed 5 on (the pilot's seeds 0–4 are not decided again), each record committed as it
# finishes; the table below is the merged `long` run when one exists.
# Neither is the paper's regime (N = 55,000, 500-unit layers, 300 epochs): `ci`'s test NLL sits far above the
# paper's (printed below), so even a decided `ci` NLL does not test Table 2's number.

# %% tags=["hide-input"]


def gate_outcome(records):
    """The gate over long records: seeds passed, measured, range of the larger lag."""
    lags = [max(v) for r in records for v in r["metrics"]["gate_lag_by_seed"].values()]
    passed = sum(v for r in records for v in r["metrics"]["gate_pass_by_seed"].values())
    return passed, len(lags), min(lags), max(lags)


def long_controls(record, records):
    """What the merged long seeds say of the controls and of the gate."""
    ps, seeds = record["per_seed"], record["seeds"]
    diagnostics = sorted(  # the benches that retrained an odd seed (named in line 1)
        [
            *(project_root() / "bench").glob("placebo_divergence*.md"),
            *(project_root() / "bench").glob("long_seed_rerun*.md"),
            *(project_root() / "bench").glob("first_model_determinism*.md"),
        ]
    )
    out = []
    if records:
        passed, n, lo, hi = gate_outcome(records)
        out.append(
            f"The learned classifier passed the gate on {passed} of {n} `long` seeds "
            f"(the larger of its two mean lags: {lo:.2f} to {hi:.2f} nats, against "
            f"{GATE_NATS}): the claims on `vae_as` rest on a classifier that lags."
        )
    if {"placebo", "vae"} <= set(ps):
        diff = differences(ps, "placebo", "vae", "nll_test")
        odd = [(s, d) for s, d in zip(seeds, diff) if d != 0]
        out.append(
            f"The placebo gives the VAE's test NLL to the last bit on "
            f"{len(diff) - len(odd)} of {len(diff)} seeds"
            + (
                "; it differs on "
                + ", ".join(f"seed {s} ({d:+.2f} nats)" for s, d in odd)
                + ". Retrained in a fresh process: "
                + "; ".join(
                    f"seed {s}, `bench/{f.name}`: "
                    + f.read_text().strip().splitlines()[-1].rstrip(".")
                    for s, _ in odd
                    for f in diagnostics
                    if f"seed {s} " in f.read_text().splitlines()[0] + " "
                )
                if odd
                else ""
            )
            + "."
        )
    if {"vae_as_exact_full", "vae"} <= set(ps):
        parts = []
        for k in ("nll_test", "mi_exact"):
            d = differences(ps, "vae_as_exact_full", "vae", k)
            lo, hi = t_interval(d)
            parts.append(
                f"{k} {statistics.fmean(d):+.2f} [{lo:+.2f}, {hi:+.2f}]"
                + (" (contains 0)" if lo <= 0 <= hi else " (**excludes 0**)")
            )
        out.append(
            f"Eq. 3's control on the {len(seeds)} `long` seeds, `vae_as_exact_full` − "
            "`vae`, mean [95 % t-interval]: " + "; ".join(parts) + "."
        )
    # exploratory, not verdicts: each difference claim on every recorded seed
    every = []
    for c in registry.claims_of(STEM):
        if c["kind"] != "difference" or c["metric"] not in ps.get("vae", {}):
            continue
        d = differences(ps, c["candidate"], c["baseline"], c["metric"])
        lo, hi = t_interval(d)
        every.append(
            f"`{c['key']}` {statistics.fmean(d):+.2f} [{lo:+.2f}, {hi:+.2f}]"
            + ("" if lo <= c["effect"] <= hi else f" (excludes {c['effect']:+g})")
        )
    if every:
        out.append(
            f"On all {len(seeds)} recorded seeds (exploratory, not verdicts: each "
            "claim is decided on the seeds its design planned), mean difference "
            "[95 % t-interval]: " + "; ".join(every) + "."
        )
    if {"vae_own_noise", "vae"} <= set(ps):  # what the common random numbers do here
        band = sd_ratio_band(len(seeds))
        ratios = []
        for arm in ("vae_as", "vae_as_exact", "vae_as_exact_full"):
            r = statistics.stdev(
                differences(ps, arm, "vae", "nll_test")
            ) / statistics.stdev(differences(ps, arm, "vae_own_noise", "nll_test"))
            ratios.append(
                f"`{arm}` {r:.2f}" + ("" if band[0] <= r <= band[1] else " (outside)")
            )
        out.append(
            "Common random numbers on the same seeds, ratio of the NLL difference's "
            "SD with the same ε to that with the VAE's own ε (√F band "
            f"{band[0]:.2f}–{band[1]:.2f}): " + "; ".join(ratios) + "."
        )
    return " ".join(out)


long_file = results_dir() / "long" / f"{STEM}.json"
long_records = []  # the merged main design's per-seed records, when it has run
display(
    markdown(
        f"This `{run.profile}` run's test NLL, mean over its seeds: "
        + "; ".join(
            f"`{arm}` {statistics.fmean(per_seed[arm]['nll_test']):.1f} nats, "
            f"{statistics.fmean(per_seed[arm]['nll_test']) - paper_nll:+.1f} against "
            "Table 2's "
            f"{paper_row} ({paper_nll:g})"
            for arm, paper_row in (("vae", "VAE"), ("vae_as", "VAE-AS (1, 1)"))
            if arm in per_seed
            for paper_nll in [PAPER_TABLE2_ROWS[paper_row]["nll_test"]]
        )
        + "."
    )
)
if long_file.is_file():
    long_record = json.loads(long_file.read_text())
    asked = max(
        (
            c.get("long", {}).get("seeds") or 0
            for c in registry.claims_of(STEM)
            if c["kind"] != "check"
        ),
        default=0,
    )
    long_seeds = set(long_record["seeds"])
    long_records = [r for r in seed_records(STEM) if r["seeds"][0] in long_seeds]
    display(
        markdown(
            "| claim | `long` verdict | ours |\n|---|---|---|\n"
            + "\n".join(
                f"| `{r['key']}` | **{headline(r)}** | {r['ours']} |"
                for r in long_record["claims"]
            )
            + f"\n\n`long`: {len(long_record['seeds'])} paired seeds merged "
            "(the registry "
            f"asks for up to {asked}); "
            + describe_age(result_age(long_record, STEM))
            + ".\n\n"
            + long_controls(long_record, long_records)
        )
    )
else:
    display(
        markdown(
            "`long` has not run for this chapter yet: no merged record "
            f"`results/long/{STEM}.json`."
        )
    )

# %% [markdown]
# (ch5-paper-regime)=
# ### Table 2's regime on two CPU cores: the `paper_regime` design
#
# The second `long` design asks the NLL question closer to where the paper asked it, as far as two CPU cores go:
# the paper's widths (500) and depths (2 / 5 / 2), the binary-tree head, the VAE against VAE-AS (1, 1) with its
# learned classifier and common random numbers, the importance-weighted NLL with 1,000 samples on 1,000 test images
# (the paper: 4,096 on all), but N = 10,000 training images (the paper: 55,000) and 20 epochs at batch 512 (the
# paper: 300 epochs at batch 128). Eq. 9's entropy sums the classifier over all N leaves for every example, so an
# epoch's work grows faster than N (the ratio measured by `bench/tree_softmax.md` is printed below). The registry's
# regime line, written before the data, says N = 50,000 took about 15 minutes per VAE-AS epoch: a one-epoch timing
# on a machine shared with two other runs, not a committed record. The committed records of this design ran faster
# than that timing implies; below, the N = 50,000 cost is estimated again from them, and N = 50,000 was not run. Its
# classifier
# schedule is the `full` profile's for the tree head (one SparseAdam step per encoder step at learning rate 3e-3, no
# refits): the schedule `bench/index_classifier_schedule.md` chose was measured for `ci`'s flat head only, where the
# single step lagged the most, so the classifier's lag, measured every 10 epochs, is part of what this design
# reports. The tree head is the paper's; on that bench it is not the faster head at N = 10,000. The design was
# registered before its data (`vae-as/nll-paper-regime`, a family of its own), its seeds sized on the `ci` pilot's
# paired NLL spread, measured at N = 1,000 with narrower networks: a spread that may not transfer, so the merged
# run's own interval is what decides. Its NLL is printed beside Table 2's, so the reader sees how far 20 CPU epochs
# at N = 10,000 are from the paper's run.

# %% tags=["hide-input"]
tree_bench = project_root() / "bench" / "tree_softmax.md"
tree_rows = {}
if tree_bench.is_file():
    for line in tree_bench.read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 7 and cells[0].isdigit():
            tree_rows[int(cells[0])] = {
                "flat": float(cells[1]),
                "tree": float(cells[2]),
            }
if {10_000, 50_000} <= set(tree_rows):
    step_ratio = tree_rows[50_000]["tree"] / tree_rows[10_000]["tree"]
    display(
        markdown(
            f"`bench/tree_softmax.md` (a loaded machine, batch 128, rows measured at "
            "different moments: a rough guide): a VAE-AS step "
            f"with the tree head at N = 50,000 takes {step_ratio:.2f} times one at "
            f"N = 10,000, and an epoch holds 5 times as many steps: about "
            f"{5 * step_ratio:.1f} times the epoch. At N = 10,000 the tree step takes "
            f"{tree_rows[10_000]['tree'] / tree_rows[10_000]['flat']:.2f} times the "
            "flat "
            "one."
        )
    )


def regime_reading(record, records):
    """How to read the paper-regime verdict: the mechanism (the classifier), the
    training length against the paper's, and what N = 50,000 would cost (computed)."""
    knobs = records[0]["knobs"]
    m = [r["metrics"] for r in records]
    steps = knobs["epochs"] * math.ceil(knobs["n_train"] / knobs["batch"])
    paper_steps = 300 * math.ceil(PAPER_N / 128)  # §5.3: 300 epochs at batch 128
    passed, n, lo, hi = gate_outcome(records)
    online = statistics.fmean(x["mi_classifier_online_vae_as"] for x in m)
    exact = statistics.fmean(x["mi_exact_vae_as"] for x in m)
    sc = statistics.fmean(x["sc_vae_as"] for x in m)
    diff = statistics.fmean(
        a - b
        for a, b in zip(
            record["per_seed"]["vae_as"]["nll_test_paper_regime"],
            record["per_seed"]["vae"]["nll_test_paper_regime"],
        )
    )
    paper_diff = (
        PAPER_TABLE2_ROWS["VAE-AS (1, 1)"]["nll_test"]
        - PAPER_TABLE2_ROWS["VAE"]["nll_test"]
    )
    epoch_s = [x["seconds_per_model"]["vae_as"] / knobs["epochs"] for x in m]
    text = (
        f"**How to read it.** The mechanism was not at work: the learned classifier "
        f"passed the gate on {passed} of {n} seeds (larger mean lag {lo:.2f} to "
        f"{hi:.2f} nats); at the end its estimate Î was {online:.2f} nats against "
        f"an exact MI of {exact:.2f}, and its cross-entropy SC {sc:.2f} nats against "
        f"log N = {math.log(knobs['n_train']):.2f} for a uniform guess (Table 2: "
        f"{paper_11['sc']:g}), after {steps:,} encoder steps (the paper's schedule: "
        f"{paper_steps:,}). So this design tested the paper's algorithm with a "
        "classifier that had barely begun to learn the indices: its verdict says "
        "what that algorithm did here, not what a trained classifier would do. Its "
        f"mean difference, VAE-AS − VAE = {diff:+.2f} nats, lies on the other side of "
        f"0 from the paper's {paper_diff:+.2f}."
    )
    if {10_000, 50_000} <= set(tree_rows) and knobs["n_train"] == 10_000:
        per_epoch = [e * 5 * step_ratio / 60 for e in epoch_s]
        hours = [
            p * knobs["epochs"] * len(records) / 60
            for p in (min(per_epoch), max(per_epoch))
        ]
        text += (
            f" **N = 50,000.** VAE-AS took {min(epoch_s):.0f} to {max(epoch_s):.0f} s "
            "per epoch at N = 10,000 in these records; times the bench's epoch ratio, "
            f"an epoch at N = 50,000 would take about {min(per_epoch):.1f} to "
            f"{max(per_epoch):.1f} minutes, so this design's {len(records)} seeds of "
            f"{knobs['epochs']} epochs about {hours[0]:.1f} to {hours[1]:.1f} hours of "
            "VAE-AS training alone. Read these as a lower estimate: the bench's ratio "
            "is the smallest one available (a loaded machine, and its flat head grows "
            "only "
            f"{tree_rows[50_000]['flat'] / tree_rows[10_000]['flat']:.2f} times for 5 "
            "times N, though Eq. 9's entropy over the N leaves grows as N per "
            "example), "
            "and the records' seconds include the gate, whose exact MI grows as N². "
            "Beside this, the main design took "
            f"{sum(r['wall_time_s'] for r in long_records) / 3600:.1f} hours; "
            "N = 50,000 was not run. Its "
            f"{knobs['epochs'] * math.ceil(50_000 / knobs['batch']):,} encoder steps "
            "would still be far from the paper's."
        )
    return text


regime_file = results_dir() / "long" / f"{STEM}--paper_regime.json"
if regime_file.is_file():
    regime = json.loads(regime_file.read_text())
    nll = regime["per_seed"]
    regime_records = [
        r
        for r in seed_records(STEM, design="paper_regime")
        if r["seeds"][0] in set(regime["seeds"])
    ]
    display(
        markdown(
            "| claim | `long` verdict (paper regime) | ours |\n|---|---|---|\n"
            + "\n".join(
                f"| `{r['key']}` | **{headline(r)}** | {r['ours']} |"
                for r in regime["claims"]
            )
            + "\n\nNLL reached (nats, mean over seeds): VAE "
            + f"{statistics.fmean(nll['vae']['nll_test_paper_regime']):.2f}, "
            + "VAE-AS (1, 1) "
            + f"{statistics.fmean(nll['vae_as']['nll_test_paper_regime']):.2f}; "
            + "Table 2: "
            + " and ".join(
                f"{PAPER_TABLE2_ROWS[r]['nll_test']:g}"
                for r in ("VAE", "VAE-AS (1, 1)")
            )
            + ". "
            + f"{len(regime['seeds'])} paired seeds; "
            + describe_age(result_age(regime, STEM))
            + ".\n\n"
            + regime_reading(regime, regime_records)
        )
    )
else:
    display(
        markdown(
            "The `paper_regime` design has not run yet: `python -m lvmcls.long run "
            "--chapters 05 --design paper_regime --commit` (resumable)."
        )
    )

# %% [markdown]
# ## Conclusion
#
# - A softmax over sample indices, trained by cross-entropy, estimates $q(x\mid z)$; the paper's estimator uses the
#   entropy of its whole distribution (Eq. 9/13), a plug-in estimate, and Eq. 14 turns its log-probability of the true
#   index into the marginal divergence. Its cross-entropy gives a true lower bound on the mutual information.
# - With the exact posterior and its full gradient, $\alpha = \beta = 1$ is the ELBO (Eq. 3); the paper's algorithm
#   holds the classifier fixed during the encoder step (our reading of it), which adds $\nabla I + \nabla B$ to the ELBO's encoder
#   gradient even for a perfect classifier (Eq. {eq}`eq-vaeas-grad`), and a learned classifier adds its mismatch
#   term (Eq. {eq}`eq-vaeas-11`). The five arms with common random numbers separate the two.

# %% tags=["hide-input"]
markdown(
    f"This run (`{run.profile}`, seeds {SEEDS}):\n\n"
    + "".join(f"- `{r['key']}`: **{headline(r)}**. {r['ours']}\n" for r in claims)
    + f"- The learned classifier passed the gate (mean lag ≤ {GATE_NATS} nats) on "
    f"{sum(gate_pass.values())} of {len(gate_pass)} seeds.\n"
    + "- Against the exact aggregate posterior, Monte Carlo over $S < N$ points is "
    "capped at $\\log S$. The classifier as trained is "
    f"{abs(gap_online):.2f} nats {side(gap_online)} the exact mutual information "
    f"({near(gap_online)} 0.1·log N = {tol:.2f}); refit on the final encoder it is "
    f"{abs(gap_refit):.2f} nats {side(gap_refit)} it ({near(gap_refit)} that margin).\n"
    + (
        f"\nThe merged `long` designs ({len(long_record['seeds'])} seeds of the main "
        "one"
        + (
            f", {len(regime['seeds'])} of the paper regime"
            if regime_file.is_file()
            else ""
        )
        + "), shown in full above:\n\n"
        + "".join(
            f"- `{r['key']}`: **{headline(r)}**\n"
            for rec in [long_record] + ([regime] if regime_file.is_file() else [])
            for r in rec["claims"]
            if not r["verdict"].startswith("not run")
        )
        + "\nThe learned classifier passed the gate on "
        + " and on ".join(
            "{} of {} seeds of the {}".format(*gate_outcome(recs)[:2], name)
            for recs, name in [(long_records, "main design")]
            + ([(regime_records, "paper regime")] if regime_file.is_file() else [])
        )
        + "; what that means for each verdict is read above."
        if long_file.is_file()
        else ""
    )
)

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# ```
