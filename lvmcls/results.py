"""``results/<stem>.json`` and the scorecard that ends every chapter.

Each chapter records what it measured together with where it ran::

    {"stem", "profile", "device", "seeds", "data_source", "git_commit", "wall_time_s",
     "metrics": {...}, "paper": {...}}

``paper`` holds the seed document's numbers for the same keys, where it has them. Results of the
``full`` profile (run on a GPU) are committed under ``results/full/``; the scorecard shows them beside
the paper and this run.
"""

from __future__ import annotations

import json
import math
import platform
import subprocess
import time
from pathlib import Path

import torch

from .paths import atomic_write_text, project_root, results_dir


def git_commit() -> str:
    """The checkout's commit, with "+dirty" when tracked files differ from it; "unknown" outside git."""
    root = project_root()
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def describe_device(device) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def _plain(value):
    """Make metrics JSON-safe: tensors to numbers, NaN to None."""
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def write_results(stem: str, *, profile: str, device, seeds, data_source, metrics: dict, paper: dict | None = None,
                  wall_time_s: float, folder: str | Path | None = None, **extra) -> Path:
    """Write ``<folder>/<stem>.json`` atomically and return its path. Default folder: ``results/`` for the
    ``ci`` profile, ``results/full/`` (committed GPU runs) and ``results/smoke/`` (not committed) for the others."""
    if profile not in ("ci", "full", "smoke"):
        raise ValueError(f"profile must be 'ci', 'full' or 'smoke' (resolve 'auto' first), got {profile!r}")
    record = {
        "stem": stem, "profile": profile, "device": describe_device(device),
        "seeds": list(seeds) if isinstance(seeds, (list, tuple)) else [seeds],
        "data_source": data_source, "git_commit": git_commit(), "torch": torch.__version__,
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "wall_time_s": round(wall_time_s, 1),
        "metrics": _plain(metrics), "paper": _plain(paper or {}), **_plain(extra),
    }
    if folder is not None:
        path = Path(folder)
    else:
        path = results_dir() if profile == "ci" else results_dir() / profile
    return atomic_write_text(path / f"{stem}.json", json.dumps(record, indent=1) + "\n")


def _fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    return str(value)


def scorecard_markdown(stem: str, metrics: dict, paper: dict | None = None, folder: str | Path | None = None) -> str:
    """A Markdown table: metric | paper | ours (full profile, if committed) | ours (this run)."""
    folder = Path(folder) if folder is not None else results_dir()
    full_path = folder / "full" / f"{stem}.json"
    full = json.loads(full_path.read_text()) if full_path.is_file() else None
    paper = paper or {}
    header = "ours (full profile)" if full else "ours (full profile: not yet run)"
    lines = [f"| metric | paper | {header} | ours (this run) |", "|---|---|---|---|"]
    for key in metrics:
        lines.append(f"| `{key}` | {_fmt(paper.get(key))} | {_fmt(full['metrics'].get(key)) if full else '—'} "
                     f"| {_fmt(metrics[key])} |")
    if full:
        lines.append(f"\nFull-profile run: {full['device']}, commit `{full['git_commit'][:10]}`, "
                     f"{full['wall_time_s']} s, data: {full['data_source']}.")
    return "\n".join(lines)


def scorecard(stem: str, metrics: dict, paper: dict | None = None, folder: str | Path | None = None):
    """Display `scorecard_markdown` in a notebook (plain text in a script)."""
    from .notebook import markdown

    return markdown(scorecard_markdown(stem, metrics, paper, folder))
