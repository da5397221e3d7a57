"""Fixtures the config tests share: a fake home and a project (a git checkout)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A fake home directory; tests pass it through ``environ``, never the real one."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project root: a folder with ``.git`` in it."""
    path = tmp_path / "project"
    (path / ".git").mkdir(parents=True)
    return path
