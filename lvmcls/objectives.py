"""Objectives, each named after the quantity it computes.

Chapter 1 (why softmax scores are probabilities): for a classifier f_θ(c|x) and the true posterior
P(c|x),

    E_{p(x)} KL(P(·|x) ‖ f_θ(·|x)) = E_{p(x,c)}[-log f_θ(c|x)] - E_{p(x)} H(P(·|x)),

so minimising cross-entropy (the first term on the right) minimises the expected KL to the truth:
the entropy term does not depend on θ.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_logits(logits: torch.Tensor, y: torch.Tensor) -> None:
    if logits.dim() != 2:
        raise ValueError(f"logits must be (N, K), got shape {tuple(logits.shape)}")
    if y.shape != (logits.shape[0],):
        raise ValueError(f"labels must be ({logits.shape[0]},) to match logits, got {tuple(y.shape)}")


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy, -(1/N) Σ_i log f_θ(c_i|x_i) with f = softmax(logits)."""
    _check_logits(logits, y)
    return -logits.log_softmax(dim=1).gather(1, y[:, None]).mean()


def binary_cross_entropy(logit: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sigmoid cross-entropy for classes {0, 1}: -(1/N) Σ_i [y_i log σ(s_i) + (1 - y_i) log(1 - σ(s_i))].

    With N_A examples of class 1 and N_B of class 0 this is
    -(N_A/N) E_{p(x|A)} log σ(s) - (N_B/N) E_{p(x|B)} log(1 - σ(s)), minimised pointwise by
    σ(s(x)) = N_A p(x|A) / (N_A p(x|A) + N_B p(x|B)): the posterior under the training class counts.
    """
    logit = logit.reshape(-1)
    if y.shape != logit.shape:
        raise ValueError(f"labels must be ({logit.shape[0]},) to match the logits, got {tuple(y.shape)}")
    return F.binary_cross_entropy_with_logits(logit, y.float())


def hinge(scores: torch.Tensor, y: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Multi-class hinge (Crammer & Singer): mean of max(0, margin + max_{k≠y} s_k - s_y).

    Not a proper scoring rule: its minimiser is the Bayes decision, not the Bayes posterior, so
    softmax(s) of a hinge-trained network is not a probability of anything.
    """
    _check_logits(scores, y)
    true = scores.gather(1, y[:, None])
    others = scores.scatter(1, y[:, None], float("-inf")).amax(dim=1, keepdim=True)
    return (margin + others - true).clamp(min=0).mean()


def binary_hinge(score: torch.Tensor, y: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Binary hinge for classes {0, 1}: mean of max(0, margin - t s) with t = 2y - 1."""
    score = score.reshape(-1)
    if y.shape != score.shape:
        raise ValueError(f"labels must be ({score.shape[0]},) to match the scores, got {tuple(y.shape)}")
    return (margin - (2 * y.float() - 1) * score).clamp(min=0).mean()


def entropy(p: torch.Tensor) -> torch.Tensor:
    """H(p) = -Σ_c p_c log p_c for each row of p: (N,)."""
    return -(p * p.clamp_min(1e-30).log()).sum(dim=1)


def kl_to_posterior(true_posterior: torch.Tensor, log_f: torch.Tensor) -> torch.Tensor:
    """KL(P(·|x) ‖ f(·|x)) = Σ_c P(c|x) [log P(c|x) - log f(c|x)] for each row: (N,)."""
    if true_posterior.shape != log_f.shape:
        raise ValueError(f"posterior {tuple(true_posterior.shape)} and log f {tuple(log_f.shape)} must match")
    p = true_posterior
    return (p * (p.clamp_min(1e-30).log() - log_f)).sum(dim=1)


def expected_cross_entropy(true_posterior: torch.Tensor, log_f: torch.Tensor) -> torch.Tensor:
    """E_{P(c|x)}[-log f(c|x)] for each row, the cross-entropy with the labels summed out: (N,)."""
    return -(true_posterior * log_f).sum(dim=1)
