"""The Adapter base class: what every protocol gets from it, a new one included."""

from __future__ import annotations

import json
from typing import Any

import pytest

from muxlang.config.models import BackendConfig
from muxlang.llm import ChatRequest, ChatResponse, StreamEvent, TextDelta
from muxlang.runtime.backends.protocols import adapter_for
from muxlang.runtime.backends.protocols.common import Adapter, Decoder, MalformedResponse


class _Careless:
    """A decoder that trusts every chunk's shape."""

    def feed(self, event: str | None, data: str) -> list[StreamEvent]:
        return [TextDelta(json.loads(data)["text"])]

    def close(self) -> list[StreamEvent]:
        raise KeyError("finish")


class _NewProtocol(Adapter):
    """A protocol written without a thought for malformed answers."""

    name = "new"
    version = "/v2"
    chat_path = "/talk"

    def body(self, request: ChatRequest, config: BackendConfig, stream: bool) -> dict[str, Any]:
        return {}

    def read_answer(self, body: dict[str, Any]) -> ChatResponse:
        return ChatResponse(text=body["text"]["value"])

    def stream_decoder(self) -> Decoder:
        return _Careless()


def test_a_new_protocol_reads_answers_of_the_wrong_shape_as_malformed() -> None:
    adapter = _NewProtocol()
    assert adapter.parse({"text": {"value": "hi"}}).text == "hi"
    for data in ([1], {"text": 1}, {}, "x", None):
        with pytest.raises(MalformedResponse):
            adapter.parse(data)
    decoder = adapter.decoder()
    assert decoder.feed(None, '{"text": "hi"}') == [TextDelta("hi")]
    with pytest.raises(MalformedResponse, match="unexpected stream chunk"):
        decoder.feed(None, "{}")
    with pytest.raises(MalformedResponse, match="unexpected end of stream"):
        decoder.close()


def test_a_new_protocol_gets_its_urls_and_bearer_auth_from_its_paths() -> None:
    adapter = _NewProtocol()
    assert adapter.url("http://h/", "m", False) == "http://h/v2/talk"
    assert adapter.url("http://h/v2", "m", True) == "http://h/v2/talk"
    assert adapter.models_url("http://h") == "http://h/v2/models"
    assert adapter.auth("k") == {"Authorization": "Bearer k"}
    assert adapter.auth(None) == {}


@pytest.mark.parametrize(
    ("protocol", "base", "models"),
    [
        ("openai", "http://h/v1/", "http://h/v1/models"),
        ("anthropic", "http://h", "http://h/v1/models"),
        ("anthropic", "http://h/v1/", "http://h/v1/models"),
        ("gemini", "http://h", "http://h/v1beta/models"),
        ("ollama", "http://h/", "http://h/api/tags"),
    ],
)
def test_doctor_asks_each_protocol_for_its_model_list(
    protocol: str, base: str, models: str
) -> None:
    assert adapter_for(protocol).models_url(base) == models


def test_an_unknown_protocol_name_is_openai() -> None:
    assert adapter_for("something-else") is adapter_for("openai")
