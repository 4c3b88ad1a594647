"""Networks: plain ``nn.Module`` classes that map inputs to features or scores."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

ENCODERS = ("mlp", "convnet", "resnet18")


@torch.no_grad()
def eval_batched(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int = 4096,
                 model: nn.Module | None = None) -> torch.Tensor:
    """``fn`` applied to ``x`` in batches, outputs concatenated as float32 on ``x``'s device: the book's one
    batched inference loop. ``model`` (default: ``fn`` itself when it is a module) is put in eval mode for the
    pass and restored afterwards."""
    model = model if model is not None else (fn if isinstance(fn, nn.Module) else None)
    was_training = model.training if model is not None else False
    if model is not None:
        model.eval()
    try:
        return torch.cat([fn(x[i:i + batch_size]).float() for i in range(0, len(x), batch_size)])
    finally:
        if model is not None:
            model.train(was_training)


def build_encoder(kind: str, out_dim: int, input_shape: tuple[int, ...]) -> nn.Module:
    """The book's one encoder factory: "mlp" (2×256), "convnet" (`ConvNet`) or "resnet18" (`ResNet18Cifar`)
    from inputs of ``input_shape`` (C, H, W) to ``out_dim`` features."""
    if kind not in ENCODERS:
        raise ValueError(f"encoder kind must be one of {ENCODERS}, got {kind!r}")
    if kind == "mlp":
        return MLP(math.prod(input_shape), out_dim, hidden=256, depth=2)
    if len(input_shape) != 3:
        raise ValueError(f"a {kind} encoder needs image inputs (C, H, W), got input shape {input_shape}")
    return (ConvNet if kind == "convnet" else ResNet18Cifar)(out_dim, in_channels=input_shape[0])


def dense_stack(sizes: list[int], activation=nn.ReLU) -> nn.Sequential:
    """Linear layers of the given widths with ``activation`` between them (none after the last): the VAE families'
    encoders, decoders and classifier heads."""
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(a, b), activation()]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


class MLP(nn.Sequential):
    """Flatten, then ``depth`` hidden layers of ``hidden`` units with ``activation``, then a linear output."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 256, depth: int = 2, activation=nn.ReLU):
        if depth < 0 or hidden < 1 or in_dim < 1 or out_dim < 1:
            raise ValueError(f"MLP needs in_dim, out_dim, hidden >= 1 and depth >= 0; got "
                             f"{in_dim=}, {out_dim=}, {hidden=}, {depth=}")
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), activation()]
            width = hidden
        layers.append(nn.Linear(width, out_dim))
        super().__init__(*layers)
        self.in_dim, self.out_dim = in_dim, out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x[0].numel() != self.in_dim:
            raise ValueError(f"MLP expects inputs with {self.in_dim} features, got shape {tuple(x.shape)}")
        return super().forward(x)


class ConvNet(nn.Module):
    """A small ConvNet for 28×28 (or 32×32) images: two conv blocks, then an MLP to ``out_dim``."""

    def __init__(self, out_dim: int, in_channels: int = 1, width: int = 32, hidden: int = 128):
        super().__init__()
        if out_dim < 1 or in_channels < 1 or width < 1:
            raise ValueError(f"need out_dim, in_channels, width >= 1; got {out_dim}, {in_channels}, {width}")
        self.in_channels = in_channels
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(2 * width * 16, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"ConvNet expects (N, {self.in_channels}, H, W) images, got {tuple(x.shape)}")
        return self.head(self.features(x))


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18Cifar(nn.Module):
    """ResNet-18 for 32×32 images: a 3×3 stem without max-pool, four stages of two basic blocks,
    global average pooling, then a linear map to ``out_dim`` (the latent z, or logits)."""

    def __init__(self, out_dim: int, in_channels: int = 3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        blocks, c_in = [], 64
        for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [_BasicBlock(c_in, c_out, stride), _BasicBlock(c_out, c_out, 1)]
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Linear(512, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"ResNet18Cifar expects (N, C, H, W) images, got {tuple(x.shape)}")
        h = self.blocks(self.stem(x))
        return self.out(h.mean(dim=(2, 3)))
