"""The book's `full` profiles in one GPU window: stalest chapter first, each only if it fits the time left.

A GPU is lent for a fixed window (here 15 minutes, start-up included). `run_window` orders the chapters by how stale
their committed full result is (missing first; then those whose code changed since, the most commits behind first;
current ones last and skipped), runs each as a plain script (``LVMCLS_PROFILE=full python notebooks/<stem>.py``)
under a timeout of the time left, and skips a chapter whose estimate (``FULL_MINUTES_H100`` in its parameters
cell, the share the chapter declares) exceeds what remains. Logs and a ``window.json`` summary go to ``out``;
the chapters write ``results/full/<stem>.json`` themselves (device, torch, commit, wall time, CPU/GPU model).
Running it again continues where it stopped: a chapter whose result is now current is skipped. ::

    python -m lvmcls.gpu_window --budget 600 --out $OUT          # or: make full-gpu BUDGET_S=600
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from .paths import atomic_write_text, project_root, results_dir
from .results import git_commit, result_age

ESTIMATE = re.compile(r"^FULL_MINUTES_H100\s*=\s*\(?\s*([0-9.]+)", re.M)


def chapter_estimate_s(notebook: Path) -> float:
    """The chapter's declared full-profile time on one H100, in seconds (``FULL_MINUTES_H100`` × 60)."""
    found = ESTIMATE.search(notebook.read_text())
    if not found:
        raise ValueError(f"{notebook} declares no FULL_MINUTES_H100 = <minutes> in its parameters cell: add the "
                         "chapter's full-profile estimate there (and the measurement or step count it rests on)")
    return 60 * float(found.group(1))


def staleness(stem: str, folder: Path) -> tuple[int, int, str]:
    """A sort key, smallest first: (0, …) no result; (1, -commits behind) code changed since; (2, …) current."""
    path = folder / f"{stem}.json"
    if not path.is_file():
        return (0, 0, "no result")
    record = json.loads(path.read_text())
    if record.get("git_commit", "").split("+")[0] == git_commit().split("+")[0]:
        return (2, 0, "current (this commit)")
    age = result_age(record, stem)
    if age["stale"]:
        behind = age["commits_behind"] if age["commits_behind"] is not None else 10**6
        return (1, -behind, f"stale: {len(age['changed'])} changed file(s), {age['commits_behind']} commits behind")
    return (2, 0, "current (nothing it depends on changed)")


def plan(stems: list[str], folder: Path) -> list[tuple[str, tuple]]:
    """``stems`` stalest first (ties keep the chapter order)."""
    return sorted(((s, staleness(s, folder)) for s in stems), key=lambda item: item[1][:2])


def run_window(budget_s: float, out: str | Path, stems: list[str] | None = None, notebooks: str | Path | None = None,
               folder: str | Path | None = None, python: str = sys.executable, profile: str = "full") -> list[dict]:
    """Run the chapters of `plan` within ``budget_s`` seconds; returns (and writes to ``out/window.json``) one
    entry per chapter: what was done (ran / skipped) and why, the return code, the wall time and the estimate."""
    start = time.perf_counter()
    notebooks = Path(notebooks) if notebooks is not None else project_root() / "notebooks"
    folder = Path(folder) if folder is not None else results_dir() / profile
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stems = stems or sorted(p.stem for p in notebooks.glob("[0-9][0-9]_*.py"))
    commit = git_commit()  # what the chapters record (a copy without .git: $LVMCLS_GIT_COMMIT, from .pack/COMMIT)
    log: list[dict] = []
    for stem, (rank, _, why) in plan(stems, folder):
        estimate = chapter_estimate_s(notebooks / f"{stem}.py")
        left = budget_s - (time.perf_counter() - start)
        entry = {"stem": stem, "state": why, "estimate_s": estimate, "left_s": round(left, 1)}
        if rank == 2:
            entry["action"] = "skipped: current"
        elif estimate > left:
            entry["action"] = f"skipped: its estimate {estimate:.0f} s exceeds the {left:.0f} s left"
        else:
            env = dict(os.environ, LVMCLS_PROFILE=profile, LVMCLS_PROGRESS="0", MPLBACKEND="Agg",
                       PYTHONUNBUFFERED="1", LVMCLS_GIT_COMMIT=commit)
            t0 = time.perf_counter()
            with open(out / f"{stem}.log", "w") as logfile:
                try:
                    rc = subprocess.run([python, str(notebooks / f"{stem}.py")], stdout=logfile,
                                        stderr=subprocess.STDOUT, env=env, timeout=left, cwd=notebooks).returncode
                except subprocess.TimeoutExpired:
                    rc = "timeout"
            entry |= {"action": "ran", "rc": rc, "wall_s": round(time.perf_counter() - t0, 1)}
        log.append(entry)
        atomic_write_text(out / "window.json", json.dumps(log, indent=1) + "\n")
        print(json.dumps(entry), flush=True)
    return log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, required=True, help="seconds of the window left for chapters")
    parser.add_argument("--out", default=os.environ.get("OUT", "/tmp/gpu_window"), help="logs and window.json")
    parser.add_argument("--profile", default=os.environ.get("LVMCLS_PROFILE", "full"), choices=("full", "smoke"))
    parser.add_argument("stems", nargs="*", help="chapters (default: all), e.g. 03_vc_experiments")
    args = parser.parse_args(argv)
    log = run_window(args.budget, args.out, args.stems or None, profile=args.profile)
    return 0 if all(e.get("rc", 0) == 0 for e in log) else 1


if __name__ == "__main__":
    sys.exit(main())
