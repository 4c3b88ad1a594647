"""Step time of M2's unlabelled bound with y summed out in one batched pass over the K classes, against a Python loop
over y (one labelled-bound call per class, as in Kingma's original code). One step is the forward pass of U(x) on a
batch of unlabelled images and its backward pass.

    python bench/ssvae_enumeration.py [--device cuda] [--batch 200] [--hidden 600] [--steps 10]
"""

from __future__ import annotations

import argparse

import torch
from timing import seconds_per_step

from lvmcls.ssvae import M2, unlabelled_bound_by_loop
from lvmcls.train import pick_device


def time_bound(batched: bool, device, steps: int, batch: int, hidden: int, latent_dim: int = 50) -> float:
    torch.manual_seed(0)
    model = M2(x_dim=784, num_classes=10, latent_dim=latent_dim, hidden=hidden, depth=2, classifier_hidden=hidden).to(device)
    x = torch.rand(steps + 3, batch, 784, device=device)

    def step(i: int) -> None:
        bound = model.unlabelled_bound(x[i])[0] if batched else unlabelled_bound_by_loop(model, x[i])
        model.zero_grad(set_to_none=True)
        (-bound.mean()).backward()

    return seconds_per_step(step, steps, device, warmup=3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--hidden", type=int, default=600)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    device = pick_device(args.device)
    looped = time_bound(False, device, args.steps, args.batch, args.hidden)
    batched = time_bound(True, device, args.steps, args.batch, args.hidden)
    print(f"device: {device}, batch {args.batch} unlabelled images, K = 10, encoder/decoder 2x{args.hidden}, z = 50")
    print(f"Python loop over y:         {1000 * looped:8.2f} ms/step")
    print(f"one batched pass over y:    {1000 * batched:8.2f} ms/step")
    print(f"speed-up: {looped / batched:.2f}x")


if __name__ == "__main__":
    main()
