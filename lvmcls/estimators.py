"""Estimators of divergences, entropies and spreads, each tested against a closed form.

- `gaussian_kl`: KL(N(m₁, S₁) ‖ N(m₂, S₂)) in closed form (full covariances).
- `knn_entropy`: the Kozachenko–Leonenko k-nearest-neighbour estimate of a differential entropy.
- `latent_kl`: KL(q(z|y) ‖ p(z|y)) for samples of q and a prior with a density, as -Ĥ(q) - E_q log p.
- `spread_ratio`: tr Cov_q(z|y) / tr Cov_p(z|y), per class: < 1 means q concentrates inside its prior.
- `fit_density_ratio`: train a `ClassDensityRatio` on two samplers and return its KL estimate (Eq. 9).
- `vc_optimal_posterior`: the optimum q*(z|y) of Eq. 11 on a grid.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .train import torch_threads


def gaussian_kl(m1: torch.Tensor, s1: torch.Tensor, m2: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    """KL(N(m1, s1) ‖ N(m2, s2)) = ½ [tr(s2⁻¹ s1) + (m2-m1)ᵀ s2⁻¹ (m2-m1) - d + log det s2 - log det s1]."""
    m1, s1, m2, s2 = (t.double() for t in (m1, s1, m2, s2))
    d = m1.shape[-1]
    s2_inv = torch.linalg.inv(s2)
    diff = (m2 - m1)[:, None]
    return 0.5 * (torch.trace(s2_inv @ s1) + (diff.T @ s2_inv @ diff).squeeze() - d
                  + torch.logdet(s2) - torch.logdet(s1))


def knn_entropy(z: torch.Tensor, k: int = 5) -> float:
    """Kozachenko–Leonenko: Ĥ = ψ(N) - ψ(k) + log V_d + (d/N) Σ_i log ε_i, with ε_i the distance from z_i to its
    k-th nearest neighbour and V_d the volume of the unit d-ball. Nearest neighbours by scikit-learn."""
    from scipy.special import digamma
    from sklearn.neighbors import NearestNeighbors

    z = z.detach().double().cpu().numpy()
    n, d = z.shape
    if not 1 <= k < n:
        raise ValueError(f"need 1 <= k < N, got k={k}, N={n}")
    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(z).kneighbors(z)
    eps = torch.from_numpy(dist[:, k]).clamp_min(1e-12)
    log_unit_ball = 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1)
    return float(digamma(n) - digamma(k) + log_unit_ball + d * eps.log().mean())


def latent_kl(z: torch.Tensor, y: torch.Tensor, prior, k: int = 5) -> dict[int, float]:
    """KL(q(z|c) ‖ p(z|c)) per class c from samples z of q: -Ĥ_kNN(q(z|c)) - mean log p(z|c)."""
    out = {}
    for c in torch.unique(y).tolist():
        zc = z[y == c]
        with torch.no_grad():
            log_p = prior.log_prob(zc, torch.full((len(zc),), c, dtype=torch.long, device=zc.device)).mean().item()
        out[c] = -knn_entropy(zc, k) - log_p
    return out


def spread_ratio(z: torch.Tensor, y: torch.Tensor, prior) -> dict[int, float]:
    """tr Cov(z | y=c) of the samples over tr Σ_c of the prior, per class c."""
    out = {}
    with torch.no_grad():
        prior_trace = prior.log_var.exp().sum(1).cpu()
    for c in torch.unique(y).tolist():
        zc = z[y == c].double().cpu()
        out[c] = (torch.cov(zc.T).trace() if zc.shape[1] > 1 else zc.var()).item() / prior_trace[c].item()
    return out


def fit_density_ratio(ratio, sample_q: Callable[[int], torch.Tensor], sample_p: Callable[[int], torch.Tensor],
                      steps: int = 2000, batch_size: int = 512, lr: float = 1e-2, seed: int = 0,
                      eval_size: int = 50_000, threads: int | None = 1) -> float:
    """Train ``ratio`` (class 0 only) to tell samples of q (label 1) from p (label 0) with Adam, then return
    E_q T(z) on fresh samples: the density-ratio estimate of KL(q ‖ p) (Eq. 9). ``threads``: CPU threads
    (`lvmcls.train.torch_threads`; one by default: a low-dimensional discriminator trains fastest on one)."""
    with torch_threads(threads):
        torch.manual_seed(seed)
        opt = torch.optim.Adam(ratio.parameters(), lr=lr)
        y = torch.zeros(batch_size, dtype=torch.long)
        for _ in range(steps):
            loss = ratio.loss(sample_q(batch_size), sample_p(batch_size), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            return ratio.kl_estimate(sample_q(eval_size), torch.zeros(eval_size, dtype=torch.long)).item()


def vc_optimal_posterior(log_p_z_given_y: torch.Tensor, log_p_y_given_z: torch.Tensor, dz: float,
                         beta: float = 1.0) -> torch.Tensor:
    """Eq. 11 on a grid: q*(z|y) = p(z|y) p(y|z)^{1/β} / E_{p(z'|y)}[p(y|z')^{1/β}].

    It maximises E_q[log p(y|z)] - β KL(q ‖ p(z|y)) over densities q; β = 1 is the paper's form.
    ``log_p_z_given_y`` and ``log_p_y_given_z`` hold the two functions on a regular grid of spacing ``dz``;
    the result is a density on that grid (it integrates to 1).
    """
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    log_q = log_p_z_given_y + log_p_y_given_z / beta
    return (log_q - torch.logsumexp(log_q, 0) - math.log(dz)).exp()


def maximise_vc_objective_on_grid(log_p_z_given_y: torch.Tensor, log_p_y_given_z: torch.Tensor, dz: float,
                                  steps: int = 3000, lr: float = 0.05) -> torch.Tensor:
    """Maximise E_q[log p(y|z)] - KL(q ‖ p(z|y)) over *all* densities q on a grid by gradient ascent on q's logits,
    with integrals as sums × dz: the numerical counterpart of `vc_optimal_posterior` (β = 1)."""
    logits = torch.zeros_like(log_p_z_given_y, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=lr)
    for _ in range(steps):
        q = logits.softmax(0) / dz
        objective = ((q * log_p_y_given_z).sum() - (q * (q.clamp_min(1e-300).log() - log_p_z_given_y)).sum()) * dz
        opt.zero_grad()
        (-objective).backward()
        opt.step()
    return (logits.softmax(0) / dz).detach()
