"""The cost of VC over CE per training step (the paper claims "marginal overhead").

One run times optimiser steps of the same encoder and Gaussian-prior head under the CE, GM and VC objectives
(VC adds a prior sample, the linear discriminators' forward pass and their AdamW step) and prints the ratios.

    python bench/vc_overhead.py [--device cuda] [--encoder mlp|convnet|resnet18] [--steps 200]
"""

from __future__ import annotations

import argparse

import torch
from timing import seconds_per_step

from lvmcls.data import load_dataset
from lvmcls.nets import build_encoder
from lvmcls.train import Trainer, pick_device
from lvmcls.vc import LatentClassifier


def time_steps(objective: str, encoder_kind: str, data, device, steps: int, latent_dim: int, batch_size: int) -> float:
    torch.manual_seed(0)
    encoder = build_encoder(encoder_kind, latent_dim, tuple(data.train.x.shape[1:]))
    model = LatentClassifier.build(objective, encoder, 10, latent_dim).to(device)
    trainer = Trainer(batch_size=batch_size, device=device, progress=False)
    optimizers, _ = trainer.configure_optimizer(model)
    generator = torch.Generator().manual_seed(0)
    batches = [b for _, b in zip(range(steps + 10), data.train.batches(batch_size, shuffle=True, generator=generator,
                                                                          drop_last=True))]
    return seconds_per_step(lambda i: trainer.step(model, *batches[i], optimizers), steps, device, warmup=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--encoder", default="mlp", choices=["mlp", "convnet", "resnet18"])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    device = pick_device(args.device)
    data = load_dataset("cifar10" if args.encoder == "resnet18" else "mnist", device=device)
    times = {obj: time_steps(obj, args.encoder, data, device, args.steps, args.latent_dim, args.batch_size)
             for obj in ("ce", "gm", "vc")}
    print(f"device: {device}, encoder: {args.encoder}, latent dim {args.latent_dim}, batch {args.batch_size}, "
          f"data: {data.source}")
    for obj, t in times.items():
        print(f"{obj.upper()}: {1000 * t:7.2f} ms/step   ratio to CE: {t / times['ce']:.2f}")


if __name__ == "__main__":
    main()
