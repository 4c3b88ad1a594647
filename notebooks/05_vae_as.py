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
# advance how the VAE-AS question will be decided, with a placebo control arm, then trains the VAE, VAE-AS and the
# placebo over paired seeds with the depths of the paper's Table 2 (`ci`: narrower layers), compares the estimators
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

import math
import statistics
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from lvmcls import plots
from lvmcls import vae as V
from lvmcls import vae_as as AS
from lvmcls.data import Dataset, TensorSplit, balanced_subsets, binarized, load_dataset
from lvmcls.decisions import claim, paired_decision
from lvmcls.notebook import figure, markdown, setup, show
from lvmcls.notebook import scorecard
from lvmcls.train import Trainer, fit_cached, pick_device

device = pick_device()

# %% tags=["parameters"]
profile = "auto"  # "auto" | "ci" | "full" | "smoke"
seed = 0
latent_dim = 40
hidden = (
    None  # units per hidden layer of encoder and decoder (None: the profile's default)
)
n_train = None  # training images, so N sample indices (None: the profile's default)
epochs = None

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
# hidden / classifier_hidden: layer widths; seeds: the VAE, VAE-AS (1, 1) and the
# placebo are trained with seeds seed, seed + 1, ...; classifier_samples: draws of z
# per example for the classifier's step; online_every / online_steps: the classifier's
# short refits on the moving encoder every that many epochs (`VAEAS.on_epoch_end`, the
# quality gate's measurement); tree: the binary-tree head; refit_*: the classifier's
# own fresh fit on the final encoder for the estimators' figure; mc_samples: S for
# Monte Carlo over S < N points;
# exact_draws: z per point for the exact mixture; iw_k: importance samples for the
# NLL (the paper: 4096); batch: the mini-batch; subsets: smoke's class-balanced cut
# of train and test (`balanced_subsets`)
VAE_LR = 1e-3  # Adam for encoder and decoder (the paper states no optimiser)
PROFILES = {
    "ci": {
        "n_train": 1000,
        "epochs": 60,
        "hidden": 200,
        "classifier_hidden": 128,
        "seeds": 5,
        "grid": CI_GRID,
        "classifier_samples": 2,
        "classifier_lr": 3e-3,
        "online_every": 10,
        "online_steps": 100,
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
    },
    "full": {
        "n_train": 50_000,
        "epochs": 6,
        "hidden": 500,
        "classifier_hidden": 500,
        "seeds": 3,  # the fewest a paired decision should rest on (the window's budget)
        "grid": FULL_GRID,
        "classifier_samples": 2,
        # with ReLU units 3e-3 killed every unit of the classifier at N = 50,000; with
        # tanh none was constant, and 3e-3 gave a higher online Î than 1e-3, though a
        # higher training loss and a lower refit MI (bench/index_classifier_scale.md;
        # the training points, no test data)
        "classifier_lr": 3e-3,
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
        "grid": CI_GRID,
        "classifier_samples": 2,
        "classifier_lr": 3e-3,
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
KNOBS = PROFILES[run.profile]
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
# The VAE-AS rows of the paper's Table 2, transcribed: (α, β): (KL_train, MI, MD, SC)
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
    f"seeds {SEEDS} for the VAE, VAE-AS (1, 1) and its placebo, "
    f"seed {run.seed} for the other grid points; NLL with k = {KNOBS['iw_k']} "
    f"importance samples (the paper: 4096) on the first "
    f"{min(KNOBS['iw_images'], len(data.test.x)):,} of the {len(data.test.x):,} "
    f"test images (the paper: all 10,000); a {head} softmax head. Adam with "
    f"learning rate {KNOBS.get('lr', VAE_LR):g} for "
    f"encoder and decoder and {KNOBS['classifier_lr']:g} for the classifier, and "
    f"{KNOBS['classifier_samples']} draws of z per example for the classifier's "
    "step, are the book's choices: the paper states none of them."
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
# $\hat e \sim s_\omega(\cdot\mid z)$, it sets $\hat I = \log N - H_b(P_e)$ (averaged over the samples) and shows
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
# $\nabla I_q - \nabla B$, the gradient of the true mutual information (which the ELBO penalises) minus that of the
# frozen classifier's entropy along the moving $z$. With an exact classifier this gradient is the only way VAE-AS
# (1, 1) can train differently from the VAE; with an inexact one (this chapter's, see the gate below) the mismatch
# term's own value and gradient act as well. The gradient is non-zero in general, not always: it vanishes where the
# posteriors do not overlap ($H(q(\cdot\mid z)) = 0$ for every $z$ that is drawn). `test_alpha_beta_one_term_vanishes_in_value_but_not_in_its_encoder_gradient` checks it through
# `VAEAS.training_step` on a 1-d Gaussian model (value ≈ 0, gradient equal to the quadrature of Eq.
# {eq}`eq-vaeas-grad` and far from 0).

# %%
show(AS.VAEAS.training_step)

# %% [markdown]
# (ch5-decision)=
# ## The question, fixed before the runs
#
# The paper's Table 2 reports that VAE-AS (1, 1) beats the VAE on active units (8 → 11) and test likelihood (NLL
# 100.99 → 96.32); that it does so through more mutual information between $x$ and $z$ is the paper's argument
# (§2.2 and the abstract: preventing collapse needs more mutual information, which VAE-AS controls), not a Table 2
# number (Table 2 gives no MI for the VAE). This chapter decides it as follows,
# written before any of the runs below:
#
# - **Arms.** The VAE (the plain negative ELBO); VAE-AS (1, 1); and a **placebo**, VAE-AS (1, 1) whose classifier
#   trains exactly as in VAE-AS (same parameters, steps, refits and random draws) but whose $\alpha/\beta$ terms reach
#   the encoder with weight 0, so that its VAE trains on the plain ELBO (`VAEAS(placebo=True)`;
#   `test_placebo_trains_the_vae_like_the_vae_and_the_classifier_like_vae_as`). All three use Glorot initialisation,
#   as in Chapter 4 (PyTorch's default leaves a deep decoder nearly blind to $z$ at the start).
# - **Pairing.** Seed $s$ builds every arm's VAE from the same initial weights (the VAE is built first, the
#   classifier after it; the run checks that the weights are equal) and feeds the same batches.
# - **Metrics.** (a) the exact mutual information $I_q(z;x)$ of the aggregate posterior over the $N$ training points
#   (`exact_aggregate_posterior_terms`, not the classifier's estimate); (b) active units at
#   $\mathrm{Cov} \ge 0.1$ on the test images (ten times the paper's 0.01: Chapter 4 finds weakly used units near
#   0.01); (c) the importance-weighted test NLL.
# - **Seeds and rule.** The profile's seeds (5 in `ci`); per metric the paired mean difference and its Bonferroni
#   $t$-interval over the **3** metrics at $\alpha = 0.05$ (a 98.3 % interval, `paired_decision` with
#   `comparisons=3`): *supported* when it lies wholly on the paper's side, *contradicted* when wholly on the other,
#   otherwise *not resolved*; with it the smallest effect the design detects with power 0.8 (MDE).
# - **The control.** The same rule decides VAE-AS − placebo. A VAE-AS − VAE difference counts only where VAE-AS −
#   placebo agrees: a claim is *supported* (or *contradicted*) only when both comparisons are, otherwise *not
#   resolved* (an intersection of two tests, which needs no further correction).
# - **The classifier gate.** The objective is the paper's only if the index classifier that trains the encoder
#   is close to the exact posterior: per seed, at the end of training and on the classifier as it stood through
#   the last block of training (before its refit), its Eq. 9/13 estimate Î must lie within 20 % of the exact MI
#   (0.8 ≤ Î / exact ≤ 1.2) *and* its cross-entropy bound $\log N - \mathrm{SC}$ must reach 0.8 of the exact MI.
#   Where a seed fails, the page says that seed compared a weaker objective, and the claims ledger records the
#   paper's claim as not resolved. *Amended after the first run:* the gate first read Î / exact ≥ 0.8 alone, which
#   an over-confident classifier passes (its plug-in Î overshoots: `bench/index_classifier_online.md` has ratios
#   of 0.95–2.0 with a cross-entropy bound below zero); the page prints below whether the amendment changes any
#   seed's outcome.
# - **Knobs.** None was chosen on test data. The classifier's activation and learning rate come from
#   `bench/index_classifier_scale.md` on the training points: tanh, because ReLU units died; 3e-3, because it gave
#   the higher online Î of the two rates tried with tanh (1.15 vs 0.86 nats at N = 50,000) — by its training
#   cross-entropy and its refit MI, 1e-3 was the better rate, and online Î is the estimate an over-confident
#   classifier inflates. The refit cadence was set once from the cost of a refit, not tuned on any outcome. The
#   VAE's networks and initialisation are Chapter 4's; its optimiser settings are this chapter's own (the profile's
#   batch and a constant learning rate, where Chapter 4's `ci` trains at batch 256 with a step schedule).

# %% [markdown]
# ## Training: the three arms over seeds, and part of the $\alpha/\beta$ grid
#
# The plain VAE maximises the ELBO without a classifier. VAE-AS trains its classifier alongside (one optimiser step
# per VAE step, on `classifier_samples` draws of $z$ per example) and, between blocks of `online_every` epochs, the
# `Trainer` calls `VAEAS.on_epoch_end`: it measures the classifier against the exact MI (the gate), then refits it
# for `online_steps` steps on the current encoder so that it follows the moving encoder. The placebo does the same.


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


def new_vae():
    return V.VAE(
        latent_dim=latent_dim,
        hidden=hidden,
        encoder_depth=ENCODER_DEPTH,
        decoder_depth=DECODER_DEPTH,
        init="glorot",
    )


def new_vae_as(alpha, beta, placebo=False):
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
    )


def initial_vae_state(build):
    torch.manual_seed(0)
    model = build()
    return getattr(model, "vae", model).state_dict()


# the pairing: each arm's builder gives the same initial VAE under one seed
same_init = all(
    all(torch.equal(a, b) for a, b in zip(ref.values(), other.values()))
    for ref in [initial_vae_state(new_vae)]
    for other in (
        initial_vae_state(lambda: new_vae_as(1.0, 1.0)),
        initial_vae_state(lambda: new_vae_as(1.0, 1.0, placebo=True)),
    )
)
assert same_init, "the arms do not start from the same VAE"

vaes = {s: fit_cached(f"ch5-vae-s{s}", new_vae, data, trainer_for(s))[0] for s in SEEDS}
models, gate = {}, {}
placebos = {}
for s in SEEDS:
    for arm, store in (("vaeas", models), ("placebo", placebos)):
        model, record = fit_cached(
            f"ch5-{arm}-a1-b1-s{s}",
            lambda p=arm == "placebo": new_vae_as(1.0, 1.0, placebo=p),
            data,
            trainer_for(s),
        )
        store[(1.0, 1.0, s) if arm == "vaeas" else s] = model
        h = record["history"]["train"]
        gate[(arm, s)] = {
            k: h[f"gate_{k}"] for k in ("epoch", "mi", "mi_exact", "ratio")
        }
        gate[(arm, s)]["sc"] = h["gate_sc"]
for alpha, beta in KNOBS["grid"]:
    models[(alpha, beta, run.seed)], _ = fit_cached(
        f"ch5-vaeas-a{alpha}-b{beta}-s{run.seed}",
        lambda a=alpha, b=beta: new_vae_as(a, b),
        data,
        trainer_for(run.seed),
    )

# %% [markdown]
# Table 2's columns, as the paper defines them: NLL$_\text{test}$ by importance sampling (Burda et al.), KL on
# test and training sets, AU (active units, $\mathrm{Cov}_x \mathbb E_q[z_d] \ge 0.01$), NLL$_\text{train}$ the
# reconstruction error $-\mathbb E_q \log p_\theta(x\mid z)$ on the training set (the paper's definition, not a
# likelihood), and for VAE-AS the classifier's MI (Eq. {eq}`eq-vaeas-mi`), MD (Eq. {eq}`eq-vaeas-md`) and SC, read
# on the training samples from the classifier as trained (after the refit that closes its last block of
# training, so slightly better than the classifier that trained the encoder). Not in the paper: AU$_\text{clear}$, the active units at
# $\mathrm{Cov} \ge 0.1$ (the decision's metric), and MI$_\text{exact}$, the mutual information of the exact aggregate
# posterior over the $N$ training points, for every model; the placebo rows are the control arm.


# %% tags=["hide-input"]
AU_CLEAR = 0.1  # the decision's active-unit threshold (the paper's Table 2: 0.01)


@torch.no_grad()
def table2_row(name, model):
    vae = getattr(model, "vae", model)
    torch.manual_seed(run.seed)
    t_train = vae.elbo_terms(data.train.x)
    mean_tr, log_var_tr = V.posterior_params(vae, data.train.x)
    out = {
        "model": name,
        "nll_test": V.importance_weighted_nll(
            vae, data.test.x[: KNOBS["iw_images"]], k=KNOBS["iw_k"]
        )
        .mean()
        .item(),
        "kl_test": V.mean_kl(*V.posterior_params(vae, data.test.x)),
        "au": V.active_units(V.posterior_params(vae, data.test.x)[0]),
        "au_clear": V.active_units(
            V.posterior_params(vae, data.test.x)[0], threshold=AU_CLEAR
        ),
        "nll_train": -t_train["rec"].mean().item(),
        "kl_train": t_train["kl"].mean().item(),
        "mi_exact": V.exact_aggregate_posterior_terms(
            mean_tr, log_var_tr, KNOBS["exact_draws"], run.seed
        )["mi"],
    }
    if isinstance(model, AS.VAEAS):
        t = AS.index_classifier_terms(model, data.train.x, data.train.y, seed=run.seed)
        out.update({"mi": t["mi"], "md": t["md"], "sc": t["sc"]})
    else:
        out.update({"mi": None, "md": None, "sc": None})
    return out


rows_vae = {s: table2_row(f"VAE (seed {s})", m) for s, m in vaes.items()}
rows_as = {
    k: table2_row(f"VAE-AS α={k[0]:g}, β={k[1]:g} (seed {k[2]})", m)
    for k, m in models.items()
}
rows_placebo = {s: table2_row(f"placebo (seed {s})", m) for s, m in placebos.items()}
table = list(rows_vae.values()) + list(rows_as.values()) + list(rows_placebo.values())


def fmt(v):
    return "—" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))


cols = [
    "model",
    "nll_test",
    "kl_test",
    "au",
    "au_clear",
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
    "them against log N. Paper (Table 2): VAE 100.99 / 18.39 / 8 / 73.45 / 18.57; "
    f"VAE-AS (1, 1) 96.32 / 21.84 / 11 / 71.66 / {paper_11['kl_train']}, MI "
    f"{paper_11['mi']}, MD {paper_11['md']}, SC {paper_11['sc']}."
)

# %% [markdown]
# ## The decision: VAE-AS (1, 1) against the VAE and against the placebo
#
# Per seed and arm, the three metrics fixed above; then the paired decisions (`paired_decision`, 3 comparisons per
# family, α = 0.05), and the classifier gate.


# %% tags=["hide-input"]
def spread(rows, key):
    values = [r[key] for r in rows]
    return statistics.mean(values), statistics.stdev(values) if len(
        values
    ) > 1 else float("nan")


ARMS = {
    "VAE": [rows_vae[s] for s in SEEDS],
    "VAE-AS (1, 1)": [rows_as[(1.0, 1.0, s)] for s in SEEDS],
    "placebo": [rows_placebo[s] for s in SEEDS],
}
# metric key: (words, the paper's direction for VAE-AS, claim key, paper's value)
# the paper's Table 2 differences, VAE-AS (1, 1) - VAE
PAPER_EFFECT = {"nll_test": 96.32 - 100.99, "au_clear": 11 - 8}
METRICS = {
    "mi_exact": (
        "exact MI of the aggregate posterior over the N training points, nats",
        "higher",
        "vae-as/mi",
        "VAE-AS (1, 1) MI 10.78 nats at N = 55,000 (Table 2; the VAE's MI is not "
        "reported); §2.2: preventing collapse needs more mutual information "
        "between z and x, which VAE-AS controls",
    ),
    "au_clear": (
        f"active units at Cov ≥ {AU_CLEAR:g}, test images",
        "higher",
        "vae-as/au",
        "AU 8 (VAE) → 11 (VAE-AS (1, 1)), Cov ≥ 0.01 (Table 2)",
    ),
    "nll_test": (
        "importance-weighted test NLL, nats",
        "lower",
        "vae-as/nll",
        "NLL 100.99 (VAE) → 96.32 (VAE-AS (1, 1)) (Table 2)",
    ),
}
per_seed = {
    arm: {k: [r[k] for r in rows] for k in METRICS} for arm, rows in ARMS.items()
}
decisions = {}
for k, (what, direction, _, _) in METRICS.items():
    for base in ("VAE", "placebo"):
        decisions[(k, base)] = paired_decision(
            per_seed["VAE-AS (1, 1)"][k],
            per_seed[base][k],
            direction=direction,
            what=what,
            names=("VAE-AS (1, 1)", base),
            alpha=0.05,
            comparisons=len(METRICS),
        )


def combined(k):
    a, b = decisions[(k, "VAE")].verdict, decisions[(k, "placebo")].verdict
    return a if a == b and a != "not resolved" else "not resolved"


# the classifier gate, per seed, at the last measurement: Î (Eq. 9/13) / exact MI within
# [0.8, 1.2] and the cross-entropy bound log N - SC at least 0.8 of the exact MI
GATE = 0.8
gate_end = {s: gate[("vaeas", s)]["ratio"][-1] for s in SEEDS}
gate_bound = {
    s: (LOG_N - gate[("vaeas", s)]["sc"][-1]) / gate[("vaeas", s)]["mi_exact"][-1]
    for s in SEEDS
}
gate_pass = {
    s: bool(GATE <= gate_end[s] <= 2 - GATE and gate_bound[s] >= GATE) for s in SEEDS
}
gate_pass_first_rule = {s: bool(r >= GATE) for s, r in gate_end.items()}
objective = (
    "the paper's objective"
    if all(gate_pass.values())
    else "a weaker objective than the paper's (its classifier fails the gate on seeds "
    + ", ".join(str(s) for s, ok in gate_pass.items() if not ok)
    + ")"
)
compare = ["nll_test", "au", "au_clear", "mi_exact", "kl_train"]
stats = {name: {k: spread(rows, k) for k in compare} for name, rows in ARMS.items()}
lines = ["| arm | " + " | ".join(compare) + " |", "|---|" + "---|" * len(compare)]
lines += [
    f"| {name} | " + " | ".join(f"{m:.2f} ± {s:.2f}" for m, s in st.values()) + " |"
    for name, st in stats.items()
]
diff = {k: stats["VAE-AS (1, 1)"][k][0] - stats["VAE"][k][0] for k in compare}
markdown(
    "\n".join(lines)
    + f"\n\nMean ± standard deviation over seeds {SEEDS} (the same seeds in every "
    "arm). The decisions, VAE-AS (1, 1) against each control (98.3 % intervals):\n\n"
    + "\n".join(
        f"- **{what}**: against the VAE, {decisions[(k, 'VAE')].sentence()}; "
        f"against the placebo, {decisions[(k, 'placebo')].sentence()}. "
        f"**Combined: {combined(k)}.**"
        for k, (what, *_) in METRICS.items()
    )
    + "\n\nThe paper's effects beside what this design could detect (MDE against "
    f"the VAE, power 0.8): NLL {PAPER_EFFECT['nll_test']:+.2f} nats (MDE "
    f"{decisions[('nll_test', 'VAE')].minimum_detectable_effect:.2f}); active units "
    f"{PAPER_EFFECT['au_clear']:+d} at Cov ≥ 0.01 (this design counts at Cov ≥ "
    f"{AU_CLEAR:g}; MDE {decisions[('au_clear', 'VAE')].minimum_detectable_effect:.1f})"
    "; the paper reports no MI difference. Where the MDE exceeds the paper's effect, "
    "*not resolved* is what this design should be expected to return even if the "
    "paper is right."
)

# %% tags=["hide-input"]
gate_rows = [
    "| seed | arm | "
    + " | ".join(f"epoch {int(e)}" for e in gate[("vaeas", SEEDS[0])]["epoch"])
    + " |",
    "|---|---|" + "---|" * len(gate[("vaeas", SEEDS[0])]["epoch"]),
]
for s in SEEDS:
    for arm in ("vaeas", "placebo"):
        g = gate[(arm, s)]
        gate_rows.append(
            f"| {s} | {'VAE-AS' if arm == 'vaeas' else 'placebo'} | "
            + " | ".join(
                f"{mi:.2f} / {ex:.2f} = {r:.2f}; SC {sc:.2f}"
                for mi, ex, r, sc in zip(g["mi"], g["mi_exact"], g["ratio"], g["sc"])
            )
            + " |"
        )
markdown(
    "**The classifier gate.** Î (Eq. 9/13) / exact MI and SC (nats; log N = "
    f"{LOG_N:.2f}) of the classifier as it stood through each block of "
    f"{KNOBS['online_every']} epochs, measured before its refit:\n\n"
    + "\n".join(gate_rows)
    + "\n\nAt the end of training Î / exact is "
    + ", ".join(f"{gate_end[s]:.2f} (seed {s})" for s in SEEDS)
    + " and the cross-entropy bound over the exact MI "
    + ", ".join(f"{gate_bound[s]:.2f}" for s in SEEDS)
    + f" for VAE-AS: {sum(gate_pass.values())} of {len(SEEDS)} seeds pass the gate "
    f"({GATE:g} ≤ Î / exact ≤ {2 - GATE:g} and bound / exact ≥ {GATE:g}), so the "
    f"comparison above is of {objective}. The first rule (Î / exact ≥ {GATE:g} alone) "
    + (
        "gives the same outcome on every seed."
        if gate_pass_first_rule == gate_pass
        else "would have passed seeds "
        + ", ".join(
            str(s) for s in SEEDS if gate_pass_first_rule[s] and not gate_pass[s]
        )
        + "."
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
markdown(
    f"The paper reports −4.67 nats of NLL and +3 active units after 300 epochs on "
    f"55,000 images; this run ({epochs} epochs, N = {n_train:,}) differs by "
    f"{diff['nll_test']:+.2f} nats and {diff['au']:+.2f} units (Cov ≥ 0.01) on "
    "average. At the end of training the term that separates "
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
# epochs at mini-batch 100, and a variant on V = 10,000 images); this chapter uses its Table 2 (1, 1) model instead,
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
- the classifier as trained (its last short refit came after the final epoch), and
  a fresh classifier fit to the final encoder
  (`fit_index_classifier`, its own cross-entropy only, the encoder frozen). Neither
  is a bound: an entropy too large makes $\hat I$ too small, a confidently wrong
  classifier has too small an entropy and makes $\hat I$ too large; the sentence
  under the figure gives the sign of each gap;
- the cross-entropy bound and the Fano bound, which must lie below the exact MI.

The right panel sums MI and MD: for Monte Carlo and for the pair (cross-entropy
bound, Eq. 14) the sum is the mean KL whatever the estimate of $q(z)$ (the terms
telescope), so it checks nothing; the paper's pair (Eq. 9/13, Eq. 14) differs from
it by $\mathbb E[H(s) + \log s(e\mid z)]$, the term of Eq. {eq}`eq-vaeas-11`."""
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
full_alphas = sorted(a for a, b in PROFILES["full"]["grid"] if b == 1.0 and a != 1.0)
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
    f"(the classifier as trained, after the refit at the end of its last block of "
    f"training) are means over seeds {SEEDS}, their spread in "
    f"`*_std`; the `*_classifier*`, `*_mc*`, `*_bound*` and `top1_error` rows are "
    f"VAE-AS (1, 1) at seed {run.seed} (the estimators' figure). MI, MD and SC all "
    f"depend on N: the paper's refer to N = {PAPER_N:,}, which no profile's default "
    f"reaches (the largest, `full`, has N = {LARGEST_N:,}), so read them against "
    "`log_n` beside them."
)

# %% tags=["hide-input"]
as_terms = {
    k: spread([rows_as[(1.0, 1.0, s)] for s in SEEDS], k) for k in ("mi", "md", "sc")
}
metrics_.update(
    {
        "nll_test_vae": stats["VAE"]["nll_test"][0],
        "nll_test_vae_std": stats["VAE"]["nll_test"][1],
        "nll_test_vae_as": stats["VAE-AS (1, 1)"]["nll_test"][0],
        "nll_test_vae_as_std": stats["VAE-AS (1, 1)"]["nll_test"][1],
        "nll_test_difference": diff["nll_test"],
        "au_vae": stats["VAE"]["au"][0],
        "au_vae_std": stats["VAE"]["au"][1],
        "au_vae_as": stats["VAE-AS (1, 1)"]["au"][0],
        "au_vae_as_std": stats["VAE-AS (1, 1)"]["au"][1],
        "mi_exact_vae": stats["VAE"]["mi_exact"][0],
        "mi_exact_vae_as": stats["VAE-AS (1, 1)"]["mi_exact"][0],
        "mi_vae_as": as_terms["mi"][0],
        "mi_vae_as_std": as_terms["mi"][1],
        "md_vae_as": as_terms["md"][0],
        "md_vae_as_std": as_terms["md"][1],
        "sc_vae_as": as_terms["sc"][0],
        "sc_vae_as_std": as_terms["sc"][1],
        "log_n": LOG_N,
        "table": table,
        "per_seed": per_seed,
        "decisions": {f"{k}_vs_{b}": d.to_dict() for (k, b), d in decisions.items()},
        "verdicts": {k: combined(k) for k in METRICS},
        "minimum_detectable_effect": {
            f"{k}_vs_{b}": d.minimum_detectable_effect
            for (k, b), d in decisions.items()
        },
        "gate_ratio_by_seed": {str(s): gate_end[s] for s in SEEDS},
        "gate_bound_ratio_by_seed": {str(s): gate_bound[s] for s in SEEDS},
        "gate_pass_by_seed": {str(s): gate_pass[s] for s in SEEDS},
        "gate_threshold": GATE,
        "gate_history": {f"{a}_s{s}": g for (a, s), g in gate.items()},
        "paired_initial_weights_equal": same_init,
    }
)
claims = [
    claim(
        key,
        paper="vae-as",
        statement=statement,
        source=source,
        paper_value=paper_value,
        section="ch5-decision",
        # the paper's claim is decided only where its objective ran (every seed
        # passes the gate); otherwise the weaker objective's verdict is reported
        verdict=combined(k) if all(gate_pass.values()) else "not resolved",
        ours=(
            ""
            if all(gate_pass.values())
            else f"the paper's objective did not run (the gate failed), so not "
            f"resolved; the weaker objective that ran: {combined(k)}, "
        )
        + f"against the VAE: {decisions[(k, 'VAE')].sentence(verdict=False)}; "
        f"against the placebo: {decisions[(k, 'placebo')].sentence(verdict=False)}; "
        f"this compares {objective}",
    )
    for k, (key, statement, source) in {
        "mi_exact": (
            "vae-as/mi",
            "VAE-AS (1, 1) has more mutual information I(z; x)",
            "§2.2 and the abstract (Table 2 gives no MI for the VAE)",
        ),
        "au_clear": (
            "vae-as/au",
            "VAE-AS (1, 1) has more active units than the VAE",
            "Table 2, rows VAE and VAE-AS (1, 1); §5.3",
        ),
        "nll_test": (
            "vae-as/nll",
            "VAE-AS (1, 1) has a lower test NLL than the VAE",
            "Table 2, rows VAE and VAE-AS (1, 1); §5.3",
        ),
    }.items()
    for paper_value in [METRICS[k][3]]
]
PAPER = {
    "nll_test_vae": 100.99,
    "nll_test_vae_as": 96.32,
    "nll_test_difference": 96.32 - 100.99,
    "au_vae": 8,
    "au_vae_as": 11,
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
LONG = (
    "table",
    "per_seed",
    "decisions",
    "verdicts",
    "gate_history",
    "minimum_detectable_effect",
)
scorecard(STEM, {k: v for k, v in metrics_.items() if k not in LONG}, PAPER)

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
print({k: round(v, 3) for k, v in sorted(metrics_.items()) if isinstance(v, float)})

# %% [markdown]
# ## Conclusion
#
# - A softmax over sample indices, trained by cross-entropy, estimates $q(x\mid z)$; the paper's estimator uses the
#   entropy of its whole distribution (Eq. 9/13), a plug-in estimate, and Eq. 14 turns its log-probability of the true
#   index into the marginal divergence. Its cross-entropy gives a true lower bound on the mutual information.
# - With these estimators $\alpha = \beta = 1$ is not the ELBO: it adds
#   $\mathbb E[H(s_\omega(\cdot\mid z)) + \log s_\omega(e\mid z)]$, the classifier's mismatch, which vanishes for an
#   exact classifier (and, e.g., a uniform one), in general wherever
#   $\mathbb E H(s_\omega) = \mathbb E\,\mathrm{CE}(q, s_\omega)$ (Eq. {eq}`eq-vaeas-11`). The seed
#   comparison above measures what that term does in this run.

# %% tags=["hide-input"]
markdown(
    "- The extra term's value vanishes for an exact classifier, but its encoder "
    "gradient in general does not (Eq. {eq}`eq-vaeas-grad`): with an exact classifier "
    "that gradient is what makes VAE-AS (1, 1) train differently from the VAE. This "
    "run's classifier is not exact (the gate), so its mismatch term acts too, and the "
    "seed comparison cannot tell the two apart.\n"
    + "".join(
        f"- {METRICS[k][2]}: **{combined(k)}** over {len(SEEDS)} paired seeds "
        f"(against the VAE {decisions[(k, 'VAE')].verdict}, against the placebo "
        f"{decisions[(k, 'placebo')].verdict}; smallest detectable effect "
        f"{decisions[(k, 'VAE')].minimum_detectable_effect:.3g}).\n"
        for k in METRICS
    )
    + f"- The index classifier passed the gate on {sum(gate_pass.values())} of "
    f"{len(SEEDS)} seeds: this run compares {objective}"
    + (
        ".\n"
        if all(gate_pass.values())
        else ", so the claims ledger records the paper's claims as not resolved.\n"
    )
    + "- Against the exact aggregate posterior, Monte Carlo over $S < N$ points is "
    "capped at $\\log S$. The classifier as trained is "
    f"{abs(gap_online):.2f} nats {side(gap_online)} the exact mutual information "
    f"({near(gap_online)} 0.1·log N = {tol:.2f}); refit on the final encoder it is "
    f"{abs(gap_refit):.2f} nats {side(gap_refit)} it ({near(gap_refit)} that margin)."
)

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# ```
