"""Fixtures of the backends tests: configs, the fake upstream, the fake CLIs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from muxlang.compiler.plan import ResolvedConfig
from muxlang.config.models import BackendConfig, DefaultsConfig, RoleConfig
from tests.fakes.llm_server import FakeLLMServer, fake_llm_server

FAKE_BIN = Path(__file__).resolve().parents[1] / "fakes" / "bin"

MakeConfig = Callable[..., ResolvedConfig]


@pytest.fixture(scope="module")
def _module_server() -> Iterator[FakeLLMServer]:
    with fake_llm_server() as server:
        yield server


@pytest.fixture
def llm_server(_module_server: FakeLLMServer) -> FakeLLMServer:
    """The shared fake upstream, emptied of script and records for each test."""
    _module_server.reset()
    _module_server.default = _default_echo
    return _module_server


def _default_echo(request: Any) -> Any:
    from tests.fakes.llm_server import echo

    return echo(request)


@pytest.fixture
def make_config(tmp_path: Path) -> MakeConfig:
    """``make_config(backends={name: {...}}, roles={name: {...}}, max_concurrent=8)``."""

    def make(
        backends: dict[str, dict[str, Any]] | None = None,
        roles: dict[str, dict[str, Any]] | None = None,
        max_concurrent: int = 8,
    ) -> ResolvedConfig:
        return ResolvedConfig(
            project_root=tmp_path,
            defaults=DefaultsConfig(max_concurrent=max_concurrent),
            backends={k: BackendConfig.model_validate(v) for k, v in (backends or {}).items()},
            roles={k: RoleConfig.model_validate(v) for k, v in (roles or {}).items()},
        )

    return make


@pytest.fixture
def environ() -> dict[str, str]:
    """A clean environment for backends: PATH with the fake CLIs first."""
    return {"PATH": f"{FAKE_BIN}{os.pathsep}{os.environ.get('PATH', os.defpath)}"}
