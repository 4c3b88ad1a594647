"""Metric keys in words, for the scorecards: ``lowdata_mnist500_acc_std_ce`` reads "low data, MNIST, 500 labels ·
test accuracy (fraction) · std over seeds · CE".

A key is split at underscores and read left to right, each time taking the longest run of parts that `PHRASES`
knows. The vocabulary is the book's: one entry per experiment, quantity, unit and arm. A part it does not know is
shown as it is written, and `unknown_parts` lists them so a test can insist that every scorecard reads as words.
"""

from __future__ import annotations

import re

# Longest match first: multi-part phrases are written with underscores, as they appear in keys.
PHRASES: dict[str, str] = {
    # data sets and experiments
    "mnist": "MNIST", "fashion": "Fashion-MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10",
    "cifar": "CIFAR-10", "svhn": "SVHN", "rotated": "rotated MNIST", "toy": "toy 2-d data", "binary": "two classes",
    "mnist500": "MNIST, 500 labels", "cifar1000": "CIFAR-10, 1,000 labels", "lowdata": "low data",
    "mnist_vs_fashion": "MNIST in, Fashion-MNIST out", "fashion_vs_mnist": "Fashion-MNIST in, MNIST out",
    "shift": "under corruption shift", "fgsm": "FGSM attack", "ood": "out of distribution", "sweep": "sweep",
    "prior_shift": "class-prior shift", "train_prior": "at the training prior", "before": "before re-weighting",
    "after": "after re-weighting", "random_images": "random images", "weighted": "class-reweighted training",
    "repeated": "class-repeated training", "unweighted": "unweighted training",
    # quantities (with units)
    "acc": "test accuracy (fraction)", "test_acc": "test accuracy (fraction)", "accuracy": "accuracy (fraction)",
    "val_acc": "validation accuracy (fraction)", "ece": "expected calibration error (fraction)",
    "nll": "negative log-likelihood (nats)", "iw_nll": "importance-weighted test NLL (nats)",
    "mi": "mutual information I(x; z) (nats)", "md": "marginal KL(q(z) ‖ p(z)) (nats)", "kl": "KL (nats)",
    "final_kl": "final KL (nats)", "latent_kl": "latent KL estimate (nats)", "au": "active units (count)",
    "au_by_depth": "active units by decoder depth (count)", "clear_units_by_depth": "clearly active units by depth",
    "spread_ratio": "latent spread ratio (class spread / prior spread)", "auroc": "AUROC",
    "auroc_logpz": "AUROC of log p(z)", "mae": "mean absolute error", "posterior_mae": "posterior MAE (probability)",
    "density_ratio_mae": "density-ratio MAE", "bayes_test_acc": "Bayes classifier's test accuracy (fraction)",
    "median_ece": "median ECE over cells (fraction)", "gain": "gain", "spearman": "Spearman ρ",
    "depth": "decoder depth", "depth1": "decoder depth 1", "nmi": "NMI (clustering)", "ari": "ARI (clustering)",
    "knn_acc": "kNN probe accuracy (fraction)", "nn_acc": "nearest-neighbour accuracy (fraction)",
    "probe_acc": "probe accuracy (fraction)", "entropy": "classifier entropy (nats)", "sc": "SC (nats)",
    "rec": "reconstruction (nats)", "elbo": "ELBO (nats)", "bce": "reconstruction BCE (nats)",
    "wall_time_s": "wall time (s)", "time_s": "time (s)", "steps": "optimiser steps",
    "ce_identity_max_gap": "CE − KL identity: largest gap (nats)", "ce_linear_vs_elbo_vc_gap":
    "linear CE vs ELBO_VC at λ = 0: largest gap (nats)", "kl_estimate_rel_error": "kNN KL estimate: relative error",
    "eq11_max_abs_error": "Eq. 11 on a grid: largest error",
    # statistics
    "std": "std over seeds", "se": "standard error", "mean": "mean", "diff": "paired difference",
    "minus": "minus", "mde": "smallest detectable effect", "rel_error": "relative error", "max_gap": "largest gap",
    "ci": "interval", "gap": "gap",
    # arms
    "ce": "CE", "ce_ts": "CE + temperature scaling", "ce_gaussian": "CE, Gaussian head", "gm": "GM", "vc": "VC",
    "vc_ts": "VC + temperature scaling", "vc_reference": "VC, reference gradients", "vc_beta1": "VC, β = 1",
    "vc_mlp_beta1": "VC, MLP discriminator, β = 1", "vc_quadratic": "VC, quadratic discriminator",
    "hinge": "hinge loss", "vae": "VAE", "vae_as": "VAE-AS(1,1)", "placebo": "VAE-AS placebo (weight 0)",
    "bvae": "branched VAE", "fixed": "fixed-output VAE", "m2": "M2", "mier": "M2 + MIER", "supervised":
    "supervised only", "tree": "tree softmax", "flat": "flat softmax",
}
_MAX_PARTS = max(k.count("_") + 1 for k in PHRASES)


def _read(key: str) -> list[tuple[str, bool]]:
    parts = key.split("_")
    out, i = [], 0
    while i < len(parts):
        for n in range(min(_MAX_PARTS, len(parts) - i), 0, -1):
            chunk = "_".join(parts[i:i + n])
            if chunk in PHRASES:
                out.append((PHRASES[chunk], True))
                i += n
                break
        else:
            number = re.fullmatch(r"([a-z]+?)(\d+(?:p\d+)?)", parts[i])
            if number and number.group(1) in PHRASES:  # "depth3", "lam10": the phrase and its number
                out.append((f"{PHRASES[number.group(1)]} {number.group(2).replace('p', '.')}", True))
            elif parts[i].isdigit():
                out.append((parts[i], True))
            else:
                out.append((parts[i], False))
            i += 1
    return out


def describe(key: str) -> str:
    """The metric ``key`` in words, its phrases joined by " · "."""
    return " · ".join(words for words, _ in _read(key))


def unknown_parts(keys) -> set[str]:
    """The parts of ``keys`` that `PHRASES` does not know (each would show as written)."""
    return {words for key in keys for words, known in _read(key) if not known}
