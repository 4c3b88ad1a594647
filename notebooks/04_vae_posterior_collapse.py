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
# # 4. VAEs and posterior collapse
#
# The classifiers of Chapters 1–3 use the arrows $x \to z \to y$. A variational autoencoder
# {cite}`kingma2014vae` uses the other half of the picture: a decoder $p_\theta(x\mid z)$ and an encoder $q_\phi(z\mid x)$.
# Its training objective, the ELBO, contains a KL term that can be driven to zero: the latents then carry no
# information about the input, "posterior collapse". This chapter derives the ELBO, splits its KL into a
# mutual information and a marginal divergence {cite}`hoffman2016elbo`, checks the split numerically, and
# reproduces two observations of the VAE-AS paper: fewer active units as the decoder grows deeper (its Table 1),
# and a KL that falls towards zero on inputs without structure. The next chapter estimates the two parts of the
# KL with an auxiliary classifier (VAE-AS) and trains them with separate weights.
#
# Run it yourself: the launch menu at the top of the page (the rocket) opens this notebook on Colab;
# on a GPU runtime `profile="auto"` selects the `full` profile: 40 epochs per VAE at batch 256 in fp32 (bf16 autocast
# is slower for these small MLPs: `bench/gpu_efficiency.py`), about 4 minutes on one H100 instead of the paper's
# training to convergence. `smoke` runs the same code for a few steps on tiny subsets (a CI check).

# %% [markdown]
# ## Setup

# %%
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("lvmcls") is None:  # on Colab: install the book's library (torch is already there)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "git+https://github.com/lvmcls/lvmcls"], check=True)

import math

import matplotlib.pyplot as plt
import torch

from lvmcls import plots
from lvmcls import vae as V
from lvmcls.data import balanced_subset, binarized_dataset, load_dataset
from lvmcls.synthetic import random_binary_images
from lvmcls.notebook import markdown, setup, show
from lvmcls.results import scorecard, write_results
from lvmcls.train import Trainer, fit_cached, pick_device

device = pick_device()

# %% tags=["parameters"]
profile = "auto"  # "auto" | "ci" | "full" | "smoke"
seed = 0
z_dim = 40  # the VAE-AS paper: 40 latent dimensions, 500 hidden units
hidden = 500
epochs = None  # None: the profile's default
mc_samples = None  # data points in the Monte Carlo aggregate posterior

# %%
FULL_MINUTES_H100 = 2.4  # measured: wall_time_s of results/full/04_vae_posterior_collapse.json
run = setup(profile, seed, device, full_minutes_h100=FULL_MINUTES_H100)
# batch: the mini-batch; amp: bf16 autocast (None: the Trainer's default, on for CUDA); subsets: smoke's
# class-balanced train / test sizes and random-image counts; iw_images: test images for the IW NLL
KNOBS = {"ci": {"epochs": 6, "mc_samples": 5000, "depths": [1, 2, 3, 4, 5], "random_epochs": 4, "iw_k": 50,
                "batch": 128, "amp": None, "iw_images": 1000, "subsets": None},
         "full": {"epochs": 40, "mc_samples": 20_000, "depths": [1, 2, 3, 4, 5], "random_epochs": 30, "iw_k": 1000,
                  "batch": 256, "amp": False, "iw_images": 1000, "subsets": None},
         "smoke": {"epochs": 1, "mc_samples": 500, "depths": [1, 2, 3, 4, 5], "random_epochs": 1, "iw_k": 1000,
                   "batch": 256, "amp": False, "iw_images": 20, "subsets": {"train": 1000, "test": 500}},
         }[run.profile]
epochs = epochs or KNOBS["epochs"]
mc_samples = mc_samples or KNOBS["mc_samples"]
STEM = "04_vae_posterior_collapse"
metrics_ = {}

# %% [markdown]
# ## The data: binarised MNIST
#
# A fixed stochastic binarisation (each pixel is 1 with probability equal to its grey level, drawn once with
# seed 0) of the official images: 50,000 training, 10,000 validation, 10,000 test (the paper uses 55,000 /
# 10,000 with the validation images folded differently).

# %%
mnist = load_dataset("mnist", device=run.device)
if KNOBS["subsets"] is not None:  # smoke: class-balanced subsets
    n_train, n_test = KNOBS["subsets"]["train"] // 10, KNOBS["subsets"]["test"] // 10
    mnist = mnist.replace(train=balanced_subset(mnist.train, n_train, seed=0),
                          val=balanced_subset(mnist.val, n_test, seed=0), test=balanced_subset(mnist.test, n_test, seed=0))
bmnist = binarized_dataset(mnist)
print(mnist)

# %% [markdown]
# ## The ELBO and its KL term
#
# **The ELBO.** For any $q_\phi(z\mid x)$, Jensen's inequality on $\log p_\theta(x) = \log \mathbb E_{q_\phi(z\mid x)}[p_\theta(x, z)/q_\phi(z\mid x)]$ gives
#
# $$
# \log p_\theta(x) \;\ge\; \mathbb E_{q_\phi(z\mid x)} \log p_\theta(x\mid z) - \mathrm{KL}\big(q_\phi(z\mid x)\,\|\,p(z)\big) = \text{ELBO}(x),
# $$
#
# with equality when $q_\phi(z\mid x) = p_\theta(z\mid x)$. With $q_\phi(z\mid x) = \mathcal N(\mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x))$ and $p(z) = \mathcal N(0, I)$
# the KL is closed-form, $\tfrac12\sum_d(\mu_d^2 + \sigma_d^2 - 1 - \log\sigma_d^2)$, and the expectation is estimated with
# one reparameterised sample $z = \mu + \sigma\odot\varepsilon$.
#
# **The KL splits over the data** (VAE-AS appendix 7.1). Let the data be $x_1,\dots,x_N$ with $p(x_n) = 1/N$ and let
# $q(z) = \frac1N\sum_n q_\phi(z\mid x_n)$ be the aggregate posterior. Multiply and divide by $q(z)$ inside the log:
#
# $$
# \mathbb E_{x}\,\mathrm{KL}\big(q_\phi(z\mid x)\,\|\,p(z)\big)
# = \mathbb E_{x}\,\mathbb E_{q_\phi(z\mid x)}\Big[\log\frac{q_\phi(z\mid x)}{q(z)} + \log\frac{q(z)}{p(z)}\Big]
# = \underbrace{I_q(z; x)}_{\text{mutual information}} + \underbrace{\mathrm{KL}\big(q(z)\,\|\,p(z)\big)}_{\text{marginal divergence}},
# $$
#
# because $\mathbb E_x q_\phi(z\mid x) = q(z)$. Penalising the KL therefore penalises the information the latents carry
# about the input, as well as the mismatch of their marginal with the prior.
#
# **The bound $0 \le I_q(z;x) \le \log N$** (appendix 7.2): $I = H(x) - H(x\mid z)$ under the joint
# $q(x, z) = \frac1N q_\phi(z\mid x)$; $x$ is uniform over $N$ points, so $H(x) = \log N$, and $H(x\mid z) \ge 0$ for a discrete $x$.
#
# **Monte Carlo estimates** {cite}`hoffman2016elbo`. Draw $z_i \sim q_\phi(z\mid x_i)$ for $S$ data points and estimate
# $\log q(z_i)$ by the mixture over those $S$ points: `aggregate_posterior_terms` below. Its bias is the subject
# of the next chapter.

# %%
show(V.aggregate_posterior_terms)

# %% [markdown]
# ## Training VAEs with 1 to 5 decoder layers
#
# One encoder layer, 1–5 decoder layers of 500 units, $z \in \mathbb R^{40}$, Adam at 1e-3, batch 128 (`full`: 256),
# with the book's one `Trainer` (a VAE's `training_step` returns the negative ELBO). The `ci` profile trains a few
# epochs and `full` 40; the paper trains to convergence.

# %%
vae_trainer = Trainer(max_epochs=epochs, batch_size=KNOBS["batch"], lr=1e-3, device=run.device, seed=run.seed,
                      amp=KNOBS["amp"])


def vae_with_decoder_depth(depth):
    return lambda: V.VAE(x_dim=784, z_dim=z_dim, hidden=hidden, decoder_depth=depth)


vaes, records = {}, {}
for depth in KNOBS["depths"]:
    vaes[depth], records[depth] = fit_cached(f"ch4-vae-depth{depth}", vae_with_decoder_depth(depth), bmnist,
                                             vae_trainer)

rows = ["| decoder layers | active units (ours) | active units (paper, Table 1) | KL (test) | -ELBO (test) | "
        f"NLL (test, IW k = {KNOBS['iw_k']}) |", "|---|---|---|---|---|---|"]
PAPER_AU = {1: 23, 2: 21, 3: 17, 4: 12, 5: 8}
au_by_depth = []
n_iw = KNOBS["iw_images"]  # test images for the importance-weighted NLL
for depth, model in vaes.items():
    mean, log_var = V.posterior_params(model, bmnist.test.x)
    au = V.active_units(mean)
    au_by_depth.append(au)
    with torch.no_grad():
        t = model.elbo_terms(bmnist.test.x)
    nll = V.importance_weighted_nll(model, bmnist.test.x[:n_iw], k=KNOBS["iw_k"]).mean().item()
    rows.append(f"| {depth} | {au} | {PAPER_AU[depth]} | {t['kl'].mean():.2f} | {(t['kl'] - t['rec']).mean():.2f} | "
                f"{nll:.2f} |")
metrics_["active_units_by_depth"] = au_by_depth
markdown("\n".join(rows))

# %% [markdown]
# A deeper decoder can model more of the image on its own, so it needs fewer latent dimensions: the claim of the
# paper's Table 1 is that active units fall with depth. Compare the two columns; a `ci` run is far from
# convergence, and the number of active units of a VAE keeps changing over training.

# %% [markdown]
# ## The decomposition, checked
#
# On the one-layer VAE: the closed-form mean KL over $S$ test points against the Monte Carlo $I + \mathrm{KL}(q(z)\,\|\,p(z))$ on the
# same points. The two must agree within Monte Carlo error, and $0 \le I \le \log S$.

# %%
mean, log_var = V.posterior_params(vaes[1], bmnist.test.x)
idx = torch.randperm(len(mean), generator=torch.Generator().manual_seed(run.seed))[:mc_samples]
kl_mean = V.mean_kl(mean[idx], log_var[idx])
terms = V.aggregate_posterior_terms(mean[idx], log_var[idx], seed=run.seed)
gap = kl_mean - terms["mi"] - terms["md"]
mc_error = math.hypot(terms["mi_se"], terms["md_se"])
metrics_["kl_decomposition_gap"] = gap
metrics_["kl_decomposition_mc_se"] = mc_error
metrics_["mi_depth1"], metrics_["md_depth1"] = terms["mi"], terms["md"]
print(f"S = {terms['samples']}: mean KL {kl_mean:.3f} = I {terms['mi']:.3f} + MD {terms['md']:.3f} "
      f"+ gap {gap:.3f}  (Monte Carlo standard error {mc_error:.3f}); log S = {math.log(terms['samples']):.3f}")

# %% [markdown]
# ## Where the KL goes: per dimension, reconstructions, samples

# %%
fig, axes = plt.subplots(1, 3, figsize=(16, 4.2), gridspec_kw={"width_ratios": [1.2, 1, 1]})
kl_dim = V.kl_per_dimension(mean, log_var).cpu()
order = kl_dim.argsort(descending=True)
axes[0].bar(range(z_dim), kl_dim[order])
axes[0].axhline(0.01, color="gray", ls=":")
axes[0].set(xlabel="latent dimension (sorted)", ylabel="mean KL (nats)", title="KL per dimension, 1-layer decoder")
x_show = bmnist.test.x[:10]
recon = vaes[1].reconstruct(x_show).cpu()
plots.image_grid(axes[1], torch.cat([x_show.cpu().flatten(1), recon]), ncol=10, title="test images (top), reconstructions")
plots.image_grid(axes[2], vaes[1].sample(20, generator=torch.Generator().manual_seed(run.seed)).cpu(), ncol=10,
                 title="samples from p(z) through the decoder")
fig.tight_layout()

# %% [markdown]
# ## Inputs without structure: the KL falls towards zero
#
# Train the same VAE on images of independent fair coin flips. No latent code can help the decoder predict a
# pixel, so the optimum sets $q_\phi(z\mid x) = p(z)$ and the KL to zero: the posterior collapses because collapsing is
# the right answer.

# %%
n_noise = 10_000 if KNOBS["subsets"] is None else KNOBS["subsets"]["train"]
noise = random_binary_images(n_noise, n_noise // 5, seed=run.seed, device=run.device)
noise_vae, noise_record = fit_cached("ch4-vae-random", vae_with_decoder_depth(1), noise,
                                     Trainer(max_epochs=KNOBS["random_epochs"], batch_size=KNOBS["batch"], lr=1e-3,
                                             device=run.device, seed=run.seed, amp=KNOBS["amp"]))
kl_curve = noise_record["history"]["val"]["kl"]
metrics_["random_images_final_kl"] = kl_curve[-1]
fig, ax = plt.subplots(figsize=(5.5, 3.4))
ax.plot(range(1, len(kl_curve) + 1), kl_curve, marker="o", label="random images")
ax.plot(range(1, len(records[1]["history"]["val"]["kl"]) + 1), records[1]["history"]["val"]["kl"], marker="o",
        label="binarised MNIST")
ax.set(yscale="log", xlabel="epoch", ylabel="KL(q(z|x) ‖ p(z)) on validation", title="the KL term during training")
ax.legend(frameon=False)
print(f"final validation KL: random images {kl_curve[-1]:.4f} nats, MNIST {records[1]['history']['val']['kl'][-1]:.2f} nats")

# %% [markdown]
# ## Scorecard
#
# The *full profile* column is read from `results/full/04_vae_posterior_collapse.json`, a run of this chapter's
# `full` profile on a GPU; the line under the table names that GPU (from the file's `device`), the commit and the
# wall time.

# %%
PAPER = {"active_units_by_depth": [PAPER_AU[d] for d in KNOBS["depths"]]}
path = write_results(STEM, profile=run.profile, device=run.device, seeds=[run.seed],
                     data_source={"mnist": bmnist.source, "random": noise.source}, metrics=metrics_, paper=PAPER,
                     wall_time_s=run.elapsed(), knobs={**KNOBS, "z_dim": z_dim, "hidden": hidden, "epochs": epochs,
                                                       "mc_samples": mc_samples})
print(f"wrote {path.name}")
scorecard(STEM, metrics_, PAPER)

# %%
# NBVAL_CHECK_OUTPUT
print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in sorted(metrics_.items())})

# %% [markdown]
# ## Conclusion
#
# - The KL term of the ELBO is the mutual information between inputs and latents plus the divergence of the
#   aggregate posterior from the prior, checked above within Monte Carlo error.
# - Minimising it therefore pushes the latents to carry less information; a decoder that can model the data
#   alone (deeper) or data without structure (random images) lets it go to zero.
# - The next chapter estimates the two parts with a classifier over sample indices and weights them separately.
#
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# ```
