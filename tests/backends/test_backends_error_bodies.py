"""Which message each protocol finds in an HTTP error body (shown in the BackendError).

All four read the usual ``{"error": {"message": ...}}`` / ``{"error": "..."}`` through
``protocols.common.error_field``; each adds its own shapes around it.
"""

from __future__ import annotations

from typing import Any

import pytest

from muxlang.runtime.backends.protocols import adapter_for

NESTED = {"error": {"message": "deep"}}
BARE = {"error": "boom"}
TOP = {"message": "top"}
EMPTY_ERROR_TOP = {"error": "", "message": "top"}
DETAIL = {"detail": "det"}
LISTED = [{"error": {"message": "listed"}}]

#: body -> the message per protocol (anthropic, gemini, ollama, openai)
CASES: list[tuple[Any, tuple[str | None, str | None, str | None, str | None]]] = [
    (NESTED, ("deep", "deep", "deep", "deep")),
    (BARE, ("boom", "boom", "boom", "boom")),
    # a top-level message: Anthropic and OpenAI-compatible servers send it
    (TOP, ("top", None, None, "top")),
    # an empty error string: OpenAI looks further, the others give the empty string
    (EMPTY_ERROR_TOP, ("", "", "", "top")),
    # FastAPI-style {"detail": ...}: OpenAI-compatible servers only
    (DETAIL, (None, None, None, "det")),
    # some Gemini endpoints wrap the error in a list
    (LISTED, (None, "listed", None, None)),
    ({"error": {}}, (None, None, None, None)),
    ("not json object", (None, None, None, None)),
]


@pytest.mark.parametrize(("body", "expected"), CASES)
def test_error_message_of_each_protocol(body: Any, expected: tuple[str | None, ...]) -> None:
    found = tuple(
        adapter_for(name).error_message(body)
        for name in ("anthropic", "gemini", "ollama", "openai")
    )
    assert found == expected
