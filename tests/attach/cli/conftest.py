"""Fixtures of the ``rex attach`` tests (see cli_store.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from backends import Backend  # noqa: E402
from cli_store import Store, new_store  # noqa: E402


@pytest.fixture
def store(backend: Backend, tmp_path: Path) -> Store:
    """A new, empty store of each backend."""
    return new_store(backend, tmp_path)


@pytest.fixture
def local_store(tmp_path: Path) -> Store:
    """A new local store (the side of a migration that is not `store`)."""
    return new_store(Backend("local", {}, enforces_signatures=True, enforces_size=True),
                     tmp_path)

