"""Wall-clock timing for the bench scripts: untimed warm-up calls, then the mean seconds per call."""

from __future__ import annotations

import time
from typing import Callable

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def seconds_per_step(step: Callable[[int], None], steps: int, device: torch.device, warmup: int = 3) -> float:
    """Call ``step(i)`` for i = 0 .. warmup + steps - 1 and return the mean time of the last ``steps`` calls."""
    for i in range(warmup):
        step(i)
    _sync(device)
    start = time.perf_counter()
    for i in range(warmup, warmup + steps):
        step(i)
    _sync(device)
    return (time.perf_counter() - start) / steps
