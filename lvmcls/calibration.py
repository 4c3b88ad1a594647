"""Post-hoc calibration: temperature scaling (Guo et al. 2017), tuned on a validation split."""

from __future__ import annotations

import torch

from .metrics import check_probabilities


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
    f'(c|x) ∝ f(c|x) π'_c / π_c. ``probs`` must be probabilities (`lvmcls.metrics.check_probabilities`)."""
    check_probabilities(probs)
    probs = torch.as_tensor(probs)
    train_prior, new_prior = torch.as_tensor(train_prior, dtype=probs.dtype), torch.as_tensor(new_prior, dtype=probs.dtype)
    if probs.dim() != 2 or train_prior.shape != (probs.shape[1],) or new_prior.shape != (probs.shape[1],):
        raise ValueError(f"need probs (N, K) and two priors of K = {probs.shape[-1]} entries")
    if (train_prior <= 0).any() or (new_prior <= 0).any():
        raise ValueError("class priors must be positive")
    w = probs * (new_prior / train_prior)
    return w / w.sum(1, keepdim=True)


# --------------------------------------------------------------------------------------------
# How precise is an ECE? The floor of a perfectly calibrated model, and a bootstrap over test images

def _binned_gap(probs: torch.Tensor, y: torch.Tensor, n_bins: int) -> torch.Tensor:
    """(N, n_bins): row i holds (correct_i − conf_i) in the column of its confidence bin, zeros elsewhere, so
    that ECE = Σ_b |Σ_i gap_ib| / N (the bins of `lvmcls.metrics.reliability_curve`: (edge_b, edge_{b+1}]).
    ``probs`` and ``y`` are checked first (`lvmcls.metrics.check_probabilities`)."""
    return _binned_gap_checked(*check_probabilities(probs, y), n_bins)


def _binned_gap_checked(probs: torch.Tensor, y: torch.Tensor, n_bins: int) -> torch.Tensor:
    """`_binned_gap` of probabilities and labels that `check_probabilities` returned (CPU, float64 and int64)."""
    conf, pred = probs.max(1)
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    idx = (torch.bucketize(conf, edges, right=False) - 1).clamp(0, n_bins - 1)
    gap = torch.zeros(len(conf), n_bins, dtype=torch.float64)
    gap[torch.arange(len(conf)), idx] = (pred == y).double() - conf
    return gap


def ece_floor(probs: torch.Tensor, n_bins: int = 20, draws: int = 50, seed: int = 0) -> dict[str, float]:
    """The ECE that a *perfectly calibrated* model with these confidences shows at this test size.

    Labels are redrawn from the model's own probabilities, y* ~ Categorical(probs), so that the model is calibrated
    for them by construction; the ECE measured against y* is pure finite-sample noise of the 20-bin estimator. Returns
    the mean and the 95th percentile over ``draws`` redraws: an observed ECE (or a difference of ECEs) near the
    floor cannot be told from perfect calibration at this many test images.
    """
    if draws < 2:
        raise ValueError(f"draws must be >= 2, got {draws}")
    probs, _ = check_probabilities(probs)
    g = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(draws):
        y_star = torch.multinomial(probs, 1, generator=g).squeeze(1)
        values.append(float(_binned_gap_checked(probs, y_star, n_bins).sum(0).abs().sum() / len(probs)))
    v = torch.tensor(values)
    return {"mean": float(v.mean()), "p95": float(v.quantile(0.95)), "n": len(probs), "draws": draws}


def paired_ece_bootstrap(candidate: list[torch.Tensor], baseline: list[torch.Tensor], y: torch.Tensor,
                         n_bins: int = 20, resamples: int = 1000, seed: int = 0,
                         level: float = 0.95) -> dict[str, float]:
    """Bootstrap over test images of the seed-averaged ECE difference, candidate − baseline.

    ``candidate`` and ``baseline``: one probability matrix (N, K) per seed, in the same seed order, all on the
    same N test images with labels ``y``. Each resample draws N images with replacement, the *same* images for
    every arm and seed (the arms are paired on images as on seeds), and recomputes mean_s ECE_cand,s − ECE_base,s.
    Returns the point estimate and the percentile interval at ``level``: the uncertainty from the finite test set,
    which the seed-paired t-interval (`lvmcls.decisions.paired_decision`) does not see because every seed is
    tested on the same images.
    """
    if len(candidate) != len(baseline) or not candidate:
        raise ValueError(f"need one probability matrix per seed in each arm, got {len(candidate)} and "
                         f"{len(baseline)}")
    if not 0 < level < 1 or resamples < 10:
        raise ValueError(f"need 0 < level < 1 and resamples >= 10, got {level}, {resamples}")
    y = torch.as_tensor(y).cpu()
    n = len(y)
    gaps = [(_binned_gap(a, y, n_bins), _binned_gap(b, y, n_bins)) for a, b in zip(candidate, baseline)]
    g = torch.Generator().manual_seed(seed)
    diffs = torch.zeros(resamples, dtype=torch.float64)
    point = 0.0
    for ga, gb in gaps:
        point += float((ga.sum(0).abs().sum() - gb.sum(0).abs().sum()) / n)
    for start in range(0, resamples, 100):
        rows = min(100, resamples - start)
        counts = torch.zeros(rows, n, dtype=torch.float64)
        counts.scatter_add_(1, torch.randint(n, (rows, n), generator=g), torch.ones(rows, n, dtype=torch.float64))
        for ga, gb in gaps:
            diffs[start:start + rows] += ((counts @ ga).abs().sum(1) - (counts @ gb).abs().sum(1)) / n
    diffs /= len(gaps)
    tail = (1 - level) / 2
    lo, hi = diffs.quantile(torch.tensor([tail, 1 - tail], dtype=torch.float64)).tolist()
    return {"difference": point / len(gaps), "interval": [lo, hi], "level": level, "resamples": resamples,
            "images": n, "seeds": len(gaps)}
