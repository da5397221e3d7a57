"""Fixtures for the run-record tests (their helpers: records_support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.llm_server import FakeLLMServer, fake_llm_server


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project (a `.git` marks its root)."""
    root = tmp_path / "proj"
    (root / ".git").mkdir(parents=True)
    return root


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    with fake_llm_server() as server:
        yield server
