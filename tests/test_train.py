"""The Trainer and the checkpoint cache: determinism, resume, cache keys, each option, bad configurations."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from lvmcls.data import Dataset, TensorSplit
from lvmcls.models import Classifier
from lvmcls.nets import MLP
from lvmcls.synthetic import GaussianClasses
from lvmcls.train import (Trainer, clip_grad_norm, fit_cached, load_checkpoint, random_crop_flip, random_shift,
                          save_checkpoint,
                           torch_threads)
from lvmcls.vc import LatentClassifier


@pytest.fixture(scope="module")
def toy_split():
    toy = GaussianClasses.on_circle(3, radius=2.0)
    g = torch.Generator().manual_seed(0)
    return toy.sample(2000, generator=g), toy.sample(500, generator=g)


@pytest.fixture(scope="module")
def toy_data(toy_split):
    train, val = toy_split
    return Dataset("toy", train, val, val, ("a", "b", "c"), "synthetic")


def _fit(seed, train, val, **kw):
    torch.manual_seed(seed)
    model = Classifier(MLP(2, 3, hidden=16))
    history = Trainer(max_epochs=3, batch_size=64, seed=seed, progress=False, **kw).fit(model, train, val)
    return model, history


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


def test_same_seed_same_weights(toy_split):
    a, ha = _fit(0, *toy_split)
    b, hb = _fit(0, *toy_split)
    c, _ = _fit(1, *toy_split)
    assert _same_weights(a, b) and ha.train["loss"] == hb.train["loss"]
    assert not _same_weights(a, c)


def test_training_learns_and_logs_history(toy_split):
    model, history = _fit(0, *toy_split)
    assert len(history.train["loss"]) == 3 and len(history.val["acc"]) == 3
    assert history.train["loss"][-1] < history.train["loss"][0]
    assert history.val["acc"][-1] > 0.8


def test_validation_does_not_change_the_training_run(toy_split):
    """Evaluation runs on a forked RNG: a model whose training step draws noise trains identically
    whether or not it is validated every epoch."""

    class Noisy(Classifier):
        def training_step(self, x, y):
            return super().training_step(x + 0.1 * torch.randn_like(x), y)

    runs = []
    for val in (toy_split[1], None):
        torch.manual_seed(0)
        model = Noisy(MLP(2, 3, hidden=16))
        Trainer(max_epochs=3, batch_size=64, progress=False).fit(model, toy_split[0], val)
        runs.append(model)
    assert _same_weights(*runs)


def test_early_stopping_restores_the_best_weights_and_counts_epochs(toy_split):
    train, val = toy_split
    noisy_val = TensorSplit(val.x, torch.randint(0, 3, (len(val),), generator=torch.Generator().manual_seed(0)))
    torch.manual_seed(0)
    model = Classifier(MLP(2, 3, hidden=16))
    trainer = Trainer(max_epochs=30, batch_size=64, lr=1e-2, patience=2, progress=False)
    history = trainer.fit(model, train, noisy_val)
    assert history.epochs < 30 and history.epochs == history.best_epoch + 1 + 2  # stopped 2 epochs after the best
    best = history.best_epoch
    assert trainer.evaluate(model, noisy_val)["loss"] == pytest.approx(history.val["loss"][best], rel=1e-5)


def test_monitor_acc_is_maximised(toy_split):
    train, val = toy_split
    torch.manual_seed(0)
    trainer = Trainer(max_epochs=6, batch_size=64, lr=3e-2, monitor="acc", patience=10, progress=False)
    assert trainer.monitor_mode == "max" and Trainer(monitor="loss").monitor_mode == "min"
    history = trainer.fit(Classifier(MLP(2, 3, hidden=16)), train, val)
    accs = history.val["acc"]
    assert history.best_epoch == max(range(len(accs)), key=lambda i: (accs[i], -i))


def test_val_every_and_max_steps(toy_split):
    train, val = toy_split
    _, history = _fit(0, train, val, val_every=2)
    assert len(history.val["loss"]) == 2  # after epochs 2 and 3 (the last)
    _, history = _fit(0, train, None, max_steps=40)  # 32 batches per epoch: one epoch and 8 steps
    assert history.steps == 40 and history.epochs == 2


@pytest.mark.parametrize("schedule,expected", [("cosine", 0.0), ("step", 1e-4), ("onecycle", None)])
def test_schedules_set_the_learning_rate(toy_split, schedule, expected):
    train, _ = toy_split
    torch.manual_seed(0)
    model = Classifier(MLP(2, 3, hidden=8))
    trainer = Trainer(max_epochs=2, batch_size=500, lr=1e-2, schedule=schedule, step_size=1, progress=False)
    seen = []
    original = trainer.step

    def spy(model_, x, y, optimizers):
        seen.append(optimizers[0].param_groups[0]["lr"])
        return original(model_, x, y, optimizers)

    trainer.step = spy
    trainer.fit(model, train)
    if schedule == "onecycle":  # warms up to the peak within the run, then anneals far below it
        assert seen[0] < 1e-2 / 10 and max(seen) == pytest.approx(1e-2, rel=0.3) and seen[-1] < max(seen)
    elif schedule == "step":
        assert seen[:4] == [1e-2] * 4 and seen[4:] == pytest.approx([1e-3] * 4)
    else:
        assert seen[0] == 1e-2 and seen[4] == pytest.approx(5e-3)


def test_sgd_with_momentum_differs_from_adam_and_learns(toy_split):
    sgd, h_sgd = _fit(0, *toy_split, optimizer="sgd", lr=0.1)
    adam, _ = _fit(0, *toy_split)
    assert not _same_weights(sgd, adam) and h_sgd.val["acc"][-1] > 0.8


def test_bf16_autocast_on_cpu_trains(toy_split):
    model, history = _fit(0, *toy_split, amp=True)
    fp32, _ = _fit(0, *toy_split)
    assert history.val["acc"][-1] > 0.8 and not _same_weights(model, fp32)  # bf16 really ran


class SparseBag(nn.Module):
    """A sparse embedding (SparseAdam group) plus a dense head (Adam group)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 4, sparse=True)
        self.head = nn.Linear(4, 3)

    def training_step(self, x, y):
        logits = self.head(self.embed(x[:, 0].long()))
        return {"loss": nn.functional.cross_entropy(logits, y)}

    def parameter_groups(self):
        return {"embed": (list(self.embed.parameters()), {"optimizer": "sparse_adam", "lr": 1e-1}),
                "head": (list(self.head.parameters()), {})}


def test_sparse_groups_and_gradient_clipping_with_sparse_gradients():
    x = torch.randint(0, 50, (400, 1)).float()
    split = TensorSplit(x, (x[:, 0] % 3).long())
    torch.manual_seed(0)
    model = SparseBag()
    before = model.embed.weight.detach().clone()
    history = Trainer(max_epochs=20, batch_size=100, lr=1e-2, grad_clip=1.0, progress=False).fit(model, split)
    assert not torch.equal(before, model.embed.weight) and history.train["loss"][-1] < history.train["loss"][0]
    # the clipping itself: a sparse and a dense gradient scaled jointly to norm 1
    a, b = nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(5, 2))
    a.grad = torch.tensor([3.0, 0.0, 0.0])
    b.grad = torch.sparse_coo_tensor([[1]], [[4.0, 0.0]], (5, 2))
    assert clip_grad_norm([a, b], 1.0).item() == pytest.approx(5.0)
    joint = torch.cat([a.grad, b.grad.coalesce().values().flatten()]).norm()
    assert joint.item() == pytest.approx(1.0, rel=1e-4)


def test_crop_flip_moves_pixels_but_keeps_content():
    torch.manual_seed(0)
    x = torch.rand(64, 3, 8, 8)
    out = random_crop_flip(x, pad=2)
    assert out.shape == x.shape and not torch.equal(out, x)
    # a crop of a zero-padded image: each output is x shifted and maybe flipped, zeros elsewhere
    for i in range(8):
        found = False
        for flip in (False, True):
            src = x[i].flip(-1) if flip else x[i]
            padded = nn.functional.pad(src, (2, 2, 2, 2))
            for dy in range(5):
                for dx in range(5):
                    found |= torch.equal(padded[:, dy:dy + 8, dx:dx + 8], out[i])
        assert found


def test_shift_translates_without_flipping_and_only_in_training():
    torch.manual_seed(0)
    x = torch.rand(200, 1, 6, 6)
    out = random_shift(x, pad=2)
    seen = set()
    for i in range(len(x)):
        padded = nn.functional.pad(x[i], (2, 2, 2, 2))
        # exactly one unflipped shift reproduces each output (random pixels: no two shifts coincide)
        hits = [(dy, dx) for dy in range(5) for dx in range(5) if torch.equal(padded[:, dy:dy + 6, dx:dx + 6], out[i])]
        assert len(hits) == 1
        seen.add(hits[0])
    assert len(seen) == 25  # every translation in [-2, 2]² is drawn
    trainer = Trainer(augment="shift")
    assert torch.equal(trainer._prepare(x, train=False), x)
    assert not torch.equal(trainer._prepare(x, train=True), x)
    with pytest.raises(ValueError, match="pad must be >= 0"):
        random_shift(x, pad=-1)


def test_fit_shifts_every_training_batch_and_never_a_validation_batch(monkeypatch):
    """Through `Trainer.fit` and `Trainer.evaluate` (not only `_prepare`): one shift per optimiser step, none while
    validating or evaluating, and the shifted batch is what the model trains on."""
    import lvmcls.train as T
    from lvmcls.data import TensorSplit

    calls, shifted_seen = [], []
    real_shift = T.random_shift

    def counting_shift(x, pad=2):
        out = real_shift(x, pad)
        calls.append(len(x))
        shifted_seen.append(out)
        return out

    monkeypatch.setattr(T, "random_shift", counting_shift)
    g = torch.Generator().manual_seed(0)
    train = TensorSplit(torch.rand(40, 1, 6, 6, generator=g), torch.randint(0, 3, (40,), generator=g))
    val = TensorSplit(torch.rand(24, 1, 6, 6, generator=g), torch.randint(0, 3, (24,), generator=g))
    seen = []
    model = Classifier(nn.Sequential(nn.Flatten(), nn.Linear(36, 3)))
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0]) if m.training else None)
    trainer = Trainer(max_epochs=2, batch_size=16, augment="shift", progress=False)
    history = trainer.fit(model, train, val)
    assert calls == [16, 16, 8] * 2 and history.steps == 6
    assert all(a is b for a, b in zip(seen, shifted_seen))
    trainer.evaluate(model, val)
    assert len(calls) == 6


# --------------------------------------------------------------------------------------------
# The cache


def _classifier():
    return Classifier(MLP(2, 3, hidden=8))


def test_fit_cached_trains_once_then_loads(toy_data, tmp_path):
    trainer = Trainer(max_epochs=1, progress=False)
    first, rec1 = fit_cached("toy", _classifier, toy_data, trainer, cache_dir=tmp_path)
    second, rec2 = fit_cached("toy", _classifier, toy_data, trainer, cache_dir=tmp_path)
    assert rec1["loaded"] is False and rec2["loaded"] is True and _same_weights(first, second)
    (ckpt,) = tmp_path.glob("toy-*.pt")
    assert json.loads(ckpt.with_suffix(".json").read_text())["config"]["trainer"]["max_epochs"] == 1
    ckpt.write_bytes(b"not a checkpoint")  # a damaged entry is retrained, never trusted
    with pytest.warns(UserWarning, match="training again"):
        _, rec3 = fit_cached("toy", _classifier, toy_data, trainer, cache_dir=tmp_path)
    assert rec3["loaded"] is False
    with pytest.raises(TypeError, match="builder"):
        fit_cached("toy", _classifier(), toy_data, trainer, cache_dir=tmp_path)


def test_cache_keys_change_with_every_hyper_parameter_and_the_data(toy_data, tmp_path):
    """Hyper-parameters that repr(model) does not show (β, the prior's learning rate, the discriminator's form and
    width), the trainer's settings (its thread count too) and the data's content each give a new cache entry."""
    trainer = Trainer(max_epochs=1, progress=False)

    def vc(**kw):
        return lambda: LatentClassifier.build("vc", MLP(2, 2, hidden=8), 3, 2, **kw)

    variants = [(vc(), toy_data, trainer), (vc(beta=0.5), toy_data, trainer),
                (vc(prior_lr=1e-4), toy_data, trainer), (vc(ratio_form="mlp", ratio_hidden=8), toy_data, trainer),
                (vc(ratio_form="mlp", ratio_hidden=16), toy_data, trainer),
                (vc(ratio_form="quadratic"), toy_data, trainer),
                (vc(), toy_data, Trainer(max_epochs=1, lr=2e-3, progress=False)),
                (vc(), toy_data, Trainer(max_epochs=1, threads=1, progress=False))]
    shifted = TensorSplit(toy_data.train.x + 1.0, toy_data.train.y)
    variants.append((vc(), toy_data.replace(train=shifted), trainer))
    records = [fit_cached("vc", build, data, t, cache_dir=tmp_path)[1] for build, data, t in variants]
    assert not any(r["loaded"] for r in records)
    assert len(list(tmp_path.glob("vc-*.pt"))) == len(variants)


def test_a_cache_hit_equals_an_empty_cache_run(toy_data, tmp_path):
    """Same seed: the same weights and the same random draws afterwards, whether the model was trained now
    (empty cache) or loaded (warm cache)."""
    trainer = Trainer(max_epochs=2, seed=3, progress=False)
    outcomes = []
    for folder in (tmp_path / "a", tmp_path / "a", tmp_path / "b"):  # miss, hit, another empty cache
        torch.manual_seed(123)  # whatever the chapter drew before
        model, rec = fit_cached("toy", _classifier, toy_data, trainer, cache_dir=folder)
        outcomes.append((model, torch.rand(3), rec["loaded"]))
    assert [o[2] for o in outcomes] == [False, True, False]
    for model, after, _ in outcomes[1:]:
        assert _same_weights(model, outcomes[0][0]) and torch.equal(after, outcomes[0][1])


def test_a_killed_run_resumes_to_the_same_weights(toy_data, tmp_path, monkeypatch):
    """Kill training in epoch 3 of 4; the same call then resumes from the epoch-2 checkpoint and ends bitwise
    equal to an uninterrupted run (CPU)."""
    import lvmcls.train

    monkeypatch.setattr(lvmcls.train, "RESUME_EVERY_S", 0.0)  # a checkpoint after every epoch

    class Noisy(Classifier):
        calls = 0
        kill_at = None

        def training_step(self, x, y):
            Noisy.calls += 1
            if Noisy.kill_at is not None and Noisy.calls == Noisy.kill_at:
                raise KeyboardInterrupt
            return super().training_step(x + 0.1 * torch.randn_like(x), y)

    def build():
        return Noisy(MLP(2, 3, hidden=8))

    trainer = Trainer(max_epochs=4, batch_size=128, schedule="cosine", seed=1, progress=False)
    reference, _ = fit_cached("r", build, toy_data, trainer, cache_dir=tmp_path / "ref")
    Noisy.calls, Noisy.kill_at = 0, 2 * 16 + 5  # 16 steps per epoch: dies in epoch 3
    with pytest.raises(KeyboardInterrupt):
        fit_cached("r", build, toy_data, trainer, cache_dir=tmp_path / "run")
    (resume,) = (tmp_path / "run").glob("*.resume.pt")
    assert torch.load(resume, weights_only=True)["history"]["epochs"] == 2
    Noisy.kill_at = None
    resumed, record = fit_cached("r", build, toy_data, trainer, cache_dir=tmp_path / "run")
    assert record["history"]["epochs"] == 4 and _same_weights(resumed, reference)
    assert not list((tmp_path / "run").glob("*.resume.pt"))  # removed once the final checkpoint is written


def test_resume_checkpoints_are_throttled_by_time(toy_split, tmp_path, monkeypatch):
    """With checkpoint_every_s, an epoch writes the state only if that long has passed since the last write."""
    import lvmcls.train

    writes = []
    monkeypatch.setattr(lvmcls.train.Trainer, "_save_state", lambda self, *a: writes.append(1))
    trainer = Trainer(max_epochs=5, batch_size=256, progress=False)
    trainer.fit(_classifier(), toy_split[0], checkpoint=tmp_path / "r.pt", checkpoint_every_s=3600)
    assert len(writes) == 1  # after the first epoch only
    trainer.fit(_classifier(), toy_split[0], checkpoint=tmp_path / "r.pt", checkpoint_every_s=0)
    assert len(writes) == 1 + 5


def test_checkpoints_are_plain_state_dicts(tmp_path):
    model = _classifier()
    save_checkpoint(model, tmp_path / "m.pt", {"a": 1})
    state = torch.load(tmp_path / "m.pt", weights_only=True)
    assert set(state) == set(model.state_dict())
    assert load_checkpoint(_classifier(), tmp_path / "m.pt")["config"] == {"a": 1}


@pytest.mark.parametrize("kwargs,match", [
    (dict(max_epochs=0), "max_epochs"), (dict(optimizer="lbfgs"), "optimizer"), (dict(schedule="linear"), "schedule"),
    (dict(lr=0), "lr"), (dict(lr=-1e-3), "lr"), (dict(weight_decay=-1e-4), "weight_decay"),
    (dict(grad_clip=-1.0), "grad_clip"), (dict(patience=0), "patience"), (dict(monitor_mode="up"), "monitor_mode"),
    (dict(max_steps=0), "max_steps"), (dict(augment="mixup"), "augment"), (dict(momentum=1.5), "momentum")])
def test_bad_configuration_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Trainer(**kwargs)


def test_bad_models_and_inputs_raise():
    with pytest.raises(ValueError, match="loss must be"):
        Classifier(MLP(2, 3), loss="mse")
    with pytest.raises(ValueError, match="expects inputs with 2 features"):
        MLP(2, 3)(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="crop_flip needs images"):
        random_crop_flip(torch.zeros(4, 3))


def test_unknown_monitor_raises(toy_split):
    with pytest.raises(KeyError, match="monitor 'auroc'"):
        _fit(0, *toy_split, monitor="auroc")


def test_nan_loss_stops_training_with_a_clear_error(toy_split):
    train, _ = toy_split
    bad = TensorSplit(train.x.clone(), train.y)
    bad.x[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="learning rate or check the inputs"):
        Trainer(max_epochs=1, batch_size=4096, progress=False).fit(_classifier(), bad)


def test_trainer_threads_apply_while_fitting_and_are_restored(toy_data):
    """`Trainer(threads=1)` fits on one CPU thread and gives the count back afterwards, also after an error;
    a bad count is refused."""
    outer = torch.get_num_threads()
    torch.set_num_threads(2)  # so that threads=1 is visible however many threads the session started with
    before = torch.get_num_threads()
    seen = []

    class Spy(Classifier):
        def training_step(self, x, y):
            seen.append(torch.get_num_threads())
            return super().training_step(x, y)

    for threads in (1, None):
        Trainer(max_epochs=1, threads=threads, progress=False).fit(Spy(MLP(2, 3, hidden=8)), toy_data.train)
        assert torch.get_num_threads() == before
    assert seen and set(seen) == ({1} | {before})
    with pytest.raises(ValueError, match="threads"):
        Trainer(threads=0)
    with pytest.raises(RuntimeError, match="inside"):
        with torch_threads(1):
            raise RuntimeError("inside")
    assert torch.get_num_threads() == before
    torch.set_num_threads(outer)


def test_on_epoch_end_hook_is_called_logged_and_leaves_the_training_draws_alone(toy_split):
    """A model's ``on_epoch_end(epoch, train)`` runs after every training epoch; what it returns is logged in
    ``history.train``; it runs on a forked RNG, so a hook that draws random numbers (and touches no weights) leaves
    the training run identical to one without the hook, while a hook that changes the weights does change it."""

    class Noisy(Classifier):
        def training_step(self, x, y):
            return super().training_step(x + 0.1 * torch.randn_like(x), y)

    class Hooked(Noisy):
        calls: list

        def on_epoch_end(self, epoch, train):
            self.calls.append((epoch, len(train), self.training))
            torch.randn(1000)  # draws from the global stream
            return {"probe": float(epoch) * 2}

    class Meddling(Hooked):
        def on_epoch_end(self, epoch, train):
            with torch.no_grad():
                next(self.parameters()).mul_(0.5)
            return None

    runs = []
    for cls in (Noisy, Hooked, Meddling):
        torch.manual_seed(0)
        model = cls(MLP(2, 3, hidden=16))
        model.calls = []
        history = Trainer(max_epochs=3, batch_size=64, progress=False).fit(model, toy_split[0], None)
        runs.append((model, history))
    (plain, h0), (hooked, h1), (meddled, h2) = runs
    assert hooked.calls == [(0, len(toy_split[0]), True), (1, len(toy_split[0]), True),
                            (2, len(toy_split[0]), True)]
    assert h1.train["probe"] == [0.0, 2.0, 4.0] and "probe" not in h0.train
    assert _same_weights(plain, hooked) and h0.train["loss"] == h1.train["loss"]
    assert not _same_weights(plain, meddled)
