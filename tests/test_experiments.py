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
