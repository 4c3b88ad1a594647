"""The cost of the per-epoch resumable checkpoint (model, optimiser, schedule, RNG states, history, written
atomically) as a ratio of epoch time, with and without it, in one run. Goal: at most 1.05x.

    python bench/checkpoint_overhead.py [--device cuda] [--epochs 3] [--model mlp|vae]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from lvmcls import vae as V
from lvmcls.data import binarized, load_dataset
from lvmcls.models import Classifier
from lvmcls.nets import MLP
from lvmcls.train import Trainer, pick_device


def epoch_seconds(build, train, device, epochs: int, checkpoint: Path | None) -> float:
    torch.manual_seed(0)
    model = build()
    trainer = Trainer(max_epochs=epochs, batch_size=128, device=device, progress=False, schedule="cosine")
    start = time.perf_counter()
    trainer.fit(model, train, checkpoint=checkpoint)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--model", default="mlp", choices=["mlp", "vae"])
    args = parser.parse_args()
    device = pick_device(args.device)
    mnist = load_dataset("mnist", device=device)
    if args.model == "mlp":
        train, build = mnist.train, lambda: Classifier(MLP(784, 10, hidden=256, depth=2))
    else:
        train, build = binarized(mnist.train), lambda: V.VAE(z_dim=32, hidden=500, decoder_depth=2)
    n_params = sum(p.numel() for p in build().parameters())
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for label, ckpt in (("without", None), ("with", Path(tmp) / "run.resume.pt"),
                            ("without (again)", None)):
            if ckpt is not None and ckpt.exists():
                ckpt.unlink()
            runs[label] = epoch_seconds(build, train, device, args.epochs, ckpt)
        size = (Path(tmp) / "run.resume.pt").stat().st_size
    base = (runs["without"] + runs["without (again)"]) / 2
    print(f"device: {device}, model: {args.model} ({n_params:,} parameters), checkpoint {size / 1e6:.1f} MB, "
          f"{args.epochs} epochs of {len(train)} images")
    for label, t in runs.items():
        print(f"{label:>16}: {t:6.2f} s/epoch   ratio to the mean without: {t / base:.3f}")


if __name__ == "__main__":
    main()
