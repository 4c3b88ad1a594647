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
# # 6. Branched VAE classifiers
#
# The VAE of Chapters 4–5 never sees a label, so nothing makes its latent space sort the digits. The branched VAE
# (BVAE) {cite}`bvae2024` adds one term to the VAE's loss: the cross-entropy of a small classifier fed with the
# sampled latent $z$. This chapter derives what that term does to the ELBO, builds the BVAE and the paper's
# "fixed-output" VAE, and measures what the latent space learns about the labels: classifiers and k-means
# clusterings fitted on frozen latents, on MNIST and on randomly rotated MNIST, with 2 and 10 latent dimensions.
#
# We have only a summary of the paper: its architecture, its objective and four numbers. Where this page
# interprets it, it says so.
#
# Run it yourself: the launch menu at the top of the page (the rocket) opens this notebook on Colab;
# on a GPU runtime `profile="auto"` selects the `full` profile.

# %% [markdown]
# ## Setup

# %%
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("lvmcls") is None:  # on Colab: install the book's library (torch is already there)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "git+https://github.com/lvmcls/lvmcls"], check=True)

import dataclasses
import os

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch
from IPython.display import Markdown

from lvmcls import plots
from lvmcls import probes as P
from lvmcls import vae as V
from lvmcls.data import balanced_subset, load_dataset
from lvmcls.notebook import setup, show
from lvmcls.results import scorecard, write_results
from lvmcls.train import Trainer, fit_cached, pick_device
from lvmcls.transforms import class_reweighted, class_templates, rotate, rotated_split

device = pick_device()

# %% tags=["parameters"]
profile = "auto"  # "auto" | "ci" | "full"
seed = 0
epochs = None  # None: the profile's default
per_class = None  # training images per digit; None: the profile's default (0: all 50,000)

# %%
if profile == "auto":  # run as a plain script: PROFILE=ci python notebooks/06_branched_vae.py
    profile = os.environ.get("PROFILE", profile)
run = setup(profile, seed, device)
KNOBS = {"ci": {"network": "mlp", "hidden": 400, "per_class": 3000, "epochs": 6, "lams": [0, 10, 100],
                "probe_train": 10_000, "batch_size": 128, "lr": 1e-3},
         "full": {"network": "conv", "hidden": 128, "per_class": 0, "epochs": 15, "lams": [0, 1, 10, 100, 1000],
                  "probe_train": 20_000, "batch_size": 128, "lr": 1e-3}}[run.profile]
epochs = epochs or KNOBS["epochs"]
per_class = KNOBS["per_class"] if per_class is None else per_class
STEM = "06_branched_vae"
WEIGHTED_DIGITS, WEIGHT = (0, 1, 2), 10.0
metrics_ = {}

# %% [markdown]
# ## The model and its objective
#
# **The VAE** (Chapter 4): $z \sim p(z) = \mathcal N(0, I)$, $x\mid z \sim \mathrm{Bernoulli}(\sigma(g_\theta(z)))$, inference
# $q_\phi(z\mid x) = \mathcal N(\mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x))$, trained by minimising the negative ELBO
# $-\mathbb E_{q_\phi(z\mid x)}\log p_\theta(x\mid z) + \mathrm{KL}(q_\phi(z\mid x)\,\|\,p(z)) \ge -\log p_\theta(x)$.
#
# **The BVAE** adds a branch $c_\psi$ (dense → ReLU → dense → softmax) on the *sampled* $z$ and its cross-entropy with the
# label, weighted by $\lambda$; the paper's objective $L_{\rm BVAE} = \alpha L_{\rm recon} + L_{\rm KL} + \lambda L_C$ is, per example,
#
# $$
# L_{\rm BVAE}(x, y) = -\alpha\,\mathbb E_{q_\phi(z\mid x)}\log p_\theta(x\mid z) + \mathrm{KL}\big(q_\phi(z\mid x)\,\|\,p(z)\big)
# - \lambda\,\mathbb E_{q_\phi(z\mid x)}\log p_\psi(y\mid z),
# $$ (eq-bvae)
#
# estimated with one reparameterised sample $z = \mu + \sigma\odot\varepsilon$ shared by both expectations.
#
# **What it is a bound on.** With $\alpha = \lambda = 1$, $-L_{\rm BVAE}$ is the ELBO of a different generative model, one in which
# the label is a second child of the latent, $p(x, y, z) = p(z)\,p_\theta(x\mid z)\,p_\psi(y\mid z)$: Jensen's inequality on
# $\log p(x, y) = \log \mathbb E_{q_\phi(z\mid x)}\big[p(z)\,p_\theta(x\mid z)\,p_\psi(y\mid z)/q_\phi(z\mid x)\big]$ gives
#
# $$
# \log p(x, y) \;\ge\; \mathbb E_{q}\log p_\theta(x\mid z) + \mathbb E_{q}\log p_\psi(y\mid z) - \mathrm{KL}\big(q_\phi(z\mid x)\,\|\,p(z)\big),
# $$ (eq-bvae-elbo)
#
# with the gap $\mathrm{KL}(q_\phi(z\mid x)\,\|\,p(z\mid x, y))$: the encoder does not see $y$. As a bound on the image alone it is
# *looser* than the VAE's: $\log p_\psi(y\mid z) \le 0$, so $-L_{\rm BVAE} = \mathrm{ELBO}(x) - \lambda\,\mathrm{CE} \le \mathrm{ELBO}(x) \le \log p_\theta(x)$.
# The BVAE pays for label structure in its latent space with a worse bound on the images. For $\lambda \ne 1$ it is the
# ELBO of a tempered model, $p_\psi(y\mid z)^\lambda$. The scale matters: the cross-entropy of 10 classes is at most about
# $\log 10 \approx 2.3$ nats, while $-\log p_\theta(x\mid z)$ of an MNIST image is of the order of 100 nats (measured below), so at $\lambda = 1$ the label is a
# percent-sized perturbation of the objective. That is why the sweep below goes to $\lambda = 100$.
#
# **$\lambda = 0$ is the VAE**, exactly: the same number for the same seed (a test in `tests/test_bvae.py`), and then the
# branch receives no gradient. The branch's gradient reaches the encoder through $z$ and never the decoder, since
# $\log p_\psi(y\mid z)$ does not involve $\theta$ (also tested).
#
# **Relation to the other chapters.** Chapter 2's latent classifier also shapes a latent space with labels, but through
# the *prior*: class-conditional Gaussians $p(z\mid y)$ and arrows $x \to z \to y$ with Bayes' rule as the classifier, no
# decoder of images. The BVAE keeps the label-free prior $\mathcal N(0, I)$ and makes $y$ a child of $z$. The M2 model of
# the next chapter makes $y$ a *parent* of the image, $p_\theta(x\mid y, z)$, so that $y$ can be a latent variable on
# unlabelled images with its own posterior $q(y\mid x)$; Eq. {eq}`eq-bvae` needs a label for every image.
#
# **The fixed-output VAE** (the paper's second variant) keeps the encoder's input $x$ but asks the decoder for a
# predefined per-class target $t_y$ (here, interpreting "a class template", the mean training image of the class):
#
# $$
# L_{\rm fixed}(x, y) = -\alpha\,\mathbb E_{q_\phi(z\mid x)}\log p_\theta(t_y\mid z) + \mathrm{KL}\big(q_\phi(z\mid x)\,\|\,p(z)\big).
# $$ (eq-fixed)
#
# For $\alpha = 1$, $-L_{\rm fixed} \le \log p_\theta(t_y)$ for any $q$, so it is an ELBO on the *template's* likelihood, with a
# posterior that sees the image: the variational information bottleneck {cite}`alemi2017vib`, with a template likelihood
# for the label. Since $t_y$ depends on $x$ only through $y$, the decoder can only draw the template if $z$ carries the
# label; nothing rewards the latents for carrying anything else. The library implements both in a few lines:

# %%
show(V.BranchedVAE.training_step)

# %%
show(V.FixedOutputVAE.reconstruction_target)

# %% [markdown]
# ## The networks
#
# The paper's encoder is conv → dense → $(\mu, \log\sigma^2)$ and its decoder dense → transposed conv → sigmoid. The `full`
# profile uses that shape (`ConvVAE`: two stride-2 3×3 convolutions with 32 and 64 channels, a dense layer of 128; the
# mirror image in the decoder; our reading, the summary gives no sizes). The `ci` profile uses the MLP VAE of
# Chapter 4 (one hidden layer of 400 units each way) so that it runs in minutes on a CPU. The branch has one hidden
# layer of 128 ReLU units in both. $\alpha = 1$ throughout (the paper's $\alpha$ is not given).

# %%
def make_vae(z_dim):
    if KNOBS["network"] == "conv":
        return V.ConvVAE(z_dim=z_dim, hidden=KNOBS["hidden"])
    return V.VAE(x_dim=784, z_dim=z_dim, hidden=KNOBS["hidden"])


print(make_vae(10))

# %% [markdown]
# ## The data: MNIST and rotated MNIST
#
# Grey-level MNIST in $[0, 1]$ with a Bernoulli decoder (the cross-entropy accepts grey levels as targets, as in the
# usual Keras VAE). The `ci` profile trains on a class-balanced subset of the 50,000 training images; validation uses
# 2,000 of the 10,000 validation images; every score is on the full 10,000 test images. Rotated MNIST is made on the
# device from the same images: each image turned about its centre by an angle drawn uniformly from
# $[-180°, 180°]$ with a fixed seed (one batched `affine_grid` / `grid_sample` call; the angles are kept). The
# summary does not say which range the paper draws from; the full circle is our reading.

# %%
mnist = load_dataset("mnist", device=run.device)
train = balanced_subset(mnist.train, per_class, seed=run.seed) if per_class else mnist.train
data = dataclasses.replace(mnist, train=train, val=balanced_subset(mnist.val, 200, seed=run.seed))
rotated = {}
for name, split, s in (("train", data.train, 1), ("val", data.val, 2), ("test", data.test, 3)):
    rotated[name], rotated[f"{name}_angles"] = rotated_split(split, seed=1000 * run.seed + s, max_angle=180)
rot_data = dataclasses.replace(data, name="rotated mnist", train=rotated["train"], val=rotated["val"],
                               test=rotated["test"], source=f"{mnist.source}, rotated on the device (seeds "
                               f"{1000 * run.seed + 1}/2/3, uniform in [-180°, 180°])")
templates = class_templates(data.train, 10)
print(data, f"\n{len(rot_data.train)} rotated training images; angles of the first five: "
      f"{rotated['train_angles'][:5].round().tolist()}")

fig, axes = plt.subplots(1, 3, figsize=(15, 2.4))
plots.image_grid(axes[0], data.train.x[:10], title="MNIST")
plots.image_grid(axes[1], rot_data.train.x[:10], title="the same images, rotated")
plots.image_grid(axes[2], templates, title="class templates t_y (class means): fixed-output targets")
fig.tight_layout()

# %%
show(rotate)

# %% [markdown]
# ## Training: a λ sweep on MNIST
#
# Every model goes through the book's one `Trainer` (Adam, learning rate 1e-3, batch 128) and its checkpoint cache;
# a BVAE with $\lambda = 0$ *is* the VAE (the branch is built but receives no gradient, and the VAE's weights end up bit
# for bit those of a plain `VAE`, a tested fact). Which $\lambda > 0$ stands for "the BVAE" in the rest of the chapter is
# chosen on the *validation* set: the one whose branch classifies the validation images best.

# %%
trainer = Trainer(max_epochs=epochs, batch_size=KNOBS["batch_size"], lr=KNOBS["lr"], device=run.device,
                  seed=run.seed, progress=False)
models, records = {}, {}
for lam in KNOBS["lams"]:
    key = ("mnist", 10, lam)
    models[key], records[key] = fit_cached(f"ch6-mnist-z10-lam{lam}", lambda: V.BranchedVAE(make_vae(10), lam=lam),
                                           data, trainer)
val_branch_acc = {lam: records[("mnist", 10, lam)]["history"]["val"]["branch_acc"][-1] for lam in KNOBS["lams"]}
LAM = max((lam for lam in KNOBS["lams"] if lam > 0), key=val_branch_acc.get)
print(f"validation accuracy of the branch by λ: { {k: round(v, 4) for k, v in val_branch_acc.items()} }; "
      f"the BVAE below uses λ = {LAM}")

# %% [markdown]
# ## What the latents know: probes and clusterings
#
# The encoder is frozen and each image replaced by its posterior mean $\mu_\phi(x)$. Three classifiers are fitted on the
# latents of (up to 10,000) training images and scored on the test images: an MLP (one hidden layer of 256, the
# "neural network"), $k$-nearest neighbours ($k = 10$) and a random forest (100 trees), all scikit-learn. The same
# probes are used for every model, so the VAE and the BVAE are compared on equal terms; the BVAE's own branch is
# reported beside them. k-means with 10 clusters on the test latents is scored by NMI, ARI and the clustering
# accuracy ACC, the accuracy of the best one-to-one matching of clusters to digits (Hungarian algorithm):

# %%
show(P.clustering_accuracy)

# %%
def report(model, split_data):
    out = P.latent_report(model, split_data.train, split_data.test, seed=run.seed, max_train=KNOBS["probe_train"])
    out["recon_bce"] = V.reconstruction_bce(model, split_data.test.x)
    out["branch_acc"] = (model.predict(split_data.test.x) == split_data.test.y).float().mean().item()
    return out


sweep = {lam: report(models[("mnist", 10, lam)], data) for lam in KNOBS["lams"]}
table = pd.DataFrame(sweep).T.rename_axis("λ")
table.loc[:, "branch_acc"] = [v if lam > 0 else float("nan") for lam, v in table["branch_acc"].items()]
metrics_["lambda_bvae"] = LAM
metrics_["sweep_mnist_z10"] = {str(lam): row for lam, row in sweep.items()}
for name, lam in (("vae", 0), ("bvae", LAM)):
    for k in ("nn_acc", "knn_acc", "rf_acc", "nmi", "cluster_acc", "ari", "recon_bce"):
        metrics_[f"{k}_{name}"] = sweep[lam][k]
metrics_["branch_acc_bvae"] = sweep[LAM]["branch_acc"]
table.round(4)

# %% [markdown]
# Rows are $\lambda$ (0 is the VAE); `recon_bce` is $-\log p_\theta(x\mid z = \mu_\phi(x))$ on test images in nats (lower is better),
# `branch_acc` the BVAE's own classifier at the posterior mean.

# %%
lam_fig, axes = plt.subplots(1, 3, figsize=(14, 3.3))
lam_pos = range(len(KNOBS["lams"]))
for k in ("nn_acc", "knn_acc", "rf_acc"):
    axes[0].plot(lam_pos, table[k], marker="o", label=k.removesuffix("_acc"))
for k in ("nmi", "ari", "cluster_acc"):
    axes[1].plot(lam_pos, table[k], marker="o", label=k)
axes[2].plot(lam_pos, table["recon_bce"], marker="o", color="C3")
for ax, title in zip(axes, ("probe accuracy (test)", "k-means vs labels (test)", "reconstruction BCE (nats)")):
    ax.set(xticks=list(lam_pos), xticklabels=KNOBS["lams"], xlabel="λ", title=title)
axes[0].legend(frameon=False)
axes[1].legend(frameon=False)
lam_fig.tight_layout()

# %% [markdown]
# ## Two latent dimensions: what the space looks like
#
# The VAE and the BVAE with 2 latent dimensions, on MNIST and on rotated MNIST; one panel per model, the same axes
# for all, 3,000 test images coloured by digit.

# %%
for data_name, d in (("mnist", data), ("rot", rot_data)):
    for lam in (0, LAM):
        models[(data_name, 2, lam)], records[(data_name, 2, lam)] = fit_cached(
            f"ch6-{data_name}-z2-lam{lam}", lambda: V.BranchedVAE(make_vae(2), lam=lam), d, trainer)
z2_keys = [("mnist", 2, 0), ("mnist", 2, LAM), ("rot", 2, 0), ("rot", 2, LAM)]
z2 = {key: report(models[key], data if key[0] == "mnist" else rot_data) for key in z2_keys}
for key, row in z2.items():
    label = f"{'rot_' if key[0] == 'rot' else ''}{'vae' if key[2] == 0 else 'bvae'}"
    metrics_[f"z2_{label}"] = row
pd.DataFrame({f"{key[0]}, λ = {key[2]}": row for key, row in z2.items()}).T.round(4)

# %%
def latent_frame(keys, n=3000):
    frames = []
    for key in keys:
        d = data if key[0] == "mnist" else rot_data
        z = P.latent_means(models[key], d.test.x[:n]).cpu()
        frames.append(pd.DataFrame({"z1": z[:, 0], "z2": z[:, 1], "digit": d.test.y[:n].cpu().numpy(),
                                    "model": f"{'MNIST' if key[0] == 'mnist' else 'rotated'}, "
                                             f"{'VAE' if key[2] == 0 else 'BVAE'} (λ = {key[2]})"}))
    return pd.concat(frames)


frame = latent_frame(z2_keys)
grid = sns.relplot(frame, x="z1", y="z2", hue="digit", col="model", palette="tab10", s=6, linewidth=0,
                   height=3.4, facet_kws={"sharex": True, "sharey": True})
grid.set_titles("{col_name}")

# %% [markdown]
# ## Rotated MNIST: VAE, BVAE and the fixed-output VAE
#
# Ten latent dimensions, trained on rotated images; the fixed-output VAE's targets are the *upright* class templates
# above, so its decoder must draw an upright digit from a rotated one (and, with $\lambda = 0$, it has no classifier
# branch in its loss).

# %%
for lam in (0, LAM):
    models[("rot", 10, lam)], records[("rot", 10, lam)] = fit_cached(
        f"ch6-rot-z10-lam{lam}", lambda: V.BranchedVAE(make_vae(10), lam=lam), rot_data, trainer)
models["fixed"], records["fixed"] = fit_cached(
    "ch6-rot-z10-fixed", lambda: V.FixedOutputVAE(make_vae(10), targets=templates, lam=0.0), rot_data, trainer)
rot = {"vae": report(models[("rot", 10, 0)], rot_data), "bvae": report(models[("rot", 10, LAM)], rot_data),
       "fixed_output": report(models["fixed"], rot_data)}
for name, row in rot.items():
    metrics_[f"nn_acc_rot_{name}"] = row["nn_acc"]
    metrics_[f"rot_{name}"] = row
pd.DataFrame(rot).T.drop(columns="branch_acc").round(4)

# %% [markdown]
# `recon_bce` here is measured against the input image for all three, so the fixed-output VAE, which never tried to
# reproduce its input, scores badly on it by design.
#
# ## The input-weighting experiment
#
# The summary reports, for kNN / random-forest classifiers with "input weighting (digits 0, 1, 2 × 10)", 83 % against
# 73 % without weighting. It does not say what is multiplied, nor the latent size or data. **Our reading**: the
# training *counts* of digits 0, 1 and 2 are multiplied by 10 relative to the other digits (a class-weighted resample
# of the training set, the same size, so the same number of steps), the BVAE is trained on it, and the probes are
# fitted on its latents of the ordinary (unweighted) training images. We place it where accuracies near 73 % are
# plausible: 2 latent dimensions on rotated MNIST. **The cheap alternative**: weight only the probe, i.e. repeat the
# latents of 0, 1 and 2 ten times when fitting kNN and the forest on the unweighted BVAE, no retraining.

# %%
class_weights = torch.ones(10)
class_weights[list(WEIGHTED_DIGITS)] = WEIGHT
weighted_data = dataclasses.replace(rot_data, train=class_reweighted(rot_data.train, class_weights, seed=run.seed),
                                    source=rot_data.source + f", digits {WEIGHTED_DIGITS} x{WEIGHT:g} by resampling")
print("class counts of the weighted training set:", weighted_data.train.class_counts(10).tolist())
models["weighted"], records["weighted"] = fit_cached(
    f"ch6-rot-z2-lam{LAM}-weighted", lambda: V.BranchedVAE(make_vae(2), lam=LAM), weighted_data, trainer)

n_probe = min(KNOBS["probe_train"], len(rot_data.train))
probe_args = dict(probes=("knn", "rf"), seed=run.seed)
unweighted_model = models[("rot", 2, LAM)]
z_tr, z_te = P.latent_means(unweighted_model, rot_data.train.x[:n_probe]), P.latent_means(unweighted_model,
                                                                                         rot_data.test.x)
y_tr = rot_data.train.y[:n_probe]
weighting = {"unweighted": P.probe_accuracies(z_tr, y_tr, z_te, rot_data.test.y, **probe_args)}
repeats = torch.where(torch.isin(y_tr, torch.tensor(WEIGHTED_DIGITS, device=y_tr.device)), int(WEIGHT), 1)
weighting["weighted probe only"] = P.probe_accuracies(z_tr, y_tr, z_te, rot_data.test.y,
                                                      sample_weight_repeats=repeats, **probe_args)
weighting["weighted training"] = P.probe_accuracies(P.latent_means(models["weighted"], rot_data.train.x[:n_probe]), y_tr,
                                                    P.latent_means(models["weighted"], rot_data.test.x),
                                                    rot_data.test.y, **probe_args)
metrics_["knn_acc_unweighted"] = weighting["unweighted"]["knn"]
metrics_["knn_acc_weighted"] = weighting["weighted training"]["knn"]
metrics_["knn_acc_weighted_probe_only"] = weighting["weighted probe only"]["knn"]
metrics_["rf_acc_unweighted"] = weighting["unweighted"]["rf"]
metrics_["rf_acc_weighted"] = weighting["weighted training"]["rf"]
metrics_["rf_acc_weighted_probe_only"] = weighting["weighted probe only"]["rf"]
pd.DataFrame(weighting).T.round(4)

# %% [markdown]
# ## Reconstructions and samples
#
# Top rows: test images; below them, each model's reconstruction $\sigma(g_\theta(\mu_\phi(x)))$; right: decoder means for
# $z \sim \mathcal N(0, I)$.

# %%
shown = {"VAE, MNIST": (models[("mnist", 10, 0)], data), f"BVAE λ = {LAM}, MNIST": (models[("mnist", 10, LAM)], data),
         "VAE, rotated": (models[("rot", 10, 0)], rot_data), f"BVAE λ = {LAM}, rotated": (models[("rot", 10, LAM)], rot_data),
         "fixed-output, rotated": (models["fixed"], rot_data)}
fig, axes = plt.subplots(len(shown), 2, figsize=(15, 2.0 * len(shown)))
for row, (title, (model, d)) in zip(axes, shown.items()):
    x_show = d.test.x[:10]
    plots.image_grid(row[0], torch.cat([x_show.flatten(1), model.reconstruct(x_show)]).cpu(), title=f"{title}: reconstructions")
    plots.image_grid(row[1], model.sample(20, generator=torch.Generator().manual_seed(run.seed)).cpu(),
                     title=f"{title}: samples")
fig.tight_layout()

# %% [markdown]
# ## Scorecard
#
# The paper's numbers are from its summary (no table or row numbers are available to us): NN classifier 97.1 % (VAE)
# and 98.5 % (BVAE), kNN / RF with input weighting 83 % against 73 % without. We read the first pair as MNIST with 10
# latent dimensions and the MLP probe, the second as described above. Departures: the `ci` profile uses an MLP VAE, a
# subset of MNIST and a few epochs; $\alpha = 1$; $\lambda$ chosen on validation; network sizes are ours.

# %%
PAPER = {"nn_acc_vae": 0.971, "nn_acc_bvae": 0.985, "knn_acc_unweighted": 0.73, "knn_acc_weighted": 0.83}
SCORE_KEYS = ["nn_acc_vae", "nn_acc_bvae", "knn_acc_vae", "knn_acc_bvae", "rf_acc_vae", "rf_acc_bvae", "nmi_vae",
              "nmi_bvae", "cluster_acc_vae", "cluster_acc_bvae", "ari_vae", "ari_bvae", "nn_acc_rot_vae",
              "nn_acc_rot_bvae", "nn_acc_rot_fixed_output", "knn_acc_unweighted", "knn_acc_weighted",
              "recon_bce_vae", "recon_bce_bvae", "branch_acc_bvae", "lambda_bvae"]
path = write_results(STEM, profile=run.profile, device=run.device, seeds=[run.seed],
                     data_source={"mnist": data.source, "rotated": rot_data.source}, metrics=metrics_, paper=PAPER,
                     wall_time_s=run.elapsed(), knobs={**KNOBS, "epochs": epochs, "per_class": per_class},
                     trained_from_cache=sum(bool(r.get("loaded")) for r in records.values()))
print(f"wrote {path.name}")
scorecard(STEM, {k: metrics_[k] for k in SCORE_KEYS}, PAPER)

# %%
# NBVAL_CHECK_OUTPUT
print({k: round(metrics_[k], 3) for k in SCORE_KEYS})

# %% [markdown]
# ## Conclusion

# %%
m = metrics_


lines = [
    f"- On MNIST with 10 latent dimensions, the MLP probe on the BVAE's latents (λ = {LAM}) reaches "
    f"{m['nn_acc_bvae']:.3f}, {'above' if m['nn_acc_bvae'] > m['nn_acc_vae'] else 'not above'} the VAE's "
    f"{m['nn_acc_vae']:.3f} (paper: {PAPER['nn_acc_bvae']} vs {PAPER['nn_acc_vae']}); kNN {m['knn_acc_bvae']:.3f} vs "
    f"{m['knn_acc_vae']:.3f}, random forest {m['rf_acc_bvae']:.3f} vs {m['rf_acc_vae']:.3f}.",
    f"- k-means on the latents: NMI {m['nmi_bvae']:.3f} (BVAE) vs {m['nmi_vae']:.3f} (VAE), ACC "
    f"{m['cluster_acc_bvae']:.3f} vs {m['cluster_acc_vae']:.3f}, ARI {m['ari_bvae']:.3f} vs {m['ari_vae']:.3f}: "
    + ("the label term makes the latent space cluster by digit."
       if m["nmi_bvae"] > m["nmi_vae"] and m["cluster_acc_bvae"] > m["cluster_acc_vae"]
       else "the label term did not make the clusters follow the digits better on every score in this run."),
    f"- The price is in the images: the test reconstruction cross-entropy is {m['recon_bce_bvae']:.1f} nats for the "
    f"BVAE against {m['recon_bce_vae']:.1f} for the VAE"
    + (" (worse, as the looser bound predicts)." if m["recon_bce_bvae"] > m["recon_bce_vae"]
       else " (no worse in this run, although the objective is a looser bound on log p(x))."),
    f"- On rotated MNIST the MLP probe scores {m['nn_acc_rot_vae']:.3f} (VAE), {m['nn_acc_rot_bvae']:.3f} (BVAE) and "
    f"{m['nn_acc_rot_fixed_output']:.3f} (fixed-output VAE): the fixed-output VAE is "
    + ("above" if m["nn_acc_rot_fixed_output"] > m["nn_acc_rot_vae"] else "not above")
    + " the VAE and " + ("above" if m["nn_acc_rot_fixed_output"] > m["nn_acc_rot_bvae"] else "below")
    + " the BVAE.",
    f"- Input weighting (our reading, 2-d rotated BVAE): kNN {m['knn_acc_weighted']:.3f} with digits 0–2 weighted "
    f"×{WEIGHT:g} in training vs {m['knn_acc_unweighted']:.3f} without (paper: 0.83 vs 0.73); weighting only the probe "
    f"gives {m['knn_acc_weighted_probe_only']:.3f}. "
    + ("Weighting helped here, as in the paper." if m["knn_acc_weighted"] > m["knn_acc_unweighted"]
       else "Weighting did not raise the accuracy on the balanced test set here, the other way round from the paper."),
    f"- Across the sweep, the MLP probe goes "
    + ", ".join(f"{sweep[lam]['nn_acc']:.3f} (λ = {lam})" for lam in KNOBS["lams"])
    + " and the reconstruction cross-entropy "
    + ", ".join(f"{sweep[lam]['recon_bce']:.1f}" for lam in KNOBS["lams"]) + " nats.",
]
Markdown("\n".join(lines))

# %% [markdown]
# The BVAE is the simplest way to put labels into a VAE's latent space, and its objective says what it costs: a
# bound on $\log p(x, y)$ in which the image bound is loosened by $\lambda$ times the classifier's cross-entropy. It needs a
# label for every image. The next chapter's M2 model makes the label a latent variable of the image model instead,
# which is what lets it learn from unlabelled images.
#
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# ```
