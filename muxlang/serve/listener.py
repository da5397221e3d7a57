"""The gateway's accept loop: hypercorn's trio worker, behind connection caps.

Hypercorn serves every connection (HTTP/1.1 and h2 framing, its idle and
header-read timers) but has no setting for how many connections it holds at once
(hypercorn issue #81): a client that opens hundreds of slow connections could hold
every file descriptor until the header-read timeout frees them. So the gateway
runs hypercorn's own per-connection server (``TCPServer``) from an accept loop of
its own, with two caps (SPEC section 9, docs/gateway.md "Limits"):

- at most :attr:`ConnectionCaps.per_peer` connections from one client address;
- at most :attr:`ConnectionCaps.total` connections in all.

A connection over a cap is closed at once (the client sees the connection end
and may retry); the others are served as before, so one greedy client cannot
starve the rest. This module is the only place that reaches into hypercorn
below its ``serve`` function; its lifespan and shutdown follow hypercorn's own
``worker_serve``.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio


@dataclass
class ConnectionCaps:
    """How many connections are open, in all and per client address."""

    total: int
    per_peer: int
    open: Counter[str] = field(default_factory=Counter)

    def admit(self, peer: str) -> bool:
        """Count a new connection from ``peer``; False (nothing counted) over a cap."""
        if self.open.total() >= self.total or self.open[peer] >= self.per_peer:
            return False
        self.open[peer] += 1
        return True

    def release(self, peer: str) -> None:
        self.open[peer] -= 1
        if self.open[peer] <= 0:
            del self.open[peer]


def _peer(stream: trio.SocketStream) -> str:
    try:
        address = stream.socket.getpeername()
    except OSError:
        return "?"
    return str(address[0]) if isinstance(address, tuple) else str(address)


async def serve_capped(
    app: Any,
    config: Any,
    sock: socket.socket,
    caps: ConnectionCaps,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the ASGI ``app`` on the bound ``sock`` with hypercorn ``config`` until
    ``shutdown_trigger`` returns, then finish in-flight requests for at most
    ``config.graceful_timeout`` seconds."""
    from hypercorn.trio.lifespan import Lifespan
    from hypercorn.trio.tcp_server import TCPServer
    from hypercorn.trio.worker_context import WorkerContext
    from hypercorn.typing import ConnectionState
    from hypercorn.utils import wrap_app

    wrapped = wrap_app(app, config.wsgi_max_body_size, "asgi")
    lifespan_state: dict[str, Any] = {}
    lifespan = Lifespan(wrapped, config, lifespan_state)
    context = WorkerContext(None)
    sock.listen(config.backlog)
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))

    async def connection(stream: trio.SocketStream) -> None:
        peer = _peer(stream)
        if not caps.admit(peer):
            await stream.aclose()
            return
        try:
            state = ConnectionState(lifespan_state.copy())
            await TCPServer(wrapped, config, context, state, stream)  # type: ignore[arg-type]
        finally:
            caps.release(peer)

    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as server_nursery:
            async with trio.open_nursery() as accepting:
                accepting.start_soon(
                    partial(
                        trio.serve_listeners, connection, [listener], handler_nursery=server_nursery
                    )
                )
                task_status.started()
                await shutdown_trigger()
                accepting.cancel_scope.cancel()
            await context.terminated.set()
            server_nursery.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()
