"""A scripted, in-process :class:`~muxlang.llm.QueryService` for tests and benchmarks
(a test double: it lives beside the tests, not in the shipped package).

It answers by role or backend name from a script, never touches the network,
and waits with :func:`trio.sleep` so that ``trio.testing.MockClock`` makes delays
instant. Each script entry is one of:

- a string: the answer text;
- a :class:`Reply`: text, a delay, an error of an :class:`~muxlang.llm.ErrorKind`,
  or a parallel role's per-backend ``outputs``;
- a callable ``(ChatRequest) -> str | Reply``: computes the answer from the request;
- a list of the above: one per call, in order; the last repeats.

Example::

    service = ScriptedQueryService({
        "analyzer": Reply("looks fine", delay=2.0),
        "coder": [Reply(error=ErrorKind.RATE_LIMIT), "fixed"],
        "echo": lambda request: request.prompt_text.upper(),
    })
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import trio

from muxlang.llm import BackendError, ChatRequest, ErrorKind, QueryResult


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer (or failure) of a role or backend."""

    text: str = ""
    delay: float = 0.0
    error: ErrorKind | None = None
    message: str = ""
    #: per-backend texts, as a parallel role returns them; default ``{backend: text}``
    outputs: Mapping[str, str] | None = None
    #: who answered; default: the target's name
    backend: str | None = None


Answer = str | Reply | Callable[[ChatRequest], "str | Reply"]
ScriptEntry = Answer | Sequence[Answer]


@dataclass(frozen=True, slots=True)
class ScriptedCall:
    """A call the service received, for assertions in tests."""

    target: str
    kind: Literal["role", "backend"]
    request: ChatRequest
    started: float


@dataclass
class ScriptedQueryService:
    """Answers queries from ``script``; unknown targets get ``default`` or a CONFIG error."""

    script: Mapping[str, ScriptEntry] = field(default_factory=dict)
    default: Answer | None = None
    calls: list[ScriptedCall] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    _counts: dict[str, int] = field(default_factory=dict)

    async def query(
        self, target: str, request: ChatRequest, *, kind: Literal["role", "backend"]
    ) -> QueryResult:
        """Answer ``request`` for ``target`` as the script says."""
        self.calls.append(ScriptedCall(target, kind, request, trio.current_time()))
        answer = self._next_answer(target, kind)
        reply = _as_reply(answer(request) if callable(answer) else answer)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if reply.delay > 0:
                await trio.sleep(reply.delay)
            else:
                await trio.lowlevel.checkpoint()
        finally:
            self.in_flight -= 1
        backend = reply.backend or target
        if reply.error is not None:
            raise BackendError(
                backend, reply.error, reply.message or f"scripted {reply.error.value} error"
            )
        outputs = dict(reply.outputs) if reply.outputs is not None else {backend: reply.text}
        return QueryResult(output=reply.text, outputs=outputs, backend=backend)

    def _next_answer(self, target: str, kind: str) -> Answer:
        entry = self.script.get(target)
        if entry is None:
            if self.default is None:
                raise BackendError(target, ErrorKind.CONFIG, f"unknown {kind} {target!r}")
            return self.default
        if isinstance(entry, str | Reply) or callable(entry):
            return entry
        answers = list(entry)
        if not answers:
            raise BackendError(target, ErrorKind.CONFIG, f"no scripted answer for {target!r}")
        index = self._counts.get(target, 0)
        self._counts[target] = index + 1
        return answers[min(index, len(answers) - 1)]

    def calls_to(self, target: str) -> list[ScriptedCall]:
        """The calls made to ``target``, in order."""
        return [call for call in self.calls if call.target == target]


def _as_reply(answer: str | Reply) -> Reply:
    return Reply(answer) if isinstance(answer, str) else answer
