"""Branched VAE classifiers (Chapter 6): the loss against the VAE's, where the branch's gradient goes, rotations,
class templates, clustering scores against brute force, and bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from lvmcls import branched_vae as B
from lvmcls import probes as P
from lvmcls import vae as V
from lvmcls.data import TensorSplit
from lvmcls.train import Trainer
from lvmcls.transforms import (
    class_repeated,
    class_reweighted,
    class_templates,
    gaussian_blob_templates,
    rotate,
    rotated_split,
)


def _images(n=64, side=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, side, side, generator=g), torch.randint(0, 10, (n,), generator=g)


def _vae(seed=0, conv=False, latent_dim=4):
    torch.manual_seed(seed)
    return V.ConvVAE(latent_dim=latent_dim, hidden=16) if conv else V.VAE(x_dim=784, latent_dim=latent_dim, hidden=32)


@pytest.mark.parametrize("conv", [False, True])
def test_lambda_zero_gives_the_vae_loss_exactly(conv):
    x, y = _images()
    vae = _vae(conv=conv)
    bvae = B.BranchedVAE(_vae(conv=conv), lam=0.0)
    torch.manual_seed(7)
    ref = vae.training_step(x, y)["loss"]
    torch.manual_seed(7)
    out = bvae.training_step(x, y)
    assert torch.equal(out["loss"], ref)
    # and with λ > 0 the loss is the VAE's plus λ·CE (the same sample z), not the VAE's
    bvae.lam = 2.5
    torch.manual_seed(7)
    out = bvae.training_step(x, y)
    assert not torch.equal(out["loss"], ref)
    assert torch.allclose(out["loss"], ref + 2.5 * out["ce"], rtol=1e-6)


def test_lambda_zero_trains_the_same_vae_as_the_vae():
    """One epoch through the book's Trainer: the VAE inside a λ = 0 BVAE ends with the VAE's weights, bit for bit."""
    x, y = _images(96)
    split = TensorSplit(x, y)
    trainer = Trainer(max_epochs=2, batch_size=32, lr=1e-3, seed=3, progress=False)
    vae, bvae = _vae(), B.BranchedVAE(_vae(), lam=0.0)
    trainer.fit(vae, split)
    trainer.fit(bvae, split)
    for (name, a), b in zip(vae.state_dict().items(), bvae.vae.state_dict().values()):
        assert torch.equal(a, b), name


def test_fixed_output_target_equal_to_the_input_gives_the_vae():
    """Three classes, each a single image: with the templates equal to those images the target is the input."""
    images, _ = _images(3)
    y = torch.tensor([0, 1, 2, 2, 1, 0, 0, 2])
    x = images[y]
    vae = _vae()
    fixed = B.FixedOutputVAE(_vae(), targets=images, lam=0.0)
    torch.manual_seed(11)
    ref = vae.training_step(x, y)["loss"]
    torch.manual_seed(11)
    assert torch.equal(fixed.training_step(x, y)["loss"], ref)
    other = B.FixedOutputVAE(_vae(), targets=images.flip(0), lam=0.0)  # different targets: a different loss
    torch.manual_seed(11)
    assert not torch.allclose(other.training_step(x, y)["loss"], ref)
    assert fixed.targets.shape == (3, 784) and "targets" in dict(fixed.named_buffers())
    assert "targets" not in dict(fixed.named_parameters())


@pytest.mark.parametrize("conv", [False, True])
def test_branch_gradient_reaches_the_encoder_but_not_the_decoder(conv):
    x, y = _images(32)
    model = B.BranchedVAE(_vae(conv=conv), lam=1.0)

    def grads(lam):
        model.lam = lam
        model.zero_grad()
        torch.manual_seed(5)
        model.training_step(x, y)["loss"].backward()
        return {k: p.grad.clone() for k, p in model.named_parameters()}

    with_ce, without = grads(1.0), grads(0.0)
    diff = {k: (with_ce[k] - without[k]).abs().max().item() for k in with_ce}
    decoder = [k for k in diff if k.startswith("vae.decoder")]
    encoder = [k for k in diff if k.startswith("vae.encoder")]
    branch = [k for k in diff if k.startswith("classifier")]
    assert decoder and encoder and branch
    assert all(diff[k] == 0 for k in decoder), "the CE term must not reach the decoder"
    assert all(diff[k] > 0 for k in encoder), "the CE term must reach every encoder layer"
    assert all(without[k].abs().max() == 0 for k in branch), "with λ = 0 the branch gets no gradient"


def test_conv_vae_shapes_and_sample_dimensions():
    vae = _vae(conv=True, latent_dim=3)
    x, _ = _images(5)
    mean, log_var = vae.encode(x)
    assert mean.shape == (5, 3) and log_var.shape == (5, 3)
    z = torch.randn(4, 5, 3)
    ll = vae.log_likelihood(x, z)
    assert ll.shape == (4, 5)
    assert torch.allclose(ll[2], vae.log_likelihood(x, z[2]), atol=1e-4)
    assert vae.sample(6).shape == (6, 784) and vae.reconstruct(x).shape == (5, 784)
    with pytest.raises(ValueError, match="divisible by 4"):
        V.ConvVAE(latent_dim=2, side=30)


def test_rotation_zero_is_identity_and_ninety_is_rot90():
    x, _ = _images(10)
    assert torch.allclose(rotate(x, torch.zeros(10)), x, atol=1e-5)
    assert torch.allclose(rotate(x, torch.full((10,), 90.0)), torch.rot90(x, 1, (2, 3)), atol=1e-5)
    assert torch.allclose(rotate(x, torch.full((10,), 180.0)), torch.rot90(x, 2, (2, 3)), atol=1e-5)
    assert not torch.allclose(rotate(x, torch.full((10,), -90.0)), torch.rot90(x, 1, (2, 3)), atol=1e-2)
    mixed = torch.tensor([0.0, 90.0] * 5)  # one batched call, a different angle per image
    out = rotate(x, mixed)
    assert torch.allclose(out[1::2], torch.rot90(x[1::2], 1, (2, 3)), atol=1e-5)
    assert torch.allclose(out[::2], x[::2], atol=1e-5)


def test_rotated_split_is_seeded_and_records_its_angles():
    x, y = _images(50)
    split = TensorSplit(x, y)
    a, angles_a = rotated_split(split, seed=1, max_angle=45)
    b, angles_b = rotated_split(split, seed=1, max_angle=45)
    c, angles_c = rotated_split(split, seed=2, max_angle=45)
    assert torch.equal(a.x, b.x) and torch.equal(angles_a, angles_b) and not torch.equal(angles_a, angles_c)
    assert angles_a.abs().max() <= 45 and angles_a.shape == (50,) and torch.equal(a.y, y)
    assert torch.allclose(a.x[7], rotate(x[7:8], angles_a[7:8])[0])
    with pytest.raises(ValueError, match="max_angle"):
        rotated_split(split, seed=0, max_angle=200)


def test_class_templates_are_the_class_means():
    x, y = _images(200)
    t = class_templates(TensorSplit(x, y), 10)
    for c in range(10):
        assert torch.allclose(t[c], x[y == c].mean(0), atol=1e-6)
    with pytest.raises(ValueError, match="every class must occur"):
        class_templates(TensorSplit(x[y < 5], y[y < 5]), 10)
    blobs = gaussian_blob_templates(10)
    assert blobs.shape == (10, 1, 28, 28) and blobs.max() <= 1 and blobs.amax((1, 2, 3)).min() > 0.9
    assert len(set(blobs.flatten(1).argmax(1).tolist())) == 10, "one blob position per class"
    # built on the device asked for (the full profile once failed on a GPU: blobs on the CPU beside CUDA templates)
    assert gaussian_blob_templates(10, device="meta").device.type == "meta"


def test_hungarian_accuracy_equals_brute_force_over_permutations():
    rng = np.random.default_rng(0)
    for k in (2, 3, 4, 5):
        for _ in range(5):
            truth = rng.integers(0, k, 60)
            pred = np.where(rng.random(60) < 0.5, truth, rng.integers(0, k, 60))
            pred = rng.permutation(k)[pred]
            brute = max(np.mean(np.asarray(perm)[pred] == truth) for perm in itertools.permutations(range(k)))
            assert P.clustering_accuracy(truth, pred) == pytest.approx(brute, abs=1e-12)


def test_a_relabelled_perfect_clustering_scores_one():
    truth = np.repeat(np.arange(6), 20)
    pred = np.array([4, 0, 5, 1, 3, 2])[truth] + 10  # cluster ids are arbitrary
    scores = P.clustering_scores(truth, pred)
    assert scores == pytest.approx({"nmi": 1.0, "ari": 1.0, "acc": 1.0})
    worse = P.clustering_scores(truth, np.roll(pred, 7))
    assert max(worse.values()) < 1


def test_kmeans_and_probes_find_separated_clusters():
    g = torch.Generator().manual_seed(0)
    centres = 10 * torch.randn(4, 3, generator=g)
    y = torch.arange(400) % 4
    z = centres[y] + 0.1 * torch.randn(400, 3, generator=g)
    assert P.kmeans_scores(z, y, 4) == pytest.approx({"nmi": 1.0, "ari": 1.0, "acc": 1.0})
    acc = P.probe_accuracies(z[:300], y[:300], z[300:], y[300:])
    assert set(acc) == {"nn", "knn", "rf"} and min(acc.values()) == 1.0
    noise = torch.randn(400, 3, generator=g)  # latents without label information: near chance
    assert P.probe_accuracies(noise[:300], y[:300], noise[300:], y[300:], probes=("knn",))["knn"] < 0.45


def test_latent_means_is_the_batched_eval_mode_posterior_mean():
    x, y = _images(50)
    model = B.BranchedVAE(_vae(), lam=1.0)
    model.train()
    mu = P.latent_means(model, x, batch_size=7)
    assert torch.allclose(mu, model.vae.encode(x)[0], atol=1e-6) and model.training


def test_bad_input_raises_clear_errors():
    x, y = _images(8)
    with pytest.raises(ValueError, match="lam .* must be >= 0"):
        B.BranchedVAE(_vae(), lam=-0.1)
    with pytest.raises(ValueError, match="lam"):
        B.BranchedVAE(_vae(), lam=float("nan"))
    with pytest.raises(ValueError, match="alpha"):
        B.BranchedVAE(_vae(), alpha=0.0)
    with pytest.raises(ValueError, match="targets must hold one 784-pixel image per class"):
        B.FixedOutputVAE(_vae(), targets=torch.rand(10, 27, 27))
    with pytest.raises(ValueError, match="inputs in \\[0, 1\\]"):
        B.FixedOutputVAE(_vae(), targets=2 * torch.rand(10, 784))
    model = B.BranchedVAE(_vae(), num_classes=10)
    with pytest.raises(ValueError, match="labels must be integers in \\[0, 10\\)"):
        model.training_step(x, torch.full((8,), 10))
    with pytest.raises(ValueError, match="labels must be integers"):
        model.training_step(x, torch.full((8,), -1))
    with pytest.raises(ValueError, match="labels must be integers"):
        model.training_step(x, y.float())
    with pytest.raises(ValueError, match="one class label per input"):
        model.training_step(x, y[:5])
    x_nan = x.clone()
    x_nan[0, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        model.training_step(x_nan, y)
    with pytest.raises(ValueError, match="NaN"):
        rotate(x_nan, torch.zeros(8))
    with pytest.raises(ValueError, match="one angle per image"):
        rotate(x, torch.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        P.probe_accuracies(torch.full((5, 2), float("nan")), torch.arange(5), torch.zeros(5, 2), torch.arange(5))
    with pytest.raises(ValueError, match="one label per latent"):
        P.kmeans_scores(torch.zeros(5, 2), torch.arange(4), 2)
    with pytest.raises(ValueError, match="probe must be one of"):
        P.make_probe("svm")


def test_reconstruction_bce_is_the_decoder_cross_entropy_at_the_posterior_mean():
    x, y = _images(20)
    model = B.BranchedVAE(_vae(), lam=1.0)
    mu = model.vae.encode(x)[0]
    probs = torch.sigmoid(model.vae.decoder(mu))
    ref = torch.nn.functional.binary_cross_entropy(probs, x.flatten(1), reduction="sum").item() / 20
    assert V.reconstruction_bce(model, x, batch_size=6) == pytest.approx(ref, rel=1e-4)


def test_class_reweighted_resamples_up_and_shrinks_the_other_classes():
    """Weights (10, 1, 1) on a balanced 3-class set of N: class 0 gets ~10/12 N draws, the others ~N/12 each, far
    fewer than the N/3 images they had (the resample drops data: review finding 5)."""
    y = torch.arange(30_000) % 3
    split = TensorSplit(torch.arange(30_000, dtype=torch.float32)[:, None], y)
    out = class_reweighted(split, torch.tensor([10.0, 1.0, 1.0]), seed=0)
    counts = out.class_counts(3).float()
    assert counts.sum() == 30_000 and counts[0] / counts[1] == pytest.approx(10, rel=0.1)
    assert counts[1] == pytest.approx(2_500, rel=0.1) and counts[2] == pytest.approx(2_500, rel=0.1)
    distinct_1 = out.x[out.y == 1].unique().numel()
    assert distinct_1 < 2_500 < 10_000  # with replacement: fewer distinct images than draws
    with pytest.raises(ValueError, match="one per class|class weights"):
        class_reweighted(split, torch.tensor([1.0, 1.0]), seed=0)


def test_class_repeated_multiplies_counts_and_keeps_every_image():
    y = torch.tensor([0, 1, 2, 1, 0, 2, 2])
    split = TensorSplit(torch.arange(7, dtype=torch.float32)[:, None], y)
    out = class_repeated(split, torch.tensor([10, 1, 3]))
    assert out.class_counts(3).tolist() == [20, 2, 9]
    for i in range(7):  # every image kept, each as often as its class says
        assert int((out.x[:, 0] == i).sum()) == [10, 1, 3][int(y[i])]
        assert bool((out.y[out.x[:, 0] == i] == y[i]).all())
    with pytest.raises(ValueError, match="integer tensor with one count >= 1"):
        class_repeated(split, torch.tensor([10.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="integer tensor with one count >= 1"):
        class_repeated(split, torch.tensor([10, 0, 1]))
    with pytest.raises(ValueError, match="class weights were given"):
        class_repeated(split, torch.tensor([10, 1]))


def test_probe_sample_weight_repeats_change_the_vote():
    """Two class-0 and three class-1 latents at the same point: 5-NN votes 1; repeating class 0 ten times makes it 0."""
    z = torch.zeros(5, 2)
    y = torch.tensor([0, 0, 1, 1, 1])
    z_test, y_test = torch.zeros(4, 2), torch.zeros(4, dtype=torch.long)
    plain = P.probe_accuracies(z, y, z_test, y_test, probes=("knn",), knn_k=5)
    weighted = P.probe_accuracies(z, y, z_test, y_test, probes=("knn",), knn_k=5,
                                  sample_weight_repeats=torch.tensor([10, 10, 1, 1, 1]))
    assert plain["knn"] == 0.0 and weighted["knn"] == 1.0
    with pytest.raises(ValueError, match="one integer >= 1 per training latent"):
        P.probe_accuracies(z, y, z_test, y_test, probes=("knn",), sample_weight_repeats=torch.tensor([1, 1, 1]))
    with pytest.raises(ValueError, match="one integer >= 1 per training latent"):
        P.probe_accuracies(z, y, z_test, y_test, probes=("knn",), sample_weight_repeats=np.full(5, 1.5))
    with pytest.raises(ValueError, match="probe sizes must be >= 1"):
        P.make_probe("rf", rf_trees=0)


class _IdentityEncoder(torch.nn.Module):
    """A stand-in encoder whose posterior mean is the input itself."""

    def encode(self, x):
        return x, torch.zeros_like(x)


def test_latent_report_fits_on_the_first_max_train_and_scores_on_test():
    g = torch.Generator().manual_seed(0)
    centres = 10 * torch.randn(4, 2, generator=g)
    y_train = torch.arange(200) % 4
    labels = torch.where(torch.arange(200) < 100, y_train, (y_train + 1) % 4)  # the last 100 mislabelled
    train = TensorSplit(centres[y_train] + 0.1 * torch.randn(200, 2, generator=g), labels)
    y_test = torch.arange(40) % 4
    test = TensorSplit(centres[y_test] + 0.1 * torch.randn(40, 2, generator=g), y_test)
    model = _IdentityEncoder()
    first = P.latent_report(model, train, test, probes=("knn",), max_train=100, num_clusters=4,
                            kmeans_n_init=2)
    assert first["knn_acc"] == 1.0 and first["nmi"] == pytest.approx(1.0)
    everything = P.latent_report(model, train, test, probes=("knn",), num_clusters=None)
    assert everything["knn_acc"] < 0.75 and "nmi" not in everything
    # scored on the test split: a test split with shuffled labels scores near chance
    wrong = TensorSplit(test.x, (y_test + 2) % 4)
    assert P.latent_report(model, train, wrong, probes=("knn",), max_train=100)["knn_acc"] == 0.0


def test_branch_predict_is_the_argmax_at_the_batched_posterior_mean():
    x, _ = _images(30)
    model = B.BranchedVAE(_vae(), lam=1.0)
    model.train()
    ref = model.classifier(model.vae.encode(x)[0]).argmax(1)
    assert torch.equal(model.predict(x, batch_size=7), ref) and model.training


def test_fixed_output_with_lambda_adds_lambda_times_the_branch_cross_entropy():
    x, y = _images()
    templates = torch.rand(10, 784, generator=torch.Generator().manual_seed(1))
    plain = B.FixedOutputVAE(_vae(), targets=templates, lam=0.0)
    branched = B.FixedOutputVAE(_vae(), targets=templates, lam=3.0)
    branched.classifier.load_state_dict(plain.classifier.state_dict())
    torch.manual_seed(5)
    ref = plain.training_step(x, y)
    torch.manual_seed(5)
    out = branched.training_step(x, y)
    assert torch.allclose(out["loss"], ref["loss"] + 3.0 * out["ce"], rtol=1e-6)
    assert torch.equal(out["rec"], ref["rec"]) and out["ce"] > 0
    # the reconstruction term is the template's, not the input's
    mean = branched.vae.encode(x)[0]
    assert not torch.allclose(branched.vae.log_likelihood(templates[y], mean),
                              branched.vae.log_likelihood(x, mean))


def test_negative_elbo_bounds_the_importance_weighted_nll():
    """-ELBO >= -log p(x); the IWAE estimate with k = 500 is close to -log p(x), so the mean gap must be >= 0 (up to
    Monte Carlo error), and with one sample -ELBO is the loss `VAE.training_step` estimates."""
    x, _ = _images(16)
    vae = _vae(latent_dim=3)
    vae.eval()
    neg_elbo = V.negative_elbo(vae, x, samples=256, batch_size=5)
    torch.manual_seed(0)
    iw_nll = V.importance_weighted_nll(vae, x, k=500).mean().item()
    assert neg_elbo >= iw_nll - 0.05
    torch.manual_seed(1)
    losses = torch.stack([vae.training_step(x)["loss"] for _ in range(256)]).mean().item()
    assert losses == pytest.approx(neg_elbo, rel=2e-3)
    with pytest.raises(ValueError, match="samples must be >= 1"):
        V.negative_elbo(vae, x, samples=0)


@pytest.mark.parametrize("conv", [False, True])
def test_ce_only_control_is_the_branch_cross_entropy_and_leaves_the_decoder_untouched(conv):
    """The BVAE's CE-only control (issue 31): built as a BVAE (same seed, same encoder and branch weights), its loss
    is λ times the branch's cross-entropy on the same reparameterised sample, its gradient reaches the encoder and
    the branch but not the decoder, and a BVAE's loss minus its VAE part is that same cross-entropy."""
    x, y = _images()
    torch.manual_seed(3)
    bvae = B.BranchedVAE(_vae(conv=conv), lam=7.0)
    torch.manual_seed(3)
    ce = B.CEOnlyBranch(_vae(conv=conv), lam=7.0)
    for (k, a), (_, b) in zip(bvae.state_dict().items(), ce.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    torch.manual_seed(11)
    out = ce.training_step(x, y)
    torch.manual_seed(11)
    mean, log_var = ce.vae.encode(x)
    z = mean + (0.5 * log_var).exp() * torch.randn_like(mean)
    expected = torch.nn.functional.cross_entropy(ce.classifier(z), y)
    assert out["loss"].item() == pytest.approx(7.0 * expected.item(), rel=1e-6)
    ce.zero_grad()
    out["loss"].backward()
    assert all(p.grad is None or not p.grad.any() for p in ce.vae.decoder.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in ce.vae.encoder.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in ce.classifier.parameters())
    with pytest.raises(ValueError, match="lam"):
        B.CEOnlyBranch(_vae(conv=conv), lam=0.0)
