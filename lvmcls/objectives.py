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


# --------------------------------------------------------------------------------------------
# Variational Classification (Dhuliawala, Sachan & Allen, TMLR 2023), Algorithm 1

VC_OBJECTIVES = ("ce", "gm", "vc")
DEFAULT_LIKELIHOOD_WEIGHT = {"ce": 0.0, "gm": 0.1, "vc": 0.01}  # the reference code's run scripts


def variational_classification(z: torch.Tensor, y: torch.Tensor, prior, ratio=None, objective: str = "vc",
                               beta: float = 0.01, likelihood_weight: float | None = None) -> dict[str, torch.Tensor]:
    """The CE / GM / VC objectives of Algorithm 1 for latents z ~ q_φ(z|x) of inputs with labels y.

    Per example, with p_θ(y|z) from the prior by Bayes' rule (``prior.logits``):

    - CE (MLE), the ELBO_VC of Eq. 5 with a point mass:  log p_θ(y|z) + log p_π(y)
    - GM (MAP):  CE + λ log p_θ(z|y)                                     (Wan et al. 2018; λ = 0.1)
    - VC, Eq. 7: CE + λ log p_θ(z|y) - β T^y_ψ(z),  with E_q T^y ≈ KL(q_φ(z|y) ‖ p_θ(z|y))  (Eq. 8-9; β = λ = 0.01)

    The discriminator T enters with its parameters detached: the encoder's gradient flows through T(z), while T
    itself is trained only by its own objective (``ClassDensityRatio.loss``). Returns ``loss`` (the negated
    objective, averaged) and its terms.
    """
    if objective not in VC_OBJECTIVES:
        raise ValueError(f"objective must be one of {VC_OBJECTIVES}, got {objective!r}")
    if beta < 0:
        raise ValueError(f"beta weights a KL divergence and must be >= 0, got {beta}")
    lam = DEFAULT_LIKELIHOOD_WEIGHT[objective] if likelihood_weight is None else likelihood_weight
    if lam < 0:
        raise ValueError(f"likelihood_weight must be >= 0, got {lam}")
    if objective == "vc" and ratio is None:
        raise ValueError("the VC objective needs a ClassDensityRatio to estimate KL(q(z|y) || p(z|y))")
    logits = prior.logits(z)
    log_p_y_given_z = logits.log_softmax(1).gather(1, y[:, None]).squeeze(1)
    log_p_y = prior.log_class_prior()[y]
    elbo = log_p_y_given_z + log_p_y
    terms = {"log_p_y_given_z": log_p_y_given_z.mean(), "logits": logits}
    if objective in ("gm", "vc"):
        log_p_z_given_y = prior.log_prob(z, y)
        elbo = elbo + lam * log_p_z_given_y
        terms["log_p_z_given_y"] = log_p_z_given_y.mean()
    if objective == "vc":
        t = ratio(z, y, detach_params=True)
        elbo = elbo - beta * t
        terms["kl_estimate"] = t.mean()
    terms["loss"] = -elbo.mean()
    return terms
