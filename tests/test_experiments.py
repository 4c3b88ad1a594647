"""Chapter 3's tools: FGSM, temperature scaling, Brier, AUROC, OOD scoring, corruptions."""

from __future__ import annotations

import math

import pytest
import torch

from lvmcls import attacks, calibration, metrics
from lvmcls.models import evaluate_classifier
from lvmcls.vc import ood_auroc
from lvmcls.data import TensorSplit
from lvmcls.vc import LatentClassifier
from lvmcls.nets import MLP


@pytest.fixture
def model():
    torch.manual_seed(0)
    return LatentClassifier.build("ce", MLP(16, 4, hidden=16), 3, 4)


def test_fgsm_moves_each_pixel_by_eps_within_the_image_range(model):
    x, y = torch.rand(64, 1, 4, 4), torch.randint(0, 3, (64,))
    x_adv = attacks.fgsm(model, x, y, 0.1)
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    inside = (x > 0.1) & (x < 0.9)  # unclipped pixels move by exactly ε
    assert torch.allclose((x_adv - x).abs()[inside], torch.full_like(x[inside], 0.1), atol=1e-6)
    ce = lambda inp: torch.nn.functional.cross_entropy(model(inp), y).item()  # noqa: E731
    assert ce(x_adv) > ce(x)
    assert torch.equal(attacks.fgsm(model, x, y, 0.0), x)
    with pytest.raises(ValueError, match="eps must be >= 0"):
        attacks.fgsm(model, x, y, -0.1)
    curve = attacks.fgsm_accuracy_curve(model, x, y, [0.0, 0.05, 0.3])
    assert len(curve) == 3 and curve[2] <= curve[0]


def test_temperature_scaling_recovers_a_known_temperature():
    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(20_000, 5, generator=g)
    y = torch.multinomial((logits / 2.0).softmax(1), 1, generator=g).squeeze(1)
    assert calibration.fit_temperature(logits, y) == pytest.approx(2.0, rel=0.05)
    with pytest.raises(ValueError, match="need logits"):
        calibration.fit_temperature(logits, y[:10])


def test_brier_and_auroc_hand_computed():
    probs = torch.tensor([[0.8, 0.2], [0.4, 0.6]])
    # labels 0, 0: (0.8 - 1)² + 0.2² = 0.08 and (0.4 - 1)² + 0.6² = 0.72
    assert metrics.brier_score(probs, torch.tensor([0, 0])) == pytest.approx((0.08 + 0.72) / 2)
    assert metrics.auroc(torch.tensor([0.9, 0.8]), torch.tensor([0.85, 0.1])) == pytest.approx(0.75)
    assert metrics.auroc(torch.tensor([2.0, 3.0]), torch.tensor([0.0, 1.0])) == 1.0
    with pytest.raises(ValueError, match="NaN"):
        metrics.auroc(torch.tensor([float("nan")]), torch.tensor([0.0]))
    report = metrics.classification_report(probs, torch.tensor([0, 1]), n_bins=1)
    assert set(report) == {"acc", "nll", "brier", "ece", "mce"} and report["acc"] == 1.0


def test_ood_auroc_separates_far_inputs_and_raises_on_a_shape_mismatch(model):
    """Under log p(z), inputs whose latents lie near the priors beat inputs scaled far away: AUROC 1 one way
    round, 0 the other (a score that ignored its inputs would give 0.5 both ways)."""
    x_in = torch.rand(20, 1, 4, 4)
    far = 1000 * torch.rand(20, 1, 4, 4) + 100
    assert ood_auroc(model, x_in, far, "log_pz") == 1.0 and ood_auroc(model, far, x_in, "log_pz") == 0.0
    with pytest.raises(ValueError, match="resize them first"):
        ood_auroc(model, x_in, torch.rand(20, 3, 4, 4))
    with pytest.raises(ValueError, match="score must be"):
        ood_auroc(model, x_in, x_in, "energy")


def test_evaluate_classifier_temperature(model):
    split = TensorSplit(torch.rand(50, 1, 4, 4), torch.randint(0, 3, (50,)))
    report, logits = evaluate_classifier(model, split)
    hot, _ = evaluate_classifier(model, split, temperature=100.0)
    # dividing by T = 100 flattens p(y|x) towards uniform: the NLL moves to log 3 and the confidence to 1/3
    assert logits.shape == (50, 3) and hot["nll"] == pytest.approx(math.log(3), abs=0.02)
    assert report["nll"] != pytest.approx(hot["nll"], abs=0.02)
    with pytest.raises(ValueError, match="temperature"):
        evaluate_classifier(model, split, temperature=0.0)


def test_corruptions_are_deterministic_cached_and_shaped(tmp_path, monkeypatch):
    pytest.importorskip("imagecorruptions")
    from lvmcls.corruptions import corrupt_images

    monkeypatch.setenv("LVMCLS_DATA", str(tmp_path))
    x = torch.rand(4, 3, 32, 32)
    a = corrupt_images(x, "gaussian_noise", 3, seed=0)
    assert a.shape == x.shape and 0 <= a.min() and a.max() <= 1 and not torch.allclose(a, x, atol=0.01)
    assert len(list((tmp_path / "corruptions").glob("*.npy"))) == 1
    assert torch.equal(corrupt_images(x, "gaussian_noise", 3, seed=0), a)  # from the cache
    assert torch.equal(corrupt_images(x, "gaussian_noise", 3, seed=0, cache=False), a)  # and recomputed
    grey = corrupt_images(torch.rand(2, 1, 28, 28), "contrast", 2)
    assert grey.shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt_images(x, "rain", 1)
    with pytest.raises(ValueError, match="severity"):
        corrupt_images(x, "contrast", 6)


def test_reweight_to_prior_is_bayes_rule():
    from lvmcls.synthetic import GaussianClasses

    toy = GaussianClasses(torch.tensor([[-1.0], [1.0]]), prior=[0.1, 0.9])
    x = torch.linspace(-3, 3, 50)[:, None]
    moved = calibration.reweight_to_prior(toy.posterior(x), toy.prior, [0.5, 0.5])
    assert torch.allclose(moved, toy.posterior(x, [0.5, 0.5]), atol=1e-6)
    with pytest.raises(ValueError, match="positive"):
        calibration.reweight_to_prior(toy.posterior(x), [0.0, 1.0], [0.5, 0.5])


# --------------------------------------------------------------------------------------------
# How precise an ECE is: the floor of a calibrated model and the paired bootstrap over test images (chapter 3)

def _calibrated(n: int, seed: int, temperature: float = 1.0):
    """Probabilities of a 10-class model and labels drawn from softmax(logits) (calibrated at T = 1); the
    returned probabilities are softmax(logits · temperature) (over-confident for temperature > 1)."""
    g = torch.Generator().manual_seed(seed)
    logits = 2.5 * torch.randn(n, 10, generator=g)
    y = torch.multinomial(logits.softmax(1), 1, generator=g).squeeze(1)
    return (logits * temperature).softmax(1), y


def test_binned_gap_reproduces_the_metrics_ece():
    from lvmcls import metrics
    from lvmcls.calibration import _binned_gap

    probs, y = _calibrated(3000, 0, temperature=1.7)
    ece = float(_binned_gap(probs, y, 20).sum(0).abs().sum() / len(y))
    assert ece == pytest.approx(metrics.expected_calibration_error(probs, y, 20), abs=1e-12)


def test_ece_floor_shrinks_like_one_over_root_n_and_sits_below_a_real_miscalibration():
    from lvmcls import metrics
    from lvmcls.calibration import ece_floor

    small = ece_floor(_calibrated(1000, 1)[0], draws=30)["mean"]
    large = ece_floor(_calibrated(16000, 1)[0], draws=30)["mean"]
    assert 2.5 < small / large < 5.5, (small, large)  # √16 = 4
    probs, y = _calibrated(16000, 2, temperature=1.5)  # over-confident by a known temperature
    assert metrics.expected_calibration_error(probs, y) > 5 * large


def test_paired_ece_bootstrap_covers_zero_under_the_null_and_excludes_it_with_an_effect():
    """Null: two arms whose probabilities are equally (mis)calibrated draws of the same kind; the 90 % interval
    of the difference should cover 0 about 90 % of the time (checked within binomial noise over 60 experiments).
    Effect: an arm over-confident by T = 1.6 against a calibrated one is told apart at 2,000 images."""
    from lvmcls.calibration import paired_ece_bootstrap

    covered = 0
    for trial in range(60):
        g = torch.Generator().manual_seed(100 + trial)
        logits = 2.5 * torch.randn(1000, 10, generator=g)
        y = torch.multinomial(logits.softmax(1), 1, generator=g).squeeze(1)
        arm_a = [(logits + 0.3 * torch.randn(1000, 10, generator=g)).softmax(1) for _ in range(2)]
        arm_b = [(logits + 0.3 * torch.randn(1000, 10, generator=g)).softmax(1) for _ in range(2)]
        lo, hi = paired_ece_bootstrap(arm_a, arm_b, y, resamples=300, seed=trial, level=0.9)["interval"]
        covered += lo <= 0 <= hi
    assert 0.75 <= covered / 60 <= 1.0, covered
    probs_hot, y = _calibrated(2000, 3, temperature=1.6)
    probs_cal = _calibrated(2000, 3)[0]
    out = paired_ece_bootstrap([probs_hot], [probs_cal], y, resamples=300)
    assert out["interval"][0] > 0 and out["difference"] > 0.03, out


def test_zero_gradient_share_sees_a_saturated_softmax():
    from lvmcls.attacks import zero_gradient_share

    torch.manual_seed(0)
    x, y = torch.rand(64, 1, 4, 4), torch.randint(0, 3, (64,))
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    assert zero_gradient_share(net, x, y) == 0.0
    with torch.no_grad():  # logits near (1e4, 0, −1e4): softmax is exactly one-hot in fp32, so inputs of class 0
        # have an exactly zero gradient, the others a gradient Wᵀ(p − e_y) ≠ 0
        net[1].bias.copy_(torch.tensor([1e4, 0.0, -1e4]))
    share = zero_gradient_share(net, x, y)
    assert share == pytest.approx((y == 0).float().mean().item())
