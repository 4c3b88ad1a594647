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
# # 7. Semi-supervised VAEs: M2 and the MIER regulariser
#
# Chapters 4 and 5 treated the latent code $z$ of a VAE as unobserved. Here the label $y$ joins it: observed for a
# few images, a discrete latent variable for all the others. The model is M2 {cite}`kingma2014semi`, and the
# chapter follows the MIER paper (arXiv 2108.12734, the seed paper 004), which splits M2's unlabelled bound and
# finds inside it $\mathbb E_x\,\mathrm{KL}(q(y\mid x)\,\|\,p(y)) \ge I(y; x)$: a term that *penalises* the information the
# classifier carries about the input. Read through Eq. 3 instead, the same term is an entropy bonus
# $H(q(y\mid x)) - \log K$ that pushes the classifier's outputs towards uniform: one term, two readings.
# MIER adds the information back and subtracts the entropy.
#
# The chapter derives the bounds (Eqs. 1–3, and that Eq. 2 equals Eq. 3), the decomposition of Eq. 6 and Eq. 8,
# and what the regularised bound of Eq. 7 becomes when expanded; checks them numerically; sums $y$ out *exactly*
# in one batched pass; then decides, over several label draws of Fashion-MNIST at 100 labels per class, whether
# MIER raises M2's accuracy (MIER's Table 1) at the weight kept on validation and at one where M2 uses its unlabelled
# images, and whether its two terms differ; the KL warm-up is looked at, not decided. Last, M2 on MNIST with 10 labels
# per class, *as defined* (Kingma's classification weight) and *as tuned* (the weight kept on validation), against a
# supervised-only baseline, its 300-epoch curve (the `long` profile), and Pyro's own example script run beside
# `lvmcls`'s M2 by `bench/pyro_m2_side_by_side.py`. The MIER paper also regularises
# ADGM and LVAE (16 of the 24 accuracies
# of its Table 1); this book implements only M2 and does not reproduce those rows.
#
# Run it yourself: the launch menu at the top of the page (the rocket) opens this notebook on Colab;
# on a GPU runtime `profile="auto"` selects the `full` profile.

# %% [markdown]
# ## Setup

# %% tags=["hide-input"]
import importlib.util
import subprocess
import sys

# on Colab: install the book's library (torch is already there)
if importlib.util.find_spec("lvmcls") is None:
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "git+https://github.com/lvmcls/lvmcls"], check=True)

import dataclasses
import json
import math

import matplotlib.pyplot as plt
import torch
from threadpoolctl import threadpool_limits

from lvmcls import plots, registry
from lvmcls import ssvae as S
from lvmcls.data import load_dataset
from lvmcls.decisions import paired_decision
from lvmcls.long import seed_records as long_records
from lvmcls.notebook import display, figure, markdown, setup, show
from lvmcls.paths import project_root, results_dir
from lvmcls.results import describe_age, result_age
from lvmcls.notebook import scorecard
from lvmcls.train import Trainer, fit_cached, pick_device

device = pick_device()

# %% tags=["parameters"]
profile = "auto"  # "auto" | "ci" | "long" | "full" | "smoke" (or $LVMCLS_PROFILE)
seed = 0

# %% tags=["hide-input"]
# an estimate from step counts, not a measured run: about 6 ms per M2 step of the
# paper's networks at batch 200 (K = 10 classes expanded) on one H100 (the rate of the
# 2026-11-23 session's partial run), taken as 7.8 ms (x 1.3) at batch 800, where the
# decoder sees 4x the rows. Fashion-MNIST: 6 α' + 3 draws × 5 arms − 2 shared with the
# grid = 19 runs × 5 epochs × 68 steps = 6,460 steps; MNIST (one draw, M2 as defined
# and as tuned): 2 × 8 × 69 = 1,104; grey CIFAR-10: 2 × 10 × 56 = 1,120: 8,684 steps
# × 7.8 ms ≈ 68 s, plus start-up, data, two supervised baselines and evaluation ≈ 30 s:
# ≈ 1.6 min
FULL_MINUTES_H100 = 1.6
run = setup(profile, seed, device, full_minutes_h100=FULL_MINUTES_H100)
if run.profile in ("ci", "long", "smoke"):
    # one CPU thread (torch, and the BLAS under scikit-learn's probes): these small
    # networks gain little from a second thread on a quiet machine, one thread gives
    # the same numbers on any machine, and on a shared, oversubscribed CPU two threads
    # were measured 60 times slower per step (spin-waiting threads)
    torch.set_num_threads(1)
    threadpool_limits(1)
PAPER_NET = {
    "latent_dim": 50,
    "hidden": 600,
    "depth": 2,
    "classifier_hidden": 600,
}  # MIER §5.2
PYRO_NET = {  # Pyro's example (and Kingma's M2): z 50, one hidden layer of 500
    "latent_dim": 50,
    "hidden": 500,
    "depth": 1,
    "classifier_hidden": 500,
}
CI_KNOBS = {
    # ci: two CPU cores, about three minutes. Narrower networks, a subset of the
    # unlabelled images, few epochs; α' is chosen among `alphas` on the Fashion-MNIST
    # validation split. draws: the label draws of the MIER decision; warmup_draws:
    # those of the warm-up ablation.
    "net": {"latent_dim": 32, "hidden": 256, "depth": 1, "classifier_hidden": 500},
    "mnist_net": {
        "latent_dim": 32,
        "hidden": 256,
        "depth": 1,
        "classifier_hidden": 500,
    },
    "unlabelled": 6_000,
    "epochs": 4,
    "mnist_epochs": 4,
    "mnist_draws": [0],
    "lr": 2e-3,
    "mnist_lr": 2e-3,
    "alphas": [0.1, 0.3, 1.0, 3.0, 10.0, 30.0],
    "batch": 200,
    "labelled_per_batch": 20,
    "warmup_epochs": 1,
    "supervised_max_epochs": 150,
    "fashion_labels": [100],
    "draws": [0, 1, 2],
    "warmup_draws": [],
    "ablation": [(0.0, 6.0)],
    "cifar10": False,
    "max_steps": None,
    "test_limit": None,
}
KNOBS = {
    "ci": CI_KNOBS,
    # long: the ci design for one label draw (lvmcls.long runs one process per draw:
    # draw = seed), without the exploratory warm-up runs
    "long": {
        **CI_KNOBS,
        "draws": [seed],
        "warmup_draws": [],
        "mnist_draws": [seed],
        "mnist_epochs": 1,
    },
    # full: the paper's networks on one GPU, at batch 800 (80 labelled; 4x the
    # paper's 200, learning rates x sqrt(4)); 5 epochs instead of 1000 on Fashion; on
    # MNIST M2 near Pyro's example (its networks, all unlabelled images, no KL warm-up,
    # the validation-best epoch restored; Adam 4.2e-4 x 2 at the larger batch; not its
    # batching: labelled images in every batch) for 8 epochs on one label draw; 3
    # paired label draws for the decisions; no warm-up runs (exploratory: cut so that
    # the book's full profiles fit one 12-minute GPU window)
    "full": {
        "net": PAPER_NET,
        "mnist_net": PYRO_NET,
        "unlabelled": None,
        "epochs": 5,
        "mnist_epochs": 8,
        "mnist_draws": [0],
        "lr": 2e-3,
        "mnist_lr": 8.4e-4,
        "alphas": [0.1, 0.3, 1.0, 3.0, 10.0, 30.0],
        "batch": 800,
        "labelled_per_batch": 80,
        "warmup_epochs": 1,
        "supervised_max_epochs": 150,
        "fashion_labels": [100],
        "draws": [0, 1, 2],
        "warmup_draws": [],
        "ablation": [(0.0, 6.0)],
        "cifar10": True,
        "max_steps": None,
        "test_limit": None,
    },
    # smoke: the full networks for a few steps, so that the GPU path runs in CI on
    # a CPU.
    "smoke": {
        "net": PAPER_NET,
        "mnist_net": PYRO_NET,
        "unlabelled": 2_000,
        "epochs": 1,
        "mnist_epochs": 1,
        "mnist_draws": [0],
        "lr": 1e-3,
        "mnist_lr": 1e-3,
        "alphas": [0.1, 1.0],
        "batch": 200,
        "labelled_per_batch": 20,
        "warmup_epochs": 1,
        "supervised_max_epochs": 5,
        "fashion_labels": [100],
        "draws": [0, 1],
        "warmup_draws": [0, 1],
        "ablation": [(0.0, 6.0)],
        "cifar10": True,
        "max_steps": 3,
        "test_limit": 500,
    },
}[run.profile]
GAMMA, BETA = 1.0, 5.0  # the paper's γ and β (§5.2)
STEM = "07_semi_supervised_vae"
metrics_ = {}

# %% [markdown]
# ## The model
#
# **Generative story** (the paper's Figure 1a): $y \to x \leftarrow z$, the label $y$ and the continuous latent $z$
# independent a priori and both parents of the image,
#
# $$
# y \sim p(y) = \mathrm{Cat}(1/K), \qquad z \sim p(z) = \mathcal N(0, I), \qquad x \mid y, z \sim \mathrm{Bernoulli}\big(\sigma(g_\theta(y, z))\big),
# $$
#
# on grey levels $x \in [0, 1]$ (no binarisation: our reading is that the paper's Table 2 bounds are Bernoulli
# cross-entropies on grey levels; the paper says only that its NLL "is calculated from the lower bound of equation
# (2)"). **Inference model** (Figure 1b): $q_\phi(y, z\mid x) = q_\phi(y\mid x)\,q_\phi(z\mid x, y)$, a classifier $q_\phi(y\mid x)$ and a
# Gaussian encoder $q_\phi(z\mid x, y) = \mathcal N(\mu_\phi(x, y), \operatorname{diag}\sigma^2_\phi(x, y))$. The classifier is the
# part we keep: the rest of the model exists to let unlabelled images train it.
#
# **The labelled bound** (Eq. 1). Jensen's inequality on $\log p_\theta(x, y) = \log \mathbb E_{q_\phi(z\mid x,y)}\big[p_\theta(x, y, z)/q_\phi(z\mid x,y)\big]$:
#
# $$
# \log p_\theta(x, y) \ge \mathbb E_{q_\phi(z\mid x,y)}\big[\log p_\theta(x\mid y, z) + \log p(y) + \log p(z) - \log q_\phi(z\mid x, y)\big] = \mathcal L(x, y),
# \tag{1}
# $$
#
# with the gap $\mathrm{KL}\big(q_\phi(z\mid x,y)\,\|\,p_\theta(z\mid x,y)\big)$. The last two terms are $-\mathrm{KL}(q_\phi(z\mid x,y)\,\|\,p(z))$, in closed form.
#
# **The unlabelled bound, two ways.** With $y$ latent, the same step on $\log p_\theta(x) = \log\sum_y\int p_\theta(x, y, z)\,dz$ with
# $q_\phi(y, z\mid x)$ gives, splitting the log of the ratio $p_\theta(x\mid z,y)p(y)p(z)/(q_\phi(y\mid x)q_\phi(z\mid x,y))$ into three parts (appendix A),
#
# $$
# \log p_\theta(x) \ge \mathbb E_{q_\phi(y,z\mid x)}\log p_\theta(x\mid z, y) - \mathrm{KL}\big(q_\phi(y\mid x)\,\|\,p(y)\big) - \mathbb E_{q_\phi(y\mid x)}\mathrm{KL}\big(q_\phi(z\mid x,y)\,\|\,p(z)\big) = \mathcal U(x).
# \tag{2}
# $$
#
# Grouping the same integrand instead by $y$ (Kingma's derivation): the inner expectation over $z$ is $\mathcal L(x, y)$ and the
# $-\log q_\phi(y\mid x)$ left over averages to the entropy,
#
# $$
# \mathcal U(x) = \sum_y q_\phi(y\mid x)\big[\mathcal L(x, y) - \log q_\phi(y\mid x)\big] = \mathbb E_{q_\phi(y\mid x)}\mathcal L(x, y) + H\big(q_\phi(y\mid x)\big).
# \tag{3}
# $$
#
# *Eq. 2 = Eq. 3*: write $\mathcal L(x,y) = \mathbb E_{q(z\mid x,y)}\log p(x\mid y,z) + \log p(y) - \mathrm{KL}(q(z\mid x,y)\,\|\,p(z))$ in Eq. 3; then
# $\sum_y q(y\mid x)[\log p(y) - \log q(y\mid x)] = -\mathrm{KL}(q(y\mid x)\,\|\,p(y))$ and the other two terms are those of Eq. 2. The
# objective (Eq. 4) adds a classification term that only the labelled images train:
#
# $$
# J = \sum_{(x,y)\in\mathcal D_l} \mathcal L(x, y) + \sum_{x\in\mathcal D_u} \mathcal U(x) + \alpha\, \mathbb E_{\mathcal D_l}\log q_\phi(y\mid x).
# \tag{4}
# $$
#
# **Exact enumeration.** $\mathcal U$ needs $\mathcal L(x, y)$ for *every* class. `bound_terms` expands each unlabelled image over
# the $K$ classes in one batched pass, $(B, K, \cdot)$ tensors, no loop over $y$; the first layers of encoder and
# decoder act on $[x, \mathrm{onehot}(y)]$ as $W_x x + W_y[:, y]$, so $W_x x$ is computed once per image.

# %%
show(S.M2.bound_terms)

# %%
show(S.M2.unlabelled_bound)

# %% [markdown]
# Two checks on an untrained model with this chapter's sizes: the batched pass against an explicit Python loop
# over $y$ that calls the labelled bound once per class with the *same* noise, and Eq. 2 against Eq. 3 from the same
# per-class terms. (The test suite also checks, on a model with a one-dimensional $z$ where quadrature is exact,
# that $\mathcal L \le \log p(x, y)$ and $\mathcal U \le \log p(x)$ with gaps equal to the KL to the true posterior.)

# %%
with torch.no_grad():
    check_model = S.M2(x_dim=784, num_classes=10, **KNOBS["net"]).double()
    x_check = torch.rand(
        64, 784, generator=torch.Generator().manual_seed(run.seed), dtype=torch.float64
    )
    eps = torch.randn(
        64,
        10,
        KNOBS["net"]["latent_dim"],
        generator=torch.Generator().manual_seed(run.seed + 1),
        dtype=torch.float64,
    )
    batched, _ = check_model.unlabelled_bound(x_check, eps)
    looped = S.unlabelled_bound_by_loop(check_model, x_check, eps)
    t = check_model.bound_terms(x_check, eps)
    eq3 = S.unlabelled_bound_eq3(
        t["log_lik"] + check_model.log_prior - t["kl_z"], t["log_q"]
    )
    eq2 = S.unlabelled_bound_eq2(
        t["log_lik"], t["kl_z"], t["log_q"], check_model.log_prior
    )
metrics_["enumeration_vs_loop_max_abs"] = (batched - looped).abs().max().item()
metrics_["eq2_vs_eq3_max_abs"] = (eq2 - eq3).abs().max().item()
print(
    f"batched vs loop: max |difference| {metrics_['enumeration_vs_loop_max_abs']:.2e} "
    "nats "
    f"(bounds around {batched.mean():.1f}); Eq. 2 vs Eq. 3: "
    f"{metrics_['eq2_vs_eq3_max_abs']:.2e}"
)

# %% [markdown]
# `bench/ssvae_enumeration.py` times the two: one batched pass against the loop, forward and backward.
#
# ## What the unlabelled bound penalises (Eqs. 6 and 8)
#
# Average the KL term of Eq. 2 over the data $q(x)$ and let $q_\phi(y) = \mathbb E_{q(x)}q_\phi(y\mid x)$ be the aggregate
# classifier, $q_\phi(y, x) = q_\phi(y\mid x)q(x)$. Multiply and divide by $q_\phi(y)$ inside the log (appendix B):
#
# $$
# \mathbb E_{q(x)}\mathrm{KL}\big(q_\phi(y\mid x)\,\|\,p(y)\big)
# = \mathbb E_{q(x)}\sum_y q_\phi(y\mid x)\Big[\log\frac{q_\phi(y\mid x)}{q_\phi(y)} + \log\frac{q_\phi(y)}{p(y)}\Big]
# = I_\phi(y; x) + \mathrm{KL}\big(q_\phi(y)\,\|\,p(y)\big) \;\ge\; I_\phi(y; x),
# \tag{6}
# $$
#
# because $\mathbb E_{q(x)} q_\phi(y\mid x) = q_\phi(y)$ turns the second sum into a KL, which is non-negative, and the first is the
# mutual information of $q_\phi(y, x)$. Maximising $\mathcal U$ therefore *lowers* the information the classifier carries about
# the input, unless the reconstruction term pays for it. Writing $\log q(y\mid x)/q(y) = \log q(y\mid x) - \log q(y)$ (appendix C):
#
# $$
# I_\phi(y; x) = H\big(q_\phi(y)\big) - \mathbb E_{q(x)} H\big(q_\phi(y\mid x)\big),
# \tag{8}
# $$
#
# computed on a batch with $q_\phi(y)$ the batch average; $I \le \log K$ since $H(q(y)) \le \log K$ and a conditional entropy
# is non-negative, and $I \ge 0$ since $H$ is concave, so $H(\mathbb E_{q(x)} q_\phi(y\mid x)) \ge \mathbb E_{q(x)} H(q_\phi(y\mid x))$ (or: $I$ is a KL). `label_information` computes every term; below, on random logits, Eq. 6 closes exactly.

# %%
show(S.label_information)

# %%
g = torch.Generator().manual_seed(run.seed)
logits = 2 * torch.randn(500, 10, generator=g, dtype=torch.float64)
log_prior = torch.log_softmax(torch.randn(10, generator=g, dtype=torch.float64), 0)
info = S.label_information(torch.log_softmax(logits, 1), log_prior)
metrics_["eq6_max_abs"] = abs(
    (info["mean_kl"] - info["mi"] - info["kl_marginal"]).item()
)
print(
    f"E KL(q(y|x) ‖ p(y)) = {info['mean_kl']:.4f}; I + KL(q(y) ‖ p(y)) = "
    f"{info['mi']:.4f} + "
    f"{info['kl_marginal']:.4f}; gap {metrics_['eq6_max_abs']:.1e}; 0 ≤ I ≤ log K = "
    f"{math.log(10):.3f}"
)

# %% [markdown]
# ## MIER: the regularised bound (Eq. 7) and what it expands to
#
# $$
# \mathcal M(x) = \mathcal U(x) + \gamma\, I_\phi(y; x) - \beta\, H\big(q_\phi(y\mid x)\big), \qquad \gamma, \beta \ge 0,
# \tag{7}
# $$
#
# and the objective is $J$ with $\mathcal M$ in place of $\mathcal U$,
#
# $$
# J_2 = \sum_{(x,y)\in\mathcal D_l} \mathcal L(x, y) + \sum_{x\in\mathcal D_u} \mathcal M(x) + \alpha\, \mathbb E_{\mathcal D_l}\log q_\phi(y\mid x);
# \tag{9}
# $$
#
# $\gamma = \beta = 0$ is M2. Averaging over a batch and using Eq. 3 and Eq. 8,
#
# $$
# \overline{\mathcal M} = \overline{\mathbb E_{q(y\mid x)}\mathcal L(x, y)} + (1 - \gamma - \beta)\,\overline{H\big(q_\phi(y\mid x)\big)} + \gamma\, H\big(q_\phi(y)\big):
# $$
#
# M2's entropy *bonus* (coefficient $+1$) becomes, at the paper's $(\gamma, \beta) = (1, 5)$, a per-example entropy *penalty*
# with coefficient $-5$ (entropy minimisation), and a new term, the entropy of the batch's average prediction
# $+1\cdot H(q_\phi(y))$, which rewards using all classes. The ablation below trains $(\gamma, \beta) = (0, 6)$: the same per-example
# coefficient $-5$ without the marginal term, to see which of the two does the work.
#
# **The weight of the classification term.** The loss of a step is an unbiased estimate of $-J/N$ ($N$ all training
# images) whatever the batch holds:
# $-\big[\tfrac{N_l}{N}\,\overline{\mathcal L} + \tfrac{N_u}{N}\,\overline{\mathcal M} + \alpha'\,\overline{\log q(y\mid x)}_l\big]$, so Kingma's $\alpha = 0.1\,N$ in $J$ is
# $\alpha' = 0.1$ here, a weight per labelled example of $\alpha' N/N_l$ times its bound (50 at 100 labels among 50,000
# images; the default multiplier 46 of Pyro's example script is $\alpha' = 0.092$). The weight per labelled example
# depends on how many unlabelled images a run uses, so the page prints both numbers for every run. With a few epochs
# (Kingma's paper does not state its training length) we do not assume that Kingma's value carries over: the chapter trains M2 on Fashion-MNIST (label draw 0) with
# each $\alpha'$ in `KNOBS["alphas"]`, which always holds Kingma's 0.1 and 1, keeps the one with the highest accuracy on
# the 10,000 Fashion-MNIST *validation* images (held out of the training images; `lvmcls.data` splits them off), and
# uses that $\alpha'$ for every other run. Every $\alpha'$ of the grid is reported, kept or not. The test sets are touched
# only for the reported numbers. A large weight makes M2 mostly a supervised classifier helped by the generative
# term, which differs in kind from Kingma's and Pyro's balance; so the MNIST section runs both: M2 *as defined*
# ($\alpha' = 0.1$) and M2 *as tuned* (the kept $\alpha'$).

# %%
show(S.M2.training_step)

# %% [markdown]
# ## Semi-supervised batches
#
# `SemiSupervisedSplit` stores the labelled rows first and the unlabelled rows with $y = -1$. An epoch visits every
# unlabelled image once, in an order fixed by the trainer's seeded generator; every batch (200; `full`: 800) also carries
# `labelled_per_batch` labelled images, cycled through the labelled set in balanced rounds (each run of $K$
# consecutive labelled rows holds one image per class). The labelled draw is class-balanced and fixed by a seed
# (`lvmcls.data.labelled_unlabelled`); the rest of the training images are unlabelled. The loss weights above do not
# depend on how often the labelled rows are revisited, only its variance does.


# %% tags=["hide-input"]
def with_test_limit(data):
    """The smoke profile evaluates on ``test_limit`` test images drawn at random (some
    test sets are sorted by class)."""
    if KNOBS["test_limit"] is None:
        return data
    keep = torch.randperm(
        len(data.test), generator=torch.Generator().manual_seed(run.seed)
    )[: KNOBS["test_limit"]]
    return dataclasses.replace(data, test=data.test.subset(keep.to(data.test.device)))


mnist = with_test_limit(load_dataset("mnist", device=run.device))
fashion = with_test_limit(load_dataset("fashion_mnist", device=run.device))


def semi_supervised(data, labels_per_class, draw):
    """The labelled draw ``draw`` and, in ci, a fixed subset of the unlabelled
    images."""
    split = S.SemiSupervisedSplit.draw(
        data.train, labels_per_class, KNOBS["labelled_per_batch"], seed=draw
    )
    n_keep = KNOBS["unlabelled"]
    if n_keep is not None and n_keep < len(split) - split.n_labelled:
        keep = torch.randperm(
            len(split) - split.n_labelled, generator=torch.Generator().manual_seed(draw)
        )[:n_keep]
        split = S.SemiSupervisedSplit(
            split.labelled,
            split.x[split.n_labelled + keep.to(split.device)],
            KNOBS["labelled_per_batch"],
        )
    return dataclasses.replace(data, train=split, val=None)


mnist_10 = semi_supervised(mnist, 10, draw=run.seed)
x_batch, y_batch = next(
    mnist_10.train.batches(
        KNOBS["batch"], shuffle=True, generator=torch.Generator().manual_seed(0)
    )
)
print(
    mnist_10.train,
    f"; first batch: {int((y_batch >= 0).sum())} labelled "
    f"(classes {sorted(y_batch[y_batch >= 0].tolist())[:10]}...), "
    f"{int((y_batch < 0).sum())} unlabelled",
)

# %% [markdown]
# ## Training
#
# One `Trainer` configuration for every M2 run: Adam, batch 200 (`full`: 800), the last epoch kept (the paper's model-selection
# split is not stated). Run $d$ uses label draw $d$ and trainer seed $d$ (offset by the chapter's seed), so that all
# arms of one draw start from the same initial weights and see the same batches: they are *paired by draw*. The
# KL$(q(z\mid x,y)\,\|\,p(z))$ terms are warmed up linearly over the first `warmup_epochs` (MIER uses warm-up without
# giving the schedule; neither Kingma nor Pyro uses one, and a section below ablates it; the MNIST runs, which follow
# Kingma and Pyro, train without it). The learning rate (higher
# than the paper's 3e-4, to learn something in a few epochs), the number of epochs and the unlabelled subset of the
# `ci` profile were set by the CPU budget and a handful of exploratory runs scored on *validation* accuracy; no knob
# was chosen on a test set. The supervised-only baseline is the classifier network of the M2 it is compared with (on
# MNIST, that of `KNOBS["mnist_net"]`), trained by cross-entropy on the labelled images alone (Adam 1e-3, batches
# of 25), stopped early on the validation error (checked every 5
# epochs, patience 25 epochs, best weights restored).


# %% tags=["hide-input"]
def m2_builder(data, alpha, gamma=0.0, beta=0.0, warmup=True, net=None):
    split, x_dim = data.train, data.train.x[0].numel()
    steps_per_epoch = math.ceil(
        (len(split) - split.n_labelled) / (KNOBS["batch"] - KNOBS["labelled_per_batch"])
    )
    return lambda: S.M2(
        x_dim=x_dim,
        num_classes=data.num_classes,
        **(net or KNOBS["net"]),
        labelled_fraction=split.labelled_fraction,
        alpha=alpha,
        gamma=gamma,
        beta=beta,
        warmup_steps=KNOBS["warmup_epochs"] * steps_per_epoch if warmup else 0,
    )


def m2_trainer(draw, epochs=None, lr=None, select_on_val=False):
    """Trainer seed = label draw: the arms of one draw are paired (same initial
    weights, same batches). ``select_on_val``: restore the epoch with the best
    validation error (the full profile's faithful MNIST runs)."""
    return Trainer(
        max_epochs=epochs or KNOBS["epochs"],
        max_steps=KNOBS["max_steps"],
        batch_size=KNOBS["batch"],
        lr=lr or KNOBS["lr"],
        device=run.device,
        seed=100 * run.seed + draw,
        **({"monitor": "error", "patience": 10**6} if select_on_val else {}),
    )


def fit_m2(tag, data, draw, alpha, gamma=0.0, beta=0.0, warmup=True, **kw):
    net = kw.pop("net", None)
    name = f"ch7-{tag}-draw{draw}-a{alpha:g}-g{gamma:g}-b{beta:g}"
    return fit_cached(
        name + ("" if warmup else "-nowarmup"),
        m2_builder(data, alpha, gamma, beta, warmup, net),
        data,
        m2_trainer(draw, **kw),
    )


supervised_trainer = Trainer(
    max_epochs=KNOBS["supervised_max_epochs"],
    batch_size=25,
    lr=1e-3,
    device=run.device,
    seed=run.seed,
    monitor="error",
    val_every=5,
    patience=25,
)


def supervised_only(data, val, net):
    """The classifier of the M2 built with ``net`` alone on the labelled images,
    early-stopped on the validation split ``val``."""
    labelled = dataclasses.replace(data, train=data.train.labelled, val=val)
    return fit_cached(
        f"ch7-supervised-{data.name}",
        lambda: S.SupervisedClassifier(
            data.train.x[0].numel(), data.num_classes, net["classifier_hidden"]
        ),
        labelled,
        supervised_trainer,
    )


# %% [markdown]
# (ch7-question)=
# ## The questions, fixed before the results
#
# Fashion-MNIST, 100 labels per class, the label draws `KNOBS["draws"]` (printed below), every arm paired by draw
# (same labels, same initial weights, same batches). Metric: accuracy on the 10,000 Fashion-MNIST test images. The
# questions and their rules are the book's registry entries (`lvmcls/registry/ssvae.toml`), written before these
# runs and decided through `lvmcls.registry.decide` (the code path the `long` profile's merge also uses):
#
# 1. **MIER raises M2's accuracy** (MIER Table 1, Fashion-MNIST: 78.84 → 80.23 %, +1.39 points), M2+MIER
#    $(\gamma, \beta) = (1, 5)$ against M2 $(0, 0)$, at **two** classification weights, both primaries (Holm over the
#    two): the $\alpha'$ kept on validation (`mier/acc`), and **the smallest $\alpha'$ of the grid at which M2 beats
#    the supervised-only classifier on validation** (`mier/acc-unlabelled`; label draw 0's M2 against the
#    supervised-only classifier trained on the same labels, early-stopped on the same validation images), an
#    $\alpha'$ at which M2 demonstrably uses its unlabelled images. The paper (§6.4) expects MIER to act least where
#    the labelled term dominates, so the second asks where MIER can act. Where the two rules pick the same $\alpha'$,
#    the two claims are decided on the same runs, and the page says so.
# 2. **The information term against the entropy penalty alone** (secondary, parity, `mier/entropy`): $(1, 5)$
#    against $(0, 6)$, both with the per-example entropy coefficient $1 - \gamma - \beta = -5$; only $(1, 5)$ has the
#    marginal term $+H(q(y))$ of Eq. 7's $\gamma I$. On balanced data $q(y)$ is near uniform, so the marginal term
#    has little to act on; the question is whether the two reach the same accuracy within ±0.7 points (half the
#    paper's gain). That MIER lowers the classifier's entropy is *not* a question: the objective subtracts
#    $5\,\overline{H}$.
#
# Verdicts (`lvmcls.decisions`): a t-interval on the per-draw differences ($n - 1$ degrees of freedom); *supported*
# when it lies wholly above 0, *contradicted* when wholly below, *smaller than the paper's effect* when it excludes
# +1.39 points on the paper's side, else *not resolved*; the parity claim is supported when the interval lies inside
# ±0.7 points. The KL warm-up comparison further down is exploratory, outside the registry's families.
#
# Two choices lean, mildly, towards M2 in `mier/acc`: $\alpha'$ is chosen for M2 alone (M2+MIER runs at M2's best
# $\alpha'$), and the first draw's M2 (in `long`, every draw's) is the very run the grid selected on validation. A
# gain for MIER has a slightly higher bar to clear than the interval shows.

# %% tags=["hide-input"]
markdown(registry.design_table(STEM, scale={"accuracy": 100}))

# %% tags=["hide-input"]
d0 = KNOBS["draws"][0]
fashion_splits = {d: semi_supervised(fashion, 100, d) for d in KNOBS["draws"]}
print(
    f"label draws {KNOBS['draws']} (warm-up ablation: {KNOBS['warmup_draws']}); "
    f"each: {fashion_splits[d0].train}; {KNOBS['epochs']} epochs"
)

# %% [markdown]
# ## The classification weight α', chosen on Fashion-MNIST validation
#
# Label draw 0, M2 with each $\alpha'$ of the grid; kept: the best accuracy on the 10,000 validation images. The test
# accuracy of every grid point is reported too (it chose nothing). Beside it, the supervised-only classifier on the
# same 1,000 labels (M2's classifier network, cross-entropy alone, early-stopped on the same validation images, which
# flatters it on validation): the smallest $\alpha'$ at which M2's validation accuracy exceeds it is the second
# primary's $\alpha'$.

# %% tags=["hide-input"]
# every process chooses α' (both rules) on its own first draw's validation runs: a long
# process holds one draw, so each long draw chooses its own (its record keeps it)
ALPHA_GRID = KNOBS["alphas"]
alpha_runs = {a: fit_m2("fashion-100pc", fashion_splits[d0], d0, a) for a in ALPHA_GRID}
alpha_val = {
    a: S.evaluate_classifier(model, fashion.val)["accuracy"]
    for a, (model, _) in alpha_runs.items()
}
alpha_test = {
    a: S.evaluate_classifier(model, fashion.test)["accuracy"]
    for a, (model, _) in alpha_runs.items()
}
ALPHA = max(alpha_val, key=alpha_val.get)
sup_fashion, _ = supervised_only(fashion_splits[d0], fashion.val, KNOBS["net"])
sup_fashion_val = S.evaluate_classifier(sup_fashion, fashion.val)["accuracy"]
sup_fashion_test = S.evaluate_classifier(sup_fashion, fashion.test)["accuracy"]
beats_sup = [a for a in ALPHA_GRID if alpha_val[a] > sup_fashion_val]
ALPHA_SMALL = min(beats_sup) if beats_sup else None
metrics_["val_acc_supervised_only_fashion_100"] = sup_fashion_val
metrics_["test_acc_supervised_only_fashion_100"] = sup_fashion_test
metrics_["alpha_small"] = ALPHA_SMALL
frac_fashion = fashion_splits[d0].train.labelled_fraction
metrics_["alpha_chosen"] = ALPHA
metrics_["alpha_grid"] = list(ALPHA_GRID)
edge = (
    "largest"
    if ALPHA == max(alpha_val)
    else "smallest"
    if ALPHA == min(alpha_val)
    else ""
)
metrics_["alpha_at_grid_edge"] = bool(edge)
metrics_.update({f"val_acc_m2_fashion_alpha{a:g}": v for a, v in alpha_val.items()})
metrics_.update({f"test_acc_m2_fashion_alpha{a:g}": v for a, v in alpha_test.items()})
metrics_["acc_m2_fashion_100_kingma_alpha"] = alpha_test.get(0.1)
rows = [
    "| α' | weight per labelled example (× its bound) | validation accuracy | "
    "test accuracy |",
    "|---|---|---|---|",
]
rows += [
    f"| {a:g}{' (kept)' if a == ALPHA else ''}{' (Kingma)' if a == 0.1 else ''} | "
    f"{a / frac_fashion:,.1f} | {alpha_val[a]:.4f} | {alpha_test[a]:.4f} |"
    for a in ALPHA_GRID
]
rows.append(
    f"| supervised only (no unlabelled images) | – | {sup_fashion_val:.4f} | "
    f"{sup_fashion_test:.4f} |"
)
markdown(
    "\n".join(rows)
    + "\n\n"
    + (
        f"M2 beats the supervised-only classifier on validation at α' ∈ "
        f"{[float(a) for a in beats_sup]}; the smallest, α' = {ALPHA_SMALL:g}, is the "
        "second primary's"
        + (
            ", the same as the kept α': the two primaries are decided on the same "
            "runs. "
            if ALPHA_SMALL == ALPHA
            else ". "
        )
        if beats_sup
        else "M2 beats the supervised-only classifier on validation at no α' of the "
        "grid: the second primary cannot run in this profile. "
    )
    + f"Kept: α' = {ALPHA:g}, a weight of "
    f"{ALPHA / frac_fashion:,.1f} per labelled example on this training set "
    f"({fashion_splits[d0].train.n_labelled:,} labelled among "
    f"{len(fashion_splits[d0].train):,} images). For comparison, Kingma's "
    "α' = 0.1 is a weight of 50 per labelled example at 100 labels among 50,000 "
    "MNIST images, and Pyro's example script's default multiplier 46 is on the same "
    "scale (α' = 0.092; its tutorial does not state the value behind its 93.19 %); "
    "on this training "
    f"set α' = 0.1 weighs {0.1 / frac_fashion:,.1f}. "
    + (
        f"The kept α' is the {edge} value of the grid, so the grid does not bracket "
        "the best α' on validation: a value beyond it was not tried and might do "
        "better."
        if edge
        else "The kept α' lies inside the grid, with a grid point on either side."
    )
)

# %% [markdown]
# (ch7-mier)=
# ## Does MIER raise M2's accuracy? (question 1)
#
# Every draw trains M2, M2+MIER and the entropy-only arm $(0, 6)$ at the kept $\alpha'$, and M2 and M2+MIER at the
# second primary's $\alpha'$ (when it differs); the table holds the test accuracy, the mean test entropy
# $\overline{H(q(y\mid x))}$ (nats) and $\hat I(y; x)$ of Eq. 8 over the whole test set.

# %% tags=["hide-input"]
M2_SET, MIER_SET = (0.0, 0.0), (GAMMA, BETA)
ENTROPY_ONLY = KNOBS["ablation"][0]
ARMS = {"M2": M2_SET, "M2+MIER": MIER_SET, "entropy only": ENTROPY_ONLY}
# registry arm -> (α', (γ, β))
REGISTRY_ARMS = {"m2": (ALPHA, M2_SET), "mier": (ALPHA, MIER_SET)}
REGISTRY_ARMS["entropy_only"] = (ALPHA, ENTROPY_ONLY)
if ALPHA_SMALL is not None:
    REGISTRY_ARMS["m2_small_alpha"] = (ALPHA_SMALL, M2_SET)
    REGISTRY_ARMS["mier_small_alpha"] = (ALPHA_SMALL, MIER_SET)
fashion_runs = {
    (d, a, setting): fit_m2("fashion-100pc", fashion_splits[d], d, a, *setting)
    for d in KNOBS["draws"]
    for a, setting in dict.fromkeys(REGISTRY_ARMS.values())
}
fashion_eval = {
    key: S.evaluate_classifier(model, fashion.test)
    for key, (model, _) in fashion_runs.items()
}


def per_draw(setting, key="accuracy", draws=None, alpha=None):
    a = ALPHA if alpha is None else alpha
    return [fashion_eval[d, a, setting][key] for d in draws or KNOBS["draws"]]


per_seed = {
    arm: {"accuracy": per_draw(setting, alpha=a)}
    for arm, (a, setting) in REGISTRY_ARMS.items()
}
rows = [
    "| draw | α' | " + " | ".join(f"{n}: accuracy | entropy | Î" for n in ARMS) + " |",
    "|---|---|" + "---|---|---|" * len(ARMS),
]
for d in KNOBS["draws"]:
    for a in dict.fromkeys(x for x in (ALPHA, ALPHA_SMALL) if x is not None):
        cells = [
            f"{fashion_eval[d, a, st]['accuracy']:.4f} | "
            f"{fashion_eval[d, a, st]['entropy']:.4f} | "
            f"{fashion_eval[d, a, st]['mi']:.3f}"
            if (d, a, st) in fashion_eval
            else "– | – | –"
            for st in ARMS.values()
        ]
        rows.append(f"| {d} | {a:g} | " + " | ".join(cells) + " |")
markdown("\n".join(rows))

# %% tags=["hide-input"]
for name, setting in [
    ("m2", M2_SET),
    ("mier", MIER_SET),
    ("entropy_only", ENTROPY_ONLY),
]:
    for key in ("accuracy", "entropy", "mi"):
        metrics_[f"{key}_{name}_fashion_100_per_draw"] = per_draw(setting, key)
    metrics_[f"acc_{name}_fashion_100"] = sum(per_draw(setting)) / len(KNOBS["draws"])
    metrics_[f"entropy_{name}_fashion"] = sum(per_draw(setting, "entropy")) / len(
        KNOBS["draws"]
    )
    metrics_[f"mi_{name}_fashion"] = sum(per_draw(setting, "mi")) / len(KNOBS["draws"])
if ALPHA_SMALL is not None:
    for name, setting in [("m2", M2_SET), ("mier", MIER_SET)]:
        metrics_[f"accuracy_{name}_small_alpha_fashion_100_per_draw"] = per_draw(
            setting, alpha=ALPHA_SMALL
        )
metrics_["acc_m2_fashion_100_tuned"] = metrics_["acc_m2_fashion_100"]
metrics_["mier_gain_fashion_100"] = (
    metrics_["acc_mier_fashion_100"] - metrics_["acc_m2_fashion_100"]
)
if len(KNOBS["draws"]) >= 2:
    decided = registry.decide(STEM, per_seed)
    # mier/acc-unlabelled's row is written below when its α' does not exist
    claims = registry.claim_rows(
        STEM, decided, skip=() if ALPHA_SMALL is not None else ("mier/acc-unlabelled",)
    )
    metrics_["decisions"] = {
        key: [d.to_dict() for d in made["decisions"]] for key, made in decided.items()
    }
    lines = []
    for key, made in decided.items():
        d = made["decisions"][0]
        lines.append(
            f"- `{key}` ({made['claim']['candidate']} − {made['claim']['baseline']}, "
            f"{made['claim']['family']}, level {made['level']:.3g}): "
            f"**{made['verdict']}**: {d.sentence(verdict=False)}. In points: "
            f"{100 * d.mean_difference:+.2f} "
            f"[{100 * d.interval[0]:+.2f}, {100 * d.interval[1]:+.2f}]"
            + (
                f", smallest detectable effect {100 * d.minimum_detectable_effect:.2f}"
                " points against the paper's +1.39 (one number per setting, the paper "
                "does not say how many runs or draws)."
                if made["claim"]["kind"] == "difference"
                else "."
            )
        )
    if ALPHA_SMALL is None:
        claims.append(
            registry.check_row(
                "mier/acc-unlabelled",
                verdict="not run: M2 beat the supervised-only classifier on "
                "validation at no α' of the grid",
                ours=f"grid {list(ALPHA_GRID)}, M2 validation accuracies "
                + ", ".join(f"{alpha_val[a]:.4f}" for a in ALPHA_GRID)
                + f" against the supervised-only {sup_fashion_val:.4f} (draw {d0})",
            )
        )
        lines.append(f"- `mier/acc-unlabelled`: {claims[-1]['verdict']}.")
    display(markdown("\n".join(lines)))
else:
    decided, claims = {}, []
    print(
        f"profile {run.profile}: one label draw ({KNOBS['draws']}); lvmcls.long "
        "merges the draws"
    )

# %% [markdown]
# The `long` profile runs this design (the `ci` networks and unlabelled subset) one label draw per process, with the
# draws the registry asks for (from this `ci` run's paired SD, the pilot). Each process runs the whole $\alpha'$ grid
# on its own draw and chooses $\alpha'$ (both rules) on that draw's validation images, so in `long` each draw's
# $\alpha'$ is its own (in this `ci` run, the later draws reuse draw 0's). Its verdicts, as committed, and the
# $\alpha'$ its draws chose:

# %% tags=["hide-input"]
long_path = results_dir() / "long" / f"{STEM}.json"
long_summary = None
planned_seeds = max(
    (c["long"].get("seeds") or 0 for c in registry.claims_of(STEM) if "long" in c),
    default=0,
)
if long_path.is_file():
    long_record = json.loads(long_path.read_text())
    long_draws = [
        r["metrics"]
        for r in long_records(STEM)
        if r["seeds"][0] in long_record["seeds"]
    ]
    chosen = sorted({m["alpha_chosen"] for m in long_draws})
    at_edge = sum(
        m["alpha_chosen"] in (min(m["alpha_grid"]), max(m["alpha_grid"]))
        for m in long_draws
    )
    no_small = sum(m["alpha_small"] is None for m in long_draws)
    reasons = {}
    if long_draws and no_small == len(long_draws):
        reasons["mier/acc-unlabelled"] = (
            f"not run: in all {no_small} draws M2 beat the supervised-only "
            "classifier on validation at no α' of the grid, so the α' this claim "
            "needs does not exist (its arms were never trained)"
        )
    display(
        markdown(
            f"`long`, {len(long_record['seeds'])} of the {planned_seeds} label draws "
            "the registry plans "
            f"({describe_age(result_age(long_record, STEM))}):\n\n"
            + "\n".join(
                f"- `{r['key']}`: **{reasons.get(r['key'], r['verdict'])}**"
                + ("" if r["key"] in reasons else f": {r['ours']}")
                for r in long_record["claims"]
            )
            + "\n\nThe α' each draw kept on its validation images: "
            + ", ".join(
                f"{a:g} in {sum(m['alpha_chosen'] == a for m in long_draws)}"
                for a in chosen
            )
            + f" of {len(long_draws)} draws; M2 and M2+MIER of one draw share it. "
            + (
                f"In {at_edge} draws the kept α' is an end of the grid "
                f"({min(KNOBS['alphas']):g} or {max(KNOBS['alphas']):g}): there the "
                "grid does not bracket the choice."
                if at_edge
                else "Every draw's choice lies inside the grid."
            )
        )
    )
    long_summary = f"{len(long_record['seeds'])} label draws: " + "; ".join(
        f"`{r['key']}` {reasons.get(r['key'], r['verdict'])}"
        for r in long_record["claims"]
    )
else:
    display(
        markdown(
            "`long` has not run for this chapter yet (`make long CHAPTERS=07`): the "
            "verdicts above are the `ci` pilot's."
        )
    )

# %% [markdown]
# (ch7-ablation)=
# ## Which part of Eq. 7 does the work? (question 2)
#
# The same draws, $(1, 5)$ against $(0, 6)$, decided above as a parity claim (`mier/entropy`). The test entropy is
# reported, not decided: both arms subtract $5\,\overline{H}$ in their objective (MIER's Table 2 entropies, 0.0439
# → 0.0211 on Fashion-MNIST, are what that term optimises; the paper gives no log base, and we read them as nats).

# %% tags=["hide-input"]
mean_ = {
    n: (
        metrics_[f"entropy_{k}_fashion"],
        metrics_[f"mi_{k}_fashion"],
    )
    for n, k in [("M2", "m2"), ("M2+MIER", "mier"), ("(0, 6)", "entropy_only")]
}
term_verdict = (
    decided["mier/entropy"]["verdict"] if "mier/entropy" in decided else "not decided"
)
markdown(
    f"`mier/entropy`: **{term_verdict}**. Mean test entropy "
    "and Î over the draws: "
    + "; ".join(f"{n} {h:.4f} / {i:.3f}" for n, (h, i) in mean_.items())
    + " nats (log K = 2.303). "
    + (
        "Both regularised arms end with a lower mean entropy than M2, as their "
        "objective asks. "
        if max(mean_["M2+MIER"][0], mean_["(0, 6)"][0]) < mean_["M2"][0]
        else "Not both regularised arms end with a lower mean entropy than M2, "
        "although their objective asks for it (worth a look at the training). "
    )
    + "Our M2's test "
    f"entropy is {metrics_['entropy_m2_fashion'] / 0.0439:.0f}× the paper's 0.0439 "
    "(a few epochs against 1000; the paper gives no log base for its entropies, and "
    "we assume nats)."
)

# %% [markdown]
# (ch7-warmup)=
# ## The KL warm-up (exploratory)
#
# M2 at the kept $\alpha'$ with the warm-up of every other run of this chapter, against M2 with the KL weight 1 from
# the first step (as Kingma and Pyro train it), same draws and seeds. Not a registered claim: a plain 95 % interval,
# reported, not decided (the `long` profile does not run it).

# %% tags=["hide-input"]
if KNOBS["warmup_draws"]:
    no_warmup = {
        d: fit_m2("fashion-100pc", fashion_splits[d], d, ALPHA, warmup=False)
        for d in KNOBS["warmup_draws"]
    }
    acc_no_warmup = [
        S.evaluate_classifier(no_warmup[d][0], fashion.test)["accuracy"]
        for d in KNOBS["warmup_draws"]
    ]
    dec_warmup = paired_decision(
        per_draw(M2_SET, draws=KNOBS["warmup_draws"]),
        acc_no_warmup,
        direction="higher",
        what="Fashion-MNIST test accuracy of M2, 100 labels per class",
        names=("with warm-up", "without"),
        unit="paired label draws",
    )
    metrics_["acc_m2_fashion_100_no_warmup_per_draw"] = acc_no_warmup
    metrics_["warmup_interval"] = dec_warmup.to_dict()
    display(
        markdown(
            f"With warm-up − without: {100 * dec_warmup.mean_difference:+.2f} points, "
            f"95 % interval [{100 * dec_warmup.interval[0]:+.2f}, "
            f"{100 * dec_warmup.interval[1]:+.2f}] over {dec_warmup.n} draws."
        )
    )

# %% [markdown]
# ### The bound against the Bernoulli floor (draw 0)
#
# The unlabelled bound $\mathcal U$ of Eq. 2 (Bernoulli, grey levels, one $z$ per $(x, y)$) of M2 and M2+MIER on the
# test images, and the Bernoulli floor $-\overline{\sum_{\text{pixels}} H_b(x)}$ above which no Bernoulli bound on these
# images can go. The paper does not state its likelihood; that its Table 2 bounds are Bernoulli cross-entropies on grey
# levels is our inference (its −248.18 sits below the grey-level floor, as such a bound must), so this comparison is
# indicative only.

# %% tags=["hide-input"]
floor_fashion = S.bernoulli_floor(fashion.test.x)
metrics_["bernoulli_floor_fashion"] = floor_fashion
for name, setting in [("m2", M2_SET), ("mier", MIER_SET)]:
    metrics_[f"bound_{name}_fashion"] = S.evaluate_classifier(
        fashion_runs[d0, ALPHA, setting][0], fashion.test, bound=True, seed=run.seed
    )["bound"]
m = metrics_
markdown(
    f"Bound {m['bound_m2_fashion']:.2f} (M2) and {m['bound_mier_fashion']:.2f} "
    "(M2+MIER) nats (paper −248.18 → −247.95), against a Bernoulli floor of "
    f"{-floor_fashion:.2f}: our bounds sit "
    f"{-(m['bound_m2_fashion'] + floor_fashion):.1f} and "
    f"{-(m['bound_mier_fashion'] + floor_fashion):.1f} nats below what any Bernoulli "
    "decoder could reach (the paper's M2 bound, against this test set's floor: "
    f"{248.18 - floor_fashion:.1f})."
)

# %% [markdown]
# ### Information and entropy over training
#
# The paper's reading of Eq. 6 is that maximising M2's bound lowers $I(y; x)$ and raises the classifier's entropy.
# The trainer logs both ({numref}`fig-ch7-information`), averaged per epoch over the batches' unlabelled rows ($\hat I$
# on a batch of 180 is biased low). These curves describe the first few epochs of learning from an untrained
# classifier, not the late phase of a 1000-epoch run that the paper describes; they decide nothing.

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
for name, setting in ARMS.items():
    hist = fashion_runs[d0, ALPHA, setting][1]["history"]["train"]
    epochs_ = range(1, len(hist["mi"]) + 1)
    axes[0].plot(epochs_, hist["mi"], marker="o", label=name)
    axes[1].plot(epochs_, hist["entropy"], marker="o", label=name)
axes[0].set(
    xlabel="epoch", ylabel="Î(y; x) on batches (nats)", title="mutual information"
)
axes[1].set(xlabel="epoch", ylabel="mean H(q(y|x)) (nats)", title="classifier entropy")
axes[0].legend(frameon=False)
with torch.no_grad():
    x_show = fashion.test.x[:10]
    recon = []
    for setting in (M2_SET, MIER_SET):
        m_ = fashion_runs[d0, ALPHA, setting][0]
        y_hat = m_.classify(x_show).argmax(1)
        recon.append(torch.sigmoid(m_.decode(m_.encode(x_show, y_hat)[0], y_hat)))
plots.image_grid(
    axes[2],
    torch.cat([x_show.flatten(1), *recon]).cpu(),
    ncol=10,
    title="test images; M2; M2+MIER reconstructions",
)
fig.tight_layout()
figure(
    fig,
    "fig-ch7-information",
    "Fashion-MNIST, 100 labels per class, label draw 0. Left: the mutual information "
    "$\\hat I(y; x)$ of the classifier on the unlabelled rows of each batch (nats), "
    "mean per epoch, for M2, M2+MIER and the entropy-only arm (0, 6). Middle: the "
    "mean entropy $H(q(y\\mid x))$ of the classifier (nats) on the same rows. Right: "
    "ten test images (top), their M2 reconstructions and their M2+MIER "
    "reconstructions at the predicted label.",
)

# %% [markdown]
# (ch7-m2)=
# ## M2 as defined and M2 as tuned, on MNIST with 10 labels per class
#
# Kingma et al. report 11.97 ± 1.71 % error (about 88 %) with 100 labels in total; the paper does not state how long
# M2 trained (the 3000 epochs often quoted are the training length of their released M1+M2 code, a different model).
# Pyro's tutorial reports 93.19 ± 0.60 % over label draws and 77.12 % for a supervised-only baseline, without the
# settings behind them; its example script logs the test accuracy at the best validation epoch, a protocol of the
# script that the tutorial does not state for its number. Two M2s, named for what they are: **M2 as defined**, with
# Kingma's $\alpha' = 0.1$, and **M2 as tuned**, with the $\alpha'$ kept on Fashion-MNIST validation above; both beside
# the same classifier network (`KNOBS["mnist_net"]`'s) trained on the 100 labels alone (early-stopped on MNIST
# validation). Both MNIST runs train without KL warm-up, as Kingma and Pyro do, so that they differ only in $\alpha'$.
# In `full`, M2 as defined uses Pyro's networks (z 50, one hidden layer of 500), all 49,900 unlabelled images and
# Pyro's Adam 4.2e-4 scaled to the profile's batch (8.4e-4 at 800), for 8 epochs (Pyro: 50), and the epoch with the
# best MNIST *validation* accuracy is restored. Departures from Pyro's example in every profile: the batches (ours
# carry `labelled_per_batch` labelled images each, cycled through the 100 labels, so every label is revisited many
# times per epoch, the count printed below; Pyro's example, at 100 labels, takes one labelled batch per epoch), the
# step count (Pyro's example steps every loss on every batch, so its auxiliary classification loss also takes an Adam
# step, with a zero gradient moved by momentum, on each unlabelled batch), the initialisation of the networks, and the
# KL term (closed form here, sampled in Pyro's guide). Kingma's paper does not say how its batches were composed;
# its released code batches 1 labelled with 499 unlabelled examples per step.

# %% tags=["hide-input"]
select_on_val = run.profile in ("full", "smoke")  # smoke runs the full path
mnist_splits = {
    d: semi_supervised(mnist, 10, d)
    if not select_on_val
    else dataclasses.replace(semi_supervised(mnist, 10, d), val=mnist.val)
    for d in KNOBS["mnist_draws"]
}
mnist_kw = dict(
    warmup=False,  # Kingma's and Pyro's M2 train without KL warm-up
    net=KNOBS["mnist_net"],
    epochs=KNOBS["mnist_epochs"],
    lr=KNOBS["mnist_lr"],
    select_on_val=select_on_val,
)
dm = KNOBS["mnist_draws"][0]
mnist_runs = {  # M2 as defined on every draw, M2 as tuned on the first
    (d, a): fit_m2("mnist-10pc", mnist_splits[d], d, a, **mnist_kw)
    for d in KNOBS["mnist_draws"]
    for a in sorted({0.1, ALPHA})
    if a == 0.1 or d == dm
}
mnist_acc = {
    key: S.evaluate_classifier(model, mnist.test)["accuracy"]
    for key, (model, _) in mnist_runs.items()
}
sup_mnist, _ = supervised_only(mnist_splits[dm], mnist.val, KNOBS["mnist_net"])
acc_sup = S.evaluate_classifier(sup_mnist, mnist.test)["accuracy"]
frac_mnist = mnist_splits[dm].train.labelled_fraction
for label, a in [("kingma_alpha", 0.1), ("tuned", ALPHA)]:
    vals = [mnist_acc[d, a_] for d, a_ in mnist_acc if a_ == a]
    metrics_[f"acc_m2_mnist_10pc_{label}_per_draw"] = vals
    metrics_[f"acc_m2_mnist_10pc_{label}"] = sum(vals) / len(vals)
metrics_["acc_m2_mnist_10pc"] = metrics_["acc_m2_mnist_10pc_kingma_alpha"]
metrics_["acc_supervised_only_mnist_10pc"] = acc_sup
metrics_["weight_per_labelled_mnist_kingma_alpha"] = 0.1 / frac_mnist
metrics_["weight_per_labelled_mnist_tuned"] = ALPHA / frac_mnist
n_unlabelled_mnist = len(mnist_splits[dm].train) - mnist_splits[dm].train.n_labelled
w_defined, w_tuned = 0.1 / frac_mnist, ALPHA / frac_mnist
kingma_weight = 0.1 * 50_000 / 100  # α = 0.1 N, N = 50,000, 100 labels
defined_note = (
    f"weight {w_defined:,.1f}, not Kingma's {kingma_weight:.0f}: "
    f"{n_unlabelled_mnist:,} unlabelled images"
    if abs(w_defined - kingma_weight) > 1
    else f"weight {w_defined:,.1f}, Kingma's"
)
mnist_steps = math.ceil(
    n_unlabelled_mnist / (KNOBS["batch"] - KNOBS["labelled_per_batch"])
)
label_visits = (
    mnist_steps * KNOBS["labelled_per_batch"] / mnist_splits[dm].train.n_labelled
)
metrics_["mnist_label_visits_per_epoch"] = label_visits
rows = [
    "| model | α' | weight per labelled example | test accuracy (mean over the "
    "draws run) |",
    "|---|---|---|---|",
    f"| M2 as defined (Kingma's α', {defined_note}; draws {KNOBS['mnist_draws']}) "
    "| 0.1 | "
    f"{0.1 / frac_mnist:,.1f} | "
    f"{metrics_['acc_m2_mnist_10pc_kingma_alpha']:.4f} |",
    f"| M2 as tuned (α' kept on Fashion validation; draw {dm}) | {ALPHA:g} | "
    f"{ALPHA / frac_mnist:,.1f} | {metrics_['acc_m2_mnist_10pc_tuned']:.4f} |",
    f"| supervised only (draw {dm}) | – | – | {acc_sup:.4f} |",
    "| Kingma et al. 2014, M2 | 0.1 | 50 | 0.8803 |",
    "| Pyro's tutorial (settings not stated; the example script's default "
    "multiplier is 46, α' = 0.092) | not stated | not stated | 0.9319 ± 0.0060 |",
]
gap_defined = metrics_["acc_m2_mnist_10pc_kingma_alpha"] - acc_sup
gap_tuned = metrics_["acc_m2_mnist_10pc_tuned"] - acc_sup
metrics_["m2_defined_minus_supervised_mnist"] = gap_defined
metrics_["m2_tuned_minus_supervised_mnist"] = gap_tuned


def side(gap):
    return "above" if gap > 0 else "below" if gap < 0 else "level with"


m2_vs_supervised = (
    f"M2 as defined stands {100 * abs(gap_defined):.1f} points "
    f"{side(gap_defined)} the supervised-only classifier on the same labels, M2 as "
    f"tuned {100 * abs(gap_tuned):.1f} points {side(gap_tuned)} it (test accuracy, "
    f"label draw {dm}, one run each)."
)
markdown(
    "\n".join(rows) + f"\n\n{m2_vs_supervised} This run: {KNOBS['mnist_epochs']} "
    "epochs on "
    f"{n_unlabelled_mnist:,} unlabelled images, z of "
    f"{KNOBS['mnist_net']['latent_dim']}, {KNOBS['mnist_net']['depth']}×"
    f"{KNOBS['mnist_net']['hidden']} encoder and decoder, a classifier of "
    f"{KNOBS['mnist_net']['classifier_hidden']} hidden units"
    + (
        ", the epoch with the best validation accuracy restored."
        if select_on_val
        else ", the last epoch kept."
    )
    + " Kingma's 88 % was reached on all 49,900 unlabelled images (its training "
    "length is not stated in the paper). "
    f"Each batch of {KNOBS['batch']} carries {KNOBS['labelled_per_batch']} labelled "
    f"images, so each of the {mnist_splits[dm].train.n_labelled} labels is seen "
    f"{label_visits:.0f} times per epoch (Pyro's example: once). M2 as tuned keeps "
    f"α' = {ALPHA:g}, which weighs {w_tuned:,.0f} per labelled example here against "
    f"{ALPHA / frac_fashion:,.0f} on the Fashion-MNIST training set where it was "
    "validated (10 labels per class instead of 100): the per-example weight it "
    "carries on MNIST is "
    + (
        "the validated one."
        if abs(w_tuned / (ALPHA / frac_fashion) - 1) < 0.01
        else "not the validated one."
    )
)

# %% [markdown]
# (ch7-m2-curve)=
# ### Faithful M2's curve (the `long` profile)
#
# M2 as defined, as close to Kingma's and Pyro's setting as this book's M2 goes: one label draw of 100 MNIST labels,
# Pyro's networks (z 50, one hidden layer of 500 softplus units), $\alpha' = 0.1$, all 49,900 unlabelled images,
# Adam 4.2e-4 at batch 200 (20 labelled), no KL warm-up, 300 epochs, validation and test accuracy after every epoch
# (`bench/m2_faithful_curve.py`, resumable per epoch; it writes `results/long/07_semi_supervised_vae/m2_curve/`,
# with each epoch's seconds, summed below). The registry's check `m2/acc100` is decided on it: supported
# when the test accuracy at the best validation epoch is within two of Kingma's standard deviations of 88.0 %
# (≥ 84.6 %).

# %% tags=["hide-input"]
m2_curve_path = (
    results_dir()
    / "long"
    / STEM
    / "m2_curve"
    / f"curve-draw{KNOBS['mnist_draws'][0]}.json"
)
curve_verdict = curve_ours = None
if m2_curve_path.is_file():
    curve = json.loads(m2_curve_path.read_text())
    c_val, c_test = curve["val_accuracy"], curve["test_accuracy"]
    best = max(range(len(c_val)), key=c_val.__getitem__)
    done = len(c_val)
    curve_ours = (
        f"the faithful M2 curve, {done} of {curve['epochs_planned']} epochs "
        f"({sum(curve.get('epoch_seconds', [])) / 60:.0f} minutes on "
        f"{curve.get('threads')} threads): test accuracy {c_test[best]:.4f} at the "
        f"best validation epoch ({best + 1}), {c_test[-1]:.4f} at the last; the "
        f"supervised-only classifier on the same labels "
        f"{curve['supervised_test_accuracy']:.4f} "
        f"({100 * (c_test[best] - curve['supervised_test_accuracy']):+.1f} points)"
    )
    off_design = [
        f"{k} {curve.get(k)!r} (the design: {v!r})"
        for k, v in {
            "faithful": True,
            "alpha_prime": 0.1,
            "lr": 4.2e-4,
            "unlabelled": 49_900,
            "labels": 100,
            "eval_images": [10_000, 10_000],
            "batch": 200,
            "labelled_per_batch": 20,
            "warmup": False,
            "draw": KNOBS["mnist_draws"][0],
            "net": {
                "latent_dim": 50,
                "hidden": 500,
                "depth": 1,
                "classifier_hidden": 500,
            },
        }.items()
        if curve.get(k) != v
    ]
    if off_design:
        curve_verdict = (
            "not comparable: the curve file was not written by the design's run: "
            + "; ".join(off_design)
        )
    elif c_test[best] >= 0.8803 - 2 * 0.0171:
        curve_verdict = "supported"
    elif done >= curve["epochs_planned"]:
        curve_verdict = "not resolved"
    else:
        curve_verdict = (
            f"not comparable: the faithful M2 curve has run {done} of its "
            f"{curve['epochs_planned']} epochs"
        )
    metrics_["m2_curve_test_at_best_val"] = c_test[best]
    metrics_["m2_curve_epochs"] = done
    # what more epochs of this setting would give: the test accuracy's least-squares
    # slope over the last 100 and the last 50 epochs, each drawn on linearly to 88 %

    def tail_slope(values):
        x_mean, y_mean = (len(values) - 1) / 2, sum(values) / len(values)
        return sum((x - x_mean) * (y - y_mean) for x, y in enumerate(values)) / sum(
            (x - x_mean) ** 2 for x in range(len(values))
        )

    to_go = 0.8803 - c_test[best]
    windows = [w for w in (100, 50) if done >= 2 * w]
    slopes = {w: tail_slope(c_test[-w:]) for w in windows}
    curve_reach = (
        "The test accuracy's least-squares slope: "
        + "; ".join(
            f"over the last {w} epochs {100 * 100 * sl:+.2f} points per 100 epochs"
            + (
                f" (at that rate, about {to_go / sl:,.0f} more epochs to 88 %)"
                if sl > 0 and to_go > 0
                else ""
            )
            for w, sl in slopes.items()
        )
        + ". Straight lines drawn through the tail, not forecasts"
        + (
            ": the slope falls as the window shortens, so the curve is flattening."
            if len(slopes) == 2 and slopes[50] < slopes[100]
            else "."
        )
        + " "
        if slopes and to_go > 0
        else ""
    )
    curve_time = sum(curve.get("epoch_seconds", []))
    curve_gap = c_test[best] - curve["supervised_test_accuracy"]
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.plot(range(1, done + 1), c_val, label="M2 as defined: validation")
    ax.plot(range(1, done + 1), c_test, label="M2 as defined: test")
    ax.axhline(
        curve["supervised_test_accuracy"],
        color="C3",
        ls="--",
        label="supervised only (test)",
    )
    ax.axhline(0.8803, color="grey", ls=":", label="Kingma et al. (88.0 %)")
    ax.set(xlabel="epoch", ylabel="accuracy", title="MNIST, 100 labels")
    ax.legend(frameon=False, fontsize=8)
    figure(
        fig,
        "fig-ch7-m2-curve",
        "Faithful M2 (α' = 0.1, Pyro's networks, all 49,900 unlabelled MNIST images, "
        "one label draw) after every epoch: validation and test accuracy, beside the "
        "supervised-only classifier on the same 100 labels and Kingma et al.'s 88.0 %.",
    )
    display(
        markdown(
            curve_ours[0].upper()
            + curve_ours[1:]
            + ". M2 as defined stands "
            + f"{100 * abs(curve_gap):.1f} points "
            + side(curve_gap)
            + " the supervised-only classifier at its best validation epoch"
            + (
                f", {100 * (0.8803 - c_test[best]):.1f} points short of Kingma's 88 %. "
                if c_test[best] < 0.8803
                else ". "
            )
            + curve_reach
            + f"The curve took {curve_time / 60:.0f} minutes of training and "
            f"evaluation ({curve.get('threads')} threads, {curve.get('cpu')}"
            + (
                f"; subnormal floats, below 1.2e-38, flushed to zero from epoch "
                f"{curve['flush_denormal_from_epoch'] + 1} on the main thread and from "
                f"epoch {curve['flush_denormal_all_threads_from_epoch'] + 1} on every "
                "thread, after they had slowed its epochs (`bench/denormal.md`): a "
                "change of arithmetic below float32's normal range"
                + (
                    f"; {curve['epoch_seconds_note']}"
                    if "epoch_seconds_note" in curve
                    else ""
                )
                if curve.get("flush_denormal_from_epoch")
                else ""
            )
            + "). "
            + (
                "What else might separate it from Kingma's 88 %, none of it tried "
                "here: the paper states neither its training length nor its "
                "batches; Kingma's released code, which trains M1+M2 (a different "
                "model), runs 3,000 epochs at Adam 3e-4 with batches of 1 labelled "
                "and 499 unlabelled images. Pyro's own script, run beside it below, "
                "is the other reference."
                if c_test[best] < 0.8803
                else ""
            )
        )
    )
else:
    display(
        markdown(
            "The faithful M2 curve has not run yet (`python bench/m2_faithful_curve.py "
            "--commit`, 300 epochs on two cores)."
        )
    )

# %% [markdown]
# ### Pyro's own example beside `lvmcls`'s M2
#
# `bench/pyro_m2_side_by_side.py` runs Pyro's example script `ss_vae_M2.py` itself, unmodified, from a temporary copy
# of the folder this book keeps beside it (`shared/anchors/pyro-ss-vae`, Apache-2.0; or a checkout given on its
# command line), with the example script's defaults (z 50, one hidden layer of 500, Adam 4.2e-4, multiplier 46, y
# enumerated) and three flags: the auxiliary loss on, 100 labels, batch 100 (the script refuses 100 labels at its
# default batch 200), and beside it
# `lvmcls`'s M2 on the script's own label draw twice: with the script's loop (one labelled batch among 500, and two
# Adam steps on every batch, the auxiliary loss's included, 1,000 per epoch) and with `lvmcls`'s own batching (10
# labelled rows in every batch of 100). What still differs from the script on the first `lvmcls` side: the initial
# weights and the KL term (closed form here, sampled in Pyro's guide). The numbers below are read from the file the
# bench writes, `bench/pyro_m2_side_by_side.md`, not run here (pyro is not a dependency of the book); the page says
# how many epochs and seeds that file holds. Times per epoch include each side's evaluation, and come with their
# spread over epochs and seeds.

# %% tags=["hide-input"]
bench_md = project_root() / "bench" / "pyro_m2_side_by_side.md"
bench_text = f"{bench_md} is missing: run bench/pyro_m2_side_by_side.py"
bench = None
if bench_md.is_file():
    bench = json.loads(bench_md.read_text().split("```json", 1)[1].split("```", 1)[0])
    bs = bench["summary"]
    side_words = {
        "pyro": "Pyro's `ss_vae_M2.py`",
        "lvmcls-example-batching": "`lvmcls` M2, the script's loop",
        "lvmcls": "`lvmcls` M2, its own batching",
    }
    rows = [
        "| side | test at the best validation epoch, per seed (mean) | last epoch "
        "(mean) | s / epoch, median [min, max] (first epoch left out) | Adam steps / "
        "epoch |",
        "|---|---|---|---|---|",
    ]
    for bench_side, words in side_words.items():
        if bench_side not in bs:
            continue
        r, t = bs[bench_side], bs[bench_side]["seconds_per_epoch"]
        rows.append(
            f"| {words} | "
            + ", ".join(f"{v:.4f}" for v in r["test_at_best_val"].values())
            + f" ({r['test_at_best_val_mean']:.4f}) | {r['test_last_mean']:.4f} | "
            f"{t['median']:.1f} [{t['min']:.1f}, {t['max']:.1f}] | "
            f"{bench['adam_steps_per_epoch'].get(bench_side, '–')} |"
        )
    for bench_side in side_words:
        if bench_side in bs:
            metrics_[f"bench_{bench_side.replace('-', '_')}_test_at_best_val"] = bs[
                bench_side
            ]["test_at_best_val_mean"]
    ratios = [
        f"Pyro / {side_words.get(k.removeprefix('time_ratio_pyro_over_'), k)}: "
        f"median {v['median']:.2f} "
        f"[{v['min']:.2f}, {v['max']:.2f}] over {v['n']} epochs"
        for k, v in bs.items()
        if k.startswith("time_ratio")
    ]
    planned = (
        bench["epochs"] >= 10
        and len(bench["seeds"]) >= 3
        and bench["threads"] == 2
        and bench.get("eval_limit") is None
        and bench.get("unlabelled") == 49_900
        and all(name in bs for name in side_words)
    )
    bench_text = (
        "\n".join(rows)
        + f"\n\nThe file holds {bench['epochs']} epoch(s) × {len(bench['seeds'])} "
        f"seed(s) ({bench['threads']} threads, load average {bench['load_start']} at "
        f"the start and {bench.get('load_end', '(not recorded)')} at the end, written "
        f"{bench['written']}). "
        + (
            "Time per epoch (the first epoch left out): " + "; ".join(ratios) + ". "
            if ratios
            else "No time ratio: one epoch per seed, whose time includes the script's "
            "start-up. "
        )
        + (
            "That is the bench's planned run (at least 10 epochs × 3 seeds of the "
            "three sides, 2 threads, all 49,900 unlabelled images, full evaluation)."
            if planned
            else "That is not the bench's planned run (at least 10 epochs × 3 seeds of "
            "the three sides, 2 threads, all 49,900 unlabelled images, full "
            "evaluation): it shows that the sides run on the same labels, not where "
            "any of them goes."
        )
    )
markdown(bench_text)

# %% [markdown]
# ## Grey CIFAR-10, KMNIST and SVHN (`full` profile)
#
# The `full` profile trains grey CIFAR-10 (ITU-R 601-2 luma: our choice of formula; the paper says only that it
# converted the colour images to grayscale) at 100 labels per class,
# M2 and M2+MIER on one label draw. KMNIST and SVHN are torchvision downloads; the book's data layer serves only
# MNIST, Fashion-MNIST and CIFAR-10 offline, so they are skipped, and their paper rows stay in the scorecard.

# %% tags=["hide-input"]
if KNOBS["cifar10"]:
    cifar = with_test_limit(load_dataset("cifar10", device=run.device))
    cifar = dataclasses.replace(
        cifar, train=S.greyscale(cifar.train), val=None, test=S.greyscale(cifar.test)
    )
    floor_cifar = S.bernoulli_floor(cifar.test.x)
    data = semi_supervised(cifar, 100, d0)
    cifar_eval = {
        name: S.evaluate_classifier(
            fit_m2("cifar10grey-100pc", data, d0, ALPHA, *setting)[0],
            cifar.test,
            bound=True,
            seed=run.seed,
        )
        for name, setting in [("m2", M2_SET), ("mier", MIER_SET)]
    }
    metrics_["bernoulli_floor_cifar10"] = floor_cifar
    for name, e in cifar_eval.items():
        metrics_[f"acc_{name}_cifar10_100"] = e["accuracy"]
        metrics_[f"entropy_{name}_cifar10"] = e["entropy"]
        metrics_[f"bound_{name}_cifar10"] = e["bound"]
    cifar_text = "\n".join(
        ["| model | accuracy | entropy | Î | bound |", "|---|---|---|---|---|"]
        + [
            f"| {name} | {e['accuracy']:.4f} | {e['entropy']:.4f} | {e['mi']:.3f} "
            f"| {e['bound']:.2f} (floor {-floor_cifar:.2f}) |"
            for name, e in cifar_eval.items()
        ]
    )
else:
    for name in ("m2", "mier"):
        for k in ("acc_{}_cifar10_100", "entropy_{}_cifar10", "bound_{}_cifar10"):
            metrics_[k.format(name)] = None
    metrics_["bernoulli_floor_cifar10"] = None
    cifar_text = f"profile {run.profile}: grey CIFAR-10 runs only in the full profile"
for name in ("kmnist", "svhn"):
    metrics_[f"acc_m2_{name}_100"] = metrics_[f"acc_mier_{name}_100"] = None
markdown(
    cifar_text + "\n\nKMNIST and SVHN skipped: they are torchvision downloads that "
    "lvmcls.data does not serve (offline here); their paper rows are kept in the "
    "scorecard."
)

# %% [markdown]
# ## Scorecard
#
# Paper numbers: MIER Table 1 (accuracy at 100 labels per class, M2 and M2+MIER rows; its ADGM and LVAE rows are not
# reproduced), Table 2 (test entropy and bound, Fashion-MNIST and CIFAR-10), Kingma et al. 2014 Table 1 (M2, 100
# labels: 11.97 % error) and Pyro's SS-VAE tutorial (93.19 %, supervised-only 77.12 %; the MNIST rows list Kingma,
# then Pyro). The MNIST and bench rows' paper numbers are references in a different setting (Kingma: training length not
# stated in the paper; Pyro's tutorial: epochs, batch size and multiplier not stated), and M2 as tuned and `lvmcls`'s bench run get none,
# since neither paper ran that setting. "M2 as defined" is M2 at Kingma's α' = 0.1; "M2 as tuned" at the α' kept on
# validation (printed). The Bernoulli floor is our measurement of the test set, not a paper number. On
# Fashion-MNIST the accuracies, entropies and Î are means over the label draws; the bounds and M2 at α' = 0.1 are
# from label draw 0 (each row says which). Entropies and bounds are in nats (the paper gives no log base for its
# entropies; nats is our assumption).

# %% tags=["hide-input"]
PAPER = {
    "acc_m2_mnist_10pc_kingma_alpha": [0.8803, 0.9319],
    "acc_supervised_only_mnist_10pc": 0.7712,
    "acc_m2_fashion_100": 0.7884,
    "acc_m2_fashion_100_kingma_alpha": 0.7884,
    "acc_mier_fashion_100": 0.8023,
    "entropy_m2_fashion": 0.0439,
    "entropy_mier_fashion": 0.0211,
    "bound_m2_fashion": -248.18,
    "bound_mier_fashion": -247.95,
    "mier_gain_fashion_100": 0.0139,
    "acc_m2_cifar10_100": 0.2587,
    "acc_mier_cifar10_100": 0.2711,
    "acc_m2_kmnist_100": 0.6577,
    "acc_mier_kmnist_100": 0.7030,
    "acc_m2_svhn_100": 0.2846,
    "acc_mier_svhn_100": 0.3140,
    "entropy_m2_cifar10": 0.3742,
    "entropy_mier_cifar10": 0.1551,
    "bound_m2_cifar10": -636.20,
    "bound_mier_cifar10": -638.31,
    "bench_pyro_test_at_best_val": 0.9319,
}
T1, T2 = "MIER Table 1, row", "MIER Table 2, row"
PAPER_SOURCES = {
    "acc_m2_mnist_10pc_kingma_alpha": "Kingma et al. 2014 Table 1, row N = 100, "
    "column M2; "
    "Pyro's SS-VAE tutorial, enumeration + auxiliary loss",
    "acc_supervised_only_mnist_10pc": "Pyro's SS-VAE tutorial, supervised only",
    "bench_pyro_test_at_best_val": "Pyro's SS-VAE tutorial, enumeration + aux. loss",
    "acc_m2_fashion_100": f"{T1} M2, column Fashion",
    "acc_m2_fashion_100_kingma_alpha": f"{T1} M2, column Fashion; α' not stated",
    "acc_mier_fashion_100": f"{T1} M2+MIER, column Fashion",
    "mier_gain_fashion_100": f"{T1}s M2+MIER − M2, column Fashion",
    "entropy_m2_fashion": f"{T2} M2, FashionMNIST, Entropy",
    "entropy_mier_fashion": f"{T2} M2+MIER, FashionMNIST, Entropy",
    "bound_m2_fashion": f"{T2} M2, FashionMNIST, ≤ log pθ(x)",
    "bound_mier_fashion": f"{T2} M2+MIER, FashionMNIST, ≤ log pθ(x)",
    "acc_m2_cifar10_100": f"{T1} M2, column CIFAR10",
    "acc_mier_cifar10_100": f"{T1} M2+MIER, column CIFAR10",
    "acc_m2_kmnist_100": f"{T1} M2, column KMNIST",
    "acc_mier_kmnist_100": f"{T1} M2+MIER, column KMNIST",
    "acc_m2_svhn_100": f"{T1} M2, column SVHN",
    "acc_mier_svhn_100": f"{T1} M2+MIER, column SVHN",
    "entropy_m2_cifar10": f"{T2} M2, CIFAR10, Entropy",
    "entropy_mier_cifar10": f"{T2} M2+MIER, CIFAR10, Entropy",
    "bound_m2_cifar10": f"{T2} M2, CIFAR10, ≤ log pθ(x)",
    "bound_mier_cifar10": f"{T2} M2+MIER, CIFAR10, ≤ log pθ(x)",
}
PAPER["m2_curve_test_at_best_val"] = 0.8803
PAPER_SOURCES["m2_curve_test_at_best_val"] = (
    "Kingma et al. 2014 Table 1, row N = 100, column M2"
)
card_keys = [
    "m2_curve_test_at_best_val",
    "acc_m2_mnist_10pc_kingma_alpha",
    "acc_m2_mnist_10pc_tuned",
    "acc_supervised_only_mnist_10pc",
    "bench_pyro_test_at_best_val",
    "bench_lvmcls_test_at_best_val",
    "alpha_chosen",
    "acc_m2_fashion_100_kingma_alpha",
    "acc_m2_fashion_100",
    "acc_mier_fashion_100",
    "mier_gain_fashion_100",
    "acc_entropy_only_fashion_100",
    "entropy_m2_fashion",
    "entropy_mier_fashion",
    "mi_m2_fashion",
    "mi_mier_fashion",
    "bound_m2_fashion",
    "bound_mier_fashion",
    "bernoulli_floor_fashion",
    "acc_m2_cifar10_100",
    "acc_mier_cifar10_100",
    "acc_m2_kmnist_100",
    "acc_mier_kmnist_100",
    "acc_m2_svhn_100",
    "acc_mier_svhn_100",
    "entropy_m2_cifar10",
    "entropy_mier_cifar10",
    "bound_m2_cifar10",
    "bound_mier_cifar10",
    "bernoulli_floor_cifar10",
]
m = metrics_
m2_ours = (
    f"M2 as defined (α' = 0.1): {m['acc_m2_mnist_10pc_kingma_alpha']:.4f}, as tuned "
    f"(α' = {ALPHA:g}): {m['acc_m2_mnist_10pc_tuned']:.4f}, over "
    f"{len(KNOBS['mnist_draws'])} label draw(s), {KNOBS['mnist_epochs']} epochs on "
    f"{n_unlabelled_mnist:,} unlabelled images"
    + (
        f"; Pyro's own script beside lvmcls's M2 (its own batching), "
        f"{bench['epochs']} epoch(s) × {len(bench['seeds'])} seed(s): "
        f"{bs['pyro']['test_at_best_val_mean']:.4f} vs "
        f"{bs['lvmcls']['test_at_best_val_mean']:.4f}"
        if bench is not None and "pyro" in bs and "lvmcls" in bs
        else ""
    )
)
claims = claims + [
    registry.check_row(
        "m2/acc100",
        verdict=curve_verdict
        or (
            "not comparable: M2 as defined ran "
            f"{KNOBS['mnist_epochs']} epochs on {n_unlabelled_mnist:,} unlabelled "
            "images in this profile; the registry's rule decides on the 300-epoch "
            "curve on all 49,900, which has not run yet"
        ),
        ours=(curve_ours + "; " if curve_verdict else "")
        + m2_ours
        + f"; this {run.profile} run's supervised only {acc_sup:.4f}: "
        + m2_vs_supervised,
    )
]
path = run.write_results(
    STEM,
    data_source={
        "mnist": mnist.source,
        "fashion_mnist": fashion.source,
        **({"cifar10": cifar.source} if KNOBS["cifar10"] else {}),
    },
    metrics=metrics_,
    paper=PAPER,
    knobs={
        **KNOBS,
        "ablation": [list(a) for a in KNOBS["ablation"]],
        "gamma": GAMMA,
        "beta": BETA,
        "alpha_small": ALPHA_SMALL,
    },
    seeds=KNOBS["draws"],
    per_seed=per_seed,
    registry=registry.hashes(STEM),
    claims=claims,
)
print(f"wrote {path.name}")
scorecard(
    STEM,
    {k: metrics_.get(k) for k in card_keys},
    PAPER,
    sources=PAPER_SOURCES,
    labels={
        "m2_curve_test_at_best_val": "Faithful M2's curve (α' = 0.1, Pyro's networks, "
        "all 49,900 unlabelled MNIST images, 300 epochs of the long profile), test "
        "accuracy at the best validation epoch",
        "acc_m2_mnist_10pc_kingma_alpha": "M2 as defined (Kingma's α' = 0.1; "
        f"{defined_note}), MNIST test accuracy, 10 labels per class; paper column: "
        "Kingma, Pyro, a reference in a different setting",
        "acc_m2_mnist_10pc_tuned": f"M2 as tuned (α' = {ALPHA:g}, kept on "
        f"validation; weight {w_tuned:,.0f} per labelled example, "
        f"{ALPHA / frac_fashion:,.0f} where validated), MNIST test accuracy, 10 labels "
        "per class",
        "acc_m2_fashion_100_kingma_alpha": "M2 at Kingma's α' = 0.1 (weight "
        f"{0.1 / frac_fashion:,.1f} per labelled example here, not Kingma's "
        f"{kingma_weight:.0f}), Fashion-MNIST test accuracy, 100 labels per class, "
        "draw 0",
        "acc_m2_fashion_100": f"M2 as tuned (α' = {ALPHA:g}), Fashion-MNIST test "
        "accuracy, 100 labels per class, mean over draws",
        "bench_pyro_test_at_best_val": "Pyro's own ss_vae_M2.py (the bench), MNIST "
        "100 labels, test accuracy at the best validation epoch, mean over the bench's "
        "seeds (its epochs and seeds are printed above); paper column: Pyro's "
        "tutorial, settings not stated, a reference in a different setting",
        "bench_lvmcls_test_at_best_val": "lvmcls's M2 in Pyro's model configuration "
        "(its own batching), the same bench run",
        "bound_m2_fashion": "M2's unlabelled bound on the Fashion-MNIST test set "
        "(nats), draw 0",
        "bound_mier_fashion": "M2+MIER's unlabelled bound on the Fashion-MNIST test "
        "set (nats), draw 0",
        "entropy_m2_fashion": "M2's mean classifier entropy on the Fashion-MNIST test "
        "set (nats; the paper's base is not given), mean over draws",
        "entropy_mier_fashion": "M2+MIER's mean classifier entropy on the "
        "Fashion-MNIST test set (nats; the paper's base is not given), mean over draws",
        "entropy_m2_cifar10": "M2's mean classifier entropy on the grey CIFAR-10 test "
        "set (nats; the paper's base is not given), draw 0",
        "entropy_mier_cifar10": "M2+MIER's mean classifier entropy on the grey "
        "CIFAR-10 test set (nats; the paper's base is not given), draw 0",
        "mier_gain_fashion_100": "M2+MIER − M2, Fashion-MNIST test accuracy, mean "
        "over draws",
        "acc_mier_fashion_100": "M2+MIER, Fashion-MNIST test accuracy, 100 labels "
        "per class, mean over draws",
        "acc_entropy_only_fashion_100": "(γ, β) = (0, 6), the entropy penalty "
        "without the information term, Fashion-MNIST test accuracy, mean over draws",
        "mi_m2_fashion": "Î(y; x) of M2's classifier on the Fashion-MNIST test set "
        "(nats), mean over draws",
        "mi_mier_fashion": "Î(y; x) of M2+MIER's classifier on the Fashion-MNIST test "
        "set (nats), mean over draws",
        "bernoulli_floor_fashion": "Bernoulli floor of the Fashion-MNIST test set "
        "(nats; no Bernoulli bound exceeds minus it)",
        "bernoulli_floor_cifar10": "Bernoulli floor of the grey CIFAR-10 test set "
        "(nats)",
    },
)

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
print({k: round(v, 3) for k, v in sorted(metrics_.items()) if isinstance(v, float)})

# %% [markdown]
# ## Conclusion

# %% tags=["hide-input"]
markdown(
    "\n".join(
        [
            (
                "- Eq. 2 and Eq. 3 are the same bound, and summing $y$ out in one "
                "batched pass gives the loop's numbers "
                f"(max difference {m['enumeration_vs_loop_max_abs']:.1e} nats here); "
                f"Eq. 6 closes to {m['eq6_max_abs']:.0e}."
            ),
            (
                f"- MIER on Fashion-MNIST, 100 labels per class, {len(KNOBS['draws'])} "
                "paired label draws: "
                + (
                    "; ".join(
                        f"`{key}` **{made['verdict']}** "
                        f"({100 * made['decisions'][0].mean_difference:+.2f} points, "
                        f"interval [{100 * made['decisions'][0].interval[0]:+.2f}, "
                        f"{100 * made['decisions'][0].interval[1]:+.2f}])"
                        for key, made in decided.items()
                    )
                    if decided
                    else "not decided in this profile (one draw)"
                )
                + f"; α' = {ALPHA:g} (kept on validation) and "
                + (
                    f"α' = {ALPHA_SMALL:g} (the smallest at which M2 beats the "
                    "supervised-only classifier on validation)."
                    if ALPHA_SMALL is not None
                    else "no α' at which M2 beats the supervised-only classifier."
                )
            ),
            (
                "- The mean test entropy of the two regularised arms, "
                f"{m['entropy_mier_fashion']:.4f} and "
                f"{m['entropy_entropy_only_fashion']:.4f} against M2's "
                f"{m['entropy_m2_fashion']:.4f}, "
                + (
                    "is lower, as their objective asks."
                    if max(m["entropy_mier_fashion"], m["entropy_entropy_only_fashion"])
                    < m["entropy_m2_fashion"]
                    else "is not lower in both, although their objective asks for it."
                )
            ),
            (
                f"- The KL warm-up (M2, {dec_warmup.n} draws, exploratory): "
                f"{100 * dec_warmup.mean_difference:+.2f} points with warm-up, 95 % "
                f"interval [{100 * dec_warmup.interval[0]:+.2f}, "
                f"{100 * dec_warmup.interval[1]:+.2f}]."
                if KNOBS["warmup_draws"]
                else "- The KL warm-up: not run in this profile."
            ),
            (
                f"- `long` (the powered decisions), {long_summary}."
                if long_summary
                else "- `long` has not run for this chapter."
            ),
            (
                f"- {curve_ours[0].upper() + curve_ours[1:]}: `m2/acc100` "
                f"{curve_verdict}."
                if curve_ours
                else "- The faithful M2 curve has not run."
            ),
            (
                f"- α' = {ALPHA:g} kept on Fashion-MNIST validation among "
                f"{KNOBS['alphas']}; Kingma's 0.1 reaches "
                f"{m['acc_m2_fashion_100_kingma_alpha'] or float('nan'):.4f} on the "
                "Fashion test set "
                "(draw 0). On MNIST with 10 labels per class, M2 as defined "
                f"{m['acc_m2_mnist_10pc_kingma_alpha']:.4f}, as tuned "
                f"{m['acc_m2_mnist_10pc_tuned']:.4f}, supervised only "
                f"{m['acc_supervised_only_mnist_10pc']:.4f} ({m2_vs_supervised}); "
                "Kingma 0.8803 and Pyro's tutorial 0.9319, their training lengths not "
                "stated."
            ),
        ]
    )
)

# %% [markdown]
# Where the book departs from the paper:
# - `ci`: narrower networks (a smaller z, one narrow hidden layer in encoder and decoder, a classifier of 500 hidden
#   units rather than 600), a subset of the unlabelled images and a few epochs (the `KNOBS` table above);
#   `full`: the paper's networks, 5 epochs, not 1000, at batch 800, not 200, on Fashion-MNIST; on MNIST Pyro's
#   networks for 8 epochs (Pyro: 50);
# - learning rate 2e-3 (`ci` at batch 200, `full` at batch 800, Fashion-MNIST) against the paper's 3e-4, with no
#   halving every 150 epochs;
# - the training pool: MNIST and Fashion-MNIST train on 50,000 images, the last 10,000 training images held out as the
#   validation split (used only to choose $\alpha'$, to stop the supervised baseline and, in `full`, to pick M2's epoch
#   on MNIST); grey CIFAR-10 trains on 45,000 in `full`. The paper splits its whole training set into labelled and
#   unlabelled;
# - a classification weight $\alpha'$ chosen on Fashion-MNIST validation among `KNOBS["alphas"]` (Kingma's 0.1 among
#   them, reported whether kept or not); the paper does not state its $\alpha$;
# - only 100 labels per class (the paper's Table 3 also has 250 and 500) and one draw of grey CIFAR-10 in `full`;
#   KMNIST and SVHN not run; ADGM and LVAE (16 of the 24 accuracies of MIER's Table 1) not implemented;
# - the last epoch rather than a "best" model on an unstated split; one $z$ sample per $(x, y)$ in the reported bounds;
# - the batches: every batch carries `labelled_per_batch` labelled images (20 of 200 in `ci`, 80 of 800 in `full`),
#   cycled through the labelled set, so each label is revisited many times per epoch; the paper does not say how its
#   batches were composed, and Pyro's example, at 100 labels, takes one labelled batch per epoch;
# - the KL warm-up: linear over `warmup_epochs` on Fashion-MNIST and grey CIFAR-10 (MIER uses one, schedule not
#   given); the MNIST runs (M2 as defined and as tuned) train without it, as Kingma and Pyro do;
# - no t-SNE of the classifier's penultimate layer (MIER's Figure 4).
#
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# ```
