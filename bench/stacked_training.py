"""K small classifiers trained side by side (`lvmcls.stack.ModelStack`) vs one after another, same steps.

Prints, in one run, the wall time of both and their ratio for K = 2, 5, 10 on this machine's device (CPU here; on
a GPU pass --device cuda): MNIST-sized MLPs (784 → 256 → 256 → 10), batch 128, 100 Adam steps each, on random
inputs (the arithmetic, not the data, is measured). Writes the table to bench/stacked_training.md.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from lvmcls.data import TensorSplit
from lvmcls.models import Classifier
from lvmcls.nets import MLP
from lvmcls.results import describe_device
from lvmcls.stack import ModelStack
from lvmcls.train import Trainer, seed_everything


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    split = TensorSplit(torch.rand(12_800, 784, generator=g), torch.randint(0, 10, (12_800,), generator=g)).to(device)

    def build():
        return Classifier(MLP(784, 10, hidden=256, depth=2))

    def trainer():
        return Trainer(max_epochs=1, max_steps=args.steps, batch_size=128, lr=1e-3, progress=False, device=device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    trainer().fit(ModelStack(build, [0, 1]), split)  # warm-up: allocator, kernels, vmap's first trace
    trainer().fit(build(), split)
    rows = []
    for k in (2, 5, 10):
        seeds = list(range(k))
        sync()
        t0 = time.perf_counter()
        for s in seeds:
            seed_everything(s)
            trainer().fit(build(), split)
        sync()
        one_by_one = time.perf_counter() - t0
        t0 = time.perf_counter()
        trainer().fit(ModelStack(build, seeds), split)
        sync()
        stacked = time.perf_counter() - t0
        rows.append((k, one_by_one, stacked))
        print(f"K={k:2d}: one by one {one_by_one:6.2f} s, stacked {stacked:6.2f} s, ratio {one_by_one / stacked:.2f}",
              flush=True)
    lines = [f"# Stacked vs one-by-one training ({describe_device(device)}, torch {torch.__version__}, "
             f"{platform.python_version()}; {args.steps} steps of batch 128 per model)", "",
             "| models K | one by one (s) | stacked (s) | ratio |", "|---|---|---|---|"]
    lines += [f"| {k} | {a:.2f} | {b:.2f} | {a / b:.2f} |" for k, a, b in rows]
    Path(__file__).with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
