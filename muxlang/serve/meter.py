"""What one gateway request used: tokens per backend, noted where answers are produced.

The app opens a :func:`metering` block around a request; the gateway calls
:func:`note_usage` for every answer's usage (a ``Finish`` event, a whole
``ChatResponse``). A context variable carries the request's :class:`Meter`, so
tasks a request starts (trio copies the context into them) note into it too.
Outside a request, :func:`note_usage` does nothing.

A request whose key counts tokens (``tpm``, ``max_cost``) is metered with
``wants_usage``: a relayed OpenAI stream whose client did not ask for usage
(``stream_options.include_usage``) is asked for it upstream all the same, and the
usage is counted and taken out of what the client gets.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from muxlang.llm import (
    Availability,
    Backend,
    ChatRequest,
    ChatResponse,
    Finish,
    StreamEvent,
    Usage,
)
from muxlang.serve.state import KeyLimits
from muxlang.serve.upstream import BackendSource, Relay


@dataclass
class Meter:
    """One request's usage, as ``(backend, usage)`` pairs in the order they arrived."""

    used: list[tuple[str, Usage]] = field(default_factory=list)
    #: every answer's usage is needed, even one the client did not ask for (a class
    #: attribute, not a field: set only for such requests, the others pay nothing)
    wants_usage = False

    def tokens(self) -> tuple[int, int]:
        """Input and output tokens, summed over backends."""
        return (
            sum(u.input_tokens for _, u in self.used),
            sum(u.output_tokens for _, u in self.used),
        )


_CURRENT: ContextVar[Meter | None] = ContextVar("muxlang_serve_meter", default=None)


def note_usage(backend: str, usage: Usage | None) -> None:
    """Count ``usage`` (of an answer by ``backend``) for the current request."""
    meter = _CURRENT.get()
    if meter is not None and usage is not None:
        meter.used.append((backend, usage))


@contextmanager
def metering(limits: KeyLimits | None = None) -> Iterator[Meter]:
    """A fresh :class:`Meter` for the request running inside the block, whose key has
    ``limits``: one that counts tokens (``tpm``, ``max_cost``) wants every usage."""
    meter = Meter()
    if limits is not None and (limits.tpm is not None or limits.max_cost is not None):
        meter.wants_usage = True
    token = _CURRENT.set(meter)
    try:
        yield meter
    finally:
        _CURRENT.reset(token)


# --------------------------------------------------------------------------- the seams


def usage_in(obj: Any) -> Usage | None:
    """The token counts in one answer object or stream event of any client format
    (OpenAI ``usage.prompt_tokens``, Anthropic and Responses ``usage.input_tokens``, also
    under ``message`` / ``response``; Gemini ``usageMetadata``; Ollama ``eval_count``)."""
    if not isinstance(obj, dict):
        return None
    for holder in (obj, obj.get("message"), obj.get("response")):
        if isinstance(holder, dict) and isinstance(holder.get("usage"), dict):
            u = holder["usage"]
            return Usage(
                _count(u.get("input_tokens", u.get("prompt_tokens"))),
                _count(u.get("output_tokens", u.get("completion_tokens"))),
            )
    meta = obj.get("usageMetadata")
    if isinstance(meta, dict):
        return Usage(_count(meta.get("promptTokenCount")), _count(meta.get("candidatesTokenCount")))
    if "eval_count" in obj or "prompt_eval_count" in obj:
        return Usage(_count(obj.get("prompt_eval_count")), _count(obj.get("eval_count")))
    return None


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _marked(data: bytes) -> bool:
    """Whether ``data`` may hold token counts (two ``in`` tests: every relayed chunk
    is looked at, and a generator per chunk cost more than the search)."""
    return b'"usage' in data or b"eval_count" in data


#: a relayed stream's unfinished line longer than this is not kept for usage
_MAX_LINE = 1 << 20


class _StreamUsage:
    """Token counts seen in a relayed stream's lines (SSE ``data:`` or NDJSON); each
    count is the largest seen (Anthropic repeats and grows them)."""

    def __init__(self) -> None:
        self.tail = b""
        self.input = 0
        self.output = 0

    def feed(self, chunk: bytes) -> None:
        data = self.tail + chunk
        if not _marked(data):
            cut = data.rfind(b"\n")
            self.tail = data[cut + 1 :] if len(data) - cut <= _MAX_LINE else b""
            return
        *lines, tail = data.split(b"\n")
        self.tail = tail if len(tail) <= _MAX_LINE else b""
        for line in lines:
            if _marked(line):
                self._line(line)

    def _line(self, line: bytes) -> None:
        text = line.strip()
        if text.startswith(b"data:"):
            text = text[5:].strip()
        try:
            self._note(usage_in(json.loads(text)))
        except ValueError:
            return

    def _note(self, usage: Usage | None) -> None:
        if usage is not None:
            self.input = max(self.input, usage.input_tokens)
            self.output = max(self.output, usage.output_tokens)

    def strip(self, chunk: bytes) -> bytes:
        """``chunk`` — whole SSE events of an OpenAI stream the gateway asked usage for,
        not its client — with the usage counted and taken out: the chunk without
        choices that carries it is dropped, a ``"usage": null`` (OpenAI puts one in
        every other chunk) or counts in a chunk with choices are removed."""
        if not _marked(chunk):
            return chunk
        out: list[bytes] = []
        dropping = False
        for line in chunk.split(b"\n"):
            if dropping:  # the rest of a dropped event, up to its blank line
                dropping = bool(line.strip())
                continue
            if line.startswith(b"data:") and b'"usage"' in line:
                if line.count(b'"usage"') == 1:  # a ``null`` (nothing to count) goes
                    bare = line.replace(b',"usage":null', b"", 1)  # unparsed (as OpenAI
                    found = len(line) - len(bare)  # writes it; else the pattern)
                    if not found:
                        bare, found = _NULL_USAGE.subn(b"", line, count=1)
                    if found:
                        out.append(bare)
                        continue
                try:
                    data = json.loads(line[5:])
                except ValueError:
                    data = None
                if isinstance(data, dict) and "usage" in data:
                    self._note(usage_in(data))
                    if data.get("choices") == []:
                        dropping = True
                        continue
                    line = _without_usage(line, data)
            out.append(line)
        return b"\n".join(out)

    def usage(self) -> Usage | None:
        return Usage(self.input, self.output) if self.input or self.output else None


#: a ``"usage": null`` and the comma that separates it from its neighbour (the bytes
#: ``"usage"`` are never inside a JSON string, where quotes are escaped)
_NULL_USAGE = re.compile(rb',\s*"usage"\s*:\s*null|"usage"\s*:\s*null\s*,?\s*')


def _without_usage(line: bytes, data: dict[str, Any]) -> bytes:
    """An SSE ``data:`` line without its object's ``usage``, written again (compact)."""
    rest = {k: v for k, v in data.items() if k != "usage"}
    end = b"\r" if line.endswith(b"\r") else b""
    return b"data: " + json.dumps(rest, separators=(",", ":")).encode() + end


def _unasked(body: Mapping[str, Any]) -> bool:
    """Whether an OpenAI stream's client did not ask for usage."""
    options = body.get("stream_options")
    return not (isinstance(options, Mapping) and options.get("include_usage"))


class MeteredBackend:
    """A backend whose answers' usage is noted for the current request."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name

    def availability(self) -> Availability:
        return self.inner.availability()

    async def complete(self, request: ChatRequest) -> ChatResponse:
        response = await self.inner.complete(request)
        note_usage(response.backend or self.name, response.usage)
        return response

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        events = self.inner.stream(request)
        try:
            async for event in events:
                if isinstance(event, Finish):
                    note_usage(self.name, event.usage)
                yield event
        finally:
            close = getattr(events, "aclose", None)
            if close is not None:
                await close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class MeteredBackends:
    """The gateway's backend source, with every backend metered."""

    def __init__(self, inner: BackendSource) -> None:
        self.inner = inner
        self._wrapped: dict[str, MeteredBackend] = {}

    def backend(self, name: str) -> Backend:
        inner = self.inner.backend(name)
        wrapped = self._wrapped.get(name)
        if wrapped is None or wrapped.inner is not inner:
            wrapped = self._wrapped[name] = MeteredBackend(inner)
        return wrapped

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class MeteredRelay:
    """Pass-through whose answers' usage is read from the bytes relayed."""

    def __init__(self, inner: Relay) -> None:
        self.inner = inner

    async def complete(
        self, name: str, fmt: str, body: Mapping[str, Any], client_headers: Mapping[str, str]
    ) -> tuple[int, str, bytes]:
        status, content_type, raw = await self.inner.complete(name, fmt, body, client_headers)
        if status < 300 and _marked(raw):
            with suppress(ValueError):
                note_usage(name, usage_in(json.loads(raw)))
        return status, content_type, raw

    async def stream(
        self, name: str, fmt: str, body: Mapping[str, Any], client_headers: Mapping[str, str]
    ) -> AsyncIterator[bytes]:
        seen = _StreamUsage()
        meter = _CURRENT.get() if fmt == "openai" else None
        strip = meter is not None and meter.wants_usage and _unasked(body)
        if strip:
            options = body.get("stream_options") or {}
            body = {**body, "stream_options": {**options, "include_usage": True}}
        chunks = self.inner.stream(name, fmt, body, client_headers)
        try:
            if strip:  # whole events (Passthrough.stream relays only those)
                async for chunk in chunks:
                    chunk = seen.strip(chunk)
                    if chunk:
                        yield chunk
            else:
                async for chunk in chunks:
                    seen.feed(chunk)
                    yield chunk
        finally:
            seen.feed(b"\n")
            note_usage(name, seen.usage())
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
