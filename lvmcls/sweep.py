"""Sweeps: a grid of chapter executions (chapters × seeds × parameter settings, one profile) on submitit, and
their merge into the scorecards' ``full`` column.

Each run is one papermill execution of a chapter's committed ``.ipynb`` with its parameters, as one submitit
job, ``local`` (processes on this machine) or ``slurm`` (an array job). It leaves, beside each other::

    results/runs/<stem>/<run-id>.json    the chapter's results record (+ "run_id", "parameters"): the run is done
    results/runs/<stem>/<run-id>.ipynb   the executed notebook
    results/runs/<stem>/<run-id>.log     papermill's log with the cells' outputs, and the traceback of a failure

The run-id is a function of the parameters, so the same sweep started again skips the runs whose ``.json``
exists and runs again those that failed, were killed or never ran. ``merge`` averages each chapter's runs over
seeds (mean, std, n of every numeric metric) into ``results/full/<stem>.json``::

    python -m lvmcls.sweep run --chapters 01 02 --seeds 0 1 2 --profile full --set hidden=64,128
    python -m lvmcls.sweep run grid.toml --executor slurm --partition gpu --gpus 1 --time 60
    python -m lvmcls.sweep merge grid.toml

A grid file (TOML) holds the same fields as the options: ``chapters``, ``seeds``, ``profile``, ``executor``,
``[set]`` (parameter -> value or list of values) and ``[slurm]`` (partition, gpus, time, cpus, mem_gb,
array_parallelism); options given on the command line win.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import itertools
import json
import logging
import os
import re
import shutil
import statistics
import sys
import time
import tomllib
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path

from .paths import atomic_write_text, project_root, results_dir

PROFILES = ("smoke", "ci", "long", "full")  # a sweep names one; "auto" would resolve differently on each node
SLURM_ONLY = ("partition", "cpus", "mem_gb", "array_parallelism")  # options that mean nothing locally
IN_FLIGHT = ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED")


class GridError(ValueError):
    """A grid that cannot run; raised before any job starts."""


@dataclass(frozen=True)
class Run:
    """One chapter execution: what papermill runs and where its files go."""
    stem: str
    notebook: str  # the committed .ipynb
    profile: str
    seed: int
    overrides: tuple  # ((name, value), ...) sorted by name
    folder: str  # results/runs/<stem>

    @property
    def run_id(self) -> str:
        """``<profile>-seed<seed>[-name=value...]``, readable and a function of the parameters only; settings
        too long for a file name become a hash of their JSON."""
        settings = "".join(f"-{k}={json.dumps(v, separators=(',', ':'))}" for k, v in self.overrides)
        settings = re.sub(r"[^A-Za-z0-9._=,+-]", "_", settings)
        if len(settings) > 80:
            settings = "-" + hashlib.sha1(json.dumps(self.overrides).encode()).hexdigest()[:12]
        return f"{self.profile}-seed{self.seed}{settings}"

    @property
    def parameters(self) -> dict:
        return {"profile": self.profile, "seed": self.seed, **dict(self.overrides)}

    def path(self, suffix: str) -> Path:
        return Path(self.folder) / f"{self.run_id}{suffix}"

    def done(self) -> bool:
        return self.path(".json").is_file()


@dataclass
class Grid:
    chapters: list = field(default_factory=list)
    seeds: list = field(default_factory=lambda: [0])
    profile: str = "full"
    settings: dict = field(default_factory=dict)  # parameter -> list of values
    executor: str = "local"
    slurm: dict = field(default_factory=dict)  # partition, gpus, time (minutes), cpus, mem_gb, array_parallelism
    notebooks: str | None = None  # default: <project root>/notebooks
    runs: str | None = None  # default: <results>/runs
    parallel: int = 2  # local: jobs at a time


# ---------------------------------------------------------------------------------------------------------------
# Building and checking the grid


def chapter_parameters(ipynb: Path) -> dict:
    """The names and defaults of the notebook's ``parameters`` cell (papermill's own reading of it)."""
    import papermill

    return {name: p["default"] for name, p in papermill.inspect_notebook(ipynb).items()}


def _code(ipynb: Path) -> str:
    import nbformat

    return "\n".join(c.source for c in nbformat.read(ipynb, as_version=4).cells if c.cell_type == "code")


def find_chapter(name: str, folder: Path) -> Path:
    """A chapter by stem, stem prefix ("03", "03_vc") or file name; its committed ``.ipynb``."""
    available = sorted(p.stem for p in folder.glob("*.ipynb"))
    stem = Path(name).stem
    matches = [s for s in available if s == stem] or [s for s in available if s.startswith(stem)]
    if len(matches) != 1:
        what = "matches several chapters" if matches else "is no chapter"
        raise GridError(f"{name!r} {what} in {folder}; the chapters are: {', '.join(available) or '(none)'}")
    return folder / f"{matches[0]}.ipynb"


def plan(grid: Grid) -> list[Run]:
    """Every run of the grid, checked: raises `GridError` before anything is submitted."""
    if grid.profile not in PROFILES:
        raise GridError(f"profile must be one of {PROFILES}, got {grid.profile!r}")
    if grid.executor not in ("local", "slurm"):
        raise GridError(f"unknown executor {grid.executor!r}: use 'local' (this machine) or 'slurm'")
    slurm_only = [k for k in SLURM_ONLY if grid.slurm.get(k) is not None]
    if grid.executor == "local" and slurm_only:
        flags = ", ".join("--" + k.replace("_", "-") for k in slurm_only)
        raise GridError(f"{flags}: Slurm option(s), for --executor slurm; drop them to run locally")
    if grid.executor == "slurm" and shutil.which("sbatch") is None:
        raise GridError("--executor slurm needs Slurm, but `sbatch` is not on PATH: run on the cluster's login "
                        "node, or use --executor local")
    unknown = set(grid.slurm) - {*SLURM_ONLY, "gpus", "time"}
    if unknown:
        raise GridError(f"unknown Slurm option(s) {sorted(unknown)}: use {sorted({*SLURM_ONLY, 'gpus', 'time'})}")
    if not grid.chapters or not grid.seeds or any(not values for values in grid.settings.values()):
        raise GridError("the grid is empty: give at least one chapter, one seed and one value per --set parameter")
    if any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in grid.seeds):
        raise GridError(f"seeds must be non-negative integers, got {grid.seeds}")
    if {"profile", "seed"} & set(grid.settings):
        raise GridError("set the profile and seeds with --profile and --seeds, not --set")
    notebooks = Path(grid.notebooks) if grid.notebooks else project_root() / "notebooks"
    runs_root = Path(grid.runs) if grid.runs else results_dir() / "runs"
    names = sorted(grid.settings)
    runs = []
    for name in dict.fromkeys(grid.chapters):
        ipynb = find_chapter(name, notebooks)
        missing = [k for k in names if k not in chapter_parameters(ipynb)]
        if missing:
            raise GridError(f"{ipynb.stem} has no parameter {', '.join(missing)} in its `parameters` cell; it has: "
                            f"{', '.join(chapter_parameters(ipynb))}")
        if f'"{grid.profile}"' not in _code(ipynb):
            raise GridError(f"{ipynb.stem} does not define the {grid.profile!r} profile (no \"{grid.profile}\" in "
                            "its source); pick another --profile")
        for seed, values in itertools.product(dict.fromkeys(grid.seeds),
                                              itertools.product(*(grid.settings[k] for k in names))):
            runs.append(Run(ipynb.stem, str(ipynb), grid.profile, seed, tuple(zip(names, values)),
                            str(runs_root / ipynb.stem)))
    return runs


# ---------------------------------------------------------------------------------------------------------------
# One run (this is what a submitit job executes)


def execute(run: Run) -> str:
    """Execute ``run`` with papermill; on success move its results record to ``<run-id>.json`` and return that
    path. The chapter writes into a scratch folder (``LVMCLS_RESULTS``), so a killed run leaves no ``.json``."""
    import papermill

    log_path, scratch = run.path(".log"), run.path(".tmp")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    handler = logging.FileHandler(log_path, mode="w")
    logger = logging.getLogger("papermill")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    os.environ["LVMCLS_RESULTS"] = str(scratch)  # the kernel inherits it
    started = time.perf_counter()
    try:
        papermill.execute_notebook(run.notebook, str(run.path(".ipynb")), parameters=run.parameters,
                                   cwd=str(Path(run.notebook).parent), kernel_name="python3", log_output=True,
                                   progress_bar=False)
        # ci: <stem>.json; full, smoke: <profile>/<stem>.json; long: long/<stem>/long-seed<s>.json
        written = [scratch / f"{run.stem}.json", scratch / run.profile / f"{run.stem}.json",
                   scratch / run.profile / run.stem / f"{run.profile}-seed{run.seed}.json"]
        found = [p for p in written if p.is_file()]
        if not found:
            raise RuntimeError(f"{run.stem} ran but wrote no results file (expected one of {written})")
        record = json.loads(found[0].read_text())
        record.update(run_id=run.run_id, parameters=run.parameters, notebook=str(run.path(".ipynb")),
                      log=str(log_path), job_wall_time_s=round(time.perf_counter() - started, 1))
        atomic_write_text(run.path(".json"), json.dumps(record, indent=1) + "\n")
    except BaseException:
        logger.error("run %s failed:\n%s", run.run_id, traceback.format_exc())
        raise
    finally:
        logger.removeHandler(handler)
        handler.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return str(run.path(".json"))


# ---------------------------------------------------------------------------------------------------------------
# Submitting the grid


def make_executor(grid: Grid, folder: Path):
    """A submitit executor for the grid: LocalExecutor or SlurmExecutor with its partition, GPUs and time."""
    import submitit

    options = grid.slurm
    timeout = int(options.get("time") or 24 * 60)
    if grid.executor == "local":
        executor = submitit.LocalExecutor(folder)
        executor.update_parameters(timeout_min=timeout, gpus_per_node=int(options.get("gpus") or 0))
        return executor
    executor = submitit.SlurmExecutor(folder)
    params = dict(job_name="lvmcls-sweep", time=timeout, gpus_per_node=options.get("gpus"),
                  partition=options.get("partition"), cpus_per_task=options.get("cpus"),
                  array_parallelism=options.get("array_parallelism") or 256,
                  mem=f"{options['mem_gb']}GB" if options.get("mem_gb") else None)
    executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
    return executor


def in_flight(run: Run, folder: Path) -> bool:
    """A Slurm job of an earlier invocation still queued or running for ``run`` (its ``.job`` file names it)."""
    import submitit

    marker = run.path(".job")
    if not marker.is_file():
        return False
    try:
        return submitit.SlurmJob(folder, marker.read_text().strip()).state in IN_FLIGHT
    except Exception:  # no sacct, or Slurm forgot the job: it is not running any more
        return False


def _last_line(log: Path, error: Exception) -> str:
    """The last line of a failed run's log (its exception), else of the error submitit raised."""
    text = log.read_text(errors="replace") if log.is_file() else str(error)
    return next((line for line in reversed(text.splitlines()) if line.strip()), "no log").strip()


def submit(grid: Grid, wait: bool | None = None, echo=print, on_done=None) -> dict:
    """Run the grid's missing runs; return ``{"done", "skipped", "failed", "submitted"}`` lists of run-ids
    (``failed``: ``(run_id, log)``). Local sweeps wait for their jobs; Slurm sweeps return once submitted
    unless ``wait``. ``on_done(run, json_path)`` is called as each run finishes (`lvmcls.long` commits there)."""
    runs = plan(grid)
    folder = (Path(grid.runs) if grid.runs else results_dir() / "runs") / ".submitit"
    wait = grid.executor == "local" if wait is None else wait
    report = {"done": [], "skipped": [], "failed": [], "submitted": []}
    todo = []
    for run in runs:
        if run.done():
            report["skipped"].append(run.run_id)
        elif grid.executor == "slurm" and in_flight(run, folder):
            report["submitted"].append(run.run_id)
        else:
            todo.append(run)
    echo(f"{len(runs)} runs: {len(report['skipped'])} done before, {len(report['submitted'])} in flight, "
         f"{len(todo)} to run ({grid.executor})")
    if not todo:
        return report
    executor = make_executor(grid, folder)
    chunk = max(1, grid.parallel) if grid.executor == "local" else len(todo)
    for start in range(0, len(todo), chunk):
        batch = todo[start:start + chunk]
        for run in batch:
            Path(run.folder).mkdir(parents=True, exist_ok=True)
        with executor.batch():
            jobs = [executor.submit(execute, run) for run in batch]
        for run, job in zip(batch, jobs):
            atomic_write_text(run.path(".job"), f"{job.job_id}\n")
        if not wait:
            report["submitted"] += [r.run_id for r in batch]
            echo(f"submitted {len(batch)} jobs ({jobs[0].job_id.split('_')[0]}); submitit logs in {folder}")
            continue
        for run, job in zip(batch, jobs):
            try:
                job.result()
                report["done"].append(run.run_id)
                echo(f"done    {run.stem}/{run.run_id}")
                if on_done is not None:
                    on_done(run, str(run.path(".json")))
            except Exception as error:
                report["failed"].append((f"{run.stem}/{run.run_id}", str(run.path(".log"))))
                echo(f"FAILED  {run.stem}/{run.run_id}: {_last_line(run.path('.log'), error)[:200]}\n"
                     f"        log: {run.path('.log')} (submitit: {job.paths.stderr})")
    return report


# ---------------------------------------------------------------------------------------------------------------
# Merging runs over seeds


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _merge(values: list):
    """(mean, std) of numbers at the same place in each run's metrics, recursing into dicts and equal-length
    lists; other values are kept when every run agrees (std None), else dropped. Missing numbers (NaN) are left out."""
    present = [v for v in values if v is not None]
    if present and all(_is_number(v) for v in present):
        std = statistics.stdev(present) if len(present) > 1 else 0.0
        return statistics.fmean(present), std
    if present and all(isinstance(v, dict) for v in present):
        merged = {k: _merge([v.get(k) for v in present]) for k in dict.fromkeys(k for v in present for k in v)}
        return {k: m[0] for k, m in merged.items()}, {k: m[1] for k, m in merged.items()}
    if present and all(isinstance(v, list) for v in present) and len({len(v) for v in present}) == 1:
        merged = [_merge(list(column)) for column in zip(*present)]
        return [m[0] for m in merged], [m[1] for m in merged]
    same = all(v == values[0] for v in values)
    return (values[0] if same else None), None


def merge(grid: Grid, out: str | Path | None = None, echo=print) -> list[Path]:
    """Per chapter, mean ± std over the grid's completed runs → ``<out>/<stem>.json`` (default: where
    `write_results` puts the profile's results, ``results/full/`` for ``full``). One setting per chapter."""
    paths = []
    by_stem: dict[str, list[Run]] = {}
    for run in plan(replace(grid, executor="local", slurm={})):  # merging needs no cluster
        by_stem.setdefault(run.stem, []).append(run)
    for stem, runs in by_stem.items():
        if len({r.overrides for r in runs}) > 1:
            raise GridError(f"the grid has {len({r.overrides for r in runs})} settings of {stem}: merge one "
                            "setting at a time (one value per --set parameter)")
        records = [json.loads(r.path(".json").read_text()) for r in runs if r.done()]
        missing = [r.run_id for r in runs if not r.done()]
        if not records:
            raise GridError(f"no completed runs of {stem} in {runs[0].folder}: run the sweep first")
        if missing:
            echo(f"warning: {stem}: {len(missing)} of {len(runs)} runs missing ({', '.join(missing)}); "
                 "merging the others")
        means, stds = _merge([r["metrics"] for r in records])
        first = records[0]
        record = {
            **{k: first[k] for k in ("stem", "profile", "data_source", "torch", "paper", "knobs") if k in first},
            "device": "; ".join(dict.fromkeys(r["device"] for r in records)),
            "seeds": [s for r in records for s in r["seeds"]],
            "git_commit": ", ".join(dict.fromkeys(r["git_commit"] for r in records)),
            "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "wall_time_s": round(statistics.fmean(r["wall_time_s"] for r in records), 1),
            "metrics": means, "metrics_std": stds, "n_runs": len(records),
            "runs": [r["run_id"] for r in records], "parameters": dict(runs[0].overrides),
        }
        folder = Path(out) if out else results_dir() / ("" if grid.profile == "ci" else grid.profile)
        paths.append(atomic_write_text(folder / f"{stem}.json", json.dumps(record, indent=1) + "\n"))
        echo(f"merged {len(records)} runs of {stem} -> {paths[-1]}")
    return paths


# ---------------------------------------------------------------------------------------------------------------
# Command line


def _value(text: str):
    """A --set value: a Python literal (1, 0.5, None, "x") or else the plain string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def grid_from_args(args) -> Grid:
    """The grid file (if any) overlaid with the options given on the command line."""
    config = tomllib.loads(Path(args.grid).read_text()) if args.grid else {}
    unknown = set(config) - {"chapters", "seeds", "profile", "executor", "set", "slurm", "notebooks", "runs"}
    if unknown:
        raise GridError(f"unknown field(s) {sorted(unknown)} in {args.grid}")
    settings = {k: v if isinstance(v, list) else [v] for k, v in config.get("set", {}).items()}
    for item in args.set or []:
        name, sep, values = item.partition("=")
        if not sep or not name:
            raise GridError(f"--set takes name=value[,value...], got {item!r}")
        settings[name.strip()] = [_value(v) for v in values.split(",")] if values else []
    slurm = dict(config.get("slurm", {}))
    slurm.update({k: getattr(args, k) for k in (*SLURM_ONLY, "gpus", "time") if getattr(args, k) is not None})
    pick = lambda name, default: getattr(args, name) if getattr(args, name) is not None else config.get(name, default)
    return Grid(chapters=pick("chapters", []), seeds=pick("seeds", [0]), profile=pick("profile", "full"),
                settings=settings, executor=pick("executor", "local"), slurm=slurm,
                notebooks=pick("notebooks", None), runs=pick("runs", None), parallel=args.parallel)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lvmcls.sweep", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("run", "run the grid's missing runs"), ("merge", "mean ± std over seeds per chapter")):
        p = commands.add_parser(name, help=text)
        p.add_argument("grid", nargs="?", help="a TOML grid file (fields as the options below)")
        p.add_argument("--chapters", nargs="+", help="stems or prefixes: 01 03_vc_experiments")
        p.add_argument("--seeds", nargs="+", type=int)
        p.add_argument("--profile", choices=PROFILES)
        p.add_argument("--set", action="append", metavar="NAME=V1,V2", help="a parameter's values (repeatable)")
        p.add_argument("--notebooks", help="the chapters' folder (default: notebooks/)")
        p.add_argument("--runs", help="where runs go (default: results/runs)")
        p.add_argument("--executor", help="local | slurm")
        p.add_argument("--parallel", type=int, default=2, help="local: jobs at a time (default 2)")
        p.add_argument("--partition")
        p.add_argument("--gpus", type=int, help="GPUs per job")
        p.add_argument("--time", type=int, help="time limit per job in minutes")
        p.add_argument("--cpus", type=int, help="Slurm: CPUs per job")
        p.add_argument("--mem-gb", dest="mem_gb", type=int)
        p.add_argument("--array-parallelism", dest="array_parallelism", type=int, help="Slurm: jobs at a time")
        if name == "run":
            p.add_argument("--wait", action="store_true", help="slurm: wait for the jobs and report failures")
        else:
            p.add_argument("--out", help="folder of the merged files (default: results/full for --profile full)")
    return parser


def main(argv=None) -> int:
    args = make_parser().parse_args(argv)
    try:
        grid = grid_from_args(args)
        if args.command == "merge":
            merge(grid, args.out)
            return 0
        report = submit(grid, wait=args.wait or None)
    except GridError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(report['done'])} done, {len(report['skipped'])} skipped (done before), "
          f"{len(report['submitted'])} submitted or in flight, {len(report['failed'])} failed")
    for run_id, log in report["failed"]:
        print(f"  failed: {run_id}, log {log}; run the same command again to retry it")
    return 1 if report["failed"] else 0


if __name__ == "__main__":  # through the module, so that submitit pickles lvmcls.sweep.execute, not __main__'s
    from lvmcls.sweep import main as sweep_main

    sys.exit(sweep_main())
