"""The Trainer and the checkpoint cache: determinism, early stopping, load-if-present, bad configs."""

from __future__ import annotations

import json

import pytest
import torch

from lvmcls.data import TensorSplit
from lvmcls.models import Classifier
from lvmcls.nets import MLP
from lvmcls.synthetic import GaussianClasses
from lvmcls.train import Trainer, load_checkpoint, load_or_train, save_checkpoint


@pytest.fixture(scope="module")
def toy_split():
    toy = GaussianClasses.on_circle(3, radius=2.0)
    g = torch.Generator().manual_seed(0)
    return toy.sample(2000, generator=g), toy.sample(500, generator=g)


def _fit(seed, train, val, **kw):
    torch.manual_seed(seed)
    model = Classifier(MLP(2, 3, hidden=16))
    history = Trainer(max_epochs=3, batch_size=64, seed=seed, progress=False, **kw).fit(model, train, val)
    return model, history


def test_same_seed_same_weights(toy_split):
    a, ha = _fit(0, *toy_split)
    b, hb = _fit(0, *toy_split)
    c, _ = _fit(1, *toy_split)
    for k in a.state_dict():
        assert torch.equal(a.state_dict()[k], b.state_dict()[k])
    assert ha.train["loss"] == hb.train["loss"]
    assert any(not torch.equal(a.state_dict()[k], c.state_dict()[k]) for k in a.state_dict())


def test_training_learns_and_logs_history(toy_split):
    model, history = _fit(0, *toy_split)
    assert len(history.train["loss"]) == 3 and len(history.val["acc"]) == 3
    assert history.train["loss"][-1] < history.train["loss"][0]
    assert history.val["acc"][-1] > 0.8


def test_early_stopping_restores_the_best_weights(toy_split):
    train, val = toy_split
    noisy_val = TensorSplit(val.x, torch.randint(0, 3, (len(val),), generator=torch.Generator().manual_seed(0)))
    torch.manual_seed(0)
    model = Classifier(MLP(2, 3, hidden=16))
    trainer = Trainer(max_epochs=30, batch_size=64, lr=1e-2, patience=2, progress=False)
    history = trainer.fit(model, train, noisy_val)
    assert len(history.val["loss"]) < 30  # it stopped early
    best = history.best_epoch
    assert trainer.evaluate(model, noisy_val)["loss"] == pytest.approx(history.val["loss"][best], rel=1e-5)


def test_load_or_train_trains_once_then_loads(toy_split, tmp_path):
    train, val = toy_split
    calls = []

    def train_fn(model):
        calls.append(1)
        return Trainer(max_epochs=1, progress=False).fit(model, train, val)

    config = {"what": "test", "epochs": 1}
    torch.manual_seed(0)
    first, rec1 = load_or_train("toy", Classifier(MLP(2, 3, hidden=8)), config, train_fn, cache_dir=tmp_path)
    torch.manual_seed(1)
    second, rec2 = load_or_train("toy", Classifier(MLP(2, 3, hidden=8)), config, train_fn, cache_dir=tmp_path)
    assert calls == [1] and rec1["loaded"] is False and rec2["loaded"] is True
    for k in first.state_dict():
        assert torch.equal(first.state_dict()[k], second.state_dict()[k])
    (ckpt,) = tmp_path.glob("toy-*.pt")
    assert json.loads(ckpt.with_suffix(".json").read_text())["config"] == config
    # a damaged checkpoint is retrained, never trusted
    ckpt.write_bytes(b"not a checkpoint")
    load_or_train("toy", Classifier(MLP(2, 3, hidden=8)), config, train_fn, cache_dir=tmp_path)
    assert calls == [1, 1]
    # another config is another entry
    load_or_train("toy", Classifier(MLP(2, 3, hidden=8)), {**config, "epochs": 2}, train_fn, cache_dir=tmp_path)
    assert calls == [1, 1, 1] and len(list(tmp_path.glob("toy-*.pt"))) == 2


def test_checkpoints_are_plain_state_dicts(tmp_path):
    model = Classifier(MLP(2, 3, hidden=8))
    save_checkpoint(model, tmp_path / "m.pt", {"a": 1})
    state = torch.load(tmp_path / "m.pt", weights_only=True)
    assert set(state) == set(model.state_dict())
    assert load_checkpoint(Classifier(MLP(2, 3, hidden=8)), tmp_path / "m.pt")["config"] == {"a": 1}


def test_bad_configuration_raises():
    with pytest.raises(ValueError, match="max_epochs"):
        Trainer(max_epochs=0)
    with pytest.raises(ValueError, match="optimizer"):
        Trainer(optimizer="lbfgs")
    with pytest.raises(ValueError, match="loss must be"):
        Classifier(MLP(2, 3), loss="mse")
    with pytest.raises(ValueError, match="expects inputs with 2 features"):
        MLP(2, 3)(torch.zeros(4, 3))


def test_nan_loss_stops_training_with_a_clear_error(toy_split):
    train, _ = toy_split
    bad = TensorSplit(train.x.clone(), train.y)
    bad.x[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="learning rate or check the inputs"):
        Trainer(max_epochs=1, batch_size=4096, progress=False).fit(Classifier(MLP(2, 3, hidden=8)), bad)
