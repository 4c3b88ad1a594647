"""Chapter set-up shared by every notebook: resolve the profile, seed, pick the device, show code."""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass

import torch

from .train import pick_device, seed_everything

PROFILES = ("auto", "ci", "full")


@dataclass
class Setup:
    profile: str  # "ci" or "full", never "auto"
    seed: int
    device: torch.device
    started: float

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def resolve_profile(profile: str) -> str:
    """"auto" means "full" on a CUDA GPU and "ci" otherwise."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    if profile == "auto":
        return "full" if torch.cuda.is_available() else "ci"
    return profile


def setup(profile: str = "auto", seed: int = 0, device: str | None = None) -> Setup:
    """Resolve ``profile``, seed everything with ``seed`` and pick the device; print one line about it."""
    import matplotlib

    matplotlib.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "axes.spines.top": False,
                                "axes.spines.right": False})
    resolved = resolve_profile(profile)
    seed_everything(seed)
    dev = pick_device(device)
    print(f"profile={resolved} (asked: {profile}), seed={seed}, device={dev}, torch {torch.__version__}")
    return Setup(resolved, seed, dev, time.perf_counter())


def show(obj) -> "IPython.display.Code":  # noqa: F821
    """The source of a library function or class, for the chapter to show the code it runs."""
    from IPython.display import Code

    return Code(inspect.getsource(obj), language="python")
