"""log q(z) for the exact aggregate posterior: the matrix-product form of `mixture_log_density` against the
broadcast form it replaced (an (M, S, d) tensor of squared differences), on the same z, in one run.

    python bench/mixture_density.py [--device cuda] [--n 5000] [--steps 3]
"""

from __future__ import annotations

import argparse
import math

import torch
from timing import seconds_per_step

from lvmcls.train import pick_device
from lvmcls.vae import gaussian_log_density, mixture_log_density


def broadcast_mixture_log_density(z, mean, log_var, max_elements: int = 2 ** 25):
    """The previous form: logsumexp over an (M, S) table built from an (M, S, d) broadcast, in chunks."""
    chunk = max(1, max_elements // (len(mean) * mean.shape[1]))
    return torch.cat([torch.logsumexp(gaussian_log_density(z[i:i + chunk, None], mean[None], log_var[None]), 1)
                      for i in range(0, len(z), chunk)]) - math.log(len(mean))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    device = pick_device(args.device)
    g = torch.Generator().manual_seed(0)
    mean = (2 * torch.randn(args.n, 40, generator=g)).to(device)
    log_var = (torch.randn(args.n, 40, generator=g) - 3).to(device)
    z = mean + (0.5 * log_var).exp() * torch.randn(args.n, 40, generator=g).to(device)
    gap = (mixture_log_density(z, mean, log_var) - broadcast_mixture_log_density(z, mean, log_var)).abs().max()
    old = seconds_per_step(lambda i: broadcast_mixture_log_density(z, mean, log_var), args.steps, device, warmup=1)
    new = seconds_per_step(lambda i: mixture_log_density(z, mean, log_var), args.steps, device, warmup=1)
    print(f"device: {device}, N = {args.n} points and z, d = 40; largest difference {gap.item():.2e} nats")
    print(f"broadcast (M, S, d):     {1000 * old:9.1f} ms")
    print(f"matrix products, fp64:   {1000 * new:9.1f} ms   ({old / new:.1f}x faster)")


if __name__ == "__main__":
    main()
