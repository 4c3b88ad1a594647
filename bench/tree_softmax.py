"""Step time of VAE-AS's binary-tree softmax against a flat softmax over N sample indices (VAE-AS §3.5).

Both heads sit on the same 500-unit body; one step is forward, backward and the optimiser (SparseAdam for the
tree's sparse node embedding, Adam for the flat layer), on batches of 128 latents.

    python bench/tree_softmax.py [--device cuda] [--n 50000] [--steps 20]
"""

from __future__ import annotations

import argparse

import torch
from timing import seconds_per_step

from lvmcls.train import pick_device
from lvmcls.vae_as import IndexClassifier


def time_head(tree: bool, n: int, device, steps: int, batch: int = 128, latent_dim: int = 40, hidden: int = 500) -> float:
    torch.manual_seed(0)
    clf = IndexClassifier(latent_dim, n, hidden=hidden, tree=tree).to(device)
    head_opt = (torch.optim.SparseAdam if tree else torch.optim.Adam)(clf.head.parameters(), lr=1e-3)
    opts = [torch.optim.Adam(clf.body.parameters(), lr=1e-3), head_opt]
    z = torch.randn(steps + 3, batch, latent_dim, device=device)
    e = torch.randint(0, n, (steps + 3, batch), device=device)

    def step(i: int) -> None:
        loss = -clf.log_prob(z[i], e[i]).mean()
        for opt in opts:
            opt.zero_grad()
        loss.backward()
        for opt in opts:
            opt.step()

    return seconds_per_step(step, steps, device, warmup=3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    device = pick_device(args.device)
    flat = time_head(False, args.n, device, args.steps)
    tree = time_head(True, args.n, device, args.steps)
    print(f"device: {device}, N = {args.n}, batch 128, hidden 500")
    print(f"flat softmax:        {1000 * flat:8.2f} ms/step")
    print(f"binary-tree softmax: {1000 * tree:8.2f} ms/step")
    print(f"speed-up: {flat / tree:.1f}x (goal: >= 10x)")


if __name__ == "__main__":
    main()
