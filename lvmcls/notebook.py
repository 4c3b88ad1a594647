"""Chapter set-up shared by every notebook: resolve the profile, seed, pick the device, show code and text.

Profiles: ``ci`` (a few minutes on two CPU cores: the published book), ``full`` (one GPU: the papers' networks,
schedules within about 8 minutes on an H100), ``smoke`` (the ``full`` networks for a few steps, on any machine:
CI runs it so that the GPU path's code is exercised), and ``auto`` = ``full`` on a CUDA GPU, else ``ci``.
Outside papermill, ``auto`` also reads the environment variable ``LVMCLS_PROFILE``, so a chapter runs as a plain
script: ``LVMCLS_PROFILE=full python notebooks/03_vc_experiments.py``. IPython is optional: without it, `show`,
`markdown` and the scorecard print plain text.
"""

from __future__ import annotations

import inspect
import os
import time
from dataclasses import dataclass

import torch

from .train import pick_device, seed_everything

PROFILES = ("auto", "ci", "full", "smoke")


@dataclass
class Setup:
    profile: str  # "ci", "full" or "smoke", never "auto"
    seed: int
    device: torch.device
    started: float

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def resolve_profile(profile: str) -> str:
    """"auto" means ``$LVMCLS_PROFILE`` when set, else "full" on a CUDA GPU and "ci" otherwise."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    if profile == "auto":
        env = os.environ.get("LVMCLS_PROFILE", "")
        if env:
            if env not in PROFILES[1:]:
                raise ValueError(f"LVMCLS_PROFILE must be one of {PROFILES[1:]}, got {env!r}")
            return env
        return "full" if torch.cuda.is_available() else "ci"
    return profile


def setup(profile: str = "auto", seed: int = 0, device: str | None = None,
          full_minutes_h100: float | None = None) -> Setup:
    """Resolve ``profile``, seed everything with ``seed`` and pick the device; print one line about it.

    ``full_minutes_h100``: the chapter's measured ``full``-profile time on one H100, printed before a ``full`` run
    with the estimate for a Colab T4 (8–15× slower), so a reader can switch to ``profile = "ci"`` in one edit.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    import matplotlib

    matplotlib.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "axes.spines.top": False,
                                "axes.spines.right": False})
    resolved = resolve_profile(profile)
    seed_everything(seed)
    dev = pick_device(device)
    print(f"profile={resolved} (asked: {profile}), seed={seed}, device={dev}, torch {torch.__version__}")
    if resolved == "full" and full_minutes_h100 is not None:
        print(f"The full profile takes about {full_minutes_h100:.0f} min on one H100, about "
              f"{8 * full_minutes_h100:.0f}-{15 * full_minutes_h100:.0f} min on a Colab T4. For a few minutes "
              "instead, set profile = \"ci\" in the parameters cell.")
    return Setup(resolved, seed, dev, time.perf_counter())


def show(obj):
    """The source of a library function or class, for the chapter to show the code it runs."""
    source = inspect.getsource(obj)
    try:
        from IPython.display import Code
    except ImportError:  # a plain script: print it
        print(source)
        return None
    return Code(source, language="python")


def markdown(text: str):
    """``text`` rendered as Markdown in a notebook; printed as plain text in a script."""
    try:
        from IPython.display import Markdown
    except ImportError:
        print(text)
        return None
    return Markdown(text)
