"""Per-epoch time of lvmcls's tensor-resident data path against the idiomatic torchvision loop.

Both train the same MLP (784-256-256-10, Adam, batch 128) for one epoch over the same 50,000 MNIST
training images on the same device. The baseline is the tutorial pipeline:
``torchvision.datasets.MNIST(transform=ToTensor())`` + ``DataLoader(shuffle=True)``, which decodes a PIL
image per sample. lvmcls keeps the images as one float tensor on the device and draws batches there.

    python bench/data_loader.py [--device cuda] [--epochs 2] [--workers 0]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader, Subset

from lvmcls.data import load_dataset
from lvmcls.nets import MLP
from lvmcls.paths import data_dir
from lvmcls.train import pick_device


def train_epoch(batches, device) -> float:
    torch.manual_seed(0)
    model = MLP(784, 10, hidden=256, depth=2).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for x, y in batches:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    import torchvision
    from torchvision.transforms import ToTensor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--epochs", type=int, default=2, help="epochs of each; the best is reported")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers for the baseline")
    args = parser.parse_args()
    device = pick_device(args.device)

    mnist = load_dataset("mnist", device=device)  # fills the cache in torchvision's layout too
    baseline_set = Subset(torchvision.datasets.MNIST(str(data_dir()), train=True, download=False,
                                                     transform=ToTensor()), range(50_000))
    g = torch.Generator().manual_seed(0)

    ours = min(train_epoch(mnist.train.batches(128, shuffle=True, generator=g), device) for _ in range(args.epochs))
    loader = DataLoader(baseline_set, batch_size=128, shuffle=True, num_workers=args.workers,
                        pin_memory=device.type == "cuda")
    theirs = min(train_epoch(loader, device) for _ in range(args.epochs))

    print(f"device: {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, data: {mnist.source}")
    print(f"torchvision MNIST + ToTensor + DataLoader(workers={args.workers}): {theirs:7.2f} s/epoch")
    print(f"lvmcls tensor-resident batches:                      {ours:7.2f} s/epoch")
    print(f"speed-up: {theirs / ours:.1f}x (goal: >= 4x)")


if __name__ == "__main__":
    main()
