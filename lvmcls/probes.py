"""Probes on frozen latents: what a representation learnt about the labels it was (or was not) trained with.

- supervised probes (scikit-learn): k-nearest neighbours, a random forest and an MLP, fitted on training latents and
  scored on test latents;
- clustering (k-means, scikit-learn) scored against the labels by NMI and ARI (scikit-learn) and by ACC, the accuracy
  of the best one-to-one matching of clusters to classes (Hungarian algorithm, scipy ``linear_sum_assignment``).

Latents are posterior means μ_φ(x), computed by a batched eval-mode encoder pass (`latent_means`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

PROBES = ("nn", "knn", "rf")


@torch.no_grad()
def latent_means(model: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """μ_φ(x) for every input, (N, latent_dim), in eval mode and in batches; ``model`` is a VAE or wraps one as ``.vae``."""
    vae = getattr(model, "vae", model)
    was_training = vae.training
    vae.eval()
    try:
        return torch.cat([vae.encode(x[i:i + batch_size])[0] for i in range(0, len(x), batch_size)])
    finally:
        vae.train(was_training)


def _as_numpy(z, y=None) -> tuple[np.ndarray, np.ndarray | None]:
    z = z.detach().float().cpu().numpy() if isinstance(z, torch.Tensor) else np.asarray(z, dtype=np.float32)
    if z.ndim != 2:
        raise ValueError(f"latents must be (N, d), got shape {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError("latents contain NaN or inf: the encoder diverged or the inputs are bad")
    if y is not None:
        y = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
        if y.shape != (len(z),):
            raise ValueError(f"need one label per latent, shape ({len(z)},), got {y.shape}")
        if not np.issubdtype(y.dtype, np.integer) or (y < 0).any():
            raise ValueError("labels must be non-negative integers")
    return z, y


def make_probe(kind: str, seed: int = 0, knn_k: int = 10, rf_trees: int = 100, nn_hidden: int = 256,
               nn_max_iter: int = 200):
    """A scikit-learn classifier: "knn" (k = ``knn_k``, Euclidean), "rf" (``rf_trees`` trees) or "nn" (an MLP with one
    hidden layer of ``nn_hidden`` ReLU units on standardised latents, Adam, at most ``nn_max_iter`` epochs, early
    stopping on 10 % of its training set)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if min(knn_k, rf_trees, nn_hidden, nn_max_iter) < 1:
        raise ValueError(f"probe sizes must be >= 1, got {knn_k=}, {rf_trees=}, {nn_hidden=}, {nn_max_iter=}")
    if kind == "knn":
        return KNeighborsClassifier(n_neighbors=knn_k)
    if kind == "rf":
        return RandomForestClassifier(n_estimators=rf_trees, n_jobs=-1, random_state=seed)
    if kind == "nn":
        return make_pipeline(StandardScaler(), MLPClassifier((nn_hidden,), max_iter=nn_max_iter, early_stopping=True,
                                                             random_state=seed))
    raise ValueError(f"probe must be one of {PROBES}, got {kind!r}")


def probe_accuracies(z_train, y_train, z_test, y_test, probes=PROBES, seed: int = 0, knn_k: int = 10,
                     sample_weight_repeats=None, **probe_options) -> dict[str, float]:
    """Test accuracy of each probe in ``probes`` fitted on (z_train, y_train). ``sample_weight_repeats`` (N_train,)
    integers repeat training latents that many times (input weighting at the probe; kNN has no sample weights).
    ``probe_options``: ``rf_trees``, ``nn_hidden``, ``nn_max_iter`` of `make_probe`."""
    z_train, y_train = _as_numpy(z_train, y_train)
    z_test, y_test = _as_numpy(z_test, y_test)
    if z_train.shape[1] != z_test.shape[1]:
        raise ValueError(f"train latents are {z_train.shape[1]}-d but test latents {z_test.shape[1]}-d")
    if sample_weight_repeats is not None:
        repeats = np.asarray(sample_weight_repeats.cpu() if isinstance(sample_weight_repeats, torch.Tensor)
                             else sample_weight_repeats)
        if repeats.shape != (len(z_train),) or not np.issubdtype(repeats.dtype, np.integer) or (repeats < 1).any():
            raise ValueError("sample_weight_repeats needs one integer >= 1 per training latent")
        z_train, y_train = np.repeat(z_train, repeats, 0), np.repeat(y_train, repeats)
    return {kind: float(make_probe(kind, seed, knn_k, **probe_options).fit(z_train, y_train).score(z_test, y_test))
            for kind in probes}


def contingency(labels_true, labels_pred) -> np.ndarray:
    """counts[c, k] = #{i: true class c, cluster k}."""
    from sklearn.metrics.cluster import contingency_matrix

    return contingency_matrix(labels_true, labels_pred)


def clustering_accuracy(labels_true, labels_pred) -> float:
    """ACC = max over one-to-one maps m of clusters to classes of (1/N) Σ_i 1{y_i = m(k_i)}, the maximum found by the
    Hungarian algorithm on the contingency table (clusters without a class count as errors)."""
    from scipy.optimize import linear_sum_assignment

    table = contingency(labels_true, labels_pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / table.sum())


def clustering_scores(labels_true, labels_pred) -> dict[str, float]:
    """NMI (arithmetic normalisation, scikit-learn's default), ARI and Hungarian ACC of a clustering."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    labels_true, labels_pred = np.asarray(labels_true), np.asarray(labels_pred)
    if labels_true.shape != labels_pred.shape or labels_true.ndim != 1:
        raise ValueError(f"need two label vectors of equal length, got {labels_true.shape} and {labels_pred.shape}")
    return {"nmi": float(normalized_mutual_info_score(labels_true, labels_pred)),
            "ari": float(adjusted_rand_score(labels_true, labels_pred)),
            "acc": clustering_accuracy(labels_true, labels_pred)}


def kmeans_scores(z, y, num_clusters: int, seed: int = 0, n_init: int = 10) -> dict[str, float]:
    """k-means (k-means++, ``n_init`` restarts, the best inertia kept) with ``num_clusters`` clusters on the latents,
    scored against ``y``."""
    from sklearn.cluster import KMeans

    z, y = _as_numpy(z, y)
    if not 2 <= num_clusters <= len(z):
        raise ValueError(f"need 2 <= num_clusters <= N = {len(z)}, got {num_clusters}")
    if n_init < 1:
        raise ValueError(f"n_init (k-means restarts) must be >= 1, got {n_init}")
    clusters = KMeans(num_clusters, n_init=n_init, random_state=seed).fit_predict(z)
    return clustering_scores(y, clusters)


def latent_report(model: nn.Module, train, test, probes=PROBES, num_clusters: int | None = 10, seed: int = 0,
                  max_train: int | None = None, knn_k: int = 10, kmeans_n_init: int = 10,
                  **probe_options) -> dict[str, float]:
    """Everything this module measures about one trained encoder: probe accuracies (``probes``, fitted on the first
    ``max_train`` training latents, scored on all test latents) and, if ``num_clusters``, the NMI / ARI / ACC of
    k-means (``kmeans_n_init`` restarts) on the test latents. ``train`` and ``test`` are `TensorSplit`s;
    ``probe_options`` go to `make_probe`; keys "<probe>_acc", "nmi", "ari", "cluster_acc"."""
    n = len(train) if max_train is None else min(max_train, len(train))
    z_train, z_test = latent_means(model, train.x[:n]), latent_means(model, test.x)
    out = {f"{k}_acc": v for k, v in probe_accuracies(z_train, train.y[:n], z_test, test.y, probes, seed,
                                                      knn_k, **probe_options).items()}
    if num_clusters:
        scores = kmeans_scores(z_test, test.y, num_clusters, seed, kmeans_n_init)
        out.update(nmi=scores["nmi"], ari=scores["ari"], cluster_acc=scores["acc"])
    return out
