"""In-process stand-ins for the gateway tests: scripted backends and an ASGI driver."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from muxlang.compiler.plan import ResolvedConfig
from muxlang.config.models import BackendConfig, RoleConfig, ServeConfig
from muxlang.llm import (
    Availability,
    BackendError,
    ChatRequest,
    ChatResponse,
    ErrorKind,
    Finish,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from muxlang.runtime.backends.sse import decode as parse_sse
from muxlang.serve.app import GatewayApp
from muxlang.serve.gateway import Gateway

#: one scripted call: an error raised before anything, or events (an error among
#: them is raised at that point of the stream), or a delay marker ("sleep", seconds)
Script = BackendError | Sequence[StreamEvent | BackendError | tuple[str, float]]


@dataclass
class Clock:
    """A clock for ``now=`` parameters that stands still until a test sets ``t``."""

    t: float

    def __call__(self) -> float:
        return self.t


def answer(text: str, usage: tuple[int, int] = (3, 2)) -> list[StreamEvent]:
    return [TextDelta(text), Finish("stop", Usage(*usage))]


def rate_limited(name: str, retry_after: float | None = None) -> BackendError:
    return BackendError(
        name, ErrorKind.RATE_LIMIT, "HTTP 429: slow down", status=429, retry_after=retry_after
    )


@dataclass
class FakeBackend:
    name: str
    script: list[Script] = field(default_factory=list)
    default: Script | None = None
    ok: bool = True
    requests: list[ChatRequest] = field(default_factory=list)
    cancelled: int = 0

    def availability(self) -> Availability:
        return Availability(self.ok, "" if self.ok else "not on PATH")

    def _next(self, request: ChatRequest) -> Script:
        self.requests.append(request)
        if self.script:
            return self.script.pop(0)
        if self.default is not None:
            return self.default
        text = request.messages[-1].content if request.messages else ""
        return answer(f"{self.name}: {text}")

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        step = self._next(request)
        if isinstance(step, BackendError):
            raise step
        try:
            for item in step:
                if isinstance(item, BackendError):
                    raise item
                if isinstance(item, tuple):
                    await trio.sleep(item[1])
                    continue
                yield item
        except trio.Cancelled:
            self.cancelled += 1
            raise

    async def complete(self, request: ChatRequest) -> ChatResponse:
        text: list[str] = []
        calls: dict[int, list[str]] = {}
        ids: dict[int, tuple[str, str]] = {}
        finish: Finish = Finish()
        async for event in self.stream(request):
            if isinstance(event, TextDelta):
                text.append(event.text)
            elif isinstance(event, ToolCallDelta):
                calls.setdefault(event.index, []).append(event.arguments)
                if event.id or event.name:
                    ids[event.index] = (event.id or "", event.name or "")
            else:
                finish = event
        return ChatResponse(
            "".join(text),
            tuple(ToolCall(ids[i][0], ids[i][1], "".join(calls[i])) for i in sorted(calls)),
            finish.reason,
            finish.usage,
            backend=self.name,
        )


@dataclass
class FakeBackends:
    backends: dict[str, FakeBackend]

    def backend(self, name: str) -> FakeBackend:
        return self.backends[name]


def make_config(
    backends: Sequence[str],
    roles: Mapping[str, tuple[list[str], str]] | None = None,
    *,
    serve: ServeConfig | None = None,
) -> ResolvedConfig:
    return ResolvedConfig(
        project_root=Path("."),
        backends={n: BackendConfig(command=f"fake-{n}") for n in backends},
        roles={
            name: RoleConfig(backends=entries, execution=mode)  # type: ignore[arg-type]
            for name, (entries, mode) in (roles or {}).items()
        },
        serve=serve or ServeConfig(),
    )


def make_gateway(
    names: Sequence[str],
    roles: Mapping[str, tuple[list[str], str]] | None = None,
    *,
    cooldown: float = 30.0,
    **app_kw: Any,
) -> tuple[GatewayApp, dict[str, FakeBackend]]:
    fakes = {n: FakeBackend(n) for n in names}
    gateway = Gateway(make_config(names, roles), FakeBackends(fakes), cooldown=cooldown)
    return GatewayApp(gateway, **app_kw), fakes


@dataclass
class Result:
    status: int
    headers: dict[str, str]
    chunks: list[bytes]

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def events(self) -> list[tuple[str | None, str]]:
        return parse_sse(self.body)

    @property
    def data(self) -> list[Any]:
        """The JSON payloads of an SSE body (``[DONE]`` kept as the string)."""
        return [d if d == "[DONE]" else json.loads(d) for _, d in self.events]


async def call(
    app: GatewayApp,
    method: str,
    path: str,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    *,
    raw: bytes | None = None,
    body_pieces: int = 1,
    disconnect_after: float | None = None,
) -> Result:
    """Drive the ASGI app directly (no sockets) and collect what it sends."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    hdrs = {"content-type": "application/json", **(headers or {})}
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in hdrs.items()],
    }
    step = max(1, -(-len(data) // body_pieces))
    pieces = [data[i : i + step] for i in range(0, len(data), step)] or [b""]
    incoming = [
        {"type": "http.request", "body": p, "more_body": i < len(pieces) - 1}
        for i, p in enumerate(pieces)
    ]

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        if disconnect_after is None:
            await trio.sleep_forever()
        await trio.sleep(disconnect_after or 0)
        return {"type": "http.disconnect"}

    status = 0
    out_headers: dict[str, str] = {}
    chunks: list[bytes] = []
    finished = False

    async def send(message: Mapping[str, Any]) -> None:
        nonlocal status, finished
        assert not finished, "sent after the response ended"
        if message["type"] == "http.response.start":
            status = message["status"]
            out_headers.update({k.decode(): v.decode() for k, v in message["headers"]})
        else:
            chunks.append(message.get("body", b""))
            finished = not message.get("more_body", False)

    await app(scope, receive, send)
    assert finished or disconnect_after is not None, "the response was never completed"
    return Result(status, out_headers, chunks)
