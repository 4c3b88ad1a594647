"""The one `Trainer`, seeding, and the "load if present, else train" checkpoint cache.

A model is any ``nn.Module`` with ``training_step(x, y) -> dict`` holding a scalar ``"loss"`` (other
entries are logged). The trainer owns the optimiser and the schedule; losses never do. Every model of the
book trains through one function, with a *builder* so that the seed fixes the initial weights whether or not
the cache is warm::

    trainer = Trainer(max_epochs=5, lr=1e-3, device=device, seed=0)
    model, record = fit_cached("ch4-vae-depth3", lambda: VAE(decoder_depth=3), data, trainer)

A training split is anything with ``__len__``, ``to(device)``, ``x``, ``y`` and
``batches(batch_size, shuffle, generator)`` yielding ``(x, y)`` on its device (`lvmcls.data.TensorSplit`,
or the semi-supervised split of `lvmcls.ssvae`).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import math
import os
import pickle
import random
import time
import warnings
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from .paths import atomic_write_bytes, atomic_write_text, checkpoint_dir

OPTIMIZERS = ("adam", "adamw", "sgd")
GROUP_OPTIMIZERS = OPTIMIZERS + ("sparse_adam",)  # SparseAdam only for a group of sparse parameters
SCHEDULES = (None, "cosine", "step", "onecycle")
AUGMENTATIONS = (None, "crop_flip", "shift")
# Monitored quantities that improve upwards; everything else (losses, NLL, ECE) improves downwards.
MAXIMISED = ("acc", "accuracy", "auroc", "elbo", "bound")
# `fit_cached` writes the resumable training state after an epoch once this many seconds have passed since the
# last write (and after the first epoch): many tiny epochs do not each pay for a checkpoint. 0: every epoch.
RESUME_EVERY_S = 30.0


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU generator for data order seeded the same way."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def pick_device(preferred: str | None = None) -> torch.device:
    """``preferred`` if given, else CUDA when available, else CPU."""
    if preferred:
        return torch.device(preferred)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _rng_devices(device: torch.device) -> list:
    return [device] if device.type == "cuda" else []


@dataclass
class History:
    """Per-epoch means of everything ``training_step`` returned, for train and validation."""

    train: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    val: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    best_epoch: int = -1
    seconds: float = 0.0
    epochs: int = 0
    steps: int = 0

    def to_dict(self) -> dict:
        return {"train": dict(self.train), "val": dict(self.val), "best_epoch": self.best_epoch,
                "seconds": self.seconds, "epochs": self.epochs, "steps": self.steps}

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        h = cls(best_epoch=d["best_epoch"], seconds=d["seconds"], epochs=d["epochs"], steps=d["steps"])
        h.train.update({k: list(v) for k, v in d["train"].items()})
        h.val.update({k: list(v) for k, v in d["val"].items()})
        return h


def random_crop_flip(x: torch.Tensor, pad: int = 4, flip: bool = True) -> torch.Tensor:
    """Random ``pad``-pixel translation (zero padding, then a crop of the original size) and, with ``flip``, a
    horizontal flip, per image, batched on ``x``'s device (the standard CIFAR augmentation, without PIL or
    workers)."""
    if x.dim() != 4:
        raise ValueError(f"crop_flip needs images (N, C, H, W), got shape {tuple(x.shape)}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0 pixels, got {pad}")
    n, _, h, w = x.shape
    shift = torch.randint(0, 2 * pad + 1, (2, n, 1), device=x.device)
    rows = (torch.arange(h, device=x.device) + shift[0])[:, None, :, None]  # (N, 1, H, 1)
    cols = torch.arange(w, device=x.device) + shift[1]  # (N, W)
    if flip:
        flipped = torch.rand(n, 1, device=x.device) < 0.5
        cols = torch.where(flipped, cols.flip(1), cols)
    cols = cols[:, None, None, :]  # (N, 1, 1, W)
    padded = nn.functional.pad(x, (pad, pad, pad, pad))
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def random_shift(x: torch.Tensor, pad: int = 2) -> torch.Tensor:
    """Random translation by up to ``pad`` pixels each way, zeros shifted in, no flip (digits are not mirror
    symmetric): `random_crop_flip` without the flip."""
    return random_crop_flip(x, pad=pad, flip=False)


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Run the block with ``threads`` intra-op CPU threads (None: as already set), then restore the count.

    Small networks (a 10-64-64-2 MLP, a 2-d discriminator) train fastest on one thread: each of their many
    small operations costs more in thread hand-offs than it saves. CPU numerics may differ with the count."""
    if threads is None:
        yield
        return
    if threads < 1:
        raise ValueError(f"threads must be >= 1 (or None), got {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def clip_grad_norm(params, max_norm: float) -> torch.Tensor:
    """Scale all gradients so that their joint L2 norm is at most ``max_norm``; sparse gradients included
    (``torch.nn.utils.clip_grad_norm_`` does not take them). Returns the norm before clipping."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    norms = [(g.coalesce().values() if g.is_sparse else g).detach().float().norm() for g in grads]
    total = torch.stack(norms).norm()
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.to(g.dtype))
    return total


@dataclass
class Trainer:
    """Mini-batch training on device-resident tensors.

    - ``optimizer``: "adam", "adamw" or "sgd" (with ``momentum``, Nesterov); ``schedule``: None, "cosine"
      (over ``max_epochs``), "step" (×0.1 every ``step_size`` epochs) or "onecycle" (per step, peak ``lr``).
    - ``patience``: stop when the validation ``monitor`` has not improved for that many *epochs*, then restore
      the best weights. ``monitor_mode`` "min" or "max" (default: "max" for accuracies and bounds, else "min").
    - ``val_every``: validate every that many epochs (and after the last), e.g. for many short epochs on few data.
    - ``max_steps``: stop after that many optimiser steps in all (part-way through an epoch), for fixed budgets.
    - ``augment``: None, "crop_flip" (`random_crop_flip`) or "shift" (`random_shift`, ±2 pixels), on the device;
      ``channels_last`` for conv nets on GPU.
    - ``amp``: bfloat16 autocast; default on for CUDA, off on CPU.
    - ``threads``: CPU threads while fitting (`torch_threads`; None: as set); part of the cache key.
    - a model that defines ``on_epoch_end(epoch, train) -> dict | None`` has it called after each training epoch
      (before validation), on a forked RNG so that what training draws next does not depend on it; the numbers it
      returns are appended to ``history.train`` under their keys (e.g. an auxiliary network's refit between
      training blocks, and a measurement of it).
    - ``progress``: `tqdm.auto` bars per epoch and per batch (redrawn at most twice a second); the environment
      variable ``LVMCLS_PROGRESS=0`` turns them off (the book's papermill runs set it).
    """

    max_epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    momentum: float = 0.9
    schedule: str | None = None
    step_size: int = 30
    patience: int | None = None
    monitor: str = "loss"
    monitor_mode: str | None = None
    val_every: int = 1
    grad_clip: float | None = None
    augment: str | None = None
    channels_last: bool = False
    device: str | torch.device = "cpu"
    seed: int = 0
    amp: bool | None = None
    threads: int | None = None
    progress: bool = True

    def __post_init__(self):
        problems = []
        if self.max_epochs < 1:
            problems.append(f"max_epochs must be >= 1, got {self.max_epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            problems.append(f"max_steps must be >= 1 (or None), got {self.max_steps}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if not self.weight_decay >= 0:
            problems.append(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 <= self.momentum < 1:
            problems.append(f"momentum must lie in [0, 1), got {self.momentum}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.schedule == "step" and self.step_size < 1:
            problems.append(f"step_size must be >= 1, got {self.step_size}")
        if self.patience is not None and self.patience < 1:
            problems.append(f"patience must be >= 1 epochs (or None for no early stopping), got {self.patience}")
        if self.monitor_mode not in (None, "min", "max"):
            problems.append(f"monitor_mode must be 'min', 'max' or None, got {self.monitor_mode!r}")
        if self.val_every < 1:
            problems.append(f"val_every must be >= 1, got {self.val_every}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            problems.append(f"grad_clip must be > 0 (or None for no clipping), got {self.grad_clip}")
        if self.threads is not None and self.threads < 1:
            problems.append(f"threads must be >= 1 (or None), got {self.threads}")
        if self.augment not in AUGMENTATIONS:
            problems.append(f"augment must be one of {AUGMENTATIONS}, got {self.augment!r}")
        if problems:
            raise ValueError("Trainer: " + "; ".join(problems))
        self.device = torch.device(self.device)
        if self.amp is None:
            self.amp = self.device.type == "cuda"
        if self.monitor_mode is None:
            self.monitor_mode = "max" if self.monitor in MAXIMISED else "min"

    def config(self) -> dict:
        """The plain values that define a run (used in checkpoint keys)."""
        cfg = asdict(self)
        cfg["device"] = self.device.type  # cuda:0 and cuda:1 train the same model
        cfg.pop("progress")
        return cfg

    # ----------------------------------------------------------------------------------------
    # Optimisers and schedules

    def _make_optimizer(self, params, optimizer: str, lr: float, weight_decay: float, momentum: float):
        if optimizer not in GROUP_OPTIMIZERS or not lr > 0 or not weight_decay >= 0:
            raise ValueError(f"a parameter group needs optimizer in {GROUP_OPTIMIZERS}, lr > 0 and weight_decay >= 0; "
                             f"got {optimizer!r}, {lr}, {weight_decay}")
        if optimizer == "sgd":
            return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=momentum > 0, weight_decay=weight_decay)
        if optimizer == "sparse_adam":  # for sparse embeddings (e.g. a binary-tree softmax); no weight decay
            return torch.optim.SparseAdam(params, lr=lr)
        return (torch.optim.Adam if optimizer == "adam" else torch.optim.AdamW)(params, lr=lr, weight_decay=weight_decay)

    def configure_optimizer(self, model: nn.Module, steps_per_epoch: int = 1) -> tuple[list, list]:
        """One optimiser (and schedule) per parameter group.

        By default all trainable parameters form one group with the trainer's settings. A model with
        ``parameter_groups()`` returns ``{name: (params, overrides)}``, where ``overrides`` may set
        ``optimizer``, ``lr``, ``weight_decay`` or ``momentum`` for that group (e.g. a discriminator trained by
        its own AdamW, or a prior with a smaller learning rate). Groups must not share parameters.
        """
        groups = model.parameter_groups() if hasattr(model, "parameter_groups") else \
            {"model": (list(model.parameters()), {})}
        optimizers, schedules, seen = [], [], set()
        for name, (params, overrides) in groups.items():
            params = [p for p in params if p.requires_grad]
            if seen & {id(p) for p in params}:
                raise ValueError(f"parameter group {name!r} shares parameters with another group")
            seen |= {id(p) for p in params}
            if not params:
                continue
            unknown = set(overrides) - {"optimizer", "lr", "weight_decay", "momentum"}
            if unknown:
                raise ValueError(f"parameter group {name!r}: unknown settings {sorted(unknown)}")
            settings = {"optimizer": self.optimizer, "lr": self.lr, "weight_decay": self.weight_decay,
                        "momentum": self.momentum, **overrides}
            opt = self._make_optimizer(params, **settings)
            optimizers.append(opt)
            if self.schedule == "cosine":
                schedules.append(torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.max_epochs))
            elif self.schedule == "step":
                schedules.append(torch.optim.lr_scheduler.StepLR(opt, step_size=self.step_size, gamma=0.1))
            elif self.schedule == "onecycle":
                schedules.append(torch.optim.lr_scheduler.OneCycleLR(
                    opt, max_lr=settings["lr"], total_steps=self.max_epochs * steps_per_epoch,
                    cycle_momentum=settings["optimizer"] == "sgd"))
        return optimizers, schedules

    # ----------------------------------------------------------------------------------------
    # Steps

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bool(self.amp))

    def _prepare(self, x: torch.Tensor, train: bool) -> torch.Tensor:
        if train and self.augment == "crop_flip":
            x = random_crop_flip(x)
        elif train and self.augment == "shift":
            x = random_shift(x)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizers: list) -> dict[str, torch.Tensor]:
        """One step of every optimiser on one batch: one backward pass of ``out["loss"]``.

        Auxiliary objectives (a discriminator's) are added into ``loss`` by the model on detached inputs, so
        each parameter group receives only its own objective's gradient.
        """
        with self._autocast():
            out = model.training_step(self._prepare(x, train=True), y)
        loss = out["loss"]
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip is not None:
            clip_grad_norm([p for p in model.parameters() if p.requires_grad], self.grad_clip)
        for opt in optimizers:
            opt.step()
        return {k: v.detach() for k, v in out.items()}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split) -> dict[str, float]:
        """Means of ``training_step``'s outputs over ``split``, weighted by batch size, in eval mode.

        Runs on a forked RNG: validating (or not) never changes what the training run draws next. A model that
        defines ``check_data(split)`` has it called first (as `fit` does), since its step may skip value checks.
        """
        if hasattr(model, "check_data"):
            model.check_data(split)
        was_training = model.training
        model.eval()
        sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=self.device))
        with torch.random.fork_rng(devices=_rng_devices(self.device)):
            for x, y in split.batches(max(self.batch_size, 1024)):
                with self._autocast():
                    out = model.training_step(self._prepare(x, train=False), y)
                for k, v in out.items():
                    sums[k] += v.detach().float() * len(x)
        model.train(was_training)
        return {k: (v / len(split)).item() for k, v in sums.items()}

    def _improved(self, score: float, best: float | None) -> bool:
        if best is None:
            return True
        return score < best if self.monitor_mode == "min" else score > best

    def fit(self, model: nn.Module, train, val=None, checkpoint: str | Path | None = None,
            checkpoint_every_s: float = 0.0) -> History:
        """Train ``model`` on ``train`` for ``max_epochs`` (validating on ``val``); return the history.

        A model that defines ``check_data(split)`` has it called once on ``train`` and once on ``val`` before the
        first step (a whole-split check of its inputs, instead of a check per batch).

        With ``checkpoint``, the full training state (model, optimisers, schedules, RNG states, epoch, history,
        early-stopping state) is written there atomically after an epoch (after every epoch, or once
        ``checkpoint_every_s`` seconds have passed since the last write), and a run that finds it resumes from it:
        a killed run, restarted with the same call, ends with the same weights as an uninterrupted one.
        """
        with torch_threads(self.threads):
            return self._fit(model, train, val, checkpoint, checkpoint_every_s)

    def _fit(self, model: nn.Module, train, val, checkpoint, checkpoint_every_s: float) -> History:
        from tqdm.auto import tqdm

        generator = seed_everything(self.seed)
        model.to(self.device).train()
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        train, val = train.to(self.device), val.to(self.device) if val is not None else None
        if hasattr(model, "check_data"):  # the model's own check of each split, once, before any step
            for split in (train, val) if val is not None else (train,):
                model.check_data(split)
        steps_per_epoch = math.ceil(len(train) / self.batch_size)
        optimizers, schedules = self.configure_optimizer(model, steps_per_epoch)
        state = {"history": History(), "best": None, "best_state": None}
        checkpoint = Path(checkpoint) if checkpoint is not None else None
        if checkpoint is not None and checkpoint.is_file():
            self._restore(checkpoint, model, optimizers, schedules, generator, state)
        history = state["history"]
        start = time.perf_counter() - history.seconds
        last_saved = -math.inf
        quiet = not self.progress or os.environ.get("LVMCLS_PROGRESS", "1") == "0"
        bar = tqdm(range(history.epochs, self.max_epochs), desc=type(model).__name__, disable=quiet,
                   leave=False, initial=history.epochs, total=self.max_epochs, unit="epoch", mininterval=0.5)
        batch_bar = tqdm(total=steps_per_epoch, disable=quiet, leave=False, unit="batch", mininterval=0.5)
        for epoch in bar:
            batch_bar.reset(total=steps_per_epoch)
            sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=self.device))
            n = 0
            for x, y in train.batches(self.batch_size, shuffle=True, generator=generator):
                if self.max_steps is not None and history.steps >= self.max_steps:
                    break
                out = self.step(model, x, y, optimizers)
                history.steps += 1
                batch_bar.update()
                for k, v in out.items():
                    sums[k] += v.float() * len(x)
                n += len(x)
                if self.schedule == "onecycle":
                    for sched in schedules:
                        sched.step()
            for k, v in sums.items():
                history.train[k].append((v / n).item())
            if not math.isfinite(history.train["loss"][-1]):  # checked once per epoch: no host sync per step
                raise FloatingPointError(f"the loss became {history.train['loss'][-1]} in epoch {epoch}; lower the "
                                         "learning rate or check the inputs (NaN or inf in x?)")
            hook = getattr(model, "on_epoch_end", None)
            if callable(hook):  # the model's own work between epochs, on a forked RNG (training draws unchanged)
                with torch.random.fork_rng(devices=_rng_devices(self.device)):
                    logged = hook(epoch, train)
                model.train()
                for k, v in (logged or {}).items():
                    history.train[k].append(float(v))
            if self.schedule in ("cosine", "step"):
                for sched in schedules:
                    sched.step()
            postfix = {"loss": history.train["loss"][-1]}
            stop = False
            if val is not None and ((epoch + 1) % self.val_every == 0 or epoch + 1 == self.max_epochs):
                for k, v in self.evaluate(model, val).items():
                    history.val[k].append(v)
                postfix["val_loss"] = history.val["loss"][-1]
                if self.monitor not in history.val:
                    raise KeyError(f"monitor {self.monitor!r} is not among the validation outputs "
                                   f"{sorted(history.val)}")
                score = history.val[self.monitor][-1]
                if self._improved(score, state["best"]):
                    state["best"], history.best_epoch = score, epoch
                    if self.patience is not None:
                        state["best_state"] = copy.deepcopy(model.state_dict())
                elif self.patience is not None and epoch - history.best_epoch >= self.patience:
                    stop = True
            history.epochs = epoch + 1
            history.seconds = time.perf_counter() - start
            bar.set_postfix(postfix)
            if checkpoint is not None and time.perf_counter() - last_saved >= checkpoint_every_s:
                self._save_state(checkpoint, model, optimizers, schedules, generator, state)
                last_saved = time.perf_counter()
            if stop or (self.max_steps is not None and history.steps >= self.max_steps):
                break
        batch_bar.close()
        bar.close()
        if state["best_state"] is not None:
            model.load_state_dict(state["best_state"])
        history.seconds = time.perf_counter() - start
        return history

    # ----------------------------------------------------------------------------------------
    # The resumable training state

    def _save_state(self, path: Path, model, optimizers, schedules, generator, state) -> None:
        blob = {
            "model": model.state_dict(), "optimizers": [o.state_dict() for o in optimizers],
            "schedules": [s.state_dict() for s in schedules], "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
            "history": state["history"].to_dict(), "best": state["best"], "best_state": state["best_state"],
            "trainer": json.dumps(self.config(), sort_keys=True),
        }
        buf = io.BytesIO()
        torch.save(blob, buf)
        atomic_write_bytes(path, buf.getvalue())

    def _restore(self, path: Path, model, optimizers, schedules, generator, state) -> None:
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except (RuntimeError, OSError, EOFError, pickle.UnpicklingError) as err:
            warnings.warn(f"lvmcls.train: cannot read the resume checkpoint {path} ({err}); starting over")
            return
        if blob["trainer"] != json.dumps(self.config(), sort_keys=True):
            warnings.warn(f"lvmcls.train: {path} was written by another trainer configuration; starting over")
            return
        model.load_state_dict(blob["model"])
        for o, s in zip(optimizers, blob["optimizers"]):
            o.load_state_dict(s)
        for sch, s in zip(schedules, blob["schedules"]):
            sch.load_state_dict(s)
        generator.set_state(blob["generator"])
        torch.set_rng_state(blob["torch_rng"])
        if blob["cuda_rng"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(blob["cuda_rng"], self.device)
        state.update(history=History.from_dict(blob["history"]), best=blob["best"], best_state=blob["best_state"])


# --------------------------------------------------------------------------------------------
# Checkpoint keys: everything that changes the result


def library_fingerprint() -> str:
    """A hash of lvmcls's own source: any change to the library invalidates cached checkpoints."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


_PLAIN = (bool, int, float, str, type(None))


def model_hparams(model: nn.Module) -> dict:
    """The model's hyper-parameters as plain values: ``model.hparams()`` if it defines one, else, for every
    submodule, its class and its plain attributes (numbers, strings, tuples of them: β, λ, the objective's
    name, layer sizes), which is what ``repr(model)`` leaves out."""
    if hasattr(model, "hparams"):
        return model.hparams()
    out = {}
    for name, module in model.named_modules():
        plain = {k: v for k, v in vars(module).items() if not k.startswith("_") and k != "training" and (
            isinstance(v, _PLAIN) or (isinstance(v, tuple) and all(isinstance(e, _PLAIN) for e in v)))}
        out[name or "."] = {"class": type(module).__name__, **plain}
    return out


def tensor_fingerprint(*tensors: torch.Tensor | None, rows: int = 2048) -> str:
    """A cheap content hash: shape, dtype and the bytes of up to ``rows`` evenly strided rows of each tensor."""
    h = hashlib.sha256()
    for t in tensors:
        if t is None:
            h.update(b"none")
            continue
        h.update(f"{tuple(t.shape)}{t.dtype}".encode())
        if t.numel():
            idx = torch.linspace(0, len(t) - 1, min(rows, len(t))).long().to(t.device)
            h.update(t.detach()[idx].contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def split_fingerprint(split) -> str | None:
    if split is None:
        return None
    if hasattr(split, "fingerprint"):
        return split.fingerprint()
    return tensor_fingerprint(split.x, split.y)


def state_fingerprint(model: nn.Module) -> str:
    """A hash of every tensor in the state_dict (the initial weights and buffers, e.g. fixed targets)."""
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().contiguous().cpu().numpy().tobytes() if v.dtype != torch.bfloat16
                 else v.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def checkpoint_key(name: str, config: dict) -> str:
    blob = json.dumps({"config": config, "lvmcls": library_fingerprint()}, sort_keys=True, default=str)
    return f"{name}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def save_checkpoint(model: nn.Module, path: str | Path, config: dict, extra: dict | None = None) -> None:
    """Write ``path`` (.pt, the state_dict) and ``path`` with .json (config and extras), atomically."""
    path = Path(path)
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    atomic_write_bytes(path, buf.getvalue())
    atomic_write_text(path.with_suffix(".json"), json.dumps({"config": config, **(extra or {})}, indent=1, default=str))


def load_checkpoint(model: nn.Module, path: str | Path) -> dict:
    """Load the state_dict at ``path`` into ``model`` (weights only) and return the JSON beside it."""
    path = Path(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return json.loads(path.with_suffix(".json").read_text())


def fit_cached(name: str, build: Callable[[], nn.Module], data, trainer: Trainer,
               cache_dir: str | Path | None = None, **config) -> tuple[nn.Module, dict]:
    """Seed, build, then load the trained model from the cache or train it (resumably) and store it.

    ``build`` is a zero-argument function returning the untrained model; it runs after seeding with
    ``trainer.seed``, so a seed fixes the initial weights whether or not the cache is warm. ``data`` is a
    `lvmcls.data.Dataset` (``train``, ``val`` or None, ``source``). The cache key is ``name`` + the model's
    hyper-parameters (`model_hparams`) and initial weights + the trainer's configuration + fingerprints of the
    training and validation data + the library's source hash + ``config`` (anything else that defines the run).
    Training runs on a forked RNG, so what the chapter draws afterwards is the same on a cache hit or a miss.
    Returns the model (on ``trainer.device``) and its record: config, history and whether it was loaded.
    """
    if isinstance(build, nn.Module) or not callable(build):
        raise TypeError("fit_cached takes a builder, a function of no arguments that returns the model "
                        "(e.g. `lambda: VAE(latent_dim=32)`), so that the seed fixes the initial weights")
    seed_everything(trainer.seed)
    model = build()
    if not hasattr(model, "training_step"):
        raise TypeError(f"{type(model).__name__} has no training_step(x, y) -> dict with a 'loss'")
    key_config = {"model": model_hparams(model), "architecture": repr(model), "init": state_fingerprint(model),
                  "trainer": trainer.config(), "train": split_fingerprint(data.train),
                  "val": split_fingerprint(data.val), "data_source": getattr(data, "source", "unknown"), **config}
    folder = Path(cache_dir) if cache_dir is not None else checkpoint_dir()
    path = folder / f"{checkpoint_key(name, key_config)}.pt"
    if path.is_file() and path.with_suffix(".json").is_file():
        try:
            record = load_checkpoint(model, path)
            return model.to(trainer.device), {**record, "loaded": True}
        except (RuntimeError, OSError, EOFError, KeyError, ValueError, pickle.UnpicklingError) as err:
            warnings.warn(f"lvmcls.train: cannot load {path} ({err}); training again")  # never trusted
    resume = path.with_suffix(".resume.pt")
    with torch.random.fork_rng(devices=_rng_devices(trainer.device)):
        history = trainer.fit(model, data.train, data.val, checkpoint=resume, checkpoint_every_s=RESUME_EVERY_S)
    record = {"history": history.to_dict()}
    save_checkpoint(model, path, key_config, record)
    resume.unlink(missing_ok=True)
    return model.to(trainer.device), {"config": key_config, **record, "loaded": False}
