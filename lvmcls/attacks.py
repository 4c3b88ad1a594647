"""Adversarial perturbations, computed in pixel space [0, 1] and batched on the device."""

from __future__ import annotations

import torch
from torch import nn

from .nets import eval_batched


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, batch_size: int = 1024) -> torch.Tensor:
    """Fast gradient sign method (Goodfellow et al. 2015): x' = clamp(x + ε · sign(∇ₓ CE(model(x), y)), 0, 1).

    ``model(x)`` must return logits; the model is put in eval mode for the attack and restored afterwards.
    """
    if eps < 0:
        raise ValueError(f"eps must be >= 0 (a perturbation size in pixel units), got {eps}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} rows but y has {y.shape[0]}")
    if eps == 0:
        return x.clone()
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size].clone().requires_grad_(True)
        loss = nn.functional.cross_entropy(model(xb), y[i:i + batch_size])
        (grad,) = torch.autograd.grad(loss, xb)
        out.append((xb + eps * grad.sign()).clamp(0, 1).detach())
    model.train(was_training)
    return torch.cat(out)


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 4096) -> float:
    return (eval_batched(model, x, batch_size).argmax(1) == y).float().mean().item()


def fgsm_accuracy_curve(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilons) -> list[float]:
    """Accuracy under FGSM for each ε in ``epsilons`` (Figure 4 of the VC paper)."""
    model.eval()
    return [_accuracy(model, fgsm(model, x, y, float(eps)), y) for eps in epsilons]


def zero_gradient_share(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """The share of inputs whose input gradient ∇ₓ CE(model(x), y) is exactly zero (every pixel), in the model's
    dtype (fp32): FGSM leaves such an input unchanged (sign(0) = 0), so a model can look robust to FGSM because
    its softmax saturates (gradient masking), not because it is. A robustness claim needs this near zero."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} rows but y has {y.shape[0]}")
    was_training = model.training
    model.eval()
    zero = 0
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size].clone().requires_grad_(True)
        # reduction="sum": each input's gradient is its own loss's (a mean would only rescale, but could underflow)
        loss = nn.functional.cross_entropy(model(xb), y[i:i + batch_size], reduction="sum")
        (grad,) = torch.autograd.grad(loss, xb)
        zero += int((grad.flatten(1) == 0).all(1).sum())
    model.train(was_training)
    return zero / len(x)
