"""Image transforms made on the device: rotated MNIST and the per-class targets of a fixed-output VAE.

Everything is batched (one ``affine_grid`` / ``grid_sample`` call per chunk) and seeded, so a rotated data set is a
pure function of the exact images and the seed; the angles are returned with it.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from .data import TensorSplit


def _check_images(x: torch.Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(x.shape)}: add the channel dimension")
    if not torch.isfinite(x).all():
        raise ValueError("images contain NaN or inf")


def rotate(x: torch.Tensor, angles_deg: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """Rotate each image of ``x`` (N, C, H, W) about its centre by ``angles_deg`` (N,), counter-clockwise as displayed
    (row 0 at the top), bilinear, zeros outside. 0° is the identity and 90° equals ``torch.rot90(x, 1, (2, 3))`` for
    square images (pixel centres map onto pixel centres with ``align_corners=False``)."""
    _check_images(x)
    angles_deg = torch.as_tensor(angles_deg, dtype=x.dtype, device=x.device).reshape(-1)
    if len(angles_deg) != len(x):
        raise ValueError(f"need one angle per image: {len(angles_deg)} angles for {len(x)} images")
    theta = angles_deg * (math.pi / 180)
    cos, sin = theta.cos(), theta.sin()
    zero = torch.zeros_like(cos)
    # affine_grid maps output coordinates (x right, y down, in [-1, 1]) to input coordinates. A counter-clockwise
    # rotation on screen (y down) samples the input at R(-θ) applied in a y-up frame, i.e. [[c, -s], [s, c]] here.
    matrix = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    out = [F.grid_sample(x[i:i + chunk], F.affine_grid(matrix[i:i + chunk], list(x[i:i + chunk].shape),
                                                       align_corners=False),
                         mode="bilinear", padding_mode="zeros", align_corners=False)
           for i in range(0, len(x), chunk)]
    return torch.cat(out).clamp_(0, 1) if x.min() >= 0 and x.max() <= 1 else torch.cat(out)


def rotated_split(split: TensorSplit, seed: int, max_angle: float = 180.0) -> tuple[TensorSplit, torch.Tensor]:
    """Every image rotated by an angle drawn uniformly from [-max_angle, max_angle] degrees with ``seed``; returns the
    rotated split (same labels) and the angles (N,) in degrees."""
    if not 0 <= max_angle <= 180:
        raise ValueError(f"max_angle must lie in [0, 180] degrees, got {max_angle}")
    g = torch.Generator().manual_seed(seed)
    angles = ((2 * torch.rand(len(split), generator=g) - 1) * max_angle).to(split.x.device)
    return TensorSplit(rotate(split.x, angles), split.y), angles


def class_templates(split: TensorSplit, num_classes: int) -> torch.Tensor:
    """The mean image of each class, (num_classes, C, H, W): the fixed-output VAE's per-class target."""
    counts = torch.bincount(split.y, minlength=num_classes)
    if len(counts) > num_classes or (counts == 0).any():
        raise ValueError(f"every label must lie in [0, {num_classes}) and every class must occur; counts {counts.tolist()}")
    sums = torch.zeros(num_classes, split.x[0].numel(), device=split.x.device).index_add_(0, split.y,
                                                                                        split.x.flatten(1))
    return (sums / counts[:, None]).reshape(num_classes, *split.x.shape[1:])


def gaussian_blob_templates(num_classes: int, side: int = 28, sigma: float = 2.0, radius: float = 8.0,
                            device: torch.device | str | None = None) -> torch.Tensor:
    """One Gaussian blob per class, centred on a circle of ``radius`` pixels, peak 1: (num_classes, 1, side, side),
    on ``device`` (default: the CPU). The other kind of fixed output the paper mentions."""
    if num_classes < 1 or sigma <= 0:
        raise ValueError(f"need num_classes >= 1 and sigma > 0, got {num_classes}, {sigma}")
    phi = torch.arange(num_classes, device=device) * (2 * math.pi / num_classes)
    centre = (side - 1) / 2
    cy, cx = centre - radius * phi.cos(), centre + radius * phi.sin()
    grid = torch.arange(side, dtype=torch.float32, device=device)
    d2 = (grid[None, :, None] - cy[:, None, None]) ** 2 + (grid[None, None, :] - cx[:, None, None]) ** 2
    return torch.exp(-d2 / (2 * sigma ** 2))[:, None]


def _check_class_weights(split: TensorSplit, class_weights) -> torch.Tensor:
    class_weights = torch.as_tensor(class_weights, dtype=torch.float32)
    if class_weights.ndim != 1 or not torch.isfinite(class_weights).all() or (class_weights < 0).any():
        raise ValueError("class_weights must be a 1-D tensor of finite non-negative weights, one per class")
    if int(split.y.max()) >= len(class_weights):
        raise ValueError(f"labels reach {int(split.y.max())} but only {len(class_weights)} class weights were given")
    return class_weights


def class_reweighted(split: TensorSplit, class_weights: torch.Tensor, seed: int,
                     return_index: bool = False) -> TensorSplit | tuple[TensorSplit, torch.Tensor]:
    """A resample of ``split`` of the same size in which each example is drawn with probability proportional to its
    class's weight (with replacement, by ``seed``; with ``return_index`` also the drawn indices). The weights'
    *ratios* set the class shares, so the up-weighted classes grow and the others shrink: on a balanced set of 10
    classes, weights 10 on three of them leave each other class ~N/37 draws (fewer distinct images than it had). For "repeat those classes" see `class_repeated`."""
    class_weights = _check_class_weights(split, class_weights)
    g = torch.Generator().manual_seed(seed)
    index = torch.multinomial(class_weights[split.y.cpu()], len(split), replacement=True, generator=g)
    return (split.subset(index), index) if return_index else split.subset(index)


def class_repeated(split: TensorSplit, repeats) -> TensorSplit:
    """Every example of class c repeated ``repeats[c]`` times (an integer >= 1 per class); nothing is dropped, so
    repeats (10, 10, 10, 1, …) multiply the counts of classes 0-2 by 10 and keep every other image once. The result
    keeps the order of ``split`` with the copies of an example adjacent (train with shuffling)."""
    repeats = torch.as_tensor(repeats)
    if repeats.ndim != 1 or repeats.is_floating_point() or (repeats < 1).any():
        raise ValueError(f"repeats must be a 1-D integer tensor with one count >= 1 per class, got {repeats}")
    _check_class_weights(split, repeats)
    index = torch.repeat_interleave(torch.arange(len(split)), repeats[split.y.cpu()])
    return split.subset(index)
