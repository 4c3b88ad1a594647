"""Class-conditional priors over latents, p_θ(z|y), and the classifier head they define by Bayes' rule.

Variational Classification (Dhuliawala, Sachan & Allen, TMLR 2023) reads a softmax classifier as the
latent-variable model y → z → x: an encoder q_φ(z|x) and a head

    p_θ(y|z) = p_θ(z|y) p_π(y) / Σ_y' p_θ(z|y') p_π(y')          (Bayes' rule, the paper's Eq. 3)

With Gaussian class priors sharing one isotropic covariance σ²I, the head is exactly a linear softmax
layer: log p_θ(z|y) + log p_π(y) = μ_yᵀz/σ² - |μ_y|²/(2σ²) + log π_y + (terms free of y), so the weights are
W = μ/σ² and the biases b_y = -|μ_y|²/(2σ²) + log π_y (the paper's "equi-scale exponential family" case, Eq. 6).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _check_finite(name: str, t: torch.Tensor) -> None:
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf; check the encoder's outputs and the learning rate")


class GaussianClassPrior(nn.Module):
    """p_θ(z|y) = N(z; μ_y, diag σ²_y) for y = 1..K, and a learned class prior p_π(y) = softmax(π).

    - ``shared_isotropic=True`` ties every class and dimension to one variance σ²: the linear-softmax case.
    - Means start as ``randn(K, d)`` and log-variances at 0, as in the reference implementation.
    - Log-variances are clamped to [``min_log_var``, ``max_log_var``] so training cannot make them 0 or inf.
    """

    def __init__(self, num_classes: int, dim: int, shared_isotropic: bool = False, learn_class_prior: bool = True,
                 min_log_var: float = -6.0, max_log_var: float = 6.0):
        super().__init__()
        if num_classes < 2 or dim < 1:
            raise ValueError(f"need num_classes >= 2 and dim >= 1, got {num_classes}, {dim}")
        if not min_log_var < max_log_var:
            raise ValueError(f"need min_log_var < max_log_var, got {min_log_var}, {max_log_var}")
        self.num_classes, self.dim, self.shared_isotropic = num_classes, dim, shared_isotropic
        self.min_log_var, self.max_log_var = min_log_var, max_log_var
        self.means = nn.Parameter(torch.randn(num_classes, dim))
        self.raw_log_var = nn.Parameter(torch.zeros(1, 1) if shared_isotropic else torch.zeros(num_classes, dim))
        self.class_logits = nn.Parameter(torch.zeros(num_classes), requires_grad=learn_class_prior)

    @property
    def log_var(self) -> torch.Tensor:
        """log σ²: (K, d), clamped."""
        return self.raw_log_var.clamp(self.min_log_var, self.max_log_var).expand(self.num_classes, self.dim)

    def log_class_prior(self) -> torch.Tensor:
        """log p_π(y): (K,)."""
        return self.class_logits.log_softmax(0)

    def _check_z(self, z: torch.Tensor) -> None:
        if z.dim() != 2 or z.shape[1] != self.dim:
            raise ValueError(f"z must be (N, {self.dim}) to match the prior's latent dimension, got {tuple(z.shape)}")
        _check_finite("z", z)

    def _check_y(self, y: torch.Tensor, n: int) -> None:
        if y.shape != (n,):
            raise ValueError(f"y must be ({n},) class indices, got shape {tuple(y.shape)}")
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
            raise ValueError(f"class indices must lie in [0, {self.num_classes}); got range "
                             f"[{int(y.min())}, {int(y.max())}]: does num_classes match the data?")

    def log_prob_all(self, z: torch.Tensor) -> torch.Tensor:
        """log p_θ(z|y) for every class: (N, K)."""
        self._check_z(z)
        _check_finite("the prior's means", self.means)
        _check_finite("the prior's log-variances", self.raw_log_var)
        log_var = self.log_var
        diff = z[:, None, :] - self.means[None]
        return -0.5 * ((diff.pow(2) / log_var.exp()).sum(-1) + log_var.sum(-1) + self.dim * math.log(2 * math.pi))

    def log_prob(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """log p_θ(z|y) at each row's own class: (N,)."""
        self._check_y(y, len(z))
        return self.log_prob_all(z).gather(1, y[:, None]).squeeze(1)

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """log p_θ(z|y) + log p_π(y): the head's logits, so p_θ(y|z) = softmax(logits) (Bayes' rule, Eq. 3)."""
        return self.log_prob_all(z) + self.log_class_prior()

    def sample(self, y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ p_θ(z|y) for each label in ``y``, by reparameterisation: (N, d)."""
        self._check_y(y, len(y))
        eps = torch.randn(len(y), self.dim, generator=generator).to(self.means.device)
        return self.means[y] + (0.5 * self.log_var[y]).exp() * eps

    def as_linear(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(W, b) of the equivalent linear softmax layer; only for ``shared_isotropic`` priors (Eq. 6)."""
        if not self.shared_isotropic:
            raise ValueError("only a shared isotropic covariance gives a linear head; use shared_isotropic=True")
        var = self.log_var[0, 0].exp()
        return self.means / var, -self.means.pow(2).sum(1) / (2 * var) + self.log_class_prior()


class ClassDensityRatio(nn.Module):
    """One binary discriminator per class, T^y_ψ(z), trained to tell q_φ(z|y) from p_θ(z|y) (the paper's Eq. 9).

    Samples of q (encoder outputs of class y) are labelled 1 and samples of p (prior draws) 0. With equal
    numbers of each, the optimal logit is T^y(z) = log q(z|y) / p(z|y) (Chapter 1: a classifier's logit is a
    log density ratio), so E_{q(z|y)} T^y(z) estimates KL(q(z|y) ‖ p(z|y)).

    ``hidden=None``: linear, T^y(z) = w_yᵀz + b_y, as in the paper's default; otherwise a per-class MLP with
    one tanh layer of ``hidden`` units (the reference code's option uses 512).
    """

    def __init__(self, num_classes: int, dim: int, hidden: int | None = None):
        super().__init__()
        if num_classes < 1 or dim < 1 or (hidden is not None and hidden < 1):
            raise ValueError(f"need num_classes, dim >= 1 and hidden >= 1 or None; got {num_classes}, {dim}, {hidden}")
        self.num_classes, self.dim, self.hidden = num_classes, dim, hidden
        if hidden is None:
            self.weight = nn.Parameter(torch.zeros(num_classes, dim))
            self.bias = nn.Parameter(torch.zeros(num_classes))
        else:
            self.w1 = nn.Parameter(torch.randn(num_classes, dim, hidden) / math.sqrt(dim))
            self.b1 = nn.Parameter(torch.zeros(num_classes, hidden))
            self.w2 = nn.Parameter(torch.randn(num_classes, hidden) / math.sqrt(hidden))
            self.b2 = nn.Parameter(torch.zeros(num_classes))

    def forward(self, z: torch.Tensor, y: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        """T^y(z) for each row's class: (N,). ``detach_params``: gradients reach z but not ψ."""
        if z.dim() != 2 or z.shape[1] != self.dim:
            raise ValueError(f"z must be (N, {self.dim}), got {tuple(z.shape)}")
        if y.shape != (len(z),):
            raise ValueError(f"y must be ({len(z)},), got {tuple(y.shape)}")
        p = {k: (v.detach() if detach_params else v) for k, v in self.named_parameters()}
        if self.hidden is None:
            return (p["weight"][y] * z).sum(1) + p["bias"][y]
        h = torch.tanh(torch.einsum("nd,ndh->nh", z, p["w1"][y]) + p["b1"][y])
        return (h * p["w2"][y]).sum(1) + p["b2"][y]

    def loss(self, z_q: torch.Tensor, z_p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy: q samples (detached) labelled 1, p samples (detached) labelled 0."""
        logit_q = self(z_q.detach(), y)
        logit_p = self(z_p.detach(), y)
        bce = nn.functional.binary_cross_entropy_with_logits
        return bce(logit_q, torch.ones_like(logit_q)) + bce(logit_p, torch.zeros_like(logit_p))

    def kl_estimate(self, z_q: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """E_{q(z|y)} T^y(z), averaged over the batch: the estimate of KL(q(z|y) ‖ p(z|y)) (Eq. 8-9)."""
        return self(z_q, y).mean()
