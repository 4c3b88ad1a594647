"""Shared fixtures. Data tests use the real data cache (LVMCLS_DATA), filled on first use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = Path(str(item.fspath)).name
        if name in ("test_chapters.py", "test_book.py"):
            item.add_marker(pytest.mark.book)
        if name == "test_data.py" or "mnist" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.data)


@pytest.fixture(scope="session")
def mnist():
    from lvmcls.data import load_dataset

    return load_dataset("mnist")


@pytest.fixture
def offline(monkeypatch):
    """No network for lvmcls.data, whatever the machine has."""
    monkeypatch.setenv("LVMCLS_OFFLINE", "1")


@pytest.fixture
def in_ci() -> bool:
    return os.environ.get("CI", "") not in ("", "0", "false")
