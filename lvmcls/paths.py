"""Where things live: the project root, the data cache, the checkpoint cache and the results folder.

Every location can be overridden by an environment variable, so the same code runs in a checkout,
on Colab and in CI:

- ``LVMCLS_DATA``     data cache (default ``~/.cache/lvmcls/data``)
- ``LVMCLS_CACHE``    checkpoint cache (default ``~/.cache/lvmcls/checkpoints``)
- ``LVMCLS_RESULTS``  results folder (default ``<project root>/results``)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: cwd) that holds ``_config.yml`` and ``lvmcls/``.

    Falls back to ``start`` itself when there is none (e.g. a notebook opened alone on Colab).
    """
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_config.yml").is_file() and (folder / "lvmcls").is_dir():
            return folder
    return here


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lvmcls"


def data_dir() -> Path:
    return Path(os.environ.get("LVMCLS_DATA", _cache_home() / "data")).expanduser()


def checkpoint_dir() -> Path:
    return Path(os.environ.get("LVMCLS_CACHE", _cache_home() / "checkpoints")).expanduser()


def results_dir() -> Path:
    return Path(os.environ.get("LVMCLS_RESULTS", project_root() / "results")).expanduser()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    A reader never sees a half-written file, and an interrupted write leaves nothing behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))
