"""``results/<stem>.json`` and the scorecard that ends every chapter.

Each chapter records what it measured together with where it ran::

    {"stem", "profile", "device", "seeds", "data_source", "git_commit", "wall_time_s",
     "metrics": {...}, "paper": {...}}

``paper`` holds the seed document's numbers for the same keys, where it has them. Results of the
``full`` profile (run on a GPU) are committed under ``results/full/``; the scorecard shows them beside
the paper and this run.
"""

from __future__ import annotations

import calendar
import json
import math
import os
import platform
import subprocess
import time
from pathlib import Path

import torch

from .paths import atomic_write_text, project_root, results_dir
from .words import describe


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


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo; elsewhere what `platform` knows) and its logical core count."""
    name = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name or platform.processor() or platform.machine()} ({os.cpu_count()} logical cores)"


def describe_device(device) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {cpu_model()}, {torch.get_num_threads()} threads"


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
    if profile not in ("ci", "long", "full", "smoke"):
        raise ValueError(f"profile must be 'ci', 'long', 'full' or 'smoke' (resolve 'auto' first), got {profile!r}")
    record = {
        "stem": stem, "profile": profile, "device": describe_device(device),
        "seeds": list(seeds) if isinstance(seeds, (list, tuple)) else [seeds],
        "data_source": data_source, "git_commit": git_commit(), "torch": torch.__version__, "cpu": cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "wall_time_s": round(wall_time_s, 1),
        "metrics": _plain(metrics), "paper": _plain(paper or {}), **_plain(extra),
    }
    if folder is not None:
        path = Path(folder)
    else:
        path = results_dir() if profile == "ci" else results_dir() / profile
    if profile == "long":  # one record per seed (lvmcls.long): long/<stem>/long-seed<s>.json
        if len(record["seeds"]) != 1:
            raise ValueError(f"a long record holds one seed (lvmcls.long merges them), got {record['seeds']}")
        return atomic_write_text(path / stem / f"long-seed{record['seeds'][0]}.json",
                                 json.dumps(record, indent=1) + "\n")
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


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=project_root(), capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def result_age(record: dict, stem: str | None = None) -> dict:
    """How old a committed result is, from git: ``commit`` (the run's, without "+dirty"), ``commits_behind``
    (commits on HEAD since it), ``days`` (from when it was written to HEAD's commit time), ``changed`` (the `lvmcls` modules and the chapter's
    notebook that changed since) and ``stale`` (True when any of them changed: the computation may differ now).
    A commit git does not know (a copy without history) gives ``commits_behind`` None and stale True.
    """
    commit = str(record.get("git_commit", "unknown")).split("+")[0]
    days = None  # from the run to the checkout's commit (not to now: the same checkout reads the same age)
    head_time = _git("log", "-1", "--format=%ct", "HEAD")
    if record.get("written") and head_time:
        try:
            written = calendar.timegm(time.strptime(record["written"], "%Y-%m-%dT%H:%M:%SZ"))
            days = max(0.0, round((int(head_time) - written) / 86400, 1))
        except ValueError:
            days = None
    known = commit != "unknown" and _git("cat-file", "-e", f"{commit}^{{commit}}") is not None
    if not known:
        return {"commit": commit, "commits_behind": None, "days": days, "changed": [], "stale": True}
    behind = int(_git("rev-list", "--count", f"{commit}..HEAD") or 0)
    paths = ["lvmcls"] + ([f"notebooks/{stem}.py"] if stem else [])
    changed = [c for c in (_git("diff", "--name-only", commit, "HEAD", "--", *paths) or "").split()
               if c.endswith(".py")]
    return {"commit": commit, "commits_behind": behind, "days": days, "changed": changed, "stale": bool(changed)}


def describe_age(age: dict) -> str:
    """`result_age` in words: "commit `abc1234`, 3 commits and 2.5 days old; changed since: … (stale)"."""
    if age["commits_behind"] is None:
        return f"commit `{age['commit'][:10]}` (not in this history: its age is unknown; **stale**)"
    old = f"{age['commits_behind']} commit{'s' if age['commits_behind'] != 1 else ''}"
    if age["days"] is not None:
        old += f" and {age['days']:g} days"
    text = f"commit `{age['commit'][:10]}`, {old} old"
    if age["changed"]:
        shown = ", ".join(f"`{c}`" for c in age["changed"][:6]) + (" …" if len(age["changed"]) > 6 else "")
        return text + f"; changed since: {shown} (**stale**: the code that computed it has changed)"
    return text + "; nothing it depends on has changed since (current)"


def scorecard_markdown(stem: str, metrics: dict, paper: dict | None = None, folder: str | Path | None = None,
                       labels: dict | None = None, seeds=None, sources: dict | None = None) -> str:
    """The chapter's scorecard as Markdown: one row per metric, named in words (``labels[key]``, else
    `lvmcls.words.describe`) with its key beside it, then the paper's number, ours from the committed ``full``
    profile (with its age, `result_age`) and ours from this run. Rows with a paper number come first; the others
    fold into a "more measurements" table. ``seeds``: this run's seeds, counted in the column header.
    ``sources``: where each paper number is printed (``{key: "Table 1, row M2, column Fashion"}``), shown after
    it; a paper number without a source is refused when ``sources`` is given."""
    folder = Path(folder) if folder is not None else results_dir()
    full_path = folder / "full" / f"{stem}.json"
    full = json.loads(full_path.read_text()) if full_path.is_file() else None
    paper, labels = paper or {}, labels or {}
    if sources is not None:
        missing = [k for k in metrics if paper.get(k) is not None and not sources.get(k)]
        if missing:
            raise ValueError(f"paper numbers without a source: {missing}; give each a table and row in sources=")

    odd = {k: w for k, w in labels.items() if k in metrics and ("|" in w or "`" in w)}
    if odd:
        raise ValueError(f"scorecard labels are plain words (no '|', no backticks: the key column shows the code): "
                         f"{odd}; reword them")

    def paper_value(key):  # a transcription: up to 6 significant digits, so 100.99 is not shown as 101
        v = paper.get(key)
        value = (", ".join(f"{x:.6g}" if isinstance(x, float) else _fmt(x) for x in v) if isinstance(v, (list, tuple))
                 else f"{v:.6g}" if isinstance(v, float) else _fmt(v))
        return f"{value} ({sources[key]})" if sources and sources.get(key) and paper.get(key) is not None else value
    stds = (full or {}).get("metrics_std", {})
    full_header = "ours, full profile" if full else "ours, full profile (none committed)"
    if full and "n_runs" in full:  # merged by lvmcls.sweep over seeds
        full_header = f"ours, full profile (mean ± std, {full['n_runs']} runs)"
    run_header = "ours, this run"
    if seeds is not None:
        seeds = list(seeds) if isinstance(seeds, (list, tuple, range)) else [seeds]
        run_header += f" ({len(seeds)} seed{'s' if len(seeds) != 1 else ''})"

    def full_value(key):
        if not full:
            return "—"
        value, std = full["metrics"].get(key), stds.get(key)
        return f"{_fmt(value)} ± {std:.2g}" if isinstance(value, float) and isinstance(std, float) else _fmt(value)

    def table(keys):
        lines = [f"| quantity | key | paper | {full_header} | {run_header} |", "|---|---|---|---|---|"]
        for key in keys:
            words = labels.get(key) or describe(key)
            lines.append(f"| {words} | `{key}` | {paper_value(key)} | {full_value(key)} | {_fmt(metrics[key])} |")
        return "\n".join(lines)

    primary = [k for k in metrics if paper.get(k) is not None]
    secondary = [k for k in metrics if paper.get(k) is None]
    if not primary:
        primary, secondary = secondary, []
    parts = [table(primary)]
    if secondary:
        parts.append(f"<details><summary>More measurements ({len(secondary)} rows without a paper number)"
                     f"</summary>\n\n{table(secondary)}\n\n</details>")
    if full:
        parts.append(f"Full-profile run: {full['device']}, {full['wall_time_s']} s, data: {full['data_source']}; "
                     f"{describe_age(result_age(full, stem))}.")
    return "\n\n".join(parts)
