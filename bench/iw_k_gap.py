"""Does chapter 5's between-arm NLL gap depend on the importance samples k? (a check the reviewer asked for)

Chapter 5 estimates the test NLL with k = 50 importance samples (the paper: 4,096). The estimate is an upper bound
that tightens with k, and by different amounts for encoders of different quality, so a gap between arms at k = 50
could differ from the gap at large k. This bench trains the VAE, `vae_as` and `vae_as_exact` for three seeds of the
main `long` design (5, 6, 7; `bench/ch5_arms.py`) and prints each arm's NLL on the chapter's 1,000 test images at
k = 50 and k = 1,000, and the gaps against the VAE at both.

    env PYTHONPATH=. python bench/iw_k_gap.py > bench/iw_k_gap.md
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess

import torch

from bench.ch5_arms import data, train
from lvmcls import vae as V

SEEDS, ARMS, KS, IMAGES = (5, 6, 7), ("vae", "vae_as", "vae_as_exact"), (50, 1000), 1000


@torch.no_grad()
def nll(vae, x, k, seed):
    vae.eval()
    torch.manual_seed(seed)
    return V.importance_weighted_nll(vae, x, k=k).mean().item()


def main():
    torch.set_num_threads(2)
    split, test = data()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"# Chapter 5's NLL gaps at k = {KS[0]} and k = {KS[1]}\n\n`bench/iw_k_gap.py`, commit {commit}, "
          f"{platform.processor() or platform.machine()}, 2 threads, torch {torch.__version__}, load average "
          f"{os.getloadavg()[0]:.2f} at the start; seeds {SEEDS}, {IMAGES} test images.\n")
    print("| seed | arm | " + " | ".join(f"NLL, k = {k}" for k in KS) + " | " +
          " | ".join(f"− VAE, k = {k}" for k in KS) + " |\n|---|---|" + "---|" * (2 * len(KS)))
    gaps = {(a, k): [] for a in ARMS[1:] for k in KS}
    for s in SEEDS:
        values = {a: [nll(train(a, split, s), test[:IMAGES], k, s) for k in KS] for a in ARMS}
        for a in ARMS:
            diff = [v - w for v, w in zip(values[a], values["vae"])]
            if a != "vae":
                for k, d in zip(KS, diff):
                    gaps[(a, k)].append(d)
            print(f"| {s} | `{a}` | " + " | ".join(f"{v:.2f}" for v in values[a]) + " | " +
                  " | ".join("—" if a == "vae" else f"{d:+.2f}" for d in diff) + " |", flush=True)
    print("\n" + "; ".join(
        f"`{a}` − VAE, mean over seeds: {statistics.fmean(gaps[(a, KS[0])]):+.2f} nats at k = {KS[0]}, "
        f"{statistics.fmean(gaps[(a, KS[1])]):+.2f} at k = {KS[1]} (change "
        f"{statistics.fmean(gaps[(a, KS[1])]) - statistics.fmean(gaps[(a, KS[0])]):+.2f})" for a in ARMS[1:]) + ".")


if __name__ == "__main__":
    main()
