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
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import torch

from .paths import atomic_write_text, project_root, results_dir


def git_commit() -> str:
    """The checkout's commit, with "+dirty" when tracked files differ from it; "unknown" outside git.

    ``$LVMCLS_GIT_COMMIT``, when set, is returned as is: a copy of the tree without ``.git`` (a GPU machine that
    received the working tree) records the commit it was copied from."""
    env = os.environ.get("LVMCLS_GIT_COMMIT", "").strip()
    if env:
        return env
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
    header = "ours (full profile)" if full else "ours (full profile: none committed, see results/full/README.md)"
    stds = (full or {}).get("metrics_std", {})
    if full and "n_runs" in full:  # merged by lvmcls.sweep over seeds
        header = f"ours (full profile, mean ± std over {full['n_runs']} runs)"

    def full_value(key):
        if not full:
            return "—"
        value, std = full["metrics"].get(key), stds.get(key)
        return f"{_fmt(value)} ± {std:.2g}" if isinstance(value, float) and isinstance(std, float) else _fmt(value)

    lines = [f"| metric | paper | {header} | ours (this run) |", "|---|---|---|---|"]
    for key in metrics:
        lines.append(f"| `{key}` | {_fmt(paper.get(key))} | {full_value(key)} | {_fmt(metrics[key])} |")
    if full:
        lines.append(f"\nFull-profile run: {full['device']}, commit `{full['git_commit'][:10]}`, "
                     f"{full['wall_time_s']} s, data: {full['data_source']}.")
    return "\n".join(lines)


def scorecard(stem: str, metrics: dict, paper: dict | None = None, folder: str | Path | None = None):
    """Display `scorecard_markdown` in a notebook (plain text in a script)."""
    from .notebook import markdown

    return markdown(scorecard_markdown(stem, metrics, paper, folder))


def verdict(candidate, baseline, *, lower_is_better: bool, what: str, names: tuple[str, str] = ("VC", "CE")) -> str:
    """A hypothesis' verdict from per-seed numbers of two models: "supported", "not supported" or "not resolved".

    ``candidate`` and ``baseline`` are the metric for each seed (equal seeds for both). The difference of the means
    counts only if it exceeds the larger of the two standard deviations over seeds; with fewer than two seeds per
    model there is no spread to judge by, and the verdict is "not resolved". The sentence carries the numbers.
    """
    a, b = [float(v) for v in candidate], [float(v) for v in baseline]
    if not a or not b:
        raise ValueError("verdict needs at least one number per model")
    if any(not math.isfinite(v) for v in a + b):
        raise ValueError(f"verdict got a NaN or inf among {a} and {b}")
    mean_a, mean_b = statistics.fmean(a), statistics.fmean(b)
    n = min(len(a), len(b))
    detail = f"{what}: {names[0]} {mean_a:.4g} vs {names[1]} {mean_b:.4g}, {n} seed{'s' if n != 1 else ''}"
    if n < 2:
        return f"not resolved ({detail}: one seed gives no spread to judge the difference by)"
    spread = max(statistics.stdev(a), statistics.stdev(b))
    if abs(mean_a - mean_b) <= spread:
        return f"not resolved ({detail}; the difference {mean_a - mean_b:+.2g} is within the seed spread {spread:.2g})"
    better = mean_a < mean_b if lower_is_better else mean_a > mean_b
    return f"{'supported' if better else 'not supported'} ({detail}; seed spread {spread:.2g})"
