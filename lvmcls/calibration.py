"""Post-hoc calibration: temperature scaling (Guo et al. 2017), tuned on a validation split."""

from __future__ import annotations

import torch


def fit_temperature(logits: torch.Tensor, y: torch.Tensor, max_iter: int = 200) -> float:
    """The temperature T > 0 minimising the NLL of softmax(logits / T) on (``logits``, ``y``), by L-BFGS on log T."""
    if logits.dim() != 2 or y.shape != (logits.shape[0],):
        raise ValueError(f"need logits (N, K) and labels (N,), got {tuple(logits.shape)} and {tuple(y.shape)}")
    logits, y = logits.detach().double().cpu(), y.cpu()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    return log_t.detach().exp().item()


def reweight_to_prior(probs: torch.Tensor, train_prior, new_prior) -> torch.Tensor:
    """Bayes' rule: move posteriors learned under class prior ``train_prior`` to ``new_prior`` (Chapter 1):
    f'(c|x) ∝ f(c|x) π'_c / π_c."""
    train_prior, new_prior = torch.as_tensor(train_prior, dtype=probs.dtype), torch.as_tensor(new_prior, dtype=probs.dtype)
    if probs.dim() != 2 or train_prior.shape != (probs.shape[1],) or new_prior.shape != (probs.shape[1],):
        raise ValueError(f"need probs (N, K) and two priors of K = {probs.shape[-1]} entries")
    if (train_prior <= 0).any() or (new_prior <= 0).any():
        raise ValueError("class priors must be positive")
    w = probs * (new_prior / train_prior)
    return w / w.sum(1, keepdim=True)
