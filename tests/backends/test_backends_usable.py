"""A request to a backend that cannot be used is the same CONFIG error for every kind.

The CLI and the HTTP backend both ask ``Prepared.usable()`` (runtime/backends/base.py)
before they start: a disabled backend and one whose ``${VAR}`` is not set fail before
any process or connection, with the backend's name and the reason.
"""

from __future__ import annotations

from typing import Any

import pytest

from muxlang.llm import BackendError, ChatRequest, ErrorKind
from muxlang.runtime.backends import open_router
from tests.backends.conftest import MakeConfig

#: nothing listens on port 9 (discard): a request that got that far would be a CONNECTION error
KINDS = {
    "cli": {"command": "fake-llm", "max_retries": 0},
    "http": {"command": "http://127.0.0.1:9/v1", "max_retries": 0},
}


async def _error(config: Any, environ: dict[str, str], stream: bool) -> BackendError:
    async with open_router(config, environ=environ) as router:
        request = ChatRequest.from_prompt("x")
        with pytest.raises(BackendError) as info:
            if stream:
                async for _ in router.backend("b").stream(request):
                    pass
            else:
                await router.complete("b", request, kind="backend")
    return info.value


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_a_disabled_backend_is_a_config_error(
    make_config: MakeConfig, environ: dict[str, str], kind: str, stream: bool
) -> None:
    config = make_config(backends={"b": {**KINDS[kind], "enabled": False}})
    error = await _error(config, environ, stream)
    assert error.kind is ErrorKind.CONFIG
    assert "backend `b` is disabled" in str(error)


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_an_unset_variable_is_a_config_error_naming_it(
    make_config: MakeConfig, environ: dict[str, str], kind: str, stream: bool
) -> None:
    config = make_config(backends={"b": {**KINDS[kind], "model": "${MUX_TEST_UNSET_MODEL}"}})
    error = await _error(config, {k: v for k, v in environ.items() if "MUX_TEST" not in k}, stream)
    assert error.kind is ErrorKind.CONFIG
    assert "MUX_TEST_UNSET_MODEL" in str(error)
