"""Semi-supervised VAEs (M2, MIER): the bounds against quadrature, exact enumeration against a loop, the information
identities of Eqs. 6 and 8, the objective's conventions, the semi-supervised batching, and bad input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from lvmcls import ssvae as S
from lvmcls.data import TensorSplit
from lvmcls.train import Trainer


def small_m2(x_dim=12, num_classes=3, latent_dim=2, **kw) -> S.M2:
    torch.manual_seed(0)
    return S.M2(x_dim=x_dim, num_classes=num_classes, latent_dim=latent_dim, hidden=8, depth=2, classifier_hidden=8, **kw).double()


def grey_batch(n=6, d=12, seed=1) -> torch.Tensor:
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# --------------------------------------------------------------------------------------------
# Exact enumeration and Eq. 2 = Eq. 3


def test_enumeration_equals_an_explicit_loop_over_y_with_the_same_noise():
    model = small_m2()
    x = grey_batch()
    noise = torch.randn(6, 3, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    batched, log_q = model.unlabelled_bound(x, noise)
    looped = S.unlabelled_bound_by_loop(model, x, noise)
    assert torch.allclose(batched, looped, atol=1e-10)
    assert torch.allclose(log_q.exp().sum(1), torch.ones(6, dtype=torch.float64))
    # and other noise gives another value: the comparison is not vacuous
    assert not torch.allclose(batched, model.unlabelled_bound(x, noise + 1)[0], atol=1e-3)


def test_first_layers_equal_a_linear_map_of_the_concatenation_with_onehot_y():
    # the batched pass and the loop reference share encode/decode: check W_x x + W_y[:, y] against an explicit
    # nn.Linear on cat([x, onehot(y)]) (resp. cat([z, onehot(y)])), with the same weights
    model = small_m2()
    x, y = grey_batch(), torch.tensor([0, 2, 1, 1, 0, 2])
    onehot = torch.nn.functional.one_hot(y, 3).double()
    enc = torch.nn.Linear(12 + 3, 8).double()
    dec = torch.nn.Linear(2 + 3, 8).double()
    with torch.no_grad():
        enc.weight.copy_(torch.cat([model.encoder_x.weight, model.encoder_y.weight], 1))
        enc.bias.copy_(model.encoder_x.bias)
        dec.weight.copy_(torch.cat([model.decoder_z.weight, model.decoder_y.weight], 1))
        dec.bias.copy_(model.decoder_z.bias)
        mean, log_var = model.encoder_rest(torch.nn.functional.softplus(enc(torch.cat([x, onehot], 1)))).chunk(2, -1)
        got_mean, got_log_var = model.encode(x, y)
        assert torch.allclose(got_mean, mean, atol=1e-12) and torch.allclose(got_log_var, log_var.clamp(-12, 8))
        every_mean, _ = model.encode(x)  # (N, K, d): row y of every class equals the labelled call
        assert torch.allclose(every_mean[torch.arange(6), y], mean, atol=1e-12)
        z = torch.randn(6, 2, dtype=torch.float64)
        logits = model.decoder_rest(torch.nn.functional.softplus(dec(torch.cat([z, onehot], 1))))
        assert torch.allclose(model.decode(z, y), logits, atol=1e-12)


def test_eq2_equals_eq3_for_any_prior():
    model = small_m2()
    x = grey_batch()
    t = model.bound_terms(x)
    log_prior = torch.log_softmax(torch.randn(3, dtype=torch.float64), 0)
    class_bound = t["log_lik"] + log_prior - t["kl_z"]  # L(x, y) of Eq. 1 for every y
    eq3 = S.unlabelled_bound_eq3(class_bound, t["log_q"])
    eq2 = S.unlabelled_bound_eq2(t["log_lik"], t["kl_z"], t["log_q"], log_prior)
    assert torch.allclose(eq2, eq3, atol=1e-10)


# --------------------------------------------------------------------------------------------
# The bounds against quadrature on a model with a one-dimensional z


def _grid_quantities(model: S.M2, x: torch.Tensor, y: int):
    """On a dense grid of z: log p(x|y) = log ∫ p(x|y,z) p(z) dz and KL(q(z|x,y) ‖ p(z|x,y))."""
    z = torch.linspace(-12, 12, 24001, dtype=torch.float64)[:, None]
    dz = (z[1] - z[0]).item()
    labels = torch.full((len(z),), y, dtype=torch.long)
    log_lik = model.log_likelihood(x.expand(len(z), -1), model.decode(z, labels))
    log_prior_z = -0.5 * (z[:, 0] ** 2 + math.log(2 * math.pi))
    log_joint = log_lik + log_prior_z
    log_px_given_y = torch.logsumexp(log_joint, 0) + math.log(dz)
    mean, log_var = model.encode(x, torch.tensor([y]))
    log_q = -0.5 * ((z[:, 0] - mean[0, 0]) ** 2 / log_var[0, 0].exp() + log_var[0, 0] + math.log(2 * math.pi))
    kl = (log_q.exp() * (log_q - (log_joint - log_px_given_y))).sum() * dz
    return log_px_given_y.item(), kl.item()


@torch.no_grad()
def test_bounds_are_below_the_log_likelihood_by_the_kl_to_the_true_posterior():
    model = small_m2(x_dim=4, num_classes=3, latent_dim=1)
    for p in model.decoder_rest.parameters():
        p.mul_(3.0)  # a decoder that depends strongly on z: a non-Gaussian posterior, a visible gap
    x = torch.tensor([[1.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)  # E_{ε ~ N(0, 1)} f(ε) = Σ w f(t) / Σ w
    nodes, weights = torch.tensor(nodes), torch.tensor(weights / weights.sum())
    log_q_y = model.classify(x)[0]
    log_pxy, gaps = [], []
    for y in range(3):
        labels = torch.tensor([y])
        bound = sum(w * model.labelled_bound(x, labels, t.reshape(1, 1)) for t, w in zip(nodes, weights)).item()
        log_px_given_y, kl = _grid_quantities(model, x, y)
        log_p_xy = log_px_given_y - math.log(3)
        assert bound <= log_p_xy  # Eq. 1 is a bound
        assert bound == pytest.approx(log_p_xy - kl, abs=1e-6)  # and its gap is KL(q(z|x,y) ‖ p(z|x,y))
        assert kl > 1e-3
        log_pxy.append(log_p_xy)
        gaps.append(kl)
    log_pxy = torch.tensor(log_pxy, dtype=torch.float64)
    log_px = torch.logsumexp(log_pxy, 0).item()
    u = sum(w * model.unlabelled_bound(x, t.expand(1, 3, 1))[0] for t, w in zip(nodes, weights)).item()
    # the gap of U is KL(q(y, z|x) ‖ p(y, z|x)) = Σ_y q(y|x) [log q(y|x) - log p(y|x) + KL_y]
    gap_u = (log_q_y.exp() * (log_q_y - (log_pxy - log_px) + torch.tensor(gaps))).sum().item()
    assert u <= log_px
    assert u == pytest.approx(log_px - gap_u, abs=1e-6)


# --------------------------------------------------------------------------------------------
# Eqs. 6 and 8 on a batch of classifier outputs


def test_information_identities_on_random_logits():
    g = torch.Generator().manual_seed(0)
    log_q = torch.log_softmax(3 * torch.randn(64, 5, generator=g, dtype=torch.float64), 1)
    log_prior = torch.log_softmax(torch.randn(5, generator=g, dtype=torch.float64), 0)
    info = S.label_information(log_q, log_prior)
    # the definition of I(y; x) with q(x) = 1/N: Σ_{n,y} q(y, x_n) log q(y, x_n) / (q(y) q(x_n))
    q_joint = log_q.exp() / len(log_q)
    q_y = q_joint.sum(0)
    mi_definition = (q_joint * (q_joint.log() - q_y.log()[None] - math.log(1 / len(log_q)))).sum()
    assert info["mi"].item() == pytest.approx(mi_definition.item(), abs=1e-10)  # Eq. 8
    assert info["mean_kl"].item() == pytest.approx((info["mi"] + info["kl_marginal"]).item(), abs=1e-10)  # Eq. 6
    # both sides of Eq. 6 from their definitions: the mean KL(q(y|x_n) ‖ p(y)) and KL(q(y) ‖ p(y))
    mean_kl_definition = (log_q.exp() * (log_q - log_prior[None])).sum(1).mean()
    kl_marginal_definition = (q_y * (q_y.log() - log_prior)).sum()
    assert info["mean_kl"].item() == pytest.approx(mean_kl_definition.item(), abs=1e-10)
    assert info["kl_marginal"].item() == pytest.approx(kl_marginal_definition.item(), abs=1e-10)


def test_mutual_information_reaches_both_ends():
    same_rows = torch.log_softmax(torch.randn(1, 4).expand(40, 4), 1)
    assert S.label_information(same_rows)["mi"].item() == pytest.approx(0.0, abs=1e-6)
    one_hot = torch.log_softmax(60.0 * torch.eye(4).repeat(10, 1), 1)  # confident and balanced
    info = S.label_information(one_hot)
    assert info["mi"].item() == pytest.approx(math.log(4), abs=1e-6)
    assert info["entropy"].item() == pytest.approx(0.0, abs=1e-6)
    assert info["marginal_entropy"].item() == pytest.approx(math.log(4), abs=1e-6)


# --------------------------------------------------------------------------------------------
# The objective: M2 (Eq. 4), MIER (Eq. 9), α


def _batch():
    x = grey_batch(10)
    y = torch.tensor([0, 1, 2, -1, -1, -1, -1, -1, -1, -1])
    return x, y


def _loss_and_grads(model, x, y, seed=5):
    model.zero_grad()
    torch.manual_seed(seed)
    out = model.training_step(x, y)
    out["loss"].backward()
    return out["loss"].detach(), [p.grad.clone() for p in model.parameters()]


def test_gamma_beta_zero_is_m2_loss_and_gradients():
    f = 0.2
    model = small_m2(labelled_fraction=f, alpha=0.7, gamma=0.0, beta=0.0)
    x, y = _batch()
    loss, grads = _loss_and_grads(model, x, y)
    # Eq. 4 assembled by hand from the bounds, with the same noise (same seed, same order of draws)
    model.zero_grad()
    torch.manual_seed(5)
    lab = y >= 0
    bound_l = model.labelled_bound(x[lab], y[lab])
    bound_u, _ = model.unlabelled_bound(x[~lab])
    log_q_y = model.classify(x[lab]).gather(1, y[lab][:, None]).squeeze(1)
    j = f * bound_l.mean() + (1 - f) * bound_u.mean() + 0.7 * log_q_y.mean()
    (-j).backward()
    assert loss.item() == pytest.approx(-j.item(), abs=1e-10)
    for g, p in zip(grads, model.parameters()):
        assert torch.allclose(g, p.grad, atol=1e-10)
    # MIER changes the loss by exactly -(1 - f)(γ I - β H) on the unlabelled rows, and the gradients with it
    mier = small_m2(labelled_fraction=f, alpha=0.7, gamma=1.0, beta=5.0)
    mier.load_state_dict(model.state_dict())
    loss_mier, grads_mier = _loss_and_grads(mier, x, y)
    info = S.label_information(model.classify(x[~lab]))
    assert (loss_mier - loss).item() == pytest.approx(-(1 - f) * (info["mi"] - 5 * info["entropy"]).item(), abs=1e-10)
    assert not torch.allclose(grads_mier[0], grads[0])


def test_mier_expansion_per_example_and_marginal_entropy():
    """Batch mean of M = U + γ I - β H (Eq. 7, from the model's batched bound and `mier_regulariser`) against the
    expansion mean Σ_y q L + (1 - γ - β) mean H(q(y|x)) + γ H(q(y)), whose terms are computed here independently of
    the library's bookkeeping: L(x, y) by one `labelled_bound` call per class with the same noise, the entropies by
    hand from q = exp(log q(y|x)), H(q(y)) from the batch average of q. Then a case with known values: with the
    classifier's last layer zeroed, q is uniform, so H = H(q(y)) = log K, I = 0 and the regulariser is -β log K."""
    model = small_m2()
    n, k = 20, model.num_classes
    x = grey_batch(n)
    noise = torch.randn(n, k, model.latent_dim, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        # an untrained classifier is near uniform and gives every image the same q: redraw its weights (the first
        # layer centred on grey 0.5) so that q(y|x) varies with x and I(y; x) > 0
        g = torch.Generator().manual_seed(4)
        first, last = model.classifier[0], model.classifier[-1]
        for layer in (first, last):
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=g, dtype=torch.float64))
        first.bias.copy_(-0.5 * first.weight.sum(1))
        u, log_q = model.unlabelled_bound(x, noise)
        bound_y = torch.stack([model.labelled_bound(x, torch.full((n,), c), noise[:, c]) for c in range(k)], 1)
        q = model.classify(x).exp()
        h_each = -(q * q.log()).sum(1)
        q_bar = q.mean(0)
        h_marginal = -(q_bar * q_bar.log()).sum()
        assert h_marginal.item() > h_each.mean().item() + 0.05  # I > 0 on this batch: the γ term is not idle
        for gamma, beta in [(1.0, 5.0), (0.0, 6.0), (2.0, 0.0)]:
            m = u.mean() + S.mier_regulariser(log_q, gamma, beta)
            expanded = (q * bound_y).sum(1).mean() + (1 - gamma - beta) * h_each.mean() + gamma * h_marginal
            assert m.item() == pytest.approx(expanded.item(), abs=1e-10), (gamma, beta)
        last = model.classifier[-1]
        last.weight.zero_()
        last.bias.zero_()
        log_uniform = model.classify(x)
        assert torch.allclose(log_uniform, torch.full_like(log_uniform, -math.log(k)))
        for gamma, beta in [(1.0, 5.0), (0.0, 6.0), (2.0, 0.0)]:
            reg = S.mier_regulariser(log_uniform, gamma, beta).item()
            assert reg == pytest.approx(-beta * math.log(k), abs=1e-12), (gamma, beta)


def test_alpha_weights_the_labelled_log_likelihood_of_the_classifier():
    x, y = _batch()
    with_alpha, without = small_m2(alpha=0.1, labelled_fraction=0.3), small_m2(alpha=0.0, labelled_fraction=0.3)
    loss_a, _ = _loss_and_grads(with_alpha, x, y)
    loss_0, _ = _loss_and_grads(without, x, y)
    log_q_y = with_alpha.classify(x[:3]).gather(1, y[:3, None]).squeeze(1)
    assert (loss_a - loss_0).item() == pytest.approx(-0.1 * log_q_y.mean().item(), abs=1e-10)


def test_training_step_applies_the_warm_up_weight_to_the_z_kl():
    # at step 0 with warm-up the loss is the hand-assembled loss with the z-KL weighted 0; without warm-up, weight 1
    x, y = _batch()
    for warmup_steps, kl_weight in [(4, 0.0), (0, 1.0)]:
        model = small_m2(alpha=0.1, labelled_fraction=0.3, warmup_steps=warmup_steps)
        torch.manual_seed(5)
        loss = model.training_step(x, y)["loss"]
        torch.manual_seed(5)  # the same noise, drawn in the same order as training_step draws it
        bound_l = model.labelled_bound(x[:3], y[:3], kl_weight=kl_weight)
        log_q_y = model.classify(x[:3]).gather(1, y[:3, None]).squeeze(1)
        bound_u, _ = model.unlabelled_bound(x[3:], kl_weight=kl_weight)
        by_hand = -(0.3 * bound_l.mean() + 0.7 * bound_u.mean() + 0.1 * log_q_y.mean())
        assert loss.item() == pytest.approx(by_hand.item(), abs=1e-10)
    # and the two weights give different losses: the check is not vacuous
    torch.manual_seed(5)
    full_kl = small_m2(alpha=0.1, labelled_fraction=0.3).training_step(x, y)["loss"]
    torch.manual_seed(5)
    no_kl = small_m2(alpha=0.1, labelled_fraction=0.3, warmup_steps=4).training_step(x, y)["loss"]
    assert abs(full_kl.item() - no_kl.item()) > 1e-3


def test_kl_warm_up_rises_linearly_and_evaluation_uses_the_full_kl():
    model = small_m2(warmup_steps=4)
    x, y = _batch()
    weights = []
    for _ in range(6):
        weights.append(model.kl_weight())
        model.training_step(x, y)
    assert weights == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    model.eval()
    model.steps_taken.zero_()
    assert model.kl_weight() == 1.0


# --------------------------------------------------------------------------------------------
# Semi-supervised batches


def _toy_split(labelled_per_batch=3):
    # 3 classes × 4 labelled, 53 unlabelled; x holds the row's identity
    y_l = torch.arange(3).repeat_interleave(4)
    labelled = TensorSplit(torch.arange(12, dtype=torch.float32)[:, None], y_l)
    unlabelled_x = torch.arange(12, 65, dtype=torch.float32)[:, None]
    return S.SemiSupervisedSplit(labelled, unlabelled_x, labelled_per_batch)


def test_batches_visit_every_unlabelled_row_once_and_keep_labelled_balanced():
    split = _toy_split()
    assert len(split) == 65 and split.labelled_fraction == pytest.approx(12 / 65)
    assert (split.y[12:] == -1).all()
    seen_unlabelled, labelled_counts = [], torch.zeros(12)
    batches = list(split.batches(10, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert len(batches) == math.ceil(53 / 7)
    for x, y in batches:
        lab = y >= 0
        assert lab.sum() == 3 and (~lab).sum() >= 1
        assert sorted(y[lab].tolist()) == [0, 1, 2]  # one of each class in every batch
        ids = x[:, 0].long()
        assert (split.y[ids] == y).all()
        seen_unlabelled += ids[~lab].tolist()
        labelled_counts += torch.bincount(ids[lab], minlength=12)
    assert sorted(seen_unlabelled) == list(range(12, 65))  # each unlabelled row exactly once
    assert labelled_counts.max() - labelled_counts.min() <= 1  # labelled rows cycled evenly
    again = list(split.batches(10, shuffle=True, generator=torch.Generator().manual_seed(0)))
    other = list(split.batches(10, shuffle=True, generator=torch.Generator().manual_seed(1)))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again))
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(batches, other))


@pytest.mark.parametrize("labelled_per_batch", [6, 5])
def test_batches_balance_labelled_rows_for_two_per_class_and_an_uneven_share(labelled_per_batch):
    # 6 = 2K (the chapter's 20 = 2K for MNIST): two of each class per batch; 5 does not divide the 12 labelled rows:
    # every run of K consecutive labelled rows still holds one of each class, and the rows are cycled evenly
    split = _toy_split(labelled_per_batch)
    labelled_ids = []
    for x, y in split.batches(10, shuffle=True, generator=torch.Generator().manual_seed(3)):
        lab = y >= 0
        assert lab.sum() == labelled_per_batch
        if labelled_per_batch == 6:
            assert torch.bincount(y[lab], minlength=3).tolist() == [2, 2, 2]
        labelled_ids += x[lab, 0].long().tolist()
    classes = split.y[torch.tensor(labelled_ids)]
    for start in range(0, len(classes) - 2, 3):
        assert sorted(classes[start:start + 3].tolist()) == [0, 1, 2]
    counts = torch.bincount(torch.tensor(labelled_ids), minlength=12)
    assert counts.max() - counts.min() <= 1


def test_draw_is_class_balanced_and_rejects_too_many_labels():
    g = torch.Generator().manual_seed(0)
    data = TensorSplit(torch.rand(300, 1, 4, 4, generator=g), torch.arange(3).repeat(100))
    split = S.SemiSupervisedSplit.draw(data, labelled_per_class=5, labelled_per_batch=3, seed=0)
    assert torch.bincount(split.labelled.y).tolist() == [5, 5, 5] and len(split) == 300
    with pytest.raises(ValueError, match="only 100 examples"):
        S.SemiSupervisedSplit.draw(data, labelled_per_class=101, labelled_per_batch=3)


def test_the_trainer_fits_m2_on_a_semi_supervised_split():
    g = torch.Generator().manual_seed(0)
    data = TensorSplit(torch.rand(120, 12, generator=g), torch.arange(3).repeat(40))
    split = S.SemiSupervisedSplit.draw(data, labelled_per_class=2, labelled_per_batch=3, seed=0)
    torch.manual_seed(0)
    model = S.M2(x_dim=12, num_classes=3, latent_dim=2, hidden=8, classifier_hidden=8,
                 labelled_fraction=split.labelled_fraction, warmup_steps=10)
    history = Trainer(max_epochs=2, batch_size=23, lr=1e-3, progress=False).fit(model, split)
    assert {"loss", "bound_l", "bound_u", "mi", "entropy", "error"} <= set(history.train)
    assert model.steps_taken.item() == 2 * math.ceil(114 / 20)


# --------------------------------------------------------------------------------------------
# Grey levels, the Bernoulli floor, evaluation


def test_greyscale_matches_pil_luma():
    from PIL import Image

    rgb = torch.randint(0, 256, (5, 3, 4, 4), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    grey = S.greyscale(TensorSplit(rgb.float() / 255, torch.zeros(5, dtype=torch.long))).x
    pil = torch.stack([torch.from_numpy(np.array(Image.fromarray(im.permute(1, 2, 0).numpy()).convert("L")))
                       for im in rgb])
    assert grey.shape == (5, 1, 4, 4)
    assert (grey[:, 0] * 255 - pil.float()).abs().max() <= 1.0


def test_bernoulli_floor():
    assert S.bernoulli_floor(torch.tensor([[0.0, 1.0, 1.0]])) == 0.0
    assert S.bernoulli_floor(torch.full((3, 10), 0.5)) == pytest.approx(10 * math.log(2))
    x = torch.rand(50, 20, generator=torch.Generator().manual_seed(0))
    logits = torch.randn(50, 20)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1).mean().item()
    assert bce >= S.bernoulli_floor(x)


def test_evaluate_classifier_reports_the_whole_split_information():
    model = small_m2().float()
    data = TensorSplit(grey_batch(30).float(), torch.arange(3).repeat(10))
    out = S.evaluate_classifier(model, data, batch_size=7, bound=True)
    with torch.no_grad():
        info = S.label_information(model.classify(data.x))
    assert out["mi"] == pytest.approx(info["mi"].item(), abs=1e-6)
    with torch.no_grad():
        accuracy = (model.classify(data.x).argmax(1) == data.y).float().mean().item()
    assert out["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    g = torch.Generator().manual_seed(0)  # the noise evaluate_classifier draws, batch by batch of 7
    noise = torch.cat([torch.randn((n, 3, 2), generator=g) for n in (7, 7, 7, 7, 2)])
    with torch.no_grad():
        model.eval()
        reference = S.unlabelled_bound_by_loop(model, data.x, noise).mean().item()
        model.train()
    assert out["bound"] == pytest.approx(reference, abs=1e-4)
    assert model.training  # the mode is restored


# --------------------------------------------------------------------------------------------
# Bad input


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="gamma >= 0 and beta >= 0"):
        S.M2(gamma=-1.0)
    with pytest.raises(ValueError, match="gamma >= 0 and beta >= 0"):
        S.M2(beta=-0.5)
    with pytest.raises(ValueError, match="labelled_fraction"):
        S.M2(labelled_fraction=0.0)
    model = small_m2()
    x, y = _batch()
    with pytest.raises(ValueError, match="labels must be in 0..2"):
        model.training_step(x, torch.tensor([0, 1, 3, -1, -1, -1, -1, -1, -1, -1]))
    with pytest.raises(ValueError, match="NaN"):
        model.training_step(torch.full_like(x, float("nan")), y)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.training_step(x + 1.5, y)
    with pytest.raises(ValueError, match="expects 12 pixels"):
        model.training_step(torch.rand(10, 13, dtype=torch.float64), y)
    with pytest.raises(ValueError, match="must exceed labelled_per_batch"):
        next(_toy_split(labelled_per_batch=10).batches(10))
    with pytest.raises(ValueError, match="RGB"):
        S.greyscale(TensorSplit(torch.rand(2, 1, 4, 4), torch.zeros(2, dtype=torch.long)))
    with pytest.raises(ValueError, match="labels in 0..9"):
        S.SupervisedClassifier().training_step(torch.rand(2, 784), torch.tensor([0, -1]))


def test_paired_accuracy_difference_against_counts():
    class Fixed(torch.nn.Module):
        def __init__(self, predictions):
            super().__init__()
            self.predictions = predictions

        def classify(self, x):
            return torch.log_softmax(10.0 * torch.nn.functional.one_hot(self.predictions[x[:, 0].long()], 3), 1)

    y = torch.arange(3).repeat(20)  # 60 examples
    split = TensorSplit(torch.arange(60, dtype=torch.float32)[:, None], y)
    wrong_b = y.clone()
    wrong_b[:15] = (y[:15] + 1) % 3  # b misses 15, a misses none
    diff, se = S.paired_accuracy_difference(Fixed(y), Fixed(wrong_b), split, batch_size=7)
    d = torch.cat([torch.ones(15), torch.zeros(45)])
    assert diff == pytest.approx(15 / 60) and se == pytest.approx((d.std() / math.sqrt(60)).item())


# ---- bench/pyro_m2_side_by_side.py (Pyro's example beside lvmcls's M2); pyro is not a dependency: skipped without it

def _bench_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "pyro_m2_side_by_side.py"
    spec = importlib.util.spec_from_file_location("pyro_m2_side_by_side", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ANCHOR = Path(__file__).resolve().parents[2] / "shared" / "anchors" / "pyro-ss-vae"


def _anchor_function(file: str, name: str, namespace: dict):
    """One top-level function of Pyro's example, compiled from its source as it is (no pyro import needed)."""
    import ast

    path = ANCHOR / file
    if not path.is_file():
        pytest.skip(f"{path} is not here (Pyro's example lives in shared/anchors)")
    tree = ast.parse(path.read_text())
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    exec(compile(ast.Module(body=[node], type_ignores=[]), str(path), "exec"), namespace)
    return namespace[name]


def test_bench_label_draw_is_the_example_scripts_draw():
    """`example_label_draw` gives the indices that ss_vae_M2.py's own helper (`get_ss_indices_per_class`, run from
    the anchors copy) draws after the script's seeding, for two seeds."""
    bench = _bench_module()
    get = _anchor_function("utils/mnist_cached.py", "get_ss_indices_per_class", {"np": np})
    y = torch.randint(0, 10, (3000,), generator=torch.Generator().manual_seed(5))
    for seed in (0, 3):
        np.random.seed(seed)
        sup, _ = get(torch.nn.functional.one_hot(y, 10), 10)
        assert bench.example_label_draw(y, 100, seed) == [int(i) for i in sup]


def test_bench_example_batching_takes_the_example_scripts_steps():
    """Issue 31: Pyro's example steps *every* loss on *every* batch (its `run_inference_for_epoch`, run here from the
    anchors copy with counting losses): at 100 labels, batch 100 and 49,900 unlabelled images, 500 batches, batch 1
    labelled, each visited by both losses. The bench's lvmcls side with the example's batching takes two Adam steps on
    every batch (1,000 per epoch), its one labelled batch at the same position, and the auxiliary step on an
    unlabelled batch, with a zero gradient, still moves the parameters (Adam's momentum), as Pyro's does."""
    bench = _bench_module()
    run_epoch = _anchor_function("ss_vae_M2.py", "run_inference_for_epoch", {})

    class Loss:
        def __init__(self):
            self.calls = []

        def step(self, xs, ys=None):
            self.calls.append(ys is not None)
            return 0.0

    loaders = {"sup": [("x", "y")], "unsup": [("x", None)] * 499}
    losses = [Loss(), Loss()]
    run_epoch(loaders, losses, int(50_000 / 100))
    for loss in losses:
        assert len(loss.calls) == 500 and loss.calls.index(True) == 1 and sum(loss.calls) == 1

    torch.manual_seed(0)
    model = S.M2(x_dim=4, num_classes=10, latent_dim=2, hidden=8, depth=1, classifier_hidden=8,
                 labelled_fraction=100 / 50_000, alpha=0.092)
    labelled = TensorSplit(torch.rand(100, 4), torch.arange(10).repeat(10))

    class Counting(torch.optim.Adam):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.moves = []

        def step(self, closure=None):
            before = [p.detach().clone() for p in model.parameters()]
            out = super().step(closure)
            zero = all(p.grad is None or not p.grad.any() for p in model.parameters())
            self.moves.append((zero, any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))))
            return out

    opt = Counting(model.parameters(), lr=1e-3)
    steps = bench.example_batching_epoch(model, opt, labelled, torch.rand(49_900, 4), 100,
                                         torch.Generator().manual_seed(0))
    assert steps == len(opt.moves) == 1000
    zero_grad_steps = [moved for zero, moved in opt.moves if zero]
    assert len(zero_grad_steps) == 499 and all(zero_grad_steps)  # the unlabelled batches' auxiliary steps
    assert not opt.moves[2][0] and not opt.moves[3][0]  # batch 1 (labelled): both steps carry a gradient


def test_pyro_side_by_side_runs_the_lvmcls_sides_and_writes_what_chapter_7_reads(tmp_path):
    from lvmcls.paths import data_dir

    if not (data_dir() / "MNIST").is_dir():
        pytest.skip("needs the MNIST cache (make data)")
    bench = _bench_module()
    out = tmp_path / "side.md"
    result = bench.main(["--epochs", "1", "--seeds", "0", "--sides", "lvmcls-example-batching", "lvmcls",
                         "--unlabelled-limit", "450", "--eval-limit", "200", "--out", str(out)])
    read = bench.read_result(out)
    assert read["summary"] == result["summary"] and read["epochs"] == 1 and read["seeds"] == [0]
    for side in ("lvmcls-example-batching", "lvmcls"):
        c = read["curves"][side]["0"]
        assert len(c["test"]) == len(c["val"]) == len(c["seconds"]) == 1
    # the example's loop: 1 labelled + ceil(450 / 100) unlabelled batches, two Adam steps each; lvmcls's own: one step
    # per batch of 90 unlabelled + 10 labelled rows
    assert read["adam_steps_per_epoch"] == {"lvmcls-example-batching": 2 * (1 + 5), "lvmcls": math.ceil(450 / 90)}
    assert "time_ratio_pyro_over_lvmcls" not in read["summary"]  # no Pyro side, no ratio


def test_pyro_side_by_side_runs_pyros_own_script(tmp_path):
    """With pyro-ppl 1.9.1 importable: the script itself, one epoch, read from its own log lines."""
    pytest.importorskip("pyro")
    bench = _bench_module()
    if not (ANCHOR / "ss_vae_M2.py").is_file():
        pytest.skip("Pyro's example is not in shared/anchors")
    copy = bench.prepare_example(ANCHOR, tmp_path)
    run = bench.run_example(copy, seed=0, epochs=1, threads=1, pyro_path=None)
    assert len(run["val"]) == len(run["test"]) == len(run["seconds"]) == 1  # one epoch's line, parsed
