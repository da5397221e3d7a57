"""Helpers for the run-record tests: the real ``muxlang`` CLI as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.llm_server import FakeLLMServer, fake_llm_server

PYTHON = sys.executable


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without muxlang's own variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUXLANG_")}
    env["XDG_CONFIG_HOME"] = env.get("MUXLANG_TEST_XDG", "/nonexistent-xdg")
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


def mux(
    root: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """``muxlang -C root ARGS`` to its end, output captured as text."""
    return subprocess.run(
        [PYTHON, "-m", "muxlang", "-C", str(root), *args],
        cwd=root,
        env=dict(env) if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def mux_json(root: Path, *args: str, env: Mapping[str, str] | None = None) -> Any:
    done = mux(root, *args, "--output", "json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def write(root: Path, body: str, name: str = "wf.toml") -> Path:
    path = root / name
    path.write_text(textwrap.dedent(body))
    return path


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
