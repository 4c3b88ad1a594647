"""Metrics on predicted class probabilities ``probs`` (N, K) and labels ``y`` (N,).

Every metric first checks its input with `check_probabilities` (once per call, vectorised) and refuses, with a
`ValueError` that says what to do, what would otherwise give a wrong number silently: rows that are not probability
distributions (negative, NaN / inf, or not summing to 1 within ``SUM_TOLERANCE``: logits passed for
probabilities), labels that are not integer class indices in 0..K-1, mismatched lengths and empty input. Tensors on
any device and dtype (float16 and bfloat16 included) and numpy arrays are accepted; a 1-D ``probs`` is read as
P(class 1) of a binary task.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Largest |Σ_c probs[i, c] - 1| accepted per row. For dtypes coarser than float32 the machine epsilon is used when
# larger (bfloat16: 7.8e-3): rounding each entry alone moves a row sum by up to eps/2.
SUM_TOLERANCE = 1e-3


def check_probabilities(probs, y=None, *, name: str = "probs") -> tuple[torch.Tensor, torch.Tensor | None]:
    """Check that ``probs`` holds one probability distribution per row and ``y`` (optional) one class index per
    row; return them as CPU tensors, ``probs`` (N, K) float64 and ``y`` (N,) int64 (None when not given).

    ``probs``: a tensor or array (N, K), any float dtype and device; or (N,) read as P(class 1) of a binary task
    (returned as the two columns [1 - p, p]). Raises `ValueError` when it is empty, holds NaN / inf or negative
    values, or a row sums to more than ``SUM_TOLERANCE`` away from 1 (machine epsilon when larger, for float16 /
    bfloat16); when ``y`` is not 1-D integers of length N with values in 0..K-1. One vectorised pass, no Python loop
    over rows.
    """
    p = torch.as_tensor(probs).detach()
    dtype = p.dtype
    if p.dtype.is_complex:
        raise ValueError(f"{name} must be real probabilities, got dtype {p.dtype}")
    if p.dim() not in (1, 2):
        raise ValueError(f"{name} must be (N, K) class probabilities (or (N,) P(class 1) of a binary task), "
                         f"got shape {tuple(p.shape)}")
    if p.shape[0] == 0 or p.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(p.shape)}): a metric needs at least one example and one "
                         "class; check the split or filter that produced it")
    p = p.to(device="cpu", dtype=torch.float64)
    finite = torch.isfinite(p)
    if not bool(finite.all()):
        bad = (~finite).reshape(len(p), -1).any(1)
        raise ValueError(f"{name} contain NaN or inf in {int(bad.sum())} of {len(p)} rows (first: row "
                         f"{int(bad.nonzero()[0])}); check the model's outputs (overflowing logits, a log of 0)")
    if p.dim() == 1:
        if bool((p < 0).any()) or bool((p > 1).any()):
            raise ValueError(f"a 1-D {name} is read as P(class 1) of a binary task and must lie in [0, 1], got range "
                             f"[{p.min().item():.4g}, {p.max().item():.4g}]: pass sigmoid(logit), not the logit")
        p = torch.stack([1 - p, p], 1)
    if bool((p < 0).any()):
        row = int((p < 0).any(1).nonzero()[0])
        raise ValueError(f"{name} must be non-negative, but row {row} holds {p[row].min().item():.4g}: pass "
                         "softmax(logits), not logits")
    tol = max(SUM_TOLERANCE, torch.finfo(dtype).eps if dtype.is_floating_point else 0.0)
    off = (p.sum(1) - 1).abs() > tol
    if bool(off.any()):
        row = int(off.nonzero()[0])
        raise ValueError(f"{name} rows must sum to 1 (within {tol:.2g}), but {int(off.sum())} of {len(p)} rows do not "
                         f"(row {row} sums to {p[row].sum().item():.6g}): pass softmax(logits), not logits or "
                         "unnormalised scores")
    if y is None:
        return p, None
    y = torch.as_tensor(y).detach()
    if y.shape != (p.shape[0],):
        raise ValueError(f"labels must have shape ({p.shape[0]},) to match {name}, got {tuple(y.shape)}: one class "
                         "index per row of probabilities")
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise ValueError(f"labels must be integer class indices 0..K-1, got dtype {y.dtype}: pass y.long() "
                         "(or y.argmax(1) for one-hot labels)")
    y = y.to(device="cpu", dtype=torch.int64)
    k = p.shape[1]
    outside = (y < 0) | (y >= k)
    if bool(outside.any()):
        row = int(outside.nonzero()[0])
        raise ValueError(f"labels must lie in 0..{k - 1} for the K = {k} columns of {name}, got {int(y[row])} (row "
                         f"{row}; {int(outside.sum())} labels outside): check the number of classes or the label "
                         "encoding")
    return p, y


def accuracy(probs: torch.Tensor, y: torch.Tensor) -> float:
    probs, y = check_probabilities(probs, y)
    return _accuracy(probs, y)


def _accuracy(probs: torch.Tensor, y: torch.Tensor) -> float:
    return (probs.argmax(1) == y).double().mean().item()


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
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    probs, y = check_probabilities(probs, y)
    return _reliability_curve(probs, y, n_bins)


def _reliability_curve(probs: torch.Tensor, y: torch.Tensor, n_bins: int) -> ReliabilityCurve:
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
    """Mean |f(c|x) - P(c|x)| over points and classes (for two classes: mean |f(x) - P(A|x)|). Both are checked
    as probabilities (`check_probabilities`, once each)."""
    probs, _ = check_probabilities(probs)
    true_posterior, _ = check_probabilities(true_posterior, name="true posterior")
    if probs.shape != true_posterior.shape:
        raise ValueError(f"probs {tuple(probs.shape)} and true posterior {tuple(true_posterior.shape)} must match")
    return (probs - true_posterior).abs().mean().item()


def negative_log_likelihood(probs: torch.Tensor, y: torch.Tensor) -> float:
    probs, y = check_probabilities(probs, y)
    return _negative_log_likelihood(probs, y)


def _negative_log_likelihood(probs: torch.Tensor, y: torch.Tensor) -> float:
    return -probs.gather(1, y[:, None]).clamp_min(1e-12).log().mean().item()


def brier_score(probs: torch.Tensor, y: torch.Tensor) -> float:
    """Mean over examples of Σ_c (f(c|x) - 1[c = y])²."""
    probs, y = check_probabilities(probs, y)
    return _brier_score(probs, y)


def _brier_score(probs: torch.Tensor, y: torch.Tensor) -> float:
    onehot = torch.nn.functional.one_hot(y, probs.shape[1]).double()
    return (probs - onehot).pow(2).sum(1).mean().item()


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
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    probs, y = check_probabilities(probs, y)
    curve = _reliability_curve(probs, y, n_bins)
    return {"acc": _accuracy(probs, y), "nll": _negative_log_likelihood(probs, y), "brier": _brier_score(probs, y),
            "ece": curve.ece, "mce": curve.mce}
