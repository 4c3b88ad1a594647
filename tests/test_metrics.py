"""Metrics against hand-computed examples."""

from __future__ import annotations

import pytest
import torch

from lvmcls import metrics


def test_ece_hand_computed():
    # Two bins of width 0.5; every prediction is class 0. Confidences 0.9, 0.8 (right), 0.6 (wrong) fall in
    # the upper bin, 0.4 (right) in the lower one: three classes let a confidence be below 0.5.
    probs = torch.tensor([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.4, 0.35, 0.25]])
    y = torch.tensor([0, 0, 1, 0])
    # bin (0, .5]: conf .4, acc 1 -> gap .6, weight 1/4; bin (.5, 1]: conf (.9+.8+.6)/3, acc 2/3
    gap_hi = abs(2 / 3 - (0.9 + 0.8 + 0.6) / 3)
    expected = 0.25 * 0.6 + 0.75 * gap_hi
    assert metrics.expected_calibration_error(probs, y, n_bins=2) == pytest.approx(expected)
    curve = metrics.reliability_curve(probs, y, n_bins=2)
    assert curve.count.tolist() == [1, 3]
    assert curve.mce == pytest.approx(0.6)
    # signed: the lower bin stands 0.6 above the diagonal, the upper one gap_hi below it
    assert curve.signed_gap == pytest.approx(0.25 * 0.6 - 0.75 * gap_hi)
    assert curve.share_above_diagonal == pytest.approx(0.25)


def test_signed_gap_tells_under_from_over_confidence():
    """Scores at 0.6 that are right 80 % of the time are under-confident (+0.2); the reverse is over-confident."""
    g = torch.Generator().manual_seed(1)
    n = 100_000
    for p_score, p_right, sign in ((0.6, 0.8, 1), (0.8, 0.6, -1)):
        probs = torch.tensor([p_score, 1 - p_score]).expand(n, 2)
        y = torch.where(torch.rand(n, generator=g) < p_right, 0, 1)
        curve = metrics.reliability_curve(probs, y, n_bins=20)
        assert curve.signed_gap == pytest.approx(sign * 0.2, abs=0.01)
        assert curve.share_above_diagonal == (1.0 if sign > 0 else 0.0)


def test_perfectly_calibrated_scores_have_small_ece():
    g = torch.Generator().manual_seed(0)
    p = torch.rand(200_000, generator=g) * 0.5 + 0.5
    correct = torch.rand(200_000, generator=g) < p
    probs = torch.stack([p, 1 - p], 1)
    y = torch.where(correct, 0, 1)
    assert metrics.expected_calibration_error(probs, y, n_bins=20) < 0.005


def test_accuracy_nll_and_posterior_mae():
    probs = torch.tensor([[0.7, 0.3], [0.2, 0.8]])
    y = torch.tensor([0, 0])
    assert metrics.accuracy(probs, y) == 0.5
    assert metrics.negative_log_likelihood(probs, y) == pytest.approx(-(torch.tensor([0.7, 0.2]).log().mean().item()))
    assert metrics.posterior_mae(probs, torch.tensor([[0.5, 0.5], [0.5, 0.5]])) == pytest.approx(0.25)


def test_bad_input():
    with pytest.raises(ValueError, match="n_bins"):
        metrics.reliability_curve(torch.ones(3, 2) / 2, torch.zeros(3, dtype=torch.long), n_bins=0)
    with pytest.raises(ValueError, match="labels must have shape"):
        metrics.accuracy(torch.ones(3, 2) / 2, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="NaN"):
        metrics.accuracy(torch.tensor([[float("nan"), 1.0]]), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match="must match"):
        metrics.posterior_mae(torch.ones(3, 2) / 2, torch.ones(3, 3) / 3)
