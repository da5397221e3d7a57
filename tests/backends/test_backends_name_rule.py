"""Inside a role, a name that is a backend means the backend; only names that are not
backends refer to roles (a built-in role never hijacks a user's backend)."""

from __future__ import annotations

from typing import Any

import pytest

from muxlang.llm import BackendError, ChatRequest, ErrorKind
from muxlang.runtime.backends import open_router
from tests.backends.conftest import MakeConfig
from tests.fakes.llm_server import FakeLLMServer, Reply


def by_model(answers: dict[str, str]) -> Any:
    def respond(request: Any) -> Reply:
        return Reply.answer(answers[request.model])

    return respond


def http(server: FakeLLMServer, model: str) -> dict[str, Any]:
    return {"command": server.base_url(), "model": model, "max_retries": 0}


async def test_a_backend_named_like_a_role_answers_as_the_backend(
    llm_server: FakeLLMServer, make_config: MakeConfig, environ: dict[str, str]
) -> None:
    llm_server.default = by_model({"q": "backend quick", "o": "other"})
    config = make_config(
        backends={"quick": http(llm_server, "q"), "other": http(llm_server, "o")},
        roles={
            # like the built-in role `quick`, which must not shadow the user's backend
            "quick": {"backends": ["other"]},
            "panel": {"backends": ["other", "quick"], "execution": "parallel"},
            "fastest": {"backends": ["quick"], "execution": "race"},
        },
    )
    async with open_router(config, environ=environ) as router:
        panel = await router.query("panel", ChatRequest.from_prompt("p"), kind="role")
        fastest = await router.query("fastest", ChatRequest.from_prompt("p"), kind="role")
        as_role = await router.query("quick", ChatRequest.from_prompt("p"), kind="role")
        as_backend = await router.query("quick", ChatRequest.from_prompt("p"), kind="backend")
        resolved = router.resolve("panel")
        assert router.availability("quick", "role").ok
        assert router.kind("quick") == "backend"

    assert panel.outputs == {"other": "other", "quick": "backend quick"}
    assert fastest.backend == "quick"
    assert fastest.output == "backend quick"
    # a step's explicit `role = "quick"` still reaches the role
    assert as_role.backend == "other"
    assert as_backend.output == "backend quick"
    assert resolved.backends == ("other", "quick")


async def test_a_role_cycle_is_a_config_error_not_a_recursion(
    make_config: MakeConfig, environ: dict[str, str]
) -> None:
    config = make_config(
        backends={"b": {"command": "fake-llm"}},
        roles={"x": {"backends": ["y"]}, "y": {"backends": ["x"]}},
    )
    async with open_router(config, environ=environ) as router:
        with pytest.raises(BackendError) as info:
            await router.query("x", ChatRequest.from_prompt("p"), kind="role")
    assert info.value.kind is ErrorKind.CONFIG
    assert "role cycle: x → y → x" in str(info.value)
