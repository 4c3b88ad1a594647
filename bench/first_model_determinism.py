"""Is the first model a fresh process trains reproducible? (chapter 5's seeds 19 and 86, a diagnostic)

In two of the 101 records of chapter 5's main `long` design the VAE arm, the first model each seed's notebook process
trains, does not reproduce when the seed is rerun (`bench/long_seed_rerun-19.md`, `-86.md`). This bench trains that
VAE (`bench/ch5_arms.py`: the chapter's builder, knobs and `Trainer`) in ``runs`` fresh Python processes, each the
first and only model of its process, and counts the distinct trained weights (a hash of the state).

    env PYTHONPATH=. python bench/first_model_determinism.py 86 30 > bench/first_model_determinism.md
"""

from __future__ import annotations

import collections
import os
import platform
import subprocess
import sys

ONE = """
import hashlib, sys, torch
from bench.ch5_arms import data, train
torch.set_num_threads(2)
split, _ = data()
state = train("vae", split, int(sys.argv[1])).state_dict()
print(hashlib.sha256(b"".join(v.numpy().tobytes() for k, v in sorted(state.items())
                              if not k.startswith("draws"))).hexdigest()[:12])
"""


def main(seed: int, runs: int):
    import torch

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    hashes = collections.Counter(
        subprocess.run([sys.executable, "-c", ONE, str(seed)], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONPATH": "."}).stdout.strip() for _ in range(runs))
    print(f"# The first model of a fresh process, seed {seed}\n\n`bench/first_model_determinism.py`, commit {commit}, "
          f"{platform.processor() or platform.machine()}, 2 threads, torch {torch.__version__}; {runs} processes, "
          f"each training chapter 5's VAE arm of seed {seed} as its first and only model.\n")
    for h, n in hashes.most_common():
        print(f"- weights `{h}`: {n} of {runs} processes")
    print(f"\n{len(hashes)} distinct trained state{'s' if len(hashes) != 1 else ''} in {runs} fresh processes.")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
