"""The one `Trainer`, seeding, and the "load if present, else train" checkpoint cache.

A model is any ``nn.Module`` with ``training_step(x, y) -> dict`` holding a scalar ``"loss"`` (other
entries are logged). The trainer owns the optimiser and the schedule; losses never do.

    trainer = Trainer(max_epochs=5, lr=1e-3, device=device, seed=0)
    history = trainer.fit(model, data.train, data.val)
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import random
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from .data import TensorSplit
from .paths import atomic_write_bytes, atomic_write_text, checkpoint_dir


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


@dataclass
class History:
    """Per-epoch means of everything ``training_step`` returned, for train and validation."""

    train: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    val: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    best_epoch: int = -1
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"train": dict(self.train), "val": dict(self.val), "best_epoch": self.best_epoch,
                "seconds": self.seconds}


@dataclass
class Trainer:
    """Mini-batch training on device-resident tensors.

    - ``optimizer``: "adam", "adamw" or "sgd" (with ``momentum``, Nesterov); ``schedule``: None, "cosine"
      or "step" (×0.1 every ``step_size`` epochs).
    - ``patience``: stop when the validation ``monitor`` (default: the loss) has not improved for that many
      epochs, then restore the best weights (the reference VC code meant to and never did).
    - ``val_every``: validate every that many epochs (and after the last), e.g. for many short epochs on few data.
    - ``amp``: bfloat16 autocast; default on for CUDA, off on CPU.
    """

    max_epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    momentum: float = 0.9
    schedule: str | None = None
    step_size: int = 30
    patience: int | None = None
    monitor: str = "loss"
    val_every: int = 1
    grad_clip: float | None = None
    device: str | torch.device = "cpu"
    seed: int = 0
    amp: bool | None = None
    progress: bool = True

    def __post_init__(self):
        if self.val_every < 1:
            raise ValueError(f"val_every must be >= 1, got {self.val_every}")
        if self.max_epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise ValueError(f"need max_epochs >= 1, batch_size >= 1, lr > 0; got {self.max_epochs}, "
                             f"{self.batch_size}, {self.lr}")
        if self.optimizer not in ("adam", "adamw", "sgd"):
            raise ValueError(f"optimizer must be 'adam', 'adamw' or 'sgd', got {self.optimizer!r}")
        if self.schedule not in (None, "cosine", "step"):
            raise ValueError(f"schedule must be None, 'cosine' or 'step', got {self.schedule!r}")
        self.device = torch.device(self.device)
        if self.amp is None:
            self.amp = self.device.type == "cuda"

    def config(self) -> dict:
        """The plain values that define a run (used in checkpoint keys)."""
        cfg = asdict(self)
        cfg["device"] = str(self.device)
        cfg.pop("progress")
        return cfg

    def _make_optimizer(self, params, optimizer: str, lr: float, weight_decay: float, momentum: float):
        if optimizer == "sgd":
            return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=momentum > 0, weight_decay=weight_decay)
        if optimizer == "sparse_adam":  # for sparse embeddings (e.g. a binary-tree softmax); no weight decay
            return torch.optim.SparseAdam(params, lr=lr)
        return (torch.optim.Adam if optimizer == "adam" else torch.optim.AdamW)(params, lr=lr, weight_decay=weight_decay)

    def configure_optimizer(self, model: nn.Module) -> tuple[list, list]:
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
        return optimizers, schedules

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bool(self.amp))

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizers: list) -> dict[str, torch.Tensor]:
        """One step of every optimiser on one batch: one backward pass of ``out["loss"]``.

        Auxiliary objectives (a discriminator's) are added into ``loss`` by the model on detached inputs, so
        each parameter group receives only its own objective's gradient.
        """
        with self._autocast():
            out = model.training_step(x, y)
        loss = out["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the loss became {loss.item()}; lower the learning rate or check the inputs")
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip)
        for opt in optimizers:
            opt.step()
        return {k: v.detach() for k, v in out.items()}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: TensorSplit) -> dict[str, float]:
        """Means of ``training_step``'s outputs over ``split``, weighted by batch size, in eval mode."""
        model.eval()
        sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=self.device))
        for x, y in split.batches(max(self.batch_size, 1024)):
            with self._autocast():
                out = model.training_step(x, y)
            for k, v in out.items():
                sums[k] += v.detach().float() * len(x)
        model.train()
        return {k: (v / len(split)).item() for k, v in sums.items()}

    def fit(self, model: nn.Module, train: TensorSplit, val: TensorSplit | None = None) -> History:
        from tqdm.auto import tqdm

        generator = seed_everything(self.seed)
        model.to(self.device).train()
        train, val = train.to(self.device), val.to(self.device) if val is not None else None
        optimizers, schedules = self.configure_optimizer(model)
        history, best, best_state, bad_epochs = History(), math.inf, None, 0
        start = time.perf_counter()
        bar = tqdm(range(self.max_epochs), desc=type(model).__name__, disable=not self.progress, leave=False)
        for epoch in bar:
            sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=self.device))
            n = 0
            for x, y in train.batches(self.batch_size, shuffle=True, generator=generator):
                for k, v in self.step(model, x, y, optimizers).items():
                    sums[k] += v.float() * len(x)
                n += len(x)
            for k, v in sums.items():
                history.train[k].append((v / n).item())
            for sched in schedules:
                sched.step()
            postfix = {"loss": history.train["loss"][-1]}
            if val is not None and ((epoch + 1) % self.val_every == 0 or epoch + 1 == self.max_epochs):
                for k, v in self.evaluate(model, val).items():
                    history.val[k].append(v)
                postfix["val_loss"] = history.val["loss"][-1]
                score = history.val[self.monitor][-1]
                if score < best:
                    best, bad_epochs, history.best_epoch = score, 0, epoch
                    if self.patience is not None:
                        best_state = copy.deepcopy(model.state_dict())
                else:
                    bad_epochs += 1
                    if self.patience is not None and bad_epochs >= self.patience:
                        break
            bar.set_postfix(postfix)
        if best_state is not None:
            model.load_state_dict(best_state)
        history.seconds = time.perf_counter() - start
        return history


# --------------------------------------------------------------------------------------------
# Checkpoints: plain state_dict + JSON config, keyed by the config, loaded with weights_only=True


def library_fingerprint() -> str:
    """A hash of lvmcls's own source: any change to the library invalidates cached checkpoints."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


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


def load_or_train(name: str, model: nn.Module, config: dict, train: Callable[[nn.Module], History],
                  cache_dir: str | Path | None = None) -> tuple[nn.Module, dict]:
    """Load ``model``'s weights from the cache entry for (``name``, ``config``) if present, else call
    ``train(model)`` and store the result. Returns the model and its record (config, history, loaded)."""
    folder = Path(cache_dir) if cache_dir is not None else checkpoint_dir()
    path = folder / f"{checkpoint_key(name, config)}.pt"
    if path.is_file() and path.with_suffix(".json").is_file():
        try:
            record = load_checkpoint(model, path)
            return model, {**record, "loaded": True}
        except Exception as err:  # a damaged entry is retrained, never trusted
            print(f"lvmcls.train: cannot load {path} ({err}); training again")
    history = train(model)
    record = {"history": history.to_dict() if isinstance(history, History) else history}
    save_checkpoint(model, path, config, record)
    return model, {"config": config, **record, "loaded": False}


def fit_cached(name: str, model: nn.Module, data, trainer: Trainer, **config) -> tuple[nn.Module, dict]:
    """Train ``model`` on ``data.train`` (validating on ``data.val``) with ``trainer``, or load it if a model with
    the same name and configuration was trained before. ``data`` needs ``train``, ``val`` and ``source``;
    ``config`` adds whatever else defines the run (hyper-parameters not visible in ``repr(model)``)."""
    config = {"model": repr(model), "trainer": trainer.config(), "n_train": len(data.train),
              "data": getattr(data, "source", "unknown"), **config}
    model, record = load_or_train(name, model, config, lambda m: trainer.fit(m, data.train, data.val))
    return model.to(trainer.device), record
