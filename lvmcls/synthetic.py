"""Synthetic classification data whose Bayes posterior P(c|x) is known in closed form.

Generative story: c ~ Categorical(π), x | c ~ N(μ_c, σ² I). Bayes' rule gives

    P(c|x) = π_c N(x; μ_c, σ² I) / Σ_k π_k N(x; μ_k, σ² I),

so a trained classifier's scores f(c|x) can be compared with the truth point by point.
"""

from __future__ import annotations

import math

import torch

from .data import Dataset, TensorSplit


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

    def dataset(self, n_train: int, seed: int = 0, n_test: int = 20_000) -> Dataset:
        """A `Dataset` of ``n_train`` training, ``n_train // 5`` validation and ``n_test`` test draws, fixed by
        ``seed`` (drawn in that order from one generator)."""
        if n_train < 5 or n_test < 1:
            raise ValueError(f"need n_train >= 5 and n_test >= 1, got {n_train}, {n_test}")
        gen = torch.Generator().manual_seed(seed)
        train, val, test = (self.sample(m, generator=gen) for m in (n_train, n_train // 5, n_test))
        return Dataset("gaussian_classes", train, val, test, tuple(str(c) for c in range(self.num_classes)),
                       f"synthetic: {self.num_classes} Gaussian classes")

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x|c) for every class: (N, K)."""
        x = x.reshape(len(x), -1).float().cpu()
        sq = torch.cdist(x, self.means).pow(2)
        return -0.5 * sq / self.std**2 - 0.5 * self.dim * math.log(2 * math.pi * self.std**2)

    def posterior(self, x: torch.Tensor, prior=None) -> torch.Tensor:
        """The Bayes posterior P(c|x) under ``prior`` (default: the generating prior π): (N, K)."""
        prior = self.prior if prior is None else self._check_prior(prior)
        return torch.softmax(self.log_likelihood(x) + prior.log(), dim=1)


def nonlinear_latent_classes(n_train: int, seed: int = 0, num_classes: int = 5, n_test: int = 5000
                             ) -> tuple[Dataset, torch.Tensor]:
    """Chapter 2's toy with a known latent space: y uniform on ``num_classes``, z | y ~ N(μ_y, 0.5² I) in R² with
    the means on a circle of radius 3, and x = tanh(z A) B ∈ R¹⁰ with fixed random A (2×32) and B (32×10).

    Returns the `Dataset` (``n_train`` / ``n_train // 5`` / ``n_test``) and the true test latents z, (n_test, 2).
    """
    gen = torch.Generator().manual_seed(seed)
    angle = torch.arange(num_classes) * 2 * math.pi / num_classes
    mu = 3 * torch.stack([angle.cos(), angle.sin()], 1)
    mixing = [torch.randn(2, 32, generator=gen), torch.randn(32, 10, generator=gen) / math.sqrt(32)]

    def draw(n):
        y = torch.randint(0, num_classes, (n,), generator=gen)
        z = mu[y] + 0.5 * torch.randn(n, 2, generator=gen)
        return TensorSplit(torch.tanh(z @ mixing[0]) @ mixing[1], y), z

    (train, _), (val, _), (test, z_test) = draw(n_train), draw(n_train // 5), draw(n_test)
    data = Dataset("nonlinear_latent_classes", train, val, test, tuple(str(c) for c in range(num_classes)),
                   f"synthetic: {num_classes} Gaussian classes in R^2, mapped to R^10")
    return data, z_test


def random_binary_images(n_train: int = 10_000, n_val: int = 2_000, pixels: int = 784, seed: int = 0,
                         device="cpu") -> Dataset:
    """Images of independent fair coin flips (label 0): data a latent code cannot help a decoder predict."""
    g = torch.Generator().manual_seed(seed)

    def split(n):
        x = (torch.rand(n, pixels, generator=g) < 0.5).float()
        return TensorSplit(x.to(device), torch.zeros(n, dtype=torch.long, device=device))

    train, val = split(n_train), split(n_val)
    return Dataset("random_binary_images", train, val, val, ("noise",), "random binary images, p = 0.5")
