"""Many small models trained side by side as one batched model (`ModelStack`), through the one `Trainer`.

A chapter's seeds and grids train K copies of one architecture that differ only in their initial weights (and,
for a grid, in a constant of the loss). On a GPU such models are bound by Python and kernel launches, not by
arithmetic; stacked, one step costs about what one model's step costs. `ModelStack` holds the K members'
parameters stacked along a new leading dimension (`torch.func.stack_module_state`) and runs the members'
``training_step`` under `torch.vmap` on the same batch: the loss is the sum of the members' losses, and since no
parameter is shared, each member receives exactly its own gradient. Adam's and SGD's updates are elementwise, so
member k's trajectory is that of the model trained alone with the same initial weights and the same batches, up to
floating-point reassociation in the batched matrix products (`tests/test_stack.py`: parameters within 1e-5 after
50 steps on CPU). What the stack cannot do, it refuses: a step that draws random numbers (each member would need
its own stream to match its solo run: train such models one at a time), gradient clipping over all members
(the norm would mix them), and parameter groups.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state

from .train import seed_everything


class ModelStack(nn.Module):
    """K models of one architecture, member k built by ``build()`` right after `seed_everything(seeds[k])` (as
    `fit_cached` builds one), trained as one: ``training_step(x, y)`` returns ``loss`` = Σ_k loss_k and, for every
    output of the members' step, its mean over members (``acc``) and each member's value (``acc_member0``, …)."""

    def __init__(self, build: Callable[[], nn.Module], seeds: Sequence[int]):
        super().__init__()
        seeds = list(seeds)
        if len(seeds) < 1 or len(set(seeds)) != len(seeds):
            raise ValueError(f"ModelStack needs distinct seeds, one per member, got {seeds}")
        members = []
        for seed in seeds:
            seed_everything(seed)
            members.append(build())
        if not all(hasattr(m, "training_step") for m in members):
            raise TypeError("every member needs training_step(x, y) -> dict with a 'loss'")
        if any(hasattr(m, "parameter_groups") for m in members):
            raise ValueError("ModelStack does not take models with parameter_groups (their optimisers differ per "
                             "group); train those one at a time")
        params, buffers = stack_module_state(members)
        self.seeds = seeds
        self._names = list(params)
        self.stacked = nn.ParameterList(nn.Parameter(params[n].detach().clone()) for n in self._names)
        self._buffer_names = list(buffers)
        for i, name in enumerate(self._buffer_names):
            self.register_buffer(f"buffer_{i}", buffers[name].clone())
        # The architecture only, on the meta device (its weights live in `stacked`); kept out of the module tree so
        # that .to() and state_dict() see just the stacked tensors.
        self.__dict__["base"] = copy.deepcopy(members[0]).to("meta")
        self.__dict__["_step"] = _TrainingStep(self.base)

    def __len__(self) -> int:
        return len(self.seeds)

    def _vmapped(self, module: nn.Module, prefix: str, *args):
        """``module(*args)`` for every member, its parameters and buffers (named ``prefix`` + name) taken from the
        stack: a functional call under `torch.vmap` over the members (the arguments are shared)."""
        params = {prefix + n: p for n, p in zip(self._names, self.stacked)}
        buffers = {prefix + n: getattr(self, f"buffer_{i}") for i, n in enumerate(self._buffer_names)}
        return torch.vmap(lambda p, b, *a: functional_call(module, (p, b), a, strict=True),
                          in_dims=(0, 0) + (None,) * len(args), randomness="error")(params, buffers, *args)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every member's output on ``x``: (K, ...)."""
        return self._vmapped(self.base, "", x)

    def training_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        try:
            out = self._vmapped(self._step, "model.", x, y)
        except RuntimeError as err:
            if "randomness" in str(err):
                raise RuntimeError("a member's training_step draws random numbers: stacked members cannot follow "
                                   "their solo random streams; train this model one at a time") from err
            raise
        result = {"loss": out["loss"].sum(), "loss_mean": out["loss"].detach().mean()}
        for k, v in out.items():
            if k != "loss":
                result[k] = v.mean()
            for m in range(len(self)):  # scalars, as the Trainer's history keeps them
                result[f"{k}_member{m}"] = v[m].detach()
        return result

    def members(self) -> list[nn.Module]:
        """The K trained models, each a plain module of the architecture with member k's weights (on CPU)."""
        out = []
        for k in range(len(self)):
            model = copy.deepcopy(self.base).to_empty(device="cpu")
            state = {n: p[k].detach().cpu().clone() for n, p in zip(self._names, self.stacked)}
            state |= {n: getattr(self, f"buffer_{i}")[k].cpu().clone() for i, n in enumerate(self._buffer_names)}
            model.load_state_dict(state)
            out.append(model)
        return out


class _TrainingStep(nn.Module):
    """``model.training_step`` as a module's forward, so that `functional_call` can run it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model.training_step(x, y)
