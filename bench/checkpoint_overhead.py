"""The cost of the per-epoch resumable checkpoint (model, optimiser, schedule, RNG states, history, written
atomically) as a ratio of epoch time, with and without it, in one run: the writes are timed inside the run, so the
ratio does not drift with the machine's load. Goal: at most 1.05x (`fit_cached` writes at most every 30 s, so less).

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


def epoch_seconds(build, train, device, epochs: int, checkpoint: Path | None) -> tuple[float, float]:
    """Seconds per epoch, and the seconds per epoch spent writing the resumable checkpoint (timed directly, so the
    ratio does not depend on the machine's load drifting between runs)."""
    torch.manual_seed(0)
    model = build()
    trainer = Trainer(max_epochs=epochs, batch_size=128, device=device, progress=False, schedule="cosine")
    saving = []
    save = trainer._save_state

    def timed_save(*args):
        t0 = time.perf_counter()
        save(*args)
        saving.append(time.perf_counter() - t0)

    trainer._save_state = timed_save
    start = time.perf_counter()
    trainer.fit(model, train, checkpoint=checkpoint)  # checkpoint_every_s=0: a write after every epoch
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / epochs, sum(saving) / epochs


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
        train, build = binarized(mnist.train), lambda: V.VAE(latent_dim=32, hidden=500, decoder_depth=2)
    n_params = sum(p.numel() for p in build().parameters())
    with tempfile.TemporaryDirectory() as tmp:
        epoch, saving = epoch_seconds(build, train, device, args.epochs, Path(tmp) / "run.resume.pt")
        size = (Path(tmp) / "run.resume.pt").stat().st_size
    print(f"device: {device}, model: {args.model} ({n_params:,} parameters), checkpoint {size / 1e6:.1f} MB, "
          f"{args.epochs} epochs of {len(train)} images")
    print(f"epoch with its checkpoint: {epoch:.3f} s, of which writing the checkpoint: {1000 * saving:.1f} ms")
    print(f"ratio to the epoch without the checkpoint: {epoch / (epoch - saving):.4f}  (goal: <= 1.05)")


if __name__ == "__main__":
    main()
