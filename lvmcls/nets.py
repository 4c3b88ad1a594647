"""Networks: plain ``nn.Module``s that map inputs to features or scores."""

from __future__ import annotations

import torch
from torch import nn


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
