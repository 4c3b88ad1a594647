"""Branched VAE classifiers (paper 003, arXiv 2401.02526, read from a summary): a VAE whose latent also feeds a
classifier branch (`BranchedVAE`), and the fixed-output VAE that reconstructs a per-class template instead of the
input (`FixedOutputVAE`). The VAE itself, and its convolutional network, are `lvmcls.vae`'s.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .nets import dense_stack
from .vae import VAE, check_unit_interval, kl_to_standard_normal_sum, posterior_params


class BranchedVAE(nn.Module):
    """A VAE with a classifier branch on its sampled latent: the BVAE (arXiv 2401.02526, its objective
    L_BVAE = α L_recon + L_KL + λ L_C).

    Generative story: z ~ N(0, I); given z, independently x | z ~ Bernoulli(σ(g_θ(z))) and y | z ~ Cat(softmax(c_ψ(z)))
    (the branch c_ψ: dense → ReLU → dense → softmax, or one dense layer when ``branch_hidden`` is None).
    Inference: q_φ(z|x) = N(μ_φ(x), diag σ²_φ(x)) from the image alone, z = μ + σ ⊙ ε.
    Loss per batch (mean over examples), one reparameterised sample z:

        L = -α log p_θ(x|z) + KL(q_φ(z|x) ‖ p(z)) - λ log p_ψ(y|z)

    With α = λ = 1 it is the negative ELBO of log p(x, y) under the model z → (x, y); λ = 0 is the VAE's loss
    exactly (same seed, same number), and the branch then receives no gradient. The CE term does not involve the
    decoder: its gradient reaches the encoder φ (through z) and the branch ψ, never the decoder θ.
    """

    def __init__(self, vae: VAE, num_classes: int = 10, lam: float = 1.0, alpha: float = 1.0,
                 branch_hidden: int | None = 128):
        super().__init__()
        if not (math.isfinite(lam) and lam >= 0):
            raise ValueError(f"lam (λ, the weight of the classifier's cross-entropy) must be >= 0, got {lam}; "
                             "use lam=0 for the plain VAE")
        if not (math.isfinite(alpha) and alpha > 0):
            raise ValueError(f"alpha (α, the weight of the reconstruction term) must be > 0, got {alpha}")
        if num_classes < 2:
            raise ValueError(f"need num_classes >= 2, got {num_classes}")
        self.vae, self.num_classes, self.lam, self.alpha = vae, num_classes, float(lam), float(alpha)
        self.classifier = (nn.Linear(vae.latent_dim, num_classes) if branch_hidden is None else
                           dense_stack([vae.latent_dim, branch_hidden, num_classes]))

    @property
    def latent_dim(self) -> int:
        return self.vae.latent_dim

    def _check_labels(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if y is None or y.shape != (len(x),):
            raise ValueError(f"need one class label per input, shape ({len(x)},), got "
                             f"{None if y is None else tuple(y.shape)}")
        if y.is_floating_point() or bool(((y < 0) | (y >= self.num_classes)).any()):
            raise ValueError(f"labels must be integers in [0, {self.num_classes}), got range "
                             f"[{y.min().item()}, {y.max().item()}]: does num_classes match the data?")

    def reconstruction_target(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """What the decoder is asked to reproduce: the input itself (the VAE and the BVAE)."""
        return x

    def check_data(self, split) -> None:
        """`VAE.check_data` of the wrapped VAE (`terms` also checks every batch)."""
        self.vae.check_data(split)

    def terms(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per example: rec = log p_θ(target|z), the closed-form KL, the branch's logits, and z, μ, log σ²."""
        check_unit_interval(x)
        self._check_labels(x, y)
        mean, log_var = self.vae.encode(x)
        z = self.vae.reparameterise(mean, log_var)
        rec = self.vae.log_likelihood(self.reconstruction_target(x, y), z)
        kl = kl_to_standard_normal_sum(mean, log_var)
        return {"rec": rec, "kl": kl, "logits": self.classifier(z), "z": z, "mean": mean, "log_var": log_var}

    def training_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """L = mean(KL - α rec) + λ CE; with α = 1 the first part is computed exactly as `VAE.training_step` does."""
        t = self.terms(x, y)
        ce = F.cross_entropy(t["logits"].float(), y)
        loss = (t["kl"] - self.alpha * t["rec"]).mean() + self.lam * ce
        acc = (t["logits"].argmax(1) == y).float().mean()
        return {"loss": loss, "rec": t["rec"].mean(), "kl": t["kl"].mean(), "ce": ce, "branch_acc": acc}

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        """The branch's class at the posterior mean, argmax_y p_ψ(y | μ_φ(x)): (N,)."""
        mean, _ = posterior_params(self.vae, x, batch_size)
        return self.classifier(mean).argmax(1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.vae.sample(n, generator)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.vae.reconstruct(x)


class FixedOutputVAE(BranchedVAE):
    """The "fixed-output VAE": the decoder reconstructs a predefined per-class target t_y (a class template, a
    Gaussian blob) instead of the input, from the latent of the input.

    Generative story: z ~ N(0, I), t | z ~ Bernoulli(σ(g_θ(z))) (and, if λ > 0, y | z ~ Cat(softmax(c_ψ(z))));
    inference q_φ(z|x) from the image x. Loss per example, with the target t_y of the example's label y:

        L = -α log p_θ(t_y|z) + KL(q_φ(z|x) ‖ p(z)) - λ log p_ψ(y|z),   z ~ q_φ(z|x),

    for α = 1, λ = 0 the negative of an ELBO on log p_θ(t_y) whose variational posterior is conditioned on x; the
    variational information bottleneck (Alemi et al. 2017) with a template likelihood for the label. ``targets`` is
    (num_classes, x_dim) or (num_classes, C, H, W) with values in [0, 1]; it is a buffer (saved, moved, not trained).
    """

    def __init__(self, vae: VAE, targets: torch.Tensor, lam: float = 0.0, alpha: float = 1.0,
                 branch_hidden: int | None = 128):
        targets = torch.as_tensor(targets, dtype=torch.float32)
        if targets.ndim < 2 or targets[0].numel() != vae.x_dim:
            raise ValueError(f"targets must hold one {vae.x_dim}-pixel image per class, shape (num_classes, "
                             f"{vae.x_dim}) or (num_classes, C, H, W), got {tuple(targets.shape)}")
        check_unit_interval(targets)
        super().__init__(vae, len(targets), lam, alpha, branch_hidden)
        self.register_buffer("targets", targets.reshape(len(targets), vae.x_dim).clone())

    def reconstruction_target(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.targets[y]


class CEOnlyBranch(BranchedVAE):
    """The BVAE's control without a decoder: the same encoder q_φ(z|x) and branch c_ψ, trained by the branch's
    cross-entropy alone on a reparameterised sample z = μ_φ(x) + σ_φ(x) ⊙ ε,

        L = -log p_ψ(y|z)        (no reconstruction, no KL),

    so that, beside a BVAE of the same seed, the difference is what the decoder and the prior add to the latents.
    It is built exactly as a `BranchedVAE` (same modules in the same order: the same seed gives the encoder and the
    branch the same initial weights); the decoder exists but receives no gradient (a tested fact), and ``lam`` only
    scales the loss (1 by default; Adam is nearly scale-free). Its image bounds mean nothing: the decoder is untrained.
    """

    def __init__(self, vae: VAE, num_classes: int = 10, lam: float = 1.0, branch_hidden: int | None = 128):
        if not (math.isfinite(lam) and lam > 0):
            raise ValueError(f"lam (the cross-entropy's weight) must be > 0 for the CE-only control, got {lam}")
        super().__init__(vae, num_classes, lam=lam, alpha=1.0, branch_hidden=branch_hidden)

    def training_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """L = λ CE(c_ψ(z), y), z ~ q_φ(z|x); the KL is reported (detached), not optimised."""
        check_unit_interval(x)
        self._check_labels(x, y)
        mean, log_var = self.vae.encode(x)
        z = self.vae.reparameterise(mean, log_var)
        logits = self.classifier(z)
        ce = F.cross_entropy(logits.float(), y)
        acc = (logits.argmax(1) == y).float().mean()
        kl = kl_to_standard_normal_sum(mean, log_var).mean().detach()
        return {"loss": self.lam * ce, "kl": kl, "ce": ce, "branch_acc": acc}
