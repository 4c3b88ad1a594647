"""`ModelStack`: K models trained side by side through the one `Trainer` follow, member by member, the
trajectories of the same models trained alone (same initial weights, same batches)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lvmcls.data import TensorSplit
from lvmcls.models import Classifier
from lvmcls.nets import MLP
from lvmcls.stack import ModelStack
from lvmcls.train import Trainer, seed_everything


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 20, generator=g)
    return TensorSplit(x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long())


def _build():
    return Classifier(MLP(20, 3, hidden=32, depth=2))


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_members_follow_their_solo_runs(optimizer):
    split, seeds = _data(), [3, 1, 4]
    trainer = dict(max_epochs=2, max_steps=50, batch_size=32, lr=1e-2, optimizer=optimizer, progress=False, seed=7,
                   threads=1)
    stack = ModelStack(_build, seeds)
    history = Trainer(**trainer).fit(stack, split)
    for seed, member in zip(seeds, stack.members()):
        seed_everything(seed)
        solo = _build()
        before = [p.detach().clone() for p in solo.parameters()]
        solo_history = Trainer(**trainer).fit(solo, split)
        k = seeds.index(seed)
        assert history.train[f"loss_member{k}"][-1] == pytest.approx(solo_history.train["loss"][-1], rel=1e-5)
        for p, q, p0 in zip(member.parameters(), solo.parameters(), before):
            assert not torch.equal(q, p0)  # it trained
            assert torch.allclose(p, q, atol=1e-5, rtol=0), (p - q).abs().max()
    # different seeds, different members (the stack is not one model repeated)
    a, b = stack.members()[:2]
    assert not torch.equal(next(a.parameters()), next(b.parameters()))


def test_forward_and_refusals():
    stack = ModelStack(_build, [0, 1])
    x = torch.randn(5, 20)
    out = stack(x)
    assert out.shape == (2, 5, 3) and torch.allclose(out[1], stack.members()[1](x), atol=1e-6)

    class Noisy(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Linear(20, 3)

        def training_step(self, x, y):
            return {"loss": nn.functional.cross_entropy(self.w(x + torch.randn_like(x)), y)}

    with pytest.raises(RuntimeError, match="one at a time"):
        ModelStack(Noisy, [0, 1]).training_step(x, torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="distinct seeds"):
        ModelStack(_build, [0, 0])
