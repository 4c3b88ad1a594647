"""Image corruptions in the style of CIFAR-10-C, generated offline and cached.

No prebuilt CIFAR-10-C is reachable offline, so we generate corruptions with the PyPI package
``imagecorruptions-imaug`` (the ImageNet-C code of Hendrycks & Dietterich, 2019, maintained for numpy 2) at
severities 1-5. Its severities are tuned for ImageNet-sized images, so on 32×32 images they are not the
published CIFAR-10-C severities: results are "corruptions in the style of CIFAR-10-C", never CIFAR-10-C itself.
"""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import torch

from .paths import atomic_write_bytes, data_dir

# The 15 corruptions of CIFAR-10-C / ImageNet-C's test set.
CIFAR_C_CORRUPTIONS = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
                       "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform",
                       "pixelate", "jpeg_compression")
SEVERITIES = (1, 2, 3, 4, 5)


def _corrupt_fn():
    try:
        from imagecorruptions import corrupt
    except ImportError as err:
        raise ImportError("corruptions need the PyPI package imagecorruptions-imaug: "
                          "pip install 'imagecorruptions-imaug==1.1.5' (or pip install 'lvmcls[shift]')") from err
    return corrupt


def corrupt_images(x: torch.Tensor, name: str, severity: int, seed: int = 0, cache: bool = True) -> torch.Tensor:
    """Corrupt a batch of images ``x`` (N, C, H, W) in [0, 1] with ``name`` at ``severity`` (1-5).

    Grey images are repeated to RGB and images smaller than 32×32 are padded to 32×32 (the package's minimum),
    then cropped and averaged back. The result is cached under ``LVMCLS_DATA/corruptions`` keyed by the
    images' hash, the corruption, the severity and the seed, and written atomically.
    """
    if name not in CIFAR_C_CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; choose from {CIFAR_C_CORRUPTIONS}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity}")
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"x must be (N, 1 or 3, H, W) images, got {tuple(x.shape)}")
    u8 = (x.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    key = hashlib.sha256(u8.tobytes() + json.dumps([name, severity, seed]).encode()).hexdigest()[:20]
    path = data_dir() / "corruptions" / f"{name}-s{severity}-{key}.npy"
    if cache and path.is_file():
        try:
            out = np.load(path, allow_pickle=False)
            if out.shape == u8.shape:
                return torch.from_numpy(out).permute(0, 3, 1, 2).float().div(255).to(x.device)
        except (OSError, ValueError):
            pass  # a damaged cache entry is regenerated
    corrupt = _corrupt_fn()
    n, h, w, c = u8.shape
    pad_h, pad_w = max(0, 32 - h), max(0, 32 - w)
    state = np.random.get_state()
    np.random.seed(seed)  # the package draws its noise from numpy's global generator
    try:
        out = np.empty_like(u8)
        for i in range(n):
            img = np.repeat(u8[i], 3, axis=2) if c == 1 else u8[i]
            img = np.pad(img, ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
            res = np.asarray(corrupt(img, corruption_name=name, severity=severity), dtype=np.float32)
            res = res[pad_h // 2: pad_h // 2 + h, pad_w // 2: pad_w // 2 + w]
            out[i] = np.clip(res.mean(axis=2, keepdims=True) if c == 1 else res, 0, 255).round().astype(np.uint8)
    finally:
        np.random.set_state(state)
    if cache:
        buf = io.BytesIO()
        np.save(buf, out, allow_pickle=False)
        atomic_write_bytes(path, buf.getvalue())
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div(255).to(x.device)
