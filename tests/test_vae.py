"""VAEs and VAE-AS: estimators against closed forms, the tree softmax, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from lvmcls import vae as V
from lvmcls.data import TensorSplit, binarized


def test_kl_to_standard_normal_matches_torch():
    mean, log_var = torch.randn(50, 4), torch.randn(50, 4)
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mean, (0.5 * log_var).exp()),
                                            torch.distributions.Normal(0.0, 1.0))
    assert torch.allclose(V.kl_to_standard_normal(mean, log_var), ref, atol=1e-5)
    assert V.mean_kl(mean, log_var) == pytest.approx(ref.sum(1).mean().item(), rel=1e-5)


def test_aggregate_posterior_terms_against_the_gaussian_closed_form():
    """x ~ N(0, 1), q(z|x) = N(a x, s²): q(z) = N(0, a² + s²), I = ½ log((a² + s²)/s²), MD = KL(q(z) ‖ N(0, 1))."""
    a, s2 = 1.5, 0.25
    x = torch.randn(20_000, 1, generator=torch.Generator().manual_seed(0))
    mean, log_var = a * x, torch.full_like(x, math.log(s2))
    est = V.aggregate_posterior_terms(mean, log_var, samples=10_000)
    v = a * a + s2
    assert est["mi"] == pytest.approx(0.5 * math.log(v / s2), abs=0.03)
    assert est["md"] == pytest.approx(0.5 * (v - 1 - math.log(v)), abs=0.03)
    # the decomposition E KL(q(z|x) ‖ p) = I + MD, within Monte Carlo error
    kl = V.mean_kl(mean[:10_000], log_var[:10_000])
    assert abs(kl - est["mi"] - est["md"]) < 4 * math.hypot(est["mi_se"], est["md_se"]) + 0.02
    # posteriors far apart (each z identifies its x): the estimate reaches log S, the true I here
    sharp = V.aggregate_posterior_terms(10 * x[:500], torch.full((500, 1), -20.0))
    assert sharp["mi"] == pytest.approx(math.log(500), rel=0.01)
    with pytest.raises(ValueError, match="holds only|hold only"):
        V.aggregate_posterior_terms(mean[:10], log_var[:10], samples=11)


def test_active_units():
    mean = torch.cat([torch.randn(1000, 3), 0.01 * torch.randn(1000, 2)], 1)
    assert V.active_units(mean) == 3


def test_importance_weighted_nll_is_exact_when_q_equals_the_prior_and_z_is_ignored():
    torch.manual_seed(0)
    vae = V.VAE(x_dim=12, z_dim=3, hidden=8)
    with torch.no_grad():
        vae.encoder[-1].weight.zero_(); vae.encoder[-1].bias.zero_()  # q(z|x) = N(0, I) = p(z)
        vae.decoder[0].weight.zero_()  # p(x|z) does not depend on z
    x = (torch.rand(20, 12) < 0.5).float()
    logits = vae.decoder(torch.zeros(1, 3))
    exact = torch.nn.functional.binary_cross_entropy_with_logits(logits.expand(20, -1), x, reduction="none").sum(1)
    assert torch.allclose(V.importance_weighted_nll(vae, x, k=7, max_elements=100), exact, atol=1e-4)


def test_importance_weighting_tightens_the_bound():
    torch.manual_seed(1)
    vae = V.VAE(x_dim=20, z_dim=2, hidden=16)
    x = (torch.rand(200, 20) < 0.3).float()
    with torch.no_grad():
        neg_elbo = -(vae.elbo_terms(x)["rec"] - vae.elbo_terms(x)["kl"]).mean()
    nll_1 = V.importance_weighted_nll(vae, x, k=1).mean()
    nll_100 = V.importance_weighted_nll(vae, x, k=100).mean()
    assert nll_100 < nll_1 and nll_100 < neg_elbo
    with pytest.raises(ValueError, match="k \\(importance samples\\)"):
        V.importance_weighted_nll(vae, x, k=0)
    with pytest.raises(ValueError, match="inputs in \\[0, 1\\]"):
        V.importance_weighted_nll(vae, x * 2, k=2)


@pytest.mark.parametrize("n", [2, 7, 10, 16, 33])
def test_binary_tree_softmax_normalises_over_its_labels(n):
    torch.manual_seed(n)
    tree = V.BinaryTreeSoftmax(5, n)
    torch.nn.init.normal_(tree.node.weight)
    h = torch.randn(4, 5)
    total = torch.stack([tree.log_prob(h, torch.full((4,), e)) for e in range(n)], 1).exp().sum(1)
    assert torch.allclose(total, torch.ones(4), atol=1e-5)
    assert tree.depth == math.ceil(math.log2(n))


def test_index_classifier_estimates_mutual_information():
    """Well-separated posteriors: I = log N; the trained classifier's estimate log N + E log s(e|z) approaches it."""
    torch.manual_seed(0)
    n = 16
    centres = 4 * torch.randn(n, 2)
    clf = V.IndexClassifier(2, n, hidden=64)
    opts = [torch.optim.Adam(clf.body.parameters(), lr=1e-2), torch.optim.SparseAdam(clf.head.parameters(), lr=1e-2)]
    for _ in range(500):
        e = torch.randint(0, n, (256,))
        loss = -clf.log_prob(centres[e] + 0.05 * torch.randn(256, 2), e).mean()
        for opt in opts:
            opt.zero_grad()
        loss.backward()
        for opt in opts:
            opt.step()
    e = torch.arange(n).repeat(64)
    est = math.log(n) + clf.log_prob(centres[e] + 0.05 * torch.randn(len(e), 2), e).mean().item()
    assert est == pytest.approx(math.log(n), rel=0.05)
    with pytest.raises(ValueError, match="does N match"):
        clf.log_prob(torch.randn(2, 2), torch.tensor([0, n]))


def test_vae_as_trains_the_classifier_only_by_its_own_loss():
    torch.manual_seed(0)
    model = V.VAEAS(V.VAE(x_dim=12, z_dim=3, hidden=8), num_samples=10, alpha=0.5, beta=1.0, hidden=8)
    x, idx = (torch.rand(10, 12) < 0.5).float(), torch.arange(10)
    out = model.training_step(x, idx)
    out["objective"].backward(retain_graph=True)
    assert all(p.grad is None for p in model.classifier.parameters())
    assert model.vae.encoder[0].weight.grad is not None
    with pytest.raises(ValueError, match="alpha and beta"):
        V.VAEAS(V.VAE(12, 3, 8), 10, alpha=-1)
    with pytest.raises(ValueError, match="sample index"):
        model.training_step(x, idx[:5])


def test_binarized_is_fixed_by_the_seed():
    split = TensorSplit(torch.rand(100, 1, 4, 4), torch.arange(100))
    a, b, c = binarized(split, 0), binarized(split, 0), binarized(split, 1)
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, c.x) and set(a.x.unique().tolist()) <= {0.0, 1.0}


def test_fano_lower_bound_and_input_range():
    assert V.fano_lower_bound(0.0, 1000) == pytest.approx(math.log(1000))  # a perfect classifier: I = log N
    # chance-level error (P_e = 1 - 1/N) leaves no information
    assert V.fano_lower_bound(1 - 1 / 1000, 1000) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="error_rate"):
        V.fano_lower_bound(1.5, 10)
    with pytest.raises(ValueError, match="inputs in \\[0, 1\\]"):
        V.VAE(x_dim=4, z_dim=2, hidden=4).training_step(torch.full((3, 4), 2.0))


def test_glorot_init_keeps_the_latent_signal_through_a_deep_decoder():
    """The `init` docstring's claim: with PyTorch's default layers a 5-layer decoder's logits hardly move with z at
    initialisation; Glorot-uniform weights (zero biases) keep several times more of the signal."""
    z = torch.randn(256, 40, generator=torch.Generator().manual_seed(1))
    spread = {}
    for init in V.INITS:
        torch.manual_seed(0)
        vae = V.VAE(z_dim=40, hidden=500, decoder_depth=5, init=init)
        with torch.no_grad():
            spread[init] = vae.decoder(z).std(0).mean().item()
    assert spread["torch"] < 0.01 and spread["glorot"] > 4 * spread["torch"]
    torch.manual_seed(0)
    glorot = V.VAE(z_dim=40, hidden=500, init="glorot")
    assert all(float(layer.bias.abs().max()) == 0 for layer in glorot.modules() if isinstance(layer, torch.nn.Linear))
    with pytest.raises(ValueError, match="init must be one of"):
        V.VAE(init="he")
