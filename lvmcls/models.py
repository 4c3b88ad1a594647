"""The plain classifier f_θ(c|x) = softmax(s_θ(x)) (Chapter 1) and its evaluation; the `Trainer` calls
``training_step``. The latent-variable classifiers live with their families (`lvmcls.vc`, `lvmcls.vae_as`, `lvmcls.branched_vae`, `lvmcls.ssvae`)."""

from __future__ import annotations

import torch
from torch import nn

from . import objectives
from .metrics import classification_report
from .nets import eval_batched


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
        out = eval_batched(self, x, batch_size)
        if self._binary(out):
            p = torch.sigmoid(out)
            return torch.cat([1 - p, p], dim=1)
        return out.softmax(dim=1)


def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """``model(x)`` in eval mode, batched, as float logits on the CPU: (N, K)."""
    return eval_batched(model, x, batch_size).cpu()


def evaluate_classifier(model: nn.Module, split, temperature: float = 1.0, n_bins: int = 20):
    """Accuracy, NLL, Brier, ECE and MCE of softmax(logits / ``temperature``) on ``split``; also the logits."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    logits = predict_logits(model, split.x)
    return classification_report((logits / temperature).softmax(1), split.y.cpu(), n_bins), logits
