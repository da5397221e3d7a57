"""The client formats the gateway speaks: one registration line each."""

from __future__ import annotations

from muxlang.serve.formats import ClientFormat, anthropic, gemini, ollama, openai, responses

FORMATS: dict[str, ClientFormat] = {
    f.name: f
    for f in (
        openai.FORMAT,
        anthropic.FORMAT,
        responses.FORMAT,
        gemini.FORMAT,
        ollama.FORMAT,
    )
}
