"""Metrics on predicted class probabilities ``probs`` (N, K) and labels ``y`` (N,)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


def _check(probs: torch.Tensor, y: torch.Tensor | None = None) -> None:
    if probs.dim() != 2:
        raise ValueError(f"probs must be (N, K), got shape {tuple(probs.shape)}")
    if not torch.isfinite(probs).all():
        raise ValueError("probs contain NaN or inf; check the model's outputs")
    if y is not None and y.shape != (probs.shape[0],):
        raise ValueError(f"labels must have shape ({probs.shape[0]},) to match probs, got {tuple(y.shape)}")


def accuracy(probs: torch.Tensor, y: torch.Tensor) -> float:
    _check(probs, y)
    return (probs.argmax(1) == y).float().mean().item()


@dataclass
class ReliabilityCurve:
    """Per-bin mean confidence, accuracy and count for equal-width bins of the max probability."""

    edges: torch.Tensor
    confidence: torch.Tensor
    accuracy: torch.Tensor
    count: torch.Tensor

    @property
    def ece(self) -> float:
        """Expected calibration error Σ_b (n_b/N) |acc_b - conf_b| (Guo et al. 2017)."""
        gap = (self.accuracy - self.confidence).abs()
        return (self.count * gap).sum().item() / self.count.sum().item()

    @property
    def signed_gap(self) -> float:
        """Σ_b (n_b/N) (acc_b - conf_b): > 0 when the bars stand above the diagonal on average (under-confident
        scores), < 0 when below (over-confident). Unlike the ECE, gaps of opposite signs cancel."""
        return (self.count * (self.accuracy - self.confidence)).sum().item() / self.count.sum().item()

    @property
    def share_above_diagonal(self) -> float:
        """The fraction of the points that lie in bins whose accuracy exceeds their mean confidence."""
        return self.count[self.accuracy > self.confidence].sum().item() / self.count.sum().item()

    @property
    def mce(self) -> float:
        """Maximum calibration error over the non-empty bins."""
        gap = (self.accuracy - self.confidence).abs()[self.count > 0]
        return gap.max().item() if len(gap) else 0.0


def reliability_curve(probs: torch.Tensor, y: torch.Tensor, n_bins: int = 20) -> ReliabilityCurve:
    """Bin the confidence max_c f(c|x) into ``n_bins`` equal-width bins on [0, 1] (the VC paper: 20)."""
    _check(probs, y)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    probs, y = probs.detach().double().cpu(), y.cpu()
    conf, pred = probs.max(1)
    correct = (pred == y).double()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    # bin b holds confidences in (edge_b, edge_{b+1}]; a confidence of exactly 0 goes in the first bin
    idx = (torch.bucketize(conf, edges, right=False) - 1).clamp(0, n_bins - 1)
    count = torch.bincount(idx, minlength=n_bins).double()
    safe = count.clamp_min(1)
    return ReliabilityCurve(edges, torch.bincount(idx, conf, minlength=n_bins) / safe,
                            torch.bincount(idx, correct, minlength=n_bins) / safe, count)


def expected_calibration_error(probs: torch.Tensor, y: torch.Tensor, n_bins: int = 20) -> float:
    return reliability_curve(probs, y, n_bins).ece


def posterior_mae(probs: torch.Tensor, true_posterior: torch.Tensor) -> float:
    """Mean |f(c|x) - P(c|x)| over points and classes (for two classes: mean |f(x) - P(A|x)|)."""
    _check(probs)
    if probs.shape != true_posterior.shape:
        raise ValueError(f"probs {tuple(probs.shape)} and true posterior {tuple(true_posterior.shape)} must match")
    return (probs.detach().cpu().double() - true_posterior.cpu().double()).abs().mean().item()


def negative_log_likelihood(probs: torch.Tensor, y: torch.Tensor) -> float:
    _check(probs, y)
    return -probs.gather(1, y[:, None]).clamp_min(1e-12).log().mean().item()


def brier_score(probs: torch.Tensor, y: torch.Tensor) -> float:
    """Mean over examples of Σ_c (f(c|x) - 1[c = y])²."""
    _check(probs, y)
    onehot = torch.nn.functional.one_hot(y.cpu(), probs.shape[1]).double()
    return (probs.detach().cpu().double() - onehot).pow(2).sum(1).mean().item()


def auroc(score_in: torch.Tensor, score_out: torch.Tensor) -> float:
    """Area under the ROC curve for telling in-distribution (positive, higher score) from OOD inputs
    (scikit-learn's ``roc_auc_score``)."""
    from sklearn.metrics import roc_auc_score

    score_in, score_out = score_in.detach().cpu().double().flatten(), score_out.detach().cpu().double().flatten()
    if len(score_in) == 0 or len(score_out) == 0:
        raise ValueError("auroc needs at least one in-distribution and one OOD score")
    if not (torch.isfinite(score_in).all() and torch.isfinite(score_out).all()):
        raise ValueError("scores contain NaN or inf")
    labels = torch.cat([torch.ones(len(score_in)), torch.zeros(len(score_out))])
    return float(roc_auc_score(labels.numpy(), torch.cat([score_in, score_out]).numpy()))


def classification_report(probs: torch.Tensor, y: torch.Tensor, n_bins: int = 20) -> dict[str, float]:
    """Accuracy, NLL, Brier score, ECE and MCE (``n_bins`` equal-width bins) in one dict."""
    curve = reliability_curve(probs, y, n_bins)
    return {"acc": accuracy(probs, y), "nll": negative_log_likelihood(probs, y), "brier": brier_score(probs, y),
            "ece": curve.ece, "mce": curve.mce}
