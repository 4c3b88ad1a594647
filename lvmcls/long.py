"""The ``long`` profile: the registry's powered decisions, run on two CPU cores for hours, one seed at a time.

Each run is one chapter executed (through `lvmcls.sweep`, local processes or Slurm) in its ``long`` profile for
one seed with *all* the arms of that seed. It leaves one record per seed, committed as soon as it is written::

    results/long/<stem>/long-seed<s>.json     {"per_seed": {arm: {metric: [value]}}, "seeds": [s],
                                               "registry": {claim key: entry hash}, commit, CPU, threads, torch, …}

so a run spread over sessions or machines loses nothing and resumes where it stopped (a seed whose record exists
is skipped). A chapter may have more than one design: a claim whose ``[claims.long]`` names ``design = "<name>"``
belongs to that design (default ``main``), which the chapter runs with the parameter ``long_design = "<name>"``;
its records go to ``results/long/designs/<name>/<stem>/`` and its merged verdicts to
``results/long/<stem>--<name>.json``, each design decided on its own claims only.

`merge` pairs the arms by seed over every record and decides each claim through
`lvmcls.registry.decide` — the very code path a chapter's ``ci`` run uses — into ``results/long/<stem>.json``
(its ``claims`` rows are what the ledger shows). A claim whose registry entry changed after its first ``long``
record is not decided: it reads "design changed after the data". Records are never deleted when code changes;
the ledger shows their age::

    python -m lvmcls.long power            # the ci pilot's paired SDs -> the seeds each claim needs (registry)
    python -m lvmcls.long run --chapters 03 --commit   # resumable; each finished seed committed at once
    python -m lvmcls.long merge            # decide from the committed per-seed records
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from . import registry
from .paths import atomic_write_text, project_root, results_dir

DESIGN_CHANGED = "design changed after the data"
MAIN = "main"  # the design of a claim whose [claims.long] names none


def long_dir() -> Path:
    return results_dir() / "long"


def design_of(claim: dict) -> str:
    """The long design a claim belongs to (``[claims.long] design``, default ``main``)."""
    return (claim.get("long") or {}).get("design", MAIN)


def designs(stem: str) -> list[str]:
    """The chapter's long designs, ``main`` first, in registry order."""
    found = dict.fromkeys(design_of(c) for c in registry.claims_of(stem) if c["kind"] != "check" and "long" in c)
    return sorted(found, key=lambda d: d != MAIN)


def records_root(design: str = MAIN, folder: str | Path | None = None) -> Path:
    """Where a design's per-chapter record folders live: ``results/long`` (main) or ``results/long/designs/<d>``."""
    folder = Path(folder) if folder is not None else long_dir()
    return folder if design == MAIN else folder / "designs" / design


def merged_path(stem: str, design: str = MAIN, folder: str | Path | None = None) -> Path:
    """``results/long/<stem>.json`` (main) or ``results/long/<stem>--<design>.json``."""
    folder = Path(folder) if folder is not None else long_dir()
    return folder / (f"{stem}.json" if design == MAIN else f"{stem}--{design}.json")


def seed_records(stem: str, folder: str | Path | None = None, design: str = MAIN) -> list[dict]:
    """The per-seed records of a chapter's design, in seed order (one seed may appear once only)."""
    folder = records_root(design, folder)
    records = []
    for path in sorted((folder / stem).glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except ValueError as err:
            raise ValueError(f"{path} is not a readable long record ({err}); delete it and run the seed again") from err
        if "per_seed" not in record:
            raise ValueError(f"{path} holds no per_seed values: not a long record of this library")
        record["_path"] = str(path)
        records.append(record)
    records.sort(key=lambda r: r["seeds"][0])
    seen: dict[int, str] = {}
    for r in records:
        for s in r["seeds"]:
            if s in seen:
                raise ValueError(f"seed {s} of {stem} appears in {seen[s]} and {r['_path']}: keep one")
            seen[s] = r["_path"]
    return records


def pair(records: list[dict]) -> tuple[list[int], dict[str, dict[str, list]]]:
    """Concatenate the records' per-seed values: (seeds, {arm: {metric: [value per seed]}}), keeping only the arms
    and metrics every record holds (so every list is in the same seed order). A record whose lists do not hold one
    value per seed is refused."""
    if not records:
        return [], {}
    for r in records:
        for arm, metrics in r["per_seed"].items():
            for m, v in metrics.items():
                if len(v) != len(r["seeds"]):
                    raise ValueError(f"{r.get('_path', 'a record')}: {arm}/{m} holds {len(v)} values for seeds "
                                     f"{r['seeds']}; run that seed again")
    arms = set.intersection(*(set(r["per_seed"]) for r in records))
    per_seed: dict[str, dict[str, list]] = {}
    for arm in sorted(arms):
        metrics = set.intersection(*(set(r["per_seed"][arm]) for r in records))
        per_seed[arm] = {m: [v for r in records for v in r["per_seed"][arm][m]] for m in sorted(metrics)}
    return [s for r in records for s in r["seeds"]], per_seed


INTERIM = "interim"


def decide_records(stem: str, records: list[dict], registry_folder=None, design: str = MAIN) -> dict:
    """The merged long record of a chapter's design, as ``claims`` rows for the ledger (the design's claims
    only). Each paired claim is decided on the first ``[claims.long] seeds`` seeds its design planned (in seed
    order; later seeds are kept, not used): a look at fewer is shown as "interim (k of N …)", never as a verdict,
    since deciding after every seed would spend α again at each look. A claim that a record ran under another entry,
    or that a record does not carry at all (it was registered after the data), reads "design changed after the
    data".
    """
    from .decisions import claim as claim_row

    table = registry.claims(registry_folder)
    start = first_seed(stem, design, registry_folder)
    ignored = sorted(s for r in records for s in r["seeds"] if s < start)
    records = [r for r in records if min(r["seeds"]) >= start]  # a seed that chose a setting decides nothing
    seeds, per_seed = pair(records)
    paired = [c for c in registry.claims_of(stem, registry_folder) if c["kind"] != "check"]
    mine = [c for c in paired if design_of(c) == design]
    others = [c["key"] for c in paired if design_of(c) != design]
    planned = {c["key"]: c.get("long", {}).get("seeds") for c in mine}
    # an entry changed after the data is not decided: it enters its family at p = 1 (and, as a gate, stays shut)
    changed = [c["key"] for c in mine
               if any(r.get("registry", {}).get(c["key"]) != registry.entry_hash(c) for r in records)]
    # a claim whose design planned no seed count is exploratory: decided on every recorded seed, at the level a
    # separate call gives it (every other member of its family at p = 1: Bonferroni α / m), while the planned
    # claims of its family see it at p = 1
    unplanned = {k for k, n in planned.items() if not n} - set(changed)
    decided = {}
    if len(seeds) >= 2:
        decided = registry.decide(stem, per_seed, folder=registry_folder, gates=False,
                                  keys={c["key"] for c in mine} - unplanned - set(changed),
                                  first={k: n for k, n in planned.items() if n})
        for key in unplanned:
            decided.update(registry.decide(stem, per_seed, folder=registry_folder, keys={key}, gates=False))
        registry.apply_gates(decided)
    # a decision is final only when every look it rests on is: its own planned seeds, those of the planned members
    # of its family (their p-values set its Holm level) and those of its gate and the gate's family
    def needed(c) -> int:
        fam = c["_families"][c["family"]]
        group = [m for m in mine if m["family"] == c["family"]]
        if fam.get("gate") in table:
            g = table[fam["gate"]]
            group += [m for m in mine if m["family"] == g["family"]]
        return max([planned.get(m["key"]) or 0 for m in group] + [planned.get(c["key"]) or 0])
    rows = registry.claim_rows(stem, decided, folder=registry_folder, skip=[*changed, *others])
    for row in rows:
        n_plan = planned.get(row["key"])
        n_look = needed(table[row["key"]]) if row["key"] in table else 0
        if len(seeds) < 2 and row["key"] not in decided:
            row["verdict"] = f"{INTERIM} ({len(seeds)} of {n_plan or '?'} planned seeds; not a verdict)"
            row["ours"] = "one seed cannot estimate the spread of the paired differences: nothing is decided yet"
        elif row["key"] in decided and n_plan and len(seeds) < n_look:
            d = decided[row["key"]]
            if len(seeds) < n_plan:
                waits = "" if n_look == n_plan else f"; its family or gate plans {n_look}"
                count = f"{len(seeds)} of {n_plan} planned seeds{waits}"
            else:  # its own seeds are in; the Holm level waits on its family's (or gate's) planned seeds
                count = f"{len(seeds)} seeds: its own {n_plan} are in, its family or gate waits for {n_look}"
            row["verdict"] = f"{INTERIM} ({count}; not a verdict): {d['verdict']}"
        elif row["key"] in decided and n_plan and len(seeds) > n_plan:
            row["ours"] += f" (decided on the first {n_plan} seeds the design planned; {len(seeds)} recorded)"
        elif row["key"] in decided and not n_plan:
            row["verdict"] = (f"exploratory (no seed count was planned; all {len(seeds)} recorded seeds): "
                              f"{row['verdict']}")
    for key in changed:
        c = table[key]
        hashes = sorted({str(r.get("registry", {}).get(key)) for r in records})
        rows.append(claim_row(key, paper=c["paper"], statement=c["statement"], source=c["source"],
                              paper_value=c["paper_values"], section=c["section"],
                              verdict=f"not run: {DESIGN_CHANGED}",
                              ours=f"entry {registry.entry_hash(c)} now; the records were run under {hashes}"))
    # the merge is as old as its oldest record: its age and staleness are judged from that record's commit
    oldest = min(records, key=lambda r: r.get("written", "")) if records else {}
    last = max(records, key=lambda r: r.get("written", "")) if records else {}
    commits = sorted({str(r.get("git_commit", "unknown")) for r in records})
    return {"stem": stem, "profile": "long", "design": design, "seeds": seeds, "ignored_seeds": ignored,
            "n_records": len(records),
            "git_commit": oldest.get("git_commit", "unknown"), "written": oldest.get("written"),
            "last_written": last.get("written"), "commits": commits,
            "dirty_records": sum("+dirty" in str(r.get("git_commit")) for r in records),
            "device": "; ".join(dict.fromkeys(str(r.get("device")) for r in records)),
            "wall_time_s": round(sum(r.get("wall_time_s") or 0 for r in records), 1),
            "planned_seeds": planned, "design_changed": changed, "per_seed": per_seed, "claims": rows}


def merge(stems=None, folder=None, echo=print, design: str | None = None) -> list[Path]:
    """Decide every chapter design that has long records; write ``results/long/<stem>.json`` (main) and
    ``results/long/<stem>--<design>.json``. ``design``: that design only (default: every one)."""
    folder = Path(folder) if folder is not None else long_dir()
    out = []
    for name in ([design] if design else [MAIN, *sorted({design_of(c) for c in registry.claims().values()} - {MAIN})]):
        root = records_root(name, folder)
        chosen = stems or (sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                                  and p.name not in ("designs", "superseded")) if root.is_dir() else [])
        for stem in chosen:
            records = seed_records(stem, folder, name)
            if not records:
                if name == MAIN:
                    echo(f"{stem}: no long records yet")
                continue
            merged = decide_records(stem, records, design=name)
            out.append(atomic_write_text(merged_path(stem, name, folder), json.dumps(merged, indent=1) + "\n"))
            verdicts = ", ".join(f"{r['key']}: {r['verdict']}" for r in merged["claims"])
            echo(f"{stem}{'' if name == MAIN else f' ({name})'}: {len(merged['seeds'])} seeds -> {verdicts}")
    return out


# ---------------------------------------------------------------------------------------------------------------
# Power from the pilot


def chapter_pilot(stem: str) -> dict[str, dict[str, list]]:
    """The ci pilot's per-seed values (``per_seed`` in ``results/<stem>.json``)."""
    path = results_dir() / f"{stem}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the chapter's ci profile first (make execute), the pilot")
    record = json.loads(path.read_text())
    if "per_seed" not in record:
        raise ValueError(f"{path} has no per_seed values: the chapter does not record its pilot yet")
    return record


def plan_power(stems=None, write: bool = True, echo=print, force: bool = False, keys=None) -> dict[str, dict]:
    """For every paired claim with a `[claims.long]` design whose chapter has a ci pilot: the pilot's paired SD,
    its upper 80 % bound and the seeds `long` needs (`lvmcls.registry.power_plan`); written into the claim's
    ``[claims.long]`` table (``seeds`` and ``pilot``) with tomlkit, formatting kept."""
    import tomlkit

    table = registry.claims()
    plans: dict[str, dict] = {}
    stems = stems or sorted({c["chapter"] for c in table.values() if c["kind"] != "check" and "long" in c})
    for stem in stems:
        try:
            record = chapter_pilot(stem)
        except (FileNotFoundError, ValueError) as err:
            echo(f"{stem}: {err}")
            record = None
        for c in registry.claims_of(stem):
            if c["kind"] == "check" or "long" not in c or (keys is not None and c["key"] not in keys):
                continue
            # a design whose arm or metric no ci run records is sized on another's spread, as its registry entry
            # names: ``pilot_from = {design = "main", candidate = "vc"}`` (that arm in that long design's merged
            # record) or ``{metric = "nll_test"}`` (that metric of the ci pilot)
            source = c["long"].get("pilot_from") or {}
            metric = source.get("metric", c["metric"])
            if "design" in source:
                path = merged_path(stem, source.get("design", MAIN))
                if not path.is_file():
                    echo(f"{c['key']}: {path} is missing (its pilot_from)")
                    continue
                pilot_record = json.loads(path.read_text())
            elif record is None:
                continue
            else:
                pilot_record = record
            per_seed = pilot_record["per_seed"]
            candidate = source.get("candidate", c["candidate"])
            worst = None
            for b in registry.baselines(c):
                if candidate not in per_seed or b not in per_seed or metric not in per_seed[candidate]:
                    continue
                d = [x - y for x, y in zip(per_seed[candidate][metric], per_seed[b][metric])]
                plan = registry.power_plan(c, d)
                if worst is None or (plan["seeds"] or 10**9) > (worst["seeds"] or 10**9):
                    worst = plan
            if worst is None:
                echo(f"{c['key']}: the pilot has no {metric} of arms {candidate} / {c['baseline']}")
                continue
            worst["commit"] = str(pilot_record.get("git_commit", "unknown"))[:12]
            plans[c["key"]] = worst
            echo(f"{c['key']}: pilot n = {worst['n']}, paired SD {worst['sd']:.4g} (upper 80 % {worst['sd_upper80']:.4g})"
                 f" -> {worst['seeds'] or 'more than 200'} seeds for power 0.8 at "
                 f"{c.get('margin') if c['kind'] == 'parity' else c['effect']}")
    with_data = [k for k in plans if any(r.get("registry", {}).get(k) == registry.entry_hash(table[k])
                                         for r in seed_records(table[k]["chapter"], design=design_of(table[k])))] \
        if write else []
    if with_data and not force:
        raise ValueError(f"long records already ran under the current design of {with_data}: rewriting their seeds "
                         "now would change the design after the data; pass --force only to start that design anew")
    if write and plans:
        by_file: dict[str, list] = {}
        for key, plan in plans.items():
            by_file.setdefault(table[key]["_file"], []).append((key, plan))
        for name, items in by_file.items():
            path = registry.FOLDER / name
            doc = tomlkit.parse(path.read_text())
            for key, plan in items:
                entry = next(c for c in doc["claims"] if c["key"] == key)
                long_table = entry["long"]
                if plan["seeds"] is None:  # no design up to 200 seeds reaches power 0.8: say so, plan nothing
                    long_table["seeds_note"] = "over 200 paired seeds would be needed for power 0.8"
                    long_table.pop("seeds", None)
                else:
                    long_table["seeds"] = plan["seeds"]
                pilot = tomlkit.inline_table()
                pilot.update({"n": plan["n"], "sd": round(plan["sd"], 6), "sd_upper80": round(plan["sd_upper80"], 6),
                              "alpha_per_test": round(plan["alpha_per_test"], 6), "commit": plan["commit"]})
                long_table["pilot"] = pilot
            atomic_write_text(path, tomlkit.dumps(doc))
        registry._load_all.cache_clear()
    return plans


def first_seed(stem: str, design: str = MAIN, registry_folder=None) -> int:
    """The design's first seed (``[claims.long] first_seed``, default 0; e.g. 1 where seed 0 chose a setting):
    `run` starts there and `decide_records` sets aside any record of an earlier seed."""
    firsts = {c["long"].get("first_seed", 0) for c in registry.claims_of(stem, registry_folder)
              if "long" in c and design_of(c) == design and c["kind"] != "check"}
    if len(firsts) > 1:
        raise ValueError(f"{stem}: the claims of the long design {design!r} name different first seeds {firsts}")
    return firsts.pop() if firsts else 0


def seeds_needed(stem: str, design: str = MAIN) -> int:
    """The seeds a chapter's long design needs: the largest ``[claims.long] seeds`` among its claims."""
    wanted = [c["long"].get("seeds") for c in registry.claims_of(stem)
              if "long" in c and c["long"].get("seeds") and design_of(c) == design]
    if not wanted:
        raise ValueError(f"{stem}: no claim of the long design {design!r} has [claims.long] seeds yet: run "
                         "`python -m lvmcls.long power` after the ci pilot")
    return max(wanted)


# ---------------------------------------------------------------------------------------------------------------
# Running


def _commit(paths: list[str], message: str, echo=print) -> None:
    root = project_root()
    try:
        subprocess.run(["git", "add", "--", *paths], cwd=root, check=True, capture_output=True, timeout=60)
        if subprocess.run(["git", "diff", "--cached", "--quiet", "--", *paths], cwd=root, timeout=60).returncode == 0:
            echo(f"nothing new to commit in {', '.join(Path(p).name for p in paths)}")
            return
        out = subprocess.run(["git", "commit", "-q", "-m", message, "--", *paths], cwd=root, capture_output=True,
                             text=True, timeout=60)
        echo(f"committed {', '.join(Path(p).name for p in paths)}" if out.returncode == 0 else
             f"warning: git commit failed: {out.stderr.strip()[:200]}")
    except (OSError, subprocess.SubprocessError) as err:
        echo(f"warning: could not commit {paths}: {err}")


def run(stems, seeds=None, commit: bool = False, executor: str = "local", echo=print,
        design: str | None = None) -> dict:
    """Run the missing seeds of each chapter's long designs (`lvmcls.sweep`; ``design``: that one only), one
    process at a time, committing each finished seed's record at once when ``commit``; then merge."""
    from .sweep import Grid, submit

    report = {}
    for stem in stems:
        for name in ([design] if design else designs(stem)):
            start = first_seed(stem, name)
            wanted = list(seeds) if seeds is not None else list(range(start, start + seeds_needed(stem, name)))
            if min(wanted) < start:
                raise ValueError(f"{stem} ({name}): seeds below the design's first seed {start} decide nothing; "
                                 "leave them out (or run one design with --design)")
            grid = Grid(chapters=[stem], seeds=wanted, profile="long", executor=executor,
                        settings={} if name == MAIN else {"long_design": [name]}, runs=str(records_root(name)),
                        parallel=1)

            def finished(run, path, stem=stem, name=name):
                # the record and the merged verdicts in one commit, so that every commit's merged file is what
                # its per-seed records decide (tests/test_long.py recomputes it), wherever a run is stopped
                merged = merge([stem], echo=echo, design=name)
                if commit:
                    _commit([path, *map(str, merged)], f"long: {run.stem}{'' if name == MAIN else f' ({name})'} "
                            f"seed {run.seed}", echo)

            started = time.perf_counter()
            report[stem if name == MAIN else f"{stem}--{name}"] = submit(grid, echo=echo, on_done=finished)
            echo(f"{stem} ({name}): {time.perf_counter() - started:.0f} s")
            merged = merge([stem], echo=echo, design=name)
            if commit and merged:
                _commit([str(p) for p in merged], f"long: {stem} ({name}) merged", echo)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lvmcls.long", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("power", help="the seeds each claim needs, from the ci pilot, into the registry")
    p.add_argument("--chapters", nargs="+")
    p.add_argument("--dry-run", action="store_true", help="print, do not write the registry")
    p.add_argument("--force", action="store_true", help="rewrite a design that already has long records")
    p.add_argument("--claims", nargs="+", help="plan these claim keys only (default: every claim of the chapters)")
    p = sub.add_parser("run", help="run the missing seeds (resumable)")
    p.add_argument("--chapters", nargs="+", help="stems or prefixes (default: every chapter with a long design)")
    p.add_argument("--seeds", nargs="+", type=int,
                   help="default: the design's first seed (0 unless the registry says) and the seeds it plans")
    p.add_argument("--commit", action="store_true", help="git-commit each finished seed's record at once")
    p.add_argument("--executor", default="local", help="local | slurm")
    p.add_argument("--design", help="one long design of the chapters (default: every one, main first)")
    p = sub.add_parser("merge", help="decide from the per-seed records")
    p.add_argument("--chapters", nargs="+")
    p.add_argument("--design", help="one long design (default: every one)")
    args = parser.parse_args(argv)
    from .sweep import GridError, find_chapter

    def stems(names):
        if not names:
            return None
        return [find_chapter(n, project_root() / "notebooks").stem for n in names]

    try:
        if args.command == "power":
            plan_power(stems(args.chapters), write=not args.dry_run, force=args.force, keys=args.claims)
        elif args.command == "merge":
            merge(stems(args.chapters), design=args.design)
        else:
            chosen = stems(args.chapters) or sorted({c["chapter"] for c in registry.claims().values()
                                                     if c.get("long", {}).get("seeds")})
            report = run(chosen, args.seeds, commit=args.commit, executor=args.executor, design=args.design)
            return 1 if any(r["failed"] for r in report.values()) else 0
    except (GridError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    from lvmcls.long import main as long_main

    sys.exit(long_main())
