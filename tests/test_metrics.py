"""Metrics against hand-computed examples, and the input they refuse."""

from __future__ import annotations

import pytest
import torch

from lvmcls import calibration, metrics


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


# --------------------------------------------------------------------------------------------
# Bad input is refused with a message that says what to do (issue 25)

Y3 = torch.tensor([0, 1, 2, 0])
P3 = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.25, 0.25]])
PROB_METRICS = [metrics.accuracy, metrics.expected_calibration_error, metrics.reliability_curve,
                metrics.negative_log_likelihood, metrics.brier_score, metrics.classification_report,
                lambda p, y: calibration._binned_gap(p, y, 20),
                lambda p, y: calibration.paired_ece_bootstrap([p], [P3], y, resamples=10)]


@pytest.mark.parametrize("metric", PROB_METRICS)
def test_rows_that_do_not_sum_to_one_are_refused(metric):
    with pytest.raises(ValueError, match=r"rows must sum to 1 .*pass softmax\(logits\), not logits"):
        metric(torch.full((4, 3), 0.5), Y3)  # the case of the issue: 0.5 each over 3 classes
    with pytest.raises(ValueError, match="rows must sum to 1"):
        metric(P3 * 0.99, Y3)  # 1e-2 off: beyond the 1e-3 tolerance of float32


@pytest.mark.parametrize("metric", PROB_METRICS)
def test_labels_outside_the_classes_are_refused(metric):
    with pytest.raises(ValueError, match=r"labels must lie in 0..2 .* got 5"):
        metric(P3, torch.tensor([0, 1, 5, 0]))
    with pytest.raises(ValueError, match="labels must lie in 0..2"):
        metric(P3, torch.tensor([0, -1, 2, 0]))


def test_each_kind_of_bad_input_raises_a_clear_error():
    y = Y3
    with pytest.raises(ValueError, match="must be non-negative.*pass softmax"):
        metrics.accuracy(torch.tensor([[1.2, -0.2, 0.0]] * 4), y)
    with pytest.raises(ValueError, match="NaN or inf in 1 of 4 rows"):
        metrics.brier_score(torch.cat([P3[:3], torch.tensor([[float("nan"), 0.5, 0.5]])]), y)
    with pytest.raises(ValueError, match="NaN or inf"):
        metrics.negative_log_likelihood(torch.tensor([[float("inf"), 0.0, 0.0]] * 4), y)
    with pytest.raises(ValueError, match="labels must be integer class indices.*y.long"):
        metrics.expected_calibration_error(P3, y.float())
    with pytest.raises(ValueError, match="labels must be integer"):
        metrics.accuracy(P3, y == 0)  # bool labels
    with pytest.raises(ValueError, match=r"labels must have shape \(4,\) to match probs"):
        metrics.reliability_curve(P3, y[:3])
    with pytest.raises(ValueError, match="labels must have shape"):
        metrics.accuracy(P3, torch.nn.functional.one_hot(y, 3))  # one-hot labels
    with pytest.raises(ValueError, match="is empty.*at least one example"):
        metrics.expected_calibration_error(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="is empty"):
        metrics.accuracy(torch.zeros(4, 0), y)
    with pytest.raises(ValueError, match=r"must be \(N, K\) class probabilities"):
        metrics.accuracy(P3[None], y)
    with pytest.raises(ValueError, match=r"P\(class 1\) of a binary task and must lie in \[0, 1\]"):
        metrics.accuracy(torch.tensor([0.2, 1.7, 0.5, 0.1]), torch.tensor([0, 1, 1, 0]))
    with pytest.raises(ValueError, match="true posterior rows must sum to 1"):
        metrics.posterior_mae(P3, P3 * 2)
    with pytest.raises(ValueError, match="rows must sum to 1"):
        calibration.ece_floor(torch.full((4, 3), 0.5))
    with pytest.raises(ValueError, match="must be non-negative"):
        calibration.reweight_to_prior(P3 - 0.15, [0.2, 0.3, 0.5], [1 / 3] * 3)


def test_the_check_is_one_vectorised_call_per_metric(monkeypatch):
    calls = []
    real = metrics.check_probabilities
    monkeypatch.setattr(metrics, "check_probabilities", lambda *a, **k: calls.append(1) or real(*a, **k))
    metrics.classification_report(P3, Y3, n_bins=5)
    metrics.expected_calibration_error(P3, Y3)
    assert len(calls) == 2


def test_valid_input_passes_float32_at_scale_and_other_forms():
    """softmax of random float32 logits, 10,000 rows of 1,000 classes, passes (row sums are off by ~1e-7);
    so do float16 / bfloat16 probabilities (tolerance: their machine epsilon), numpy arrays, lists, labels on another
    device or as int32, and the P(class 1) vector of a binary task."""
    g = torch.Generator().manual_seed(0)
    logits = 4 * torch.randn(10_000, 1000, generator=g)
    probs = logits.softmax(1)
    y = torch.randint(0, 1000, (10_000,), generator=g)
    assert 0 <= metrics.expected_calibration_error(probs, y) <= 1
    report = metrics.classification_report(probs, y)
    assert report["acc"] == pytest.approx(metrics.accuracy(probs, y))
    small = (3 * torch.randn(5000, 10, generator=g)).softmax(1)
    ys = torch.randint(0, 10, (5000,), generator=g)
    for dtype in (torch.float16, torch.bfloat16):
        low = small.to(dtype)
        assert (low.double().sum(1) - 1).abs().max() > 0  # genuinely off by rounding
        assert metrics.expected_calibration_error(low, ys) == pytest.approx(
            metrics.expected_calibration_error(small, ys), abs=0.01)
        assert metrics.expected_calibration_error(logits[:5000, :10].to(dtype).softmax(1), ys) >= 0  # in dtype
    assert metrics.accuracy(small.numpy(), ys.numpy()) == metrics.accuracy(small, ys)
    assert metrics.brier_score(small.double().numpy(), ys.int()) == pytest.approx(metrics.brier_score(small, ys))
    assert metrics.accuracy([[0.9, 0.1], [0.3, 0.7]], [0, 0]) == 0.5
    p1 = torch.tensor([0.9, 0.2, 0.6, 0.4])
    yb = torch.tensor([1, 0, 1, 1])
    assert metrics.accuracy(p1, yb) == 0.75
    assert metrics.posterior_mae(p1, torch.tensor([0.8, 0.2, 0.5, 0.5])) == pytest.approx(0.075)
    assert metrics.negative_log_likelihood(p1, yb) == pytest.approx(
        metrics.negative_log_likelihood(torch.stack([1 - p1, p1], 1), yb))
    one_hot = torch.nn.functional.one_hot(ys, 10)  # integer one-hot "probabilities" are distributions too
    assert metrics.accuracy(one_hot, ys) == 1.0
