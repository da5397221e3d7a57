"""Fixtures shared by the live gateway tests: the fake upstreams, and SDK clients
on the ``gateway`` fixture of the module that asks (a module's own fixture of the
same name wins)."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest

from tests.fakes.llm_server import FakeLLMServer, Reply, fake_llm_server


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeLLMServer]:
    with fake_llm_server() as server:
        yield server


@pytest.fixture(scope="module")
def limited() -> Iterator[FakeLLMServer]:
    """An upstream that is always rate limited, asking for 30 s."""
    with fake_llm_server(Reply.rate_limited(retry_after="30")) as server:
        yield server


def _echoing(upstream: FakeLLMServer) -> None:
    upstream.reset()
    upstream.default = lambda r: Reply(text=f"upstream heard: {r.prompt}")


@pytest.fixture
def oa(gateway: str, upstream: FakeLLMServer) -> openai.OpenAI:
    """The OpenAI SDK on the gateway; the upstream answers what it heard."""
    _echoing(upstream)
    return openai.OpenAI(base_url=gateway + "/v1", api_key="unused", max_retries=0, timeout=20)


@pytest.fixture
def an(gateway: str, upstream: FakeLLMServer) -> anthropic.Anthropic:
    """The Anthropic SDK on the gateway; the upstream answers what it heard."""
    _echoing(upstream)
    return anthropic.Anthropic(base_url=gateway, api_key="unused", max_retries=0, timeout=20)
