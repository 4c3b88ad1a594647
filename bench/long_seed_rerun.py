"""Does a committed `long` record reproduce? Rerun one seed of a chapter's main design in a fresh process, into a
scratch results folder, and compare every arm's metrics with the committed record; then decide the design again with
the rerun in the record's place (a sensitivity check: the committed record stays as it is).

    env PYTHONPATH=. python bench/long_seed_rerun.py 05_vae_as 19 > bench/long_seed_rerun-<seed>.md
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from lvmcls.long import decide_records, seed_records


def main(stem: str, seed: int):
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    committed = {r["seeds"][0]: r for r in seed_records(stem)}[seed]
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run([sys.executable, "-m", "lvmcls.long", "run", "--chapters", stem, "--design", "main",
                        "--seeds", str(seed)], env={**os.environ, "LVMCLS_RESULTS": scratch}, check=True,
                       capture_output=True)
        rerun = json.loads(next(Path(scratch).glob(f"long/{stem}/long-seed{seed}.json")).read_text())
    print(f"# Rerunning seed {seed} of `{stem}`'s main long design\n\n`bench/long_seed_rerun.py`, commit {commit} "
          f"(the record: {committed['git_commit'][:7]}, written {committed['written']}), "
          f"{rerun['device']}; the rerun trains the seed's arms in a fresh notebook process at this commit (all of them "
          "in one process, as the sweep does), or loads the checkpoints an earlier rerun at this commit cached.\n\n| arm | metric | committed | rerun | equal |\n|---|---|---|---|---|")
    odd = []
    for arm, metrics in committed["per_seed"].items():
        for k, (v,) in metrics.items():
            (w,) = rerun["per_seed"][arm][k]
            odd += [] if v == w else [f"{arm} {k}"]
            print(f"| `{arm}` | {k} | {v:.4f} | {w:.4f} | {'yes' if v == w else '**no**'} |")
    before = decide_records(stem, list(committed_all := seed_records(stem)))
    after = decide_records(stem, [rerun if r["seeds"][0] == seed else r for r in committed_all])
    changed = [f"`{a['key']}` {a['verdict']} → {b['verdict']}" for a, b in zip(before["claims"], after["claims"])
               if a["verdict"] != b["verdict"]]
    print(f"\nDiffering: {', '.join(odd) if odd else 'none'}. With the rerun in the record's place the verdicts "
          f"{'change: ' + '; '.join(changed) if changed else 'are unchanged'}.")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
