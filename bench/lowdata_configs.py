"""One MNIST-500 low-data configuration of chapter 3, over 3 seeds: mean ± std of the test accuracy, and time.

Each seed trains on its own class-balanced 500-image subset (as chapter 3 does) a 16-channel ConvNet encoder with
a 32-d latent and one objective of `lvmcls.vc`, for a fixed number of optimiser steps, and is scored on the
10,000 MNIST test images. The row is printed and appended to ``--table`` (``bench/lowdata_configs.md`` holds every
configuration tried for issue 10). Models are cached (`fit_cached`; the thread count is part of the key, since CPU
numerics differ with it).

    python bench/lowdata_configs.py vc '{"schedule": "cosine", "batch_size": 64}' [--threads 2]

Config keys: steps, batch_size, lr, optimizer, schedule, wd, width, beta, lam (λ, the weight of log p(z|y)),
prior_lr, ratio_lr, ratio_form ("linear", "quadratic", "mlp"), ratio_hidden, augment (None, "shift"), seeds.

With ``--val`` the row also gives the accuracy on the 10,000 MNIST validation images (official train[50000:]),
the split to choose configurations on; the test accuracy is then only reported.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time

import torch

from lvmcls.data import balanced_subset, load_dataset
from lvmcls.models import evaluate_classifier
from lvmcls.nets import ConvNet
from lvmcls.train import Trainer, fit_cached
from lvmcls.vc import DEFAULT_LIKELIHOOD_WEIGHT, VC_OBJECTIVES, LatentClassifier

DEFAULTS = {"steps": 600, "batch_size": 128, "lr": 3e-3, "optimizer": "adam", "schedule": None, "wd": 0.0,
            "width": 16, "beta": 0.01, "lam": None, "prior_lr": None, "ratio_lr": 1e-3, "ratio_form": "linear",
            "ratio_hidden": None,
            "augment": None, "seeds": [0, 1, 2]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("objective", choices=VC_OBJECTIVES)
    parser.add_argument("config", nargs="?", default="{}", help="JSON overrides of " + ", ".join(DEFAULTS))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--val", action="store_true", help="also score the validation split (choose on it)")
    parser.add_argument("--table", default=os.path.join(os.path.dirname(__file__), "lowdata_configs.md"))
    args = parser.parse_args()
    overrides = json.loads(args.config)
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise SystemExit(f"unknown config keys {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    c = {**DEFAULTS, **overrides}
    if args.threads:
        torch.set_num_threads(args.threads)
    lam = DEFAULT_LIKELIHOOD_WEIGHT[args.objective] if c["lam"] is None else c["lam"]
    mnist = load_dataset("mnist", device="cpu")
    accs, val_accs, start = [], [], time.perf_counter()
    for seed in c["seeds"]:
        small = mnist.replace(train=balanced_subset(mnist.train, 50, seed=seed), val=None)

        def build():
            return LatentClassifier.build(args.objective, ConvNet(32, in_channels=1, width=c["width"]), 10, 32,
                                          beta=c["beta"], likelihood_weight=lam, ratio_form=c["ratio_form"],
                                          ratio_hidden=c["ratio_hidden"],
                                          prior_lr=c["prior_lr"], ratio_lr=c["ratio_lr"])

        epochs = math.ceil(c["steps"] / math.ceil(len(small.train) / c["batch_size"]))
        trainer = Trainer(max_epochs=epochs, max_steps=c["steps"], batch_size=c["batch_size"], lr=c["lr"],
                          optimizer=c["optimizer"], schedule=c["schedule"], weight_decay=c["wd"], seed=seed,
                          channels_last=True, progress=False, monitor="objective", augment=c["augment"])
        model, _ = fit_cached(f"bench-lowdata-{args.objective}-s{seed}", build, small, trainer,
                              threads=torch.get_num_threads())
        accs.append(evaluate_classifier(model, mnist.test)[0]["acc"])
        if args.val:
            val_accs.append(evaluate_classifier(model, mnist.val)[0]["acc"])
    seconds = time.perf_counter() - start
    val = f"{statistics.fmean(val_accs):.4f} ± {statistics.stdev(val_accs):.4f} | " if val_accs else ""
    row = (f"| {args.objective} | `{json.dumps(overrides)}` | {val}{statistics.fmean(accs):.4f} ± "
           f"{statistics.stdev(accs) if len(accs) > 1 else 0.0:.4f} | {' '.join(f'{a:.3f}' for a in accs)} | "
           f"{seconds:.0f} s, {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f} |")
    print(row)
    with open(args.table, "a") as f:
        f.write(row + "\n")


if __name__ == "__main__":
    main()
