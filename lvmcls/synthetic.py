"""Synthetic classification data whose Bayes posterior P(c|x) is known in closed form.

Generative story: c ~ Categorical(π), x | c ~ N(μ_c, σ² I). Bayes' rule gives

    P(c|x) = π_c N(x; μ_c, σ² I) / Σ_k π_k N(x; μ_k, σ² I),

so a trained classifier's scores f(c|x) can be compared with the truth point by point.
"""

from __future__ import annotations

import math

import torch

from .data import TensorSplit


class GaussianClasses:
    """K isotropic Gaussian class-conditionals N(μ_c, σ² I) with class prior π."""

    def __init__(self, means, std: float = 1.0, prior=None):
        self.means = torch.as_tensor(means, dtype=torch.float32)
        if self.means.dim() == 1:
            self.means = self.means[:, None]
        if self.means.dim() != 2 or self.means.shape[0] < 2:
            raise ValueError(f"means must be (K >= 2, D), got shape {tuple(self.means.shape)}")
        if not std > 0:
            raise ValueError(f"std must be > 0, got {std}")
        self.std = float(std)
        k = self.means.shape[0]
        self.prior = self._check_prior(torch.full((k,), 1.0 / k) if prior is None else prior)

    def _check_prior(self, prior) -> torch.Tensor:
        prior = torch.as_tensor(prior, dtype=torch.float32)
        if prior.shape != (self.num_classes,) or (prior <= 0).any() or not torch.isclose(prior.sum(), torch.tensor(1.0)):
            raise ValueError(f"prior must be {self.num_classes} positive numbers summing to 1, got {prior.tolist()}")
        return prior

    @property
    def num_classes(self) -> int:
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @classmethod
    def on_circle(cls, num_classes: int, radius: float = 2.0, std: float = 1.0, prior=None) -> "GaussianClasses":
        """K classes with means evenly spaced on a circle in R² (the K-class toy of Chapter 1)."""
        angle = torch.arange(num_classes) * 2 * math.pi / num_classes
        return cls(radius * torch.stack([angle.cos(), angle.sin()], 1), std, prior)

    def sample(self, n: int, generator: torch.Generator | None = None) -> TensorSplit:
        """Draw n pairs (x, c) from p(x, c) = π_c N(x; μ_c, σ² I)."""
        y = torch.multinomial(self.prior, n, replacement=True, generator=generator)
        x = self.means[y] + self.std * torch.randn(n, self.dim, generator=generator)
        return TensorSplit(x, y)

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x|c) for every class: (N, K)."""
        x = x.reshape(len(x), -1).float().cpu()
        sq = torch.cdist(x, self.means).pow(2)
        return -0.5 * sq / self.std**2 - 0.5 * self.dim * math.log(2 * math.pi * self.std**2)

    def posterior(self, x: torch.Tensor, prior=None) -> torch.Tensor:
        """The Bayes posterior P(c|x) under ``prior`` (default: the generating prior π): (N, K)."""
        prior = self.prior if prior is None else self._check_prior(prior)
        return torch.softmax(self.log_likelihood(x) + prior.log(), dim=1)
