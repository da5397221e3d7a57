"""Pumps: a backend answer produced in its own task, read by the gateway in batches.

A pump iterates a backend's stream (or an upstream's relayed bytes) into a
channel from a task in the request's nursery; :func:`start_pump` returns when
its first item is there, which is the point of no return for fallback.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import trio

from muxlang.llm import BackendError, ErrorKind, Finish, ToolCallDelta

log = logging.getLogger("muxlang.serve")


class Pump:
    """A backend answer being produced in its own task; items arrive on ``receive``."""

    def __init__(
        self, first: Any, receive: trio.MemoryReceiveChannel[Any], scope: trio.CancelScope
    ):
        self.first = first
        self.receive = receive
        self.scope = scope

    async def aclose(self) -> None:
        self.scope.cancel()
        await self.receive.aclose()


END = object()
#: seconds a stream write waits for more events of the same answer
BATCH_WINDOW = 0.002


async def start_pump(
    nursery: trio.Nursery, name: str, produce: Callable[[], AsyncIterator[Any]]
) -> Pump:
    """Start ``produce`` in ``nursery``; return once its first item is there.

    A :class:`BackendError` before the first item is raised here (so the caller
    can retry or fall back); after it, it arrives on the channel as an item.
    """
    send, receive = trio.open_memory_channel[Any](16)
    scope = trio.CancelScope()

    async def run() -> None:
        with scope:
            async with send:
                last: Any = END
                events = produce()
                try:
                    async for item in events:
                        await send.send(item)
                except BackendError as exc:
                    last = exc
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return  # nobody listens any more
                except Exception as exc:  # a bug must not take the request down uncleanly
                    log.exception("backend %s failed unexpectedly", name)
                    last = BackendError(name, ErrorKind.SERVER, f"unexpected {type(exc).__name__}")
                finally:
                    # close the backend's stream now (it stops its process or request),
                    # not whenever the garbage collector gets to it
                    close = getattr(events, "aclose", None)
                    if close is not None:
                        await close()
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await send.send(last)

    nursery.start_soon(run)
    try:
        first = await receive.receive()
    except trio.EndOfChannel:
        first = END
    except BaseException:
        scope.cancel()
        raise
    if isinstance(first, BackendError):
        scope.cancel()
        raise first
    if first is END:
        raise BackendError(name, ErrorKind.SERVER, "the backend ended without an answer")
    return Pump(first, receive, scope)


async def batch(pump: Pump) -> list[Any]:
    """The next item, and what else arrives within :data:`BATCH_WINDOW` (one write for all).

    A fast upstream's events then leave in a few writes instead of one each (a
    write to a socket costs far more than encoding an event); a slow one's are
    delayed by at most the window. The end of the answer is never waited for.
    """
    try:
        items = [await pump.receive.receive()]
    except trio.EndOfChannel:
        return [END]
    deadline = trio.current_time() + BATCH_WINDOW
    while not final(items[-1]):
        try:
            items.append(pump.receive.receive_nowait())
            continue
        except trio.EndOfChannel:
            break
        except trio.WouldBlock:
            pass
        with trio.move_on_at(deadline):
            try:
                items.append(await pump.receive.receive())
            except trio.EndOfChannel:
                break
            continue
        break
    return items


def final(item: Any) -> bool:
    return item is END or isinstance(item, Finish | BackendError)


async def discard_pump(pump: Pump) -> None:
    await pump.aclose()


class ToolEnding:
    """Wraps a format's stream encoder: an answer that called tools ends as
    ``tool_calls`` even when the upstream said ``stop`` (agent loops wait for it)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.tools = False

    def start(self) -> bytes:
        return bytes(self.inner.start())

    def event(self, event: Any) -> bytes:
        if isinstance(event, ToolCallDelta):
            self.tools = True
        elif isinstance(event, Finish) and self.tools and event.reason == "stop":
            event = Finish("tool_calls", event.usage)
        return bytes(self.inner.event(event))

    def error(self, message: str, status: int = 502) -> bytes:
        return bytes(self.inner.error(message, status))

    def end(self) -> bytes:
        return bytes(self.inner.end())
