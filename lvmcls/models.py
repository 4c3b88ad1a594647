"""Modules that pair a network with an objective; the `Trainer` calls ``training_step``."""

from __future__ import annotations

import torch
from torch import nn

from . import objectives


class Classifier(nn.Module):
    """f_θ(c|x) = softmax(s_θ(x)) for K classes, or sigmoid(s_θ(x)) for a single output (two classes).

    ``loss``: "ce" (cross-entropy, a proper scoring rule) or "hinge" (not proper). The architecture,
    the softmax or sigmoid on top of the scores, is what makes f a conditional distribution over classes;
    the loss decides whether its values match P(c|x).
    """

    LOSSES = {("ce", False): objectives.cross_entropy, ("ce", True): objectives.binary_cross_entropy,
              ("hinge", False): objectives.hinge, ("hinge", True): objectives.binary_hinge}

    def __init__(self, net: nn.Module, loss: str = "ce"):
        super().__init__()
        if loss not in ("ce", "hinge"):
            raise ValueError(f"loss must be 'ce' or 'hinge', got {loss!r}")
        self.net, self.loss = net, loss

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _binary(self, scores: torch.Tensor) -> bool:
        return scores.shape[-1] == 1

    def training_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        scores = self(x)
        binary = self._binary(scores)
        loss = self.LOSSES[(self.loss, binary)](scores, y)
        pred = (scores.reshape(-1) > 0).long() if binary else scores.argmax(1)
        return {"loss": loss, "acc": (pred == y).float().mean()}

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        """f(·|x) as (N, K) probabilities (two columns [1 - σ, σ] for a single-output network)."""
        was_training = self.training
        self.eval()
        out = torch.cat([self(x[i:i + batch_size]).float() for i in range(0, len(x), batch_size)])
        self.train(was_training)
        if self._binary(out):
            p = torch.sigmoid(out)
            return torch.cat([1 - p, p], dim=1)
        return out.softmax(dim=1)


class LatentClassifier(nn.Module):
    """The softmax classifier as a latent-variable model (Variational Classification, Algorithm 1).

    Generative story: y ~ p_π(y), z ~ p_θ(z|y) (``GaussianClassPrior``); the inputs x are given.
    Inference: an encoder q_φ(z|x), either a point mass δ(z - f_φ(x)) (the default, as in the paper) or a
    Gaussian N(μ_φ(x), diag σ²_φ(x)) sampled by reparameterisation (the paper's future work). The head is
    p_θ(y|z) by Bayes' rule, so p(y|x) = E_{q(z|x)} p_θ(y|z).

    ``objective``: "ce", "gm" or "vc" (see `objectives.variational_classification`). For "vc" a
    ``ClassDensityRatio`` is trained alongside, one step per encoder step, on detached encoder outputs
    (label 1) and prior samples (label 0), by its own AdamW (library defaults), as in the reference code.
    """

    def __init__(self, encoder: nn.Module, prior: nn.Module, ratio: nn.Module | None = None, objective: str = "vc",
                 beta: float = 0.01, likelihood_weight: float | None = None, posterior: str = "point",
                 prior_lr: float | None = None):
        super().__init__()
        if posterior not in ("point", "gaussian"):
            raise ValueError(f"posterior must be 'point' or 'gaussian', got {posterior!r}")
        if objective not in objectives.VC_OBJECTIVES:
            raise ValueError(f"objective must be one of {objectives.VC_OBJECTIVES}, got {objective!r}")
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        if objective == "vc" and ratio is None:
            raise ValueError("objective='vc' needs ratio=ClassDensityRatio(num_classes, dim)")
        if ratio is not None and (ratio.num_classes, ratio.dim) != (prior.num_classes, prior.dim):
            raise ValueError(f"the density ratio is for {ratio.num_classes} classes in R^{ratio.dim} but the prior "
                             f"for {prior.num_classes} classes in R^{prior.dim}")
        self.encoder, self.prior, self.ratio = encoder, prior, ratio
        self.objective, self.beta, self.likelihood_weight = objective, beta, likelihood_weight
        self.posterior, self.prior_lr = posterior, prior_lr

    @classmethod
    def build(cls, objective: str, encoder: nn.Module, num_classes: int, dim: int, beta: float = 0.01,
              likelihood_weight: float | None = None, ratio_hidden: int | None = None, **kwargs) -> "LatentClassifier":
        """Encoder + ``GaussianClassPrior`` (+ a ``ClassDensityRatio`` for VC: linear unless ``ratio_hidden``)."""
        from .priors import ClassDensityRatio, GaussianClassPrior

        ratio = ClassDensityRatio(num_classes, dim, hidden=ratio_hidden) if objective == "vc" else None
        return cls(encoder, GaussianClassPrior(num_classes, dim), ratio, objective=objective, beta=beta,
                   likelihood_weight=likelihood_weight, **kwargs)

    def encode(self, x: torch.Tensor, sample: bool = True) -> torch.Tensor:
        """z ~ q_φ(z|x): the point itself, or a reparameterised Gaussian draw (its mean if not ``sample``)."""
        out = self.encoder(x)
        d = self.prior.dim
        if self.posterior == "point":
            if out.shape[1] != d:
                raise ValueError(f"the encoder outputs {out.shape[1]} features; the prior's latent dimension is {d}")
            return out
        if out.shape[1] != 2 * d:
            raise ValueError(f"a Gaussian posterior needs 2 x {d} encoder outputs (mean, log-variance), got {out.shape[1]}")
        mean, log_var = out[:, :d], out[:, d:].clamp(-8, 8)
        return mean + (0.5 * log_var).exp() * torch.randn_like(mean) if sample else mean

    def training_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.encode(x)
        terms = objectives.variational_classification(z, y, self.prior, self.ratio, self.objective, self.beta,
                                                      self.likelihood_weight)
        logits = terms.pop("logits")
        out = {**terms, "objective": terms["loss"], "acc": (logits.argmax(1) == y).float().mean()}
        if self.ratio is not None:
            z_prior = self.prior.sample(y).detach()
            out["ratio_loss"] = self.ratio.loss(z, z_prior, y)
            out["loss"] = terms["loss"] + out["ratio_loss"]  # disjoint parameters: one backward trains both
        return out

    def parameter_groups(self) -> dict:
        groups = {"encoder": (list(self.encoder.parameters()), {}),
                  "prior": (list(self.prior.parameters()), {} if self.prior_lr is None else {"lr": self.prior_lr})}
        if self.ratio is not None:
            groups["ratio"] = (list(self.ratio.parameters()), {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 1e-2})
        return groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of p(y|x): the Bayes-rule head at z = E_q[z|x] (differentiable in x, e.g. for FGSM)."""
        return self.prior.logits(self.encode(x, sample=False))

    @torch.no_grad()
    def log_marginal(self, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        """log p_θ(z) = log Σ_y p_θ(z|y) p_π(y) at z = E_q[z|x]: a density score for OOD detection, (N,)."""
        z = self.latents(x, batch_size)
        return torch.logsumexp(self.prior.logits(z), dim=1)

    @torch.no_grad()
    def latents(self, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        """E_q[z|x] for every row of x (the point itself for a point mass)."""
        was_training = self.training
        self.eval()
        z = torch.cat([self.encode(x[i:i + batch_size], sample=False).float() for i in range(0, len(x), batch_size)])
        self.train(was_training)
        return z

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        """p(y|x) = p_θ(y|z) at z = E_q[z|x] (exact for a point mass): (N, K)."""
        return self.prior.logits(self.latents(x, batch_size)).softmax(1)
