"""Variational Classification: the identities of the chapter, the estimators against closed forms, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from lvmcls import estimators, objectives
from lvmcls.nets import MLP
from lvmcls.vc import (RATIO_FORMS, ClassDensityRatio, GaussianClassPrior, LatentClassifier,
                       variational_classification)


def test_softmax_cross_entropy_is_elbo_vc_with_a_point_mass_and_shared_covariance():
    """Eq. 6: a linear softmax layer and the Bayes-rule head of shared isotropic Gaussians give the same CE."""
    torch.manual_seed(0)
    prior = GaussianClassPrior(7, 5, shared_isotropic=True)
    with torch.no_grad():
        prior.raw_log_var.fill_(0.7)
        prior.class_logits.copy_(torch.randn(7))
    z, y = torch.randn(256, 5), torch.randint(0, 7, (256,))
    w, b = prior.as_linear()
    ce_linear = objectives.cross_entropy(z @ w.T + b, y)
    terms = variational_classification(z, y, prior, objective="ce")
    assert abs(ce_linear.item() + terms["log_p_y_given_z"].item()) < 1e-5
    # and conversely, any linear layer is such a head: μ = σ² W, log π_y = b_y + |μ_y|²/(2σ²) + const
    w2, b2 = torch.randn(7, 5), torch.randn(7)
    with torch.no_grad():
        prior.means.copy_(w2 * prior.log_var[0, 0].exp())
        prior.class_logits.copy_(b2 + prior.means.pow(2).sum(1) / (2 * prior.log_var[0, 0].exp()))
    assert torch.allclose(prior.logits(z).log_softmax(1), (z @ w2.T + b2).log_softmax(1), atol=1e-5)


def test_gaussian_class_prior_log_prob_matches_torch_distributions():
    torch.manual_seed(1)
    prior = GaussianClassPrior(3, 4)
    with torch.no_grad():
        prior.raw_log_var.copy_(torch.randn(3, 4) * 0.3)
    z = torch.randn(10, 4)
    ref = torch.stack([torch.distributions.Independent(torch.distributions.Normal(
        prior.means[c], (0.5 * prior.log_var[c]).exp()), 1).log_prob(z) for c in range(3)], 1)
    assert torch.allclose(prior.log_prob_all(z), ref, atol=1e-5)
    samples = prior.sample(torch.zeros(200_000, dtype=torch.long))
    assert torch.allclose(samples.mean(0), prior.means[0].detach(), atol=0.02)
    assert torch.allclose(samples.var(0), prior.log_var[0].detach().exp(), rtol=0.03)


def test_linear_density_ratio_recovers_a_known_kl():
    """q = N(m, I), p = N(0, I): log q/p is linear in z and KL = |m|²/2; the estimate is within 10%."""
    m = torch.tensor([1.0, -0.5])
    g = torch.Generator().manual_seed(0)
    est = estimators.fit_density_ratio(ClassDensityRatio(1, 2), lambda n: m + torch.randn(n, 2, generator=g),
                                       lambda n: torch.randn(n, 2, generator=g), steps=1500)
    truth = 0.5 * m.pow(2).sum().item()
    assert abs(est - truth) / truth < 0.10, (est, truth)


def test_mlp_density_ratio_recovers_a_kl_between_different_covariances():
    s_q = torch.tensor([0.5, 2.0])
    g = torch.Generator().manual_seed(1)
    est = estimators.fit_density_ratio(ClassDensityRatio(1, 2, form="mlp", hidden=64),
                                       lambda n: torch.randn(n, 2, generator=g) * s_q.sqrt() + 0.5,
                                       lambda n: torch.randn(n, 2, generator=g), steps=3000, lr=3e-3)
    truth = estimators.gaussian_kl(torch.full((2,), 0.5), torch.diag(s_q), torch.zeros(2), torch.eye(2)).item()
    assert abs(est - truth) / truth < 0.10, (est, truth)


def _diagonal_gaussian_sampler(mean, var, g):
    return lambda n: mean + var.sqrt() * torch.randn(n, len(mean), generator=g)


def test_quadratic_density_ratio_recovers_the_gaussian_log_ratio():
    """q = N(m_q, diag s_q), p = N(m_p, diag s_p): log q/p = a + bᵀz + Σ_d c_d z_d² with
    c = (1/s_p − 1/s_q)/2 and b = m_q/s_q − m_p/s_p. The quadratic T fitted by its BCE loss recovers c and b
    (to 0.03), the log ratio itself on samples of both (RMS < 0.05) and E_q T ≈ KL (within 3%); the linear T
    fitted the same way misses the log ratio by an RMS > 0.5."""
    m_q, s_q = torch.tensor([0.5, -1.0, 0.0]), torch.tensor([0.5, 2.0, 1.0])
    m_p, s_p = torch.tensor([0.0, 0.0, 0.3]), torch.tensor([1.0, 1.0, 0.6])
    kl = estimators.gaussian_kl(m_q, torch.diag(s_q), m_p, torch.diag(s_p)).item()
    g = torch.Generator().manual_seed(0)
    z = torch.cat([_diagonal_gaussian_sampler(m_q, s_q, g)(20_000), _diagonal_gaussian_sampler(m_p, s_p, g)(20_000)])
    log_ratio = (-0.5 * ((z - m_q) ** 2 / s_q + s_q.log()) + 0.5 * ((z - m_p) ** 2 / s_p + s_p.log())).sum(1)
    rms = {}
    for form in ("quadratic", "linear"):
        ratio = ClassDensityRatio(1, 3, form=form)
        est = estimators.fit_density_ratio(ratio, _diagonal_gaussian_sampler(m_q, s_q, g),
                                           _diagonal_gaussian_sampler(m_p, s_p, g), steps=2000, lr=3e-3)
        with torch.no_grad():
            rms[form] = (ratio(z, torch.zeros(len(z), dtype=torch.long)) - log_ratio).pow(2).mean().sqrt().item()
        if form == "quadratic":
            assert torch.allclose(ratio.quadratic.detach()[0], 0.5 * (1 / s_p - 1 / s_q), atol=0.03)
            assert torch.allclose(ratio.weight.detach()[0], m_q / s_q - m_p / s_p, atol=0.03)
            assert abs(est - kl) / kl < 0.03, (est, kl)
    assert rms["quadratic"] < 0.05 and rms["linear"] > 0.5, rms


def test_linear_density_ratio_is_blind_to_a_spread_mismatch():
    """q = N(0, diag(1/4, 4)), p = N(0, I): KL = Σ (s − 1 − log s)/2 ≈ 1.13, but both are symmetric about 0, so
    the BCE optimum of a linear T (a strictly convex loss, invariant under z → −z) is T ≡ 0: its E_q T stays near
    0. The quadratic T on the same samples estimates the KL within 5%."""
    s = torch.tensor([0.25, 4.0])
    kl = estimators.gaussian_kl(torch.zeros(2), torch.diag(s), torch.zeros(2), torch.eye(2)).item()
    assert kl > 1.0
    est = {}
    for form in ("linear", "quadratic"):
        g = torch.Generator().manual_seed(1)
        est[form] = estimators.fit_density_ratio(ClassDensityRatio(1, 2, form=form),
                                                 _diagonal_gaussian_sampler(torch.zeros(2), s, g),
                                                 _diagonal_gaussian_sampler(torch.zeros(2), torch.ones(2), g),
                                                 steps=2000, lr=3e-3)
    assert abs(est["linear"]) < 0.05, est
    assert abs(est["quadratic"] - kl) / kl < 0.05, (est, kl)


def test_the_discriminator_form_reaches_the_model_and_its_cache_key():
    """`LatentClassifier.build(ratio_form=...)` builds that T, zero at the start for linear and quadratic, and the
    form is one of the hyper-parameters `fit_cached` keys on."""
    from lvmcls.train import model_hparams

    built = {form: LatentClassifier.build("vc", MLP(4, 2, hidden=8), 3, 2, ratio_form=form,
                                          ratio_hidden=8 if form == "mlp" else None) for form in RATIO_FORMS}
    z, y = torch.randn(16, 2), torch.randint(0, 3, (16,))
    for form, model in built.items():
        assert model.ratio.form == form
        if form != "mlp":
            assert model.ratio(z, y).abs().max().item() == 0.0
    assert len({str(model_hparams(m)) for m in built.values()}) == len(RATIO_FORMS)
    quadratic = built["quadratic"].ratio
    with torch.no_grad():
        quadratic.quadratic.copy_(torch.randn(3, 2))
    expected = (quadratic.quadratic[y] * z ** 2).sum(1)
    assert torch.allclose(quadratic(z, y), expected, atol=1e-6)  # T(−z) ≠ −T(z): a quadratic, not a linear, term
    assert torch.allclose(quadratic(-z, y), expected, atol=1e-6)


def test_mlp_density_ratio_is_each_rows_own_class_network():
    """T^y(z) = w2_yᵀ tanh(W1_yᵀ z + b1_y) + b2_y row by row, for the one-product implementation, and the BCE
    loss over q and p samples equals the two separate terms."""
    torch.manual_seed(0)
    ratio = ClassDensityRatio(4, 3, form="mlp", hidden=5)
    with torch.no_grad():
        ratio.b1.normal_(), ratio.b2.normal_()
    z, y = torch.randn(20, 3), torch.randint(0, 4, (20,))
    rows = torch.stack([ratio.w2[c] @ torch.tanh(ratio.w1[c].T @ zi + ratio.b1[c]) + ratio.b2[c]
                        for zi, c in zip(z, y.tolist())])
    assert torch.allclose(ratio(z, y), rows, atol=1e-5)
    z_p = torch.randn(20, 3)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    separate = bce(ratio(z, y), torch.ones(20)) + bce(ratio(z_p, y), torch.zeros(20))
    assert torch.allclose(ratio.loss(z, z_p, y), separate, atol=1e-6)
    with pytest.raises(ValueError, match="z_q and z_p"):
        ratio.loss(z, z_p[:10], y)


def test_knn_entropy_and_latent_kl_against_gaussian_closed_forms():
    g = torch.Generator().manual_seed(2)
    cov = torch.tensor([[1.0, 0.3], [0.3, 0.5]])
    z = torch.randn(20_000, 2, generator=g) @ torch.linalg.cholesky(cov).T
    truth = 0.5 * torch.logdet(2 * math.pi * math.e * cov).item()
    assert abs(estimators.knn_entropy(z) - truth) < 0.03
    prior = GaussianClassPrior(2, 2)
    with torch.no_grad():
        prior.means.zero_()
    y = torch.zeros(len(z), dtype=torch.long)
    kl = estimators.latent_kl(z, y, prior)[0]
    assert abs(kl - estimators.gaussian_kl(torch.zeros(2), cov, torch.zeros(2), torch.eye(2)).item()) < 0.03
    assert estimators.spread_ratio(z, y, prior)[0] == pytest.approx(1.5 / 2, rel=0.03)


def test_vc_optimum_matches_eq11_by_numerical_optimisation():
    """Maximise E_q[log p(y|z)] - KL(q ‖ p(z|y)) over densities on a grid by gradient ascent: the maximiser is
    Eq. 11's q* = p(z|y) p(y|z) / E_p[p(y|z')], which is peakier than the prior and shifted away from the
    other class."""
    grid = torch.linspace(-6, 6, 601, dtype=torch.float64)
    dz = (grid[1] - grid[0]).item()
    lik = torch.stack([torch.distributions.Normal(mu, 1.0).log_prob(grid) for mu in (-1.0, 1.0)], 1)
    log_p_y_given_z = lik.log_softmax(1)[:, 1]  # class y = 1, equal class priors
    log_prior = lik[:, 1]
    closed = estimators.vc_optimal_posterior(log_prior, log_p_y_given_z, dz)
    assert abs(closed.sum().item() * dz - 1) < 1e-9
    q = estimators.maximise_vc_objective_on_grid(log_prior, log_p_y_given_z, dz)
    assert (q - closed).abs().max().item() < 1e-3
    mean = lambda d: (d * grid).sum().item() * dz  # noqa: E731
    var = lambda d: (d * (grid - mean(d)) ** 2).sum().item() * dz  # noqa: E731
    assert var(closed) < 1.0 and mean(closed) > 1.0  # peakier than p(z|y) = N(1, 1), pushed away from class 0


def test_latent_classifier_trains_every_part_by_its_own_objective():
    torch.manual_seed(0)
    model = LatentClassifier(MLP(4, 2, hidden=16), GaussianClassPrior(3, 2), ClassDensityRatio(3, 2), objective="vc")
    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    out = model.training_step(x, y)
    out["objective"].backward(retain_graph=True)
    assert all(p.grad is None for p in model.ratio.parameters())  # T's parameters are detached in the objective
    assert model.encoder[1].weight.grad is not None
    model.zero_grad()
    out["ratio_loss"].backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.encoder.parameters())
    assert model.ratio.weight.grad.abs().sum() > 0


def test_bad_input_raises_clear_errors():
    prior = GaussianClassPrior(3, 2)
    with pytest.raises(ValueError, match="latent dimension"):
        prior.log_prob_all(torch.randn(5, 3))
    with pytest.raises(ValueError, match="num_classes match"):
        prior.log_prob(torch.randn(5, 2), torch.tensor([0, 1, 2, 3, 0]))
    with pytest.raises(ValueError, match="beta"):
        variational_classification(torch.randn(5, 2), torch.zeros(5, dtype=torch.long), prior,
                                              ClassDensityRatio(3, 2), beta=-0.1)
    with pytest.raises(ValueError, match="form must be one of"):
        ClassDensityRatio(3, 2, form="cubic")
    with pytest.raises(ValueError, match="hidden"):
        ClassDensityRatio(3, 2, form="linear", hidden=8)
    with pytest.raises(ValueError, match="hidden"):
        ClassDensityRatio(3, 2, form="mlp")
    with pytest.raises(ValueError, match="NaN"):
        prior.log_prob_all(torch.tensor([[float("nan"), 0.0]]))
    with torch.no_grad():
        prior.raw_log_var[0, 0] = float("nan")
    with pytest.raises(ValueError, match="log-variances"):
        prior.log_prob_all(torch.randn(5, 2))
    with pytest.raises(ValueError, match="classes in R"):
        LatentClassifier(MLP(4, 2), GaussianClassPrior(3, 2), ClassDensityRatio(4, 2))
    with pytest.raises(ValueError, match="needs ratio"):
        LatentClassifier(MLP(4, 2), GaussianClassPrior(3, 2), objective="vc")
    with pytest.raises(ValueError, match="encoder outputs"):
        LatentClassifier(MLP(4, 3), GaussianClassPrior(3, 2), objective="ce").encode(torch.randn(2, 4))
    with pytest.raises(ValueError, match="ratio_lr"):
        LatentClassifier(MLP(4, 2), GaussianClassPrior(3, 2), ClassDensityRatio(3, 2), ratio_lr=0.0)


def test_each_parameter_group_gets_its_own_learning_rate():
    """Algorithm 1, line 1: θ (prior), φ (encoder) and ψ (discriminator) have their own learning rates."""
    from lvmcls.train import Trainer

    model = LatentClassifier.build("vc", MLP(4, 2), 3, 2, prior_lr=2e-4, ratio_lr=5e-3)
    optimizers, _ = Trainer(lr=1e-2).configure_optimizer(model)
    lrs = {}
    for opt in optimizers:
        for group in opt.param_groups:
            for p in group["params"]:
                lrs[id(p)] = (type(opt).__name__, group["lr"])
    assert {lrs[id(p)] for p in model.encoder.parameters()} == {("Adam", 1e-2)}
    assert {lrs[id(p)] for p in model.prior.parameters() if p.requires_grad} == {("Adam", 2e-4)}
    assert {lrs[id(p)] for p in model.ratio.parameters()} == {("AdamW", 5e-3)}


def test_log_variances_are_clamped():
    prior = GaussianClassPrior(2, 2, min_log_var=-3, max_log_var=3)
    with torch.no_grad():
        prior.raw_log_var.fill_(100.0)
    assert prior.log_var.max().item() == 3
    assert torch.isfinite(prior.log_prob_all(torch.randn(4, 2))).all()


def test_encoders_map_images_to_latents():
    from lvmcls.nets import ConvNet, ResNet18Cifar

    assert ConvNet(2)(torch.rand(3, 1, 28, 28)).shape == (3, 2)
    assert ConvNet(5, in_channels=3)(torch.rand(2, 3, 32, 32)).shape == (2, 5)
    resnet = ResNet18Cifar(10)
    assert resnet(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in resnet.modules())  # CIFAR variant: no max-pool
    assert resnet.stem[0].kernel_size == (3, 3)
    with pytest.raises(ValueError, match="expects"):
        ConvNet(2)(torch.rand(3, 3, 28, 28))


def test_gaussian_posterior_option_samples_by_reparameterisation():
    torch.manual_seed(0)
    model = LatentClassifier(MLP(4, 4, hidden=8), GaussianClassPrior(3, 2), objective="gm", posterior="gaussian")
    x = torch.randn(5, 4)
    z1, z2 = model.encode(x), model.encode(x)
    assert z1.shape == (5, 2) and not torch.equal(z1, z2)
    assert torch.equal(model.encode(x, sample=False), model.encode(x, sample=False))
    out = model.training_step(x, torch.tensor([0, 1, 2, 0, 1]))
    out["loss"].backward()
    assert model.encoder[-1].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="2 x 2 encoder outputs"):
        LatentClassifier(MLP(4, 3), GaussianClassPrior(3, 2), objective="ce", posterior="gaussian").encode(x)


def test_the_ce_head_is_linear_in_z():
    """The reference code's CE baseline (one reading of the paper's) is a linear softmax head: its logits are affine
    in z up to a term shared by all classes (−|z|²/2σ², which softmax ignores), so the logit differences of a convex
    combination of latents are the same combination of logit differences (a per-class Gaussian head fails this)."""
    torch.manual_seed(0)
    z1, z2 = torch.randn(16, 3), torch.randn(16, 3)
    for objective, affine in (("ce", True), ("ce_gaussian", False)):
        model = LatentClassifier.build(objective, MLP(4, 3, hidden=8), 5, 3)
        with torch.no_grad():
            model.prior.means.normal_()
            model.prior.raw_log_var.normal_()
        def f(z):
            logits = model.prior.logits(z)
            return logits - logits[:, :1]

        mixed, combined = f(0.3 * z1 + 0.7 * z2), 0.3 * f(z1) + 0.7 * f(z2)
        assert torch.allclose(mixed, combined, atol=1e-4) is affine, objective


def _encoder_grads(objective: str, beta: float, lam: float, seed: int = 0):
    """Gradients of the encoder's weights under `objective`, and under a hand-built reference objective."""
    torch.manual_seed(seed)
    model = LatentClassifier.build(objective, MLP(4, 2, hidden=8), 3, 2, beta=beta, likelihood_weight=lam)
    with torch.no_grad():
        model.ratio.weight.normal_()
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    terms = variational_classification(model.encode(x), y, model.prior, model.ratio, objective, beta, lam)
    got = torch.autograd.grad(terms["loss"], list(model.encoder.parameters()))

    def reference(with_likelihood: bool):
        z = model.encode(x)
        log_p_y_given_z = model.prior.logits(z).log_softmax(1).gather(1, y[:, None]).squeeze(1)
        objective_ = log_p_y_given_z - beta * model.ratio(z, y, detach_params=True)
        if with_likelihood:
            objective_ = objective_ + lam * model.prior.log_prob(z, y)
        return torch.autograd.grad(-objective_.mean(), list(model.encoder.parameters()))

    return got, reference(False), reference(True)


def test_vc_encoder_gradient_is_algorithm_1_line_10():
    """Algorithm 1, line 10: the encoder follows ∇φ[log p(y|z) − β T(z)] only; the reference code's variant adds
    ∇φ λ log p(z|y). Both checked against gradients of the hand-written objectives."""
    got, line10, with_lam = _encoder_grads("vc", beta=0.5, lam=0.7)
    assert all(torch.allclose(g, r, atol=1e-6) for g, r in zip(got, line10))
    assert not all(torch.allclose(g, r, atol=1e-4) for g, r in zip(got, with_lam))
    got_ref, line10, with_lam = _encoder_grads("vc_reference", beta=0.5, lam=0.7)
    assert all(torch.allclose(g, r, atol=1e-6) for g, r in zip(got_ref, with_lam))
    assert not all(torch.allclose(g, r, atol=1e-4) for g, r in zip(got_ref, line10))


@pytest.mark.parametrize("objective", ["vc", "vc_reference"])
def test_vc_class_prior_learns_only_from_log_p_pi_y(objective):
    """Algorithm 1, line 11: π follows ∇π log p_π(y) alone, not ∇π log p_θ(y|z) (which would make it a learned
    bias of the classifier); checked against the gradient of the hand-written −mean log p_π(y). GM, which is not
    trained by Algorithm 1, keeps the bias path, so the same comparison fails for it."""
    torch.manual_seed(0)
    grads = {}
    for obj in (objective, "gm"):
        model = LatentClassifier.build(obj, MLP(4, 2, hidden=8), 3, 2, beta=0.5, likelihood_weight=0.7)
        with torch.no_grad():
            model.prior.class_logits.copy_(torch.tensor([0.5, -0.2, 0.1]))
        x, y = torch.randn(32, 4), torch.tensor([0, 1, 2, 2] * 8)
        loss = variational_classification(model.encode(x), y, model.prior, model.ratio, obj, 0.5, 0.7)["loss"]
        got = torch.autograd.grad(loss, model.prior.class_logits)[0]
        want = torch.autograd.grad(-model.prior.log_class_prior()[y].mean(), model.prior.class_logits)[0]
        grads[obj] = (got, want)
    assert torch.allclose(*grads[objective], atol=1e-6)
    assert not torch.allclose(*grads["gm"], atol=1e-3)


@pytest.mark.parametrize("objective", ["vc", "vc_reference"])
def test_vc_prior_gradient_is_algorithm_1_line_9(objective):
    """Algorithm 1, line 9 at β ≠ λ: θ (the class means and variances) follows ∇θ [log p_θ(y|z) + λ log p_θ(z|y)]
    with p_π entering p_θ(y|z) detached, and nothing of β T (T's parameters and the latents are no function of θ).
    Checked against the gradient of that hand-written objective; a λ applied as β, or a missing or doubled
    likelihood term, fails."""
    torch.manual_seed(0)
    beta, lam = 0.3, 0.7
    model = LatentClassifier.build(objective, MLP(4, 2, hidden=8), 3, 2, beta=beta, likelihood_weight=lam)
    with torch.no_grad():
        model.ratio.weight.normal_()
        model.prior.means.normal_()
        model.prior.class_logits.copy_(torch.tensor([0.5, -0.2, 0.1]))
    x, y = torch.randn(32, 4), torch.tensor([0, 1, 2, 2] * 8)
    z = model.encode(x).detach()  # θ's gradient does not pass through the encoder
    theta = [model.prior.means, model.prior.raw_log_var]
    loss = variational_classification(z, y, model.prior, model.ratio, objective, beta, lam)["loss"]
    got = torch.autograd.grad(loss, theta)
    logits = model.prior.log_prob_all(z) + model.prior.log_class_prior().detach()
    hand = logits.log_softmax(1).gather(1, y[:, None]).squeeze(1) + lam * model.prior.log_prob(z, y)
    want = torch.autograd.grad(-hand.mean(), theta, retain_graph=True)
    assert all(torch.allclose(g, w, atol=1e-6) for g, w in zip(got, want))
    wrong = torch.autograd.grad(-(hand + (beta - lam) * model.prior.log_prob(z, y)).mean(), theta)
    assert not all(torch.allclose(g, w, atol=1e-4) for g, w in zip(got, wrong)), "β and λ confused"


@pytest.mark.parametrize("bad_split", ["train", "val"])
@pytest.mark.parametrize("bad", ["label_high", "label_negative", "nan_input", "float_labels"])
def test_fit_refuses_bad_labels_and_nan_inputs_in_a_later_batch(bad_split, bad):
    """The training step skips the per-batch value checks (host syncs); `Trainer.fit` calls
    `LatentClassifier.check_data` on each split first, so a bad row past the first batch of train, or only in
    val, still raises a clear ValueError before any step (without it, a label out of range raises a raw
    indexing error, a device-side assert on CUDA, and NaN inputs give a NaN loss). `Trainer.evaluate` checks too."""
    from lvmcls.data import TensorSplit
    from lvmcls.train import Trainer

    g = torch.Generator().manual_seed(0)
    train = TensorSplit(torch.randn(64, 4, generator=g), torch.randint(0, 3, (64,), generator=g))
    val = TensorSplit(torch.randn(32, 4, generator=g), torch.randint(0, 3, (32,), generator=g))
    target = train if bad_split == "train" else val
    if bad == "label_high":
        target.y[-2] = 3
    elif bad == "label_negative":
        target.y[-2] = -1
    elif bad == "nan_input":
        target.x[-2, 1] = float("nan")
    else:
        target.y = target.y.float()
    model = LatentClassifier.build("vc", MLP(4, 2, hidden=8), 3, 2)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="class labels must lie|NaN or inf|integer class labels"):
        Trainer(max_epochs=1, batch_size=16, device="cpu", progress=False).fit(model, train, val)
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters())), "trained before the check"
    with pytest.raises(ValueError, match="class labels must lie|NaN or inf|integer class labels"):
        Trainer(batch_size=16, device="cpu", progress=False).evaluate(model, target)



def test_train_vc_model_passes_the_prior_and_ratio_learning_rates(tmp_path, monkeypatch):
    """`prior_lr` reaches the prior's optimiser group (the reference code trains the prior at 0.1 × the encoder's
    rate) and changes the trained model; `ratio_lr` reaches the discriminator's."""
    from lvmcls.data import Dataset, TensorSplit
    from lvmcls.vc import train_vc_model

    monkeypatch.setenv("LVMCLS_CACHE", str(tmp_path))
    monkeypatch.setenv("LVMCLS_PROGRESS", "0")
    g = torch.Generator().manual_seed(0)
    split = TensorSplit(torch.randn(64, 4, generator=g), torch.randint(0, 3, (64,), generator=g))
    data = Dataset(name="toy", train=split, val=None, test=split, classes=("a", "b", "c"), source="synthetic")
    runs = {}
    for prior_lr in (None, 1e-4):
        model, _ = train_vc_model("toy", data, "vc", lambda: MLP(4, 2, hidden=8), 3, 2, steps=5, lr=1e-2,
                                  prior_lr=prior_lr, ratio_lr=3e-3, batch_size=16)
        assert model.prior_lr == prior_lr and model.ratio_lr == 3e-3
        groups = model.parameter_groups()
        assert groups["prior"][1] == ({} if prior_lr is None else {"lr": prior_lr})
        assert groups["ratio"][1]["lr"] == 3e-3
        runs[prior_lr] = model.prior.means.detach().clone()
    assert not torch.allclose(runs[None], runs[1e-4])


def test_arms_of_one_seed_share_initial_encoder_weights_and_batches(tmp_path, monkeypatch):
    """Chapter 3's pairing: for one seed, every objective starts from the same encoder weights (the encoder is built
    first after seeding) and the Trainer draws the same batch order, so arms differ only in head and objective."""
    from lvmcls.data import Dataset, TensorSplit
    from lvmcls.train import Trainer, seed_everything

    monkeypatch.setenv("LVMCLS_PROGRESS", "0")
    inits = {}
    for objective in ("ce", "ce_gaussian", "gm", "vc", "vc_reference"):
        seed_everything(3)
        model = LatentClassifier.build(objective, MLP(4, 2, hidden=8), 3, 2,
                                       ratio_form="quadratic" if objective == "vc" else "linear")
        inits[objective] = [p.detach().clone() for p in model.encoder.parameters()]
    first = inits["ce"]
    assert all(all(torch.equal(a, b) for a, b in zip(first, w)) for w in inits.values())
    seed_everything(4)
    assert not all(torch.equal(a, b) for a, b in zip(first, [p for p in MLP(4, 2, hidden=8).parameters()]))
    g = torch.Generator().manual_seed(0)
    split = TensorSplit(torch.randn(40, 4, generator=g), torch.randint(0, 3, (40,), generator=g))
    seen = {}
    for objective in ("ce", "vc"):
        batches = []
        model = LatentClassifier.build(objective, MLP(4, 2, hidden=8), 3, 2)
        step = model.training_step
        model.training_step = lambda x, y, step=step, batches=batches: (batches.append(y.clone()), step(x, y))[1]
        Trainer(max_epochs=2, batch_size=8, device="cpu", seed=5, progress=False).fit(model, split, None)
        seen[objective] = torch.cat(batches)
    assert torch.equal(seen["ce"], seen["vc"])


def test_mechanism_gate_engages_only_with_the_stated_gain_and_a_lower_kl():
    """The gate's three outcomes on paired seeds built to sit on either side of it, with room: a spread gain of
    0.3 and a KL 5 nats lower is engaged; a gain of 0.02 (well below 0.10, the interval excludes 0.10) is not; a
    gain of 0.3 with a higher KL is not; a noisy gain around 0.10 is undecided. Bad input is refused."""
    import numpy as np

    from lvmcls.vc import mechanism_gate

    rng = np.random.default_rng(0)
    base = rng.uniform(0.04, 0.07, 8).tolist()
    kl_base = rng.uniform(70, 80, 8).tolist()
    noise = rng.normal(0, 0.005, 8)
    up = (np.array(base) + 0.3 + noise).tolist()
    g = mechanism_gate(up, base, (np.array(kl_base) - 5 + noise).tolist(), kl_base)
    assert g["verdict"] == "engaged" and abs(g["spread_gain"] - 0.3) < 0.01
    assert g["spread_interval"][0] < g["spread_gain"] < g["spread_interval"][1]
    small = (np.array(base) + 0.02 + noise).tolist()
    assert mechanism_gate(small, base, kl_base, kl_base)["verdict"] == "not engaged"
    assert mechanism_gate(up, base, (np.array(kl_base) + 5 + noise).tolist(), kl_base)["verdict"] == "not engaged"
    wide = (np.array(base) + 0.10 + rng.normal(0, 0.2, 8)).tolist()
    assert mechanism_gate(wide, base, (np.array(kl_base) - 5).tolist(), kl_base)["verdict"] == "undecided"
    with pytest.raises(ValueError, match="paired seeds"):
        mechanism_gate(up[:3], base, kl_base, kl_base)
    with pytest.raises(ValueError, match="finite"):
        mechanism_gate([float("nan")] * 8, base, kl_base, kl_base)
