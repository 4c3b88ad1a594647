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
# in one batched pass; and measures M2 on MNIST with 10 labels per class against Kingma's and Pyro's numbers and a
# supervised-only baseline, then M2 against M2+MIER on Fashion-MNIST with 100 labels per class.
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
import math

import matplotlib.pyplot as plt
import torch

from lvmcls import plots
from lvmcls import ssvae as S
from lvmcls.data import load_dataset
from lvmcls.notebook import figure, markdown, setup, show
from lvmcls.results import scorecard
from lvmcls.train import Trainer, fit_cached, pick_device

device = pick_device()

# %% tags=["parameters"]
profile = (
    "auto"  # "auto" | "ci" | "full" | "smoke"  ("auto" also reads $LVMCLS_PROFILE)
)
seed = 0

# %% tags=["hide-input"]
# an estimate: on one H100 shared with chapters 4, 5 and 6 the full profile had
# finished only its MNIST section (about 5 of its 27 models) when stopped at 545 s:
# 27 / 5 × 545 s ≈ 49 min shared, taken as about 40 alone
FULL_MINUTES_H100 = 40
run = setup(profile, seed, device, full_minutes_h100=FULL_MINUTES_H100)
PAPER_NET = {
    "latent_dim": 50,
    "hidden": 600,
    "depth": 2,
    "classifier_hidden": 600,
}  # MIER §5.2
KNOBS = {
    # ci: two CPU cores, about five minutes. Narrower networks, a subset of the
    # unlabelled images, few epochs;
    # α' is chosen among `alphas` on the MNIST validation split.
    "ci": {
        "net": {"latent_dim": 32, "hidden": 256, "depth": 1, "classifier_hidden": 500},
        "unlabelled": 10_000,
        "epochs": 6,
        "lr": 2e-3,
        "alphas": [3.0, 30.0, 300.0],
        "batch": 200,
        "labelled_per_batch": 20,
        "warmup_epochs": 1,
        "supervised_max_epochs": 150,
        "fashion_labels": [100],
        "draws": [0, 1],
        "ablation": [(0.0, 6.0)],
        "cifar10": False,
        "max_steps": None,
        "test_limit": None,
    },
    # full: the paper's networks on one GPU; 15 epochs instead of 1000. 25 M2 runs
    # of 280 steps an epoch: budgeted
    # for about 8 minutes on an H100 (an estimate from step counts, not yet a
    # measured run).
    "full": {
        "net": PAPER_NET,
        "unlabelled": None,
        "epochs": 15,
        "lr": 1e-3,
        "alphas": [3.0, 30.0, 300.0],
        "batch": 200,
        "labelled_per_batch": 20,
        "warmup_epochs": 2,
        "supervised_max_epochs": 150,
        "fashion_labels": [100, 250, 500],
        "draws": [0, 1, 2],
        "ablation": [(0.0, 6.0), (1.0, 0.0)],
        "cifar10": True,
        "max_steps": None,
        "test_limit": None,
    },
    # smoke: the full networks for a few steps, so that the GPU path runs in CI on
    # a CPU.
    "smoke": {
        "net": PAPER_NET,
        "unlabelled": 2_000,
        "epochs": 1,
        "lr": 1e-3,
        "alphas": [3.0, 30.0],
        "batch": 200,
        "labelled_per_batch": 20,
        "warmup_epochs": 1,
        "supervised_max_epochs": 5,
        "fashion_labels": [100],
        "draws": [0],
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
# **Generative story** (the paper's Figure 1a): $y \to z \to x$ with $y$ and $z$ independent a priori,
#
# $$
# y \sim p(y) = \mathrm{Cat}(1/K), \qquad z \sim p(z) = \mathcal N(0, I), \qquad x \mid y, z \sim \mathrm{Bernoulli}\big(\sigma(g_\theta(y, z))\big),
# $$
#
# on grey levels $x \in [0, 1]$ (no binarisation: the paper's Table 2 bounds are Bernoulli cross-entropies on grey
# levels). **Inference model** (Figure 1b): $q_\phi(y, z\mid x) = q_\phi(y\mid x)\,q_\phi(z\mid x, y)$, a classifier $q_\phi(y\mid x)$ and a
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
# images; Pyro's example uses 46). With a few epochs instead of Kingma's 3000 we do not assume that value carries
# over: the chapter trains M2 on MNIST with each $\alpha'$ in `KNOBS["alphas"]`, keeps the one with the highest accuracy on
# the 10,000 MNIST *validation* images (held out of the training images; `lvmcls.data` splits them off), and uses that
# $\alpha'$ for Fashion-MNIST too. The test sets are touched only for the reported numbers. The sweep below prints the
# per-example weight each $\alpha'$ implies: a large one makes M2 mostly a supervised classifier helped by the
# generative term, which differs in kind from Kingma's and Pyro's balance.

# %%
show(S.M2.training_step)

# %% [markdown]
# ## Semi-supervised batches
#
# `SemiSupervisedSplit` stores the labelled rows first and the unlabelled rows with $y = -1$. An epoch visits every
# unlabelled image once, in an order fixed by the trainer's seeded generator; every batch of 200 also carries
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
# One `Trainer` for every M2 run: Adam, batch 200, the last epoch kept (the paper's model-selection split is not
# stated). The KL$(q(z\mid x,y)\,\|\,p(z))$ terms are warmed up linearly over the first `warmup_epochs` (the paper uses
# warm-up without giving the schedule). The learning rate (higher than the paper's 3e-4, to learn something in a few
# epochs), the number of epochs and the unlabelled subset of the `ci` profile were set by the CPU budget and a handful of
# exploratory runs scored on MNIST *validation* accuracy; no knob was chosen on a test set, and none on Fashion-MNIST.
# The supervised-only baseline is the same classifier network trained by cross-entropy on the labelled images alone
# (Adam 1e-3, batches of 25), stopped early on the MNIST validation error (checked every 5 epochs, patience 25 epochs,
# best weights restored).


# %% tags=["hide-input"]
def m2_builder(data, alpha, gamma=0.0, beta=0.0):
    split, x_dim = data.train, data.train.x[0].numel()
    steps_per_epoch = math.ceil(
        (len(split) - split.n_labelled) / (KNOBS["batch"] - KNOBS["labelled_per_batch"])
    )
    return lambda: S.M2(
        x_dim=x_dim,
        num_classes=data.num_classes,
        **KNOBS["net"],
        labelled_fraction=split.labelled_fraction,
        alpha=alpha,
        gamma=gamma,
        beta=beta,
        warmup_steps=KNOBS["warmup_epochs"] * steps_per_epoch,
    )


m2_trainer = Trainer(
    max_epochs=KNOBS["epochs"],
    max_steps=KNOBS["max_steps"],
    batch_size=KNOBS["batch"],
    lr=KNOBS["lr"],
    device=run.device,
    seed=run.seed,
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


def supervised_only(data, val):
    """The classifier alone on the labelled images, early-stopped on the validation
    split ``val``."""
    labelled = dataclasses.replace(data, train=data.train.labelled, val=val)
    return fit_cached(
        f"ch7-supervised-{data.name}",
        lambda: S.SupervisedClassifier(
            data.train.x[0].numel(), data.num_classes, KNOBS["net"]["classifier_hidden"]
        ),
        labelled,
        supervised_trainer,
    )


# %% [markdown]
# ## M2 on MNIST with 10 labels per class
#
# Kingma et al. report 11.97 ± 1.71 % error (about 88 %) with 100 labels in total after 3000 epochs; Pyro's
# example reaches 93.19 ± 0.60 % in 50 epochs with exact enumeration and a classification multiplier of 46, and
# 77.12 % for the supervised-only baseline. First the choice of $\alpha'$, on the validation images:

# %% tags=["hide-input"]
alpha_runs = {
    a: fit_cached(
        f"ch7-m2-mnist-10pc-alpha{a:g}", m2_builder(mnist_10, a), mnist_10, m2_trainer
    )
    for a in KNOBS["alphas"]
}
alpha_val = {
    a: S.evaluate_classifier(model, mnist.val)["accuracy"]
    for a, (model, _) in alpha_runs.items()
}
ALPHA = max(alpha_val, key=alpha_val.get)
metrics_["alpha_chosen"] = ALPHA
metrics_.update({f"val_acc_m2_mnist_alpha{a:g}": v for a, v in alpha_val.items()})
rows = [
    "| α' | weight per labelled example (× its bound) | MNIST validation accuracy |",
    "|---|---|---|",
]
rows += [
    f"| {a:g}{' (kept)' if a == ALPHA else ''} | "
    f"{a / mnist_10.train.labelled_fraction:,.0f} | {v:.4f} |"
    for a, v in alpha_val.items()
]
markdown(
    "\n".join(rows) + f"\n\nKept: α' = {ALPHA:g}, a weight of "
    f"{ALPHA / mnist_10.train.labelled_fraction:,.0f} "
    "per labelled example against Kingma's "
    f"{0.1 / mnist_10.train.labelled_fraction:,.0f} (α' = 0.1 on this "
    f"training set) and Pyro's 46."
)

# %% tags=["hide-input"]
m2_mnist, m2_mnist_record = alpha_runs[ALPHA]
sup_mnist, _ = supervised_only(mnist_10, mnist.val)
eval_m2_mnist = S.evaluate_classifier(m2_mnist, mnist.test)
eval_sup_mnist = S.evaluate_classifier(sup_mnist, mnist.test)
metrics_["acc_m2_mnist_10pc"] = eval_m2_mnist["accuracy"]
metrics_["acc_supervised_only_mnist_10pc"] = eval_sup_mnist["accuracy"]
diff, se = S.paired_accuracy_difference(m2_mnist, sup_mnist, mnist.test)
n_unlabelled_mnist = len(mnist_10.train) - mnist_10.train.n_labelled
markdown(
    f"M2 (α' = {ALPHA:g}) reaches **{eval_m2_mnist['accuracy']:.4f}** test accuracy, "
    "the supervised-only "
    f"classifier **{eval_sup_mnist['accuracy']:.4f}**: a difference of "
    f"{100 * diff:+.2f} ± {100 * se:.2f} "
    "points (paired standard error over the test images: test sampling only, not "
    "training variance), so here "
    f"the unlabelled images {'help' if diff > 2 * se else 'do not clearly help'}. "
    "Kingma: 0.880, Pyro: 0.9319 / "
    f"0.7712, after 3000 and 50 epochs on all 49,900 unlabelled images; this run: "
    f"{m2_mnist_record['history']['epochs']} epochs on {n_unlabelled_mnist:,}."
)

# %% [markdown]
# ## M2 against M2+MIER on Fashion-MNIST with 100 labels per class
#
# The same label draw, the same initial weights (the same seed builds both), the same batches and the same $\alpha'$
# (the one kept on MNIST validation); only $(\gamma, \beta)$ differ. Beside accuracy: the test entropy
# $\overline{H(q(y\mid x))}$ (nats), $\hat I(y; x)$ of Eq. 8 over the whole test set, the unlabelled bound $\mathcal U$ of Eq. 2
# (Bernoulli, grey levels, one $z$ per $(x, y)$) and the Bernoulli floor $-\overline{\sum_{\text{pixels}} H_b(x)}$, above
# which no Bernoulli bound on these images can go. The paper does not state its likelihood or the base of its
# entropies; that its Table 2 bounds are Bernoulli cross-entropies on grey levels is our inference (its −248.18 sits
# below the grey-level floor, as such a bound must), so the bound comparison is indicative only.

# %% tags=["hide-input"]
floor_fashion = S.bernoulli_floor(fashion.test.x)
metrics_["bernoulli_floor_fashion"] = (
    floor_fashion  # nats of cross-entropy: bounds are at most minus it
)
fashion_runs = {}  # (labels per class, draw, γ, β) -> (model, record)
settings = [
    (100, d, g_, b_)
    for d in KNOBS["draws"]
    for g_, b_ in [(0.0, 0.0), (GAMMA, BETA), *KNOBS["ablation"]]
]
settings += [
    (n, KNOBS["draws"][0], g_, b_)
    for n in KNOBS["fashion_labels"]
    if n != 100
    for g_, b_ in [(0.0, 0.0), (GAMMA, BETA)]
]
fashion_splits = {}
for n, draw, g_, b_ in settings:
    if (n, draw) not in fashion_splits:
        fashion_splits[n, draw] = semi_supervised(fashion, n, draw)
    data = fashion_splits[n, draw]
    fashion_runs[n, draw, g_, b_] = fit_cached(
        f"ch7-fashion-{n}pc-draw{draw}-g{g_:g}-b{b_:g}",
        m2_builder(data, ALPHA, g_, b_),
        data,
        m2_trainer,
    )

fashion_eval = {
    key: S.evaluate_classifier(model, fashion.test, bound=True, seed=run.seed)
    for key, (model, _) in fashion_runs.items()
}
rows = [
    "| labels/class | draw | γ | β | accuracy | test entropy | Î(y; x) | bound U "
    "(nats) | Bernoulli floor |",
    "|---|---|---|---|---|---|---|---|---|",
]
for (n, draw, g_, b_), e in sorted(fashion_eval.items()):
    rows.append(
        f"| {n} | {draw} | {g_:g} | {b_:g} | {e['accuracy']:.4f} | {e['entropy']:.4f} "
        f"| {e['mi']:.4f} | "
        f"{e['bound']:.2f} | {-floor_fashion:.2f} |"
    )
markdown("\n".join(rows))


# %% tags=["hide-input"]
def over_draws(gamma, beta, key):
    """The mean over the label draws of one test metric at 100 labels per class."""
    return sum(fashion_eval[100, d, gamma, beta][key] for d in KNOBS["draws"]) / len(
        KNOBS["draws"]
    )


def paired_gain(setting_a, setting_b):
    """acc(a) - acc(b) at 100 labels per class, mean over the draws, and its standard
    error: over the draws' paired differences when there are several draws, else over
    the test images (test sampling only)."""
    per_draw = [
        S.paired_accuracy_difference(
            fashion_runs[(100, d, *setting_a)][0],
            fashion_runs[(100, d, *setting_b)][0],
            fashion.test,
        )
        for d in KNOBS["draws"]
    ]
    diffs = torch.tensor([d_ for d_, _ in per_draw])
    if len(diffs) == 1:
        return (
            diffs[0].item(),
            per_draw[0][1],
            "paired standard error over test images: test sampling only",
        )
    return (
        diffs.mean().item(),
        (diffs.std() / math.sqrt(len(diffs))).item(),
        f"standard error over {len(diffs)} label draws",
    )


d0 = KNOBS["draws"][0]
m2_setting, mier_setting = (0.0, 0.0), (GAMMA, BETA)
for name, setting in [("m2", m2_setting), ("mier", mier_setting)]:
    metrics_[f"acc_{name}_fashion_100"] = over_draws(*setting, "accuracy")
    metrics_[f"entropy_{name}_fashion"] = over_draws(*setting, "entropy")
    metrics_[f"bound_{name}_fashion"] = over_draws(*setting, "bound")
    metrics_[f"mi_{name}_fashion"] = over_draws(*setting, "mi")
gain, gain_se, gain_spread = paired_gain(mier_setting, m2_setting)
metrics_["mier_gain_fashion_100"], metrics_["mier_gain_fashion_100_se"] = gain, gain_se
m = metrics_
entropy_falls = m["entropy_mier_fashion"] < m["entropy_m2_fashion"]
entropy_lower = "lower" if entropy_falls else "not lower"
draws_note = (
    ""
    if len(KNOBS["draws"]) == 1
    else f" (means over {len(KNOBS['draws'])} label draws)"
)
markdown(
    f"MIER changes accuracy by **{100 * gain:+.2f} ± {100 * gain_se:.2f}** "
    f"points{draws_note} ({gain_spread}; the "
    f"paper: +1.39). Test entropy {m['entropy_m2_fashion']:.4f} → "
    f"{m['entropy_mier_fashion']:.4f} "
    f"({entropy_lower}; paper 0.0439 → 0.0211), "
    f"Î(y; x) {m['mi_m2_fashion']:.3f} → {m['mi_mier_fashion']:.3f} nats "
    f"({'higher' if m['mi_mier_fashion'] > m['mi_m2_fashion'] else 'not higher'}; log "
    f"K = {math.log(10):.3f}), "
    f"bound {m['bound_m2_fashion']:.2f} → {m['bound_mier_fashion']:.2f} nats (paper "
    "−248.18 → −247.95), against a "
    f"Bernoulli floor of {-floor_fashion:.2f}: our bounds sit "
    f"{-(m['bound_m2_fashion'] + floor_fashion):.1f} and "
    f"{-(m['bound_mier_fashion'] + floor_fashion):.1f} nats below what any Bernoulli "
    "decoder could reach "
    "(the paper's M2 bound, against this test set's floor: "
    f"{248.18 - floor_fashion:.1f})."
)

# %% tags=["hide-input"]
for n in (250, 500):  # Table 3 (full profile): one label draw
    for name, setting in [("m2", m2_setting), ("mier", mier_setting)]:
        key = (n, KNOBS["draws"][0], *setting)
        metrics_[f"acc_{name}_fashion_{n}"] = (
            fashion_eval[key]["accuracy"] if key in fashion_eval else None
        )

# %% [markdown]
# ### Which part of Eq. 7 does the work?
#
# $(\gamma, \beta) = (0, 6)$ has MIER's per-example entropy coefficient ($1 - \gamma - \beta = -5$) without the marginal term
# $\gamma H(q(y))$. An attribution needs a gain to attribute: only if MIER beats M2 by more than two standard errors do
# we compare the ablation with MIER. Then, if it matches MIER, entropy minimisation does the work; if it falls short
# (or collapses onto few classes: a low $\hat I$ with a low entropy), the marginal term is what keeps the classes in use.

# %% tags=["hide-input"]
abl = {
    (g_, b_): (
        over_draws(g_, b_, "accuracy"),
        over_draws(g_, b_, "entropy"),
        over_draws(g_, b_, "mi"),
    )
    for g_, b_ in [m2_setting, mier_setting, *KNOBS["ablation"]]
}
rows = [
    "| (γ, β) | per-example H coefficient 1 − γ − β | marginal H coefficient γ | "
    "accuracy | entropy | Î |",
    "|---|---|---|---|---|---|",
]
for (g_, b_), (acc_, ent_, mi_) in abl.items():
    rows.append(
        f"| ({g_:g}, {b_:g}) | {1 - g_ - b_:g} | {g_:g} | {acc_:.4f} | {ent_:.4f} | "
        f"{mi_:.3f} |"
    )
entropy_only = KNOBS["ablation"][0]
abl_diff, abl_se, abl_spread = paired_gain(entropy_only, mier_setting)
metrics_["acc_entropy_only_fashion_100"] = abl[entropy_only][0]
if gain <= 2 * gain_se:
    verdict = (
        f"MIER does not clearly beat M2 here ({100 * gain:+.2f} ± {100 * gain_se:.2f} "
        f"points, {gain_spread}), "
        "so the ablation cannot attribute a gain to either term."
    )
elif abs(abl_diff) <= 2 * abl_se:
    verdict = (
        "within two standard errors of MIER: in this run the per-example entropy "
        "penalty does the work."
    )
elif abl_diff < 0:
    verdict = (
        "more than two standard errors below MIER: in this run the marginal-entropy "
        "term matters."
    )
else:
    verdict = (
        "more than two standard errors above MIER: in this run the marginal-entropy "
        "term does not help."
    )
markdown(
    "\n".join(rows)
    + "\n\n"
    + (
        f"Without the marginal term, accuracy is {abl[entropy_only][0]:.4f} against "
        f"MIER's {abl[mier_setting][0]:.4f}, "
        f"a difference of {100 * abl_diff:+.2f} ± {100 * abl_se:.2f} points "
        f"({abl_spread}). " + verdict
    )
)

# %% [markdown]
# ### Information and entropy over training
#
# The paper's claim is that maximising M2's bound lowers $I(y; x)$ (Eq. 6) and raises the classifier's entropy. The
# trainer logs both ({numref}`fig-ch7-information`), averaged per epoch over the batches' unlabelled rows ($\hat I$ on a batch of 180 is biased low).

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
for (g_, b_), label in [
    ((0.0, 0.0), "M2"),
    ((GAMMA, BETA), "M2+MIER"),
    (KNOBS["ablation"][0], "per-example only"),
]:
    hist = fashion_runs[100, d0, g_, b_][1]["history"]["train"]
    epochs_ = range(1, len(hist["mi"]) + 1)
    axes[0].plot(epochs_, hist["mi"], marker="o", label=label)
    axes[1].plot(epochs_, hist["entropy"], marker="o", label=label)
axes[0].set(
    xlabel="epoch", ylabel="Î(y; x) on batches (nats)", title="mutual information"
)
axes[1].set(xlabel="epoch", ylabel="mean H(q(y|x)) (nats)", title="classifier entropy")
axes[0].legend(frameon=False)
with torch.no_grad():
    x_show = fashion.test.x[:10]
    m2_model, mier_model = (
        fashion_runs[100, d0, 0.0, 0.0][0],
        fashion_runs[100, d0, GAMMA, BETA][0],
    )
    recon = [
        torch.sigmoid(
            m.decode(
                m.encode(x_show, m.classify(x_show).argmax(1))[0],
                m.classify(x_show).argmax(1),
            )
        )
        for m in (m2_model, mier_model)
    ]
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
    "Fashion-MNIST, 100 labels per class. Left: the mutual information $\\hat I(y; x)$ "
    "of the classifier on the unlabelled rows of each batch (nats), mean per epoch, "
    "for M2, M2+MIER and the per-example-entropy ablation. Middle: the mean entropy "
    "$H(q(y\\mid x))$ of the classifier (nats) on the same rows. Right: ten test "
    "images (top), their M2 reconstructions and their M2+MIER reconstructions at the "
    "predicted label.",
)
hist_m2 = fashion_runs[100, d0, 0.0, 0.0][1]["history"]["train"]
mi_trend = "fell" if hist_m2["mi"][-1] < hist_m2["mi"][0] else "rose"
h_trend = "rose" if hist_m2["entropy"][-1] > hist_m2["entropy"][0] else "fell"
markdown(
    f"Under M2, the batch Î {mi_trend} ({hist_m2['mi'][0]:.3f} → "
    f"{hist_m2['mi'][-1]:.3f} nats) and the entropy "
    f"{h_trend} ({hist_m2['entropy'][0]:.3f} → {hist_m2['entropy'][-1]:.3f}) from the "
    "first to the last epoch: "
    f"{'as' if mi_trend == 'fell' else 'the other way round from what'} the paper "
    "claims for Î and "
    f"{'as' if h_trend == 'rose' else 'the other way round from what'} it claims for "
    "the entropy. Here the "
    "classifier starts untrained and the classification term weighs "
    f"{ALPHA / fashion_splits[100, d0].train.labelled_fraction:,.0f} times the bound "
    "per labelled image, so these "
    "curves show the first "
    f"{len(hist_m2['mi'])} epochs of learning, not the late phase of a 1000-epoch run "
    "that the paper describes."
)


# %% [markdown]
# ## Grey CIFAR-10, KMNIST and SVHN (`full` profile)
#
# The `full` profile trains grey CIFAR-10 (ITU-R 601-2 luma, as the paper converts colour) at 100, 250 and 500 labels
# per class. KMNIST and SVHN are torchvision downloads; the book's data layer serves only MNIST, Fashion-MNIST and
# CIFAR-10 offline, so they are skipped, and their paper rows stay in the scorecard.

# %% tags=["hide-input"]
if KNOBS["cifar10"]:
    cifar = with_test_limit(load_dataset("cifar10", device=run.device))
    cifar = dataclasses.replace(
        cifar, train=S.greyscale(cifar.train), val=None, test=S.greyscale(cifar.test)
    )
    floor_cifar = S.bernoulli_floor(cifar.test.x)
    cifar_eval = {}
    for n in KNOBS["fashion_labels"]:
        data = semi_supervised(cifar, n, d0)
        for g_, b_ in [(0.0, 0.0), (GAMMA, BETA)]:
            model, _ = fit_cached(
                f"ch7-cifar10grey-{n}pc-draw{d0}-g{g_:g}-b{b_:g}",
                m2_builder(data, ALPHA, g_, b_),
                data,
                m2_trainer,
            )
            cifar_eval[n, g_, b_] = S.evaluate_classifier(
                model, cifar.test, bound=True, seed=run.seed
            )
    metrics_["bernoulli_floor_cifar10"] = floor_cifar
    for n in KNOBS["fashion_labels"]:
        for name, setting in [("m2", m2_setting), ("mier", mier_setting)]:
            metrics_[f"acc_{name}_cifar10_{n}"] = cifar_eval[(n, *setting)]["accuracy"]
    for name, setting in [("m2", m2_setting), ("mier", mier_setting)]:
        metrics_[f"entropy_{name}_cifar10"] = cifar_eval[(100, *setting)]["entropy"]
        metrics_[f"bound_{name}_cifar10"] = cifar_eval[(100, *setting)]["bound"]
    markdown(
        "\n".join(
            [
                "| labels/class | (γ, β) | accuracy | entropy | Î | bound |",
                "|---|---|---|---|---|---|",
            ]
            + [
                f"| {n} | ({g_:g}, {b_:g}) | {e['accuracy']:.4f} | {e['entropy']:.4f} "
                f"| {e['mi']:.3f} | "
                f"{e['bound']:.2f} (floor {-floor_cifar:.2f}) |"
                for (n, g_, b_), e in cifar_eval.items()
            ]
        )
    )
else:
    metrics_.update(
        {
            f"{m_}_{name}_cifar10{n_}": None
            for m_, n_ in [
                ("acc", "_100"),
                ("acc", "_250"),
                ("acc", "_500"),
                ("entropy", ""),
                ("bound", ""),
            ]
            for name in ("m2", "mier")
        }
    )
    metrics_["bernoulli_floor_cifar10"] = None
    print(f"profile {run.profile}: grey CIFAR-10 runs only in the full profile")
for name in ("kmnist", "svhn"):
    metrics_[f"acc_m2_{name}_100"] = metrics_[f"acc_mier_{name}_100"] = None
print(
    "KMNIST and SVHN skipped: they are torchvision downloads that lvmcls.data does not "
    "serve (offline here); "
    "their paper rows are kept in the scorecard"
)

# %% [markdown]
# ## Scorecard
#
# Paper numbers: MIER Table 1 (accuracy at 100 labels per class, M2 and M2+MIER rows), Table 3 (250 and 500 labels
# per class), Table 2 (test entropy and bound, Fashion-MNIST and CIFAR-10), Kingma et al. 2014 Table 1 (M2, 100 labels: 11.97 % error) and Pyro's SS-VAE example
# (93.19 %, supervised-only 77.12 %; the MNIST row lists Kingma, then Pyro). The Bernoulli floor is our measurement
# of the test set (a cross-entropy in nats: every Bernoulli bound is at most minus it), not a paper number; in `ci`
# the Fashion-MNIST numbers are one label draw, in `full` means over the draws.

# %% tags=["hide-input"]
PAPER = {
    "acc_m2_mnist_10pc": [0.880, 0.9319],
    "acc_supervised_only_mnist_10pc": 0.7712,
    "acc_m2_fashion_100": 0.7884,
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
    "acc_m2_fashion_250": 0.8197,
    "acc_mier_fashion_250": 0.8261,
    "acc_m2_fashion_500": 0.8354,
    "acc_mier_fashion_500": 0.8429,
    "acc_m2_cifar10_250": 0.3108,
    "acc_mier_cifar10_250": 0.3192,
    "acc_m2_cifar10_500": 0.3297,
    "acc_mier_cifar10_500": 0.3352,
    "entropy_m2_cifar10": 0.3742,
    "entropy_mier_cifar10": 0.1551,
    "bound_m2_cifar10": -636.20,
    "bound_mier_cifar10": -638.31,
}
card_keys = [
    "acc_m2_mnist_10pc",
    "acc_supervised_only_mnist_10pc",
    "acc_m2_fashion_100",
    "acc_mier_fashion_100",
    "mier_gain_fashion_100",
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
    "acc_m2_fashion_250",
    "acc_mier_fashion_250",
    "acc_m2_fashion_500",
    "acc_mier_fashion_500",
    "acc_m2_cifar10_250",
    "acc_mier_cifar10_250",
    "acc_m2_cifar10_500",
    "acc_mier_cifar10_500",
    "entropy_m2_cifar10",
    "entropy_mier_cifar10",
    "bound_m2_cifar10",
    "bound_mier_cifar10",
    "bernoulli_floor_cifar10",
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
    },
)
print(f"wrote {path.name}")
scorecard(STEM, {k: metrics_.get(k) for k in card_keys}, PAPER)

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
print({k: round(v, 3) for k, v in sorted(metrics_.items()) if isinstance(v, float)})

# %% [markdown]
# ## Conclusion

# %% tags=["hide-input"]
m = metrics_
m2_beats_supervised = m["acc_m2_mnist_10pc"] > m["acc_supervised_only_mnist_10pc"]
m2_above = "above" if m2_beats_supervised else "not above"
entropy_falls = m["entropy_mier_fashion"] < m["entropy_m2_fashion"]
mier_lowers = "lowers" if entropy_falls else "does not lower"
mi_rises = m["mi_mier_fashion"] > m["mi_m2_fashion"]
mier_raises = "raises" if mi_rises else "does not raise"
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
                "- M2 on MNIST with 10 labels per class: "
                f"{m['acc_m2_mnist_10pc']:.4f}, "
                f"{m2_above} the supervised-only "
                f"classifier's {m['acc_supervised_only_mnist_10pc']:.4f}, with α' = "
                f"{ALPHA:g} chosen on MNIST validation; "
                "Kingma's 0.880 and Pyro's 0.9319 come from 3000 and 50 epochs on all "
                "unlabelled images (Pyro: one hidden layer of "
                f"500), this run from {m2_mnist_record['history']['epochs']} epochs on "
                f"{n_unlabelled_mnist:,} unlabelled images "
                f"with z of {KNOBS['net']['latent_dim']}, "
                f"{KNOBS['net']['depth']}×{KNOBS['net']['hidden']} encoder and decoder "
                "and "
                f"a classifier of {KNOBS['net']['classifier_hidden']} hidden units."
            ),
            (
                f"- On Fashion-MNIST at 100 labels per class, MIER "
                f"{mier_lowers} the test entropy "
                f"({m['entropy_m2_fashion']:.4f} → {m['entropy_mier_fashion']:.4f}) "
                "and "
                f"{mier_raises} Î(y; x) "
                f"({m['mi_m2_fashion']:.3f} → {m['mi_mier_fashion']:.3f}), "
                f"{'both as' if entropy_falls and mi_rises else 'not both as'}"
                " the paper says; the accuracy change is "
                f"{100 * m['mier_gain_fashion_100']:+.2f} ± "
                f"{100 * m['mier_gain_fashion_100_se']:.2f} points "
                f"({gain_spread}; paper +1.39, one run per setting, no spread given)."
            ),
            (
                f"- The bounds ({m['bound_m2_fashion']:.2f}, "
                f"{m['bound_mier_fashion']:.2f} nats) are Bernoulli cross-entropies on "
                "grey levels, as we infer the paper's are; the floor "
                f"{-m['bernoulli_floor_fashion']:.2f} shows how much of any "
                "such number is the grey levels' own entropy rather than the model."
            ),
        ]
    )
)

# %% [markdown]
# Where the book departs from the paper:
# - `ci`: narrower networks (a smaller z, one narrow hidden layer in encoder and decoder, a classifier of 500 hidden
#   units rather than 600), a subset of the unlabelled images and a few epochs (the `KNOBS` table above);
#   `full`: the paper's networks, 15 epochs, not 1000;
# - learning rate 2e-3 (`ci`) and 1e-3 (`full`) against the paper's 3e-4, with no halving every 150 epochs;
# - the training pool: MNIST and Fashion-MNIST train on 50,000 images, the last 10,000 training images held out as the
#   validation split (used only to choose $\alpha'$ and to stop the supervised baseline); grey CIFAR-10 trains on
#   45,000 in `full`. The paper splits its whole training set into labelled and unlabelled;
# - a classification weight $\alpha'$ chosen on validation among `KNOBS["alphas"]` rather than Kingma's 0.1 (the paper
#   does not state its $\alpha$);
# - in `full`, only the 100-label settings (M2, MIER and the ablation) run on several label draws; 250 and 500 labels
#   per class and grey CIFAR-10 use one draw;
# - the last epoch rather than a "best" model on an unstated split; one $z$ sample per $(x, y)$ in the reported bounds;
# - no t-SNE of the latent space (the issue lists it for `full`).
#
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# ```
