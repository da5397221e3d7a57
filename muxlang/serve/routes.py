"""Which endpoint a request path names, and the client format it implies.

Paths are accepted with or without ``/v1`` (and Gemini's ``/v1beta``):

- ``POST /v1/chat/completions`` — OpenAI Chat Completions
- ``POST /v1/responses`` — OpenAI Responses
- ``POST /v1/messages`` — Anthropic Messages; ``POST /v1/messages/count_tokens``
- ``POST /v1beta/models/{model}:generateContent`` / ``:streamGenerateContent`` — Gemini
- ``POST /api/chat`` and ``GET /api/tags`` — Ollama
- ``GET /v1/models``, ``GET /v1/models/{id}``, ``GET /health``, ``GET /metrics``
"""

from __future__ import annotations

from urllib.parse import unquote

from muxlang._frozen import frozen

_PLAIN = {
    "/chat/completions": ("chat", "openai"),
    "/responses": ("responses", "responses"),
    "/messages": ("messages", "anthropic"),
    "/messages/count_tokens": ("count_tokens", "anthropic"),
    "/api/chat": ("chat", "ollama"),
    "/api/tags": ("tags", "ollama"),
    "/models": ("models", None),
    "/health": ("health", None),
    "/healthz": ("health", None),
    "/metrics": ("metrics", None),
}
_GEMINI = {":generateContent": False, ":streamGenerateContent": True}


@frozen(slots=True)
class Route:
    #: chat, responses, messages, count_tokens, tags, models, model, health, metrics
    name: str
    #: the client format the path implies (None: from the headers)
    fmt: str | None = None
    #: Gemini: the model named in the path, and whether it asked for a stream
    model: str | None = None
    stream: bool = False


def route_of(path: str) -> Route | None:
    path = path.rstrip("/") or "/"
    for prefix in ("/v1/", "/v1beta/"):
        if path.startswith(prefix):
            path = path[len(prefix) - 1 :]
            break
    found = _PLAIN.get(path)
    if found is not None:
        return Route(*found)
    if path.startswith("/models/"):
        name = path[len("/models/") :]
        for method, stream in _GEMINI.items():
            if name.endswith(method):
                return Route("chat", "gemini", unquote(name[: -len(method)]), stream)
        return Route("model")
    return None
