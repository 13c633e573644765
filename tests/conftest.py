"""Shared fixtures; puts tests/ on sys.path for the helper modules."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from rex.core import Rex  # noqa: E402


@pytest.fixture
def attach_dir(tmp_path: Path) -> Path:
    path = tmp_path / "attachments"
    path.mkdir()
    return path


@pytest.fixture
def demo(tmp_path: Path, attach_dir: Path) -> Iterator[Rex]:
    """The demo application on a local directory and SQLite, made active."""
    app = Rex("rex.attach_demo", attach_dir=str(attach_dir),
              db=f"sqlite:///{tmp_path}/demo.sqlite")
    with app:
        yield app
