"""Chapter 1's identities, checked numerically on data whose posterior is known in closed form."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lvmcls import objectives
from lvmcls.synthetic import GaussianClasses


@pytest.fixture
def toy():
    return GaussianClasses.on_circle(4, radius=2.0, std=1.0, prior=[0.1, 0.2, 0.3, 0.4])


def test_cross_entropy_is_kl_to_the_posterior_plus_its_entropy(toy):
    """E_P[-log f] = KL(P || f) + H(P) at every x, for an arbitrary f."""
    g = torch.Generator().manual_seed(0)
    sample = toy.sample(5000, generator=g)
    truth = toy.posterior(sample.x).double()
    log_f = torch.randn(5000, 4, generator=g, dtype=torch.float64).log_softmax(1)
    lhs = objectives.expected_cross_entropy(truth, log_f)
    rhs = objectives.kl_to_posterior(truth, log_f) + objectives.entropy(truth)
    assert torch.allclose(lhs, rhs, atol=1e-10)
    # and the sampled cross-entropy (labels drawn from p(c|x)) agrees in expectation
    sampled = -log_f.gather(1, sample.y[:, None]).squeeze(1)
    stderr = sampled.std() / len(sampled) ** 0.5
    assert abs(sampled.mean() - rhs.mean()) < 4 * stderr
    # the KL is zero exactly when f is the posterior
    assert objectives.kl_to_posterior(truth, truth.log()).abs().max() < 1e-12
    assert (objectives.kl_to_posterior(truth, log_f) > 0).all()


def test_cross_entropy_matches_torch():
    logits, y = torch.randn(50, 7), torch.randint(0, 7, (50,))
    assert torch.allclose(objectives.cross_entropy(logits, y), F.cross_entropy(logits, y), atol=1e-6)
    s, t = torch.randn(50), torch.randint(0, 2, (50,))
    assert torch.allclose(objectives.binary_cross_entropy(s, t), F.binary_cross_entropy_with_logits(s, t.float()))


def test_binary_cross_entropy_minimiser_is_the_posterior_under_the_training_counts():
    """Pointwise, N_A p(x|A) log f + N_B p(x|B) log(1-f) peaks at f = N_A p(x|A) / (N_A p(x|A) + N_B p(x|B))."""
    model = GaussianClasses(torch.tensor([[-1.0], [1.0]]), prior=[0.25, 0.75])  # N_B : N_A = 1 : 3
    x = torch.tensor([[-2.0], [-0.5], [0.0], [0.7], [2.5]])
    lik = model.log_likelihood(x).exp()
    f = torch.linspace(1e-4, 1 - 1e-4, 200_001)[None, :]
    objective = 0.75 * lik[:, 1:2] * f.log() + 0.25 * lik[:, 0:1] * (1 - f).log()
    f_star = f[0, objective.argmax(1)]
    assert torch.allclose(f_star, model.posterior(x)[:, 1], atol=1e-4)


def test_hinge_minimiser_is_the_bayes_decision_not_the_posterior():
    """The library's `binary_hinge`, minimised over a constant score s for a data set in which a share p of the
    labels is 1: its minimiser is s = sign(2p − 1) (the Bayes decision), whatever p, while `binary_cross_entropy`'s
    is the log-odds of p (the posterior). A hinge that is not the hinge (e.g. margin − s, or a squared loss) fails."""
    s = torch.linspace(-3, 3, 6001)
    for p in (0.55, 0.7, 0.95, 0.3):
        n1 = int(round(1000 * p))
        y = torch.cat([torch.ones(n1), torch.zeros(1000 - n1)])
        hinge_risk = torch.stack([objectives.binary_hinge(v.expand(1000), y) for v in s])
        ce_risk = torch.stack([objectives.binary_cross_entropy(v.expand(1000), y) for v in s])
        assert s[hinge_risk.argmin()].item() == pytest.approx(1.0 if p > 0.5 else -1.0, abs=2e-3)
        assert s[ce_risk.argmin()].item() == pytest.approx(math.log(n1 / (1000 - n1)), abs=2e-3)


def test_multiclass_hinge_value():
    scores = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.2, 0.1]])
    y = torch.tensor([0, 2])
    # row 0: max(0, 1 + 0.5 - 2) = 0; row 1: max(0, 1 + 0.2 - 0.1) = 1.1
    assert objectives.hinge(scores, y).item() == pytest.approx(0.55)


def test_bad_shapes_raise_clear_errors():
    with pytest.raises(ValueError, match="logits must be"):
        objectives.cross_entropy(torch.randn(5), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must be"):
        objectives.cross_entropy(torch.randn(5, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="must match"):
        objectives.kl_to_posterior(torch.rand(5, 3), torch.rand(5, 2))


def test_gaussian_posterior_is_bayes_rule(toy):
    x = torch.randn(100, 2)
    manual = toy.prior * toy.log_likelihood(x).exp()
    manual = manual / manual.sum(1, keepdim=True)
    assert torch.allclose(toy.posterior(x), manual, atol=1e-6)
    assert torch.allclose(toy.posterior(x).sum(1), torch.ones(100))
    counts = torch.bincount(toy.sample(40_000, generator=torch.Generator().manual_seed(1)).y, minlength=4) / 40_000
    assert torch.allclose(counts, toy.prior, atol=0.01)
    with pytest.raises(ValueError, match="summing to 1"):
        toy.posterior(x, prior=[0.5, 0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="std"):
        GaussianClasses(torch.zeros(2, 2), std=0.0)
