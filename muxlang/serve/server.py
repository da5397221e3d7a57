"""Start the gateway: safety checks, the backends' router, hypercorn's trio worker."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import httpx
import trio
from hypercorn.config import Config as HypercornConfig

from muxlang.compiler.plan import ResolvedConfig
from muxlang.config.models import BackendConfig, parse_size
from muxlang.llm import BackendError, ErrorKind
from muxlang.runtime import process
from muxlang.serve.app import GatewayApp
from muxlang.serve.gateway import Gateway
from muxlang.serve.limits import KeyRing, key_ring
from muxlang.serve.listener import ConnectionCaps, serve_capped
from muxlang.serve.meter import MeteredBackends, MeteredRelay
from muxlang.serve.passthrough import Passthrough
from muxlang.serve.state import State, open_state
from muxlang.serve.upstream import RetryFn

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8317
#: seconds a connection may take to send a whole request head (and may sit idle between
#: requests) before the gateway closes it
HEADER_TIMEOUT = 10.0
#: the largest request head (request line and headers) accepted
MAX_HEAD_BYTES = 16 * 1024
#: open files (so connections) the gateway asks the system for at start
MAX_OPEN_FILES = 65536

log = logging.getLogger("muxlang.serve")


class ServeError(Exception):
    """The gateway cannot start (exit status 2)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def gateway_keys(config: ResolvedConfig, environ: Mapping[str, str]) -> list[str]:
    """``[serve] api_keys`` with ``${VAR}`` expanded; empty entries dropped."""
    from muxlang.config.env import EnvVarError, expand

    keys: list[str] = []
    for raw in config.serve.api_keys:
        try:
            value = expand(raw, environ, backend="serve", key="api_keys")
        except EnvVarError as exc:
            raise ServeError(
                f"[serve] api_keys: environment variable {exc.variable} is not set"
            ) from None
        if value.strip():
            keys.append(value.strip())
    return keys


def client_keys(config: ResolvedConfig, environ: Mapping[str, str]) -> KeyRing:
    """``api_keys`` and ``[serve.keys.NAME]``, ``${VAR}`` expanded."""
    from muxlang.config.env import EnvVarError, expand

    def expand_key(value: str, name: str) -> str:
        try:
            return expand(value, environ, backend="serve", key=f"keys.{name}.key")
        except EnvVarError as exc:
            raise ServeError(
                f"[serve.keys.{name}] key: environment variable {exc.variable} is not set"
            ) from None

    try:
        return key_ring(config.serve, gateway_keys(config, environ), expand_key)
    except ValueError as exc:
        raise ServeError(str(exc)) from None


def shared_state(config: ResolvedConfig, environ: Mapping[str, str]) -> tuple[State, str | None]:
    """``[serve] state`` opened (no connection yet), and the URL's password (a secret)."""
    from muxlang.config.env import EnvVarError, expand

    raw = config.serve.state
    if raw is None:
        return open_state(None), None
    try:
        url = expand(raw, environ, backend="serve", key="state")
    except EnvVarError as exc:
        raise ServeError(f"[serve] state: environment variable {exc.variable} is not set") from None
    password = urlsplit(url).password
    try:
        return open_state(url), password
    except ValueError as exc:
        raise ServeError(f"[serve] state: {exc}") from None


def check_bind(host: str, keys: list[str]) -> None:
    """Refuse to listen beyond loopback without api_keys."""
    if not is_loopback(host) and not keys:
        raise ServeError(
            f"refusing to listen on {host}: it is not a loopback address and no api_keys are "
            'configured; add [serve] api_keys = ["${MUXLANG_GATEWAY_KEY}"] to the config, '
            "or bind 127.0.0.1"
        )


def _expander(environ: Mapping[str, str]) -> Callable[[str, BackendConfig], BackendConfig]:
    from muxlang.config.env import EnvVarError, expand_env

    def expand(name: str, cfg: BackendConfig) -> BackendConfig:
        try:
            return expand_env(name, cfg, environ)
        except EnvVarError as exc:
            raise BackendError(name, ErrorKind.CONFIG, str(exc)) from None

    return expand


def backend_secrets(config: ResolvedConfig, environ: Mapping[str, str]) -> list[str]:
    """Expanded api keys and header values of every backend (to redact them from errors)."""
    expand = _expander(environ)
    out: list[str] = []
    for name, cfg in config.backends.items():
        try:
            cfg = expand(name, cfg)
        except BackendError:
            continue
        if cfg.api_key:
            out.append(cfg.api_key)
        out.extend(v for v in cfg.headers.values() if len(v) >= 8)
    return out


def _default_retry() -> RetryFn:
    from muxlang.runtime.backends import with_retries

    retry: RetryFn = with_retries
    return retry


@asynccontextmanager
async def open_gateway(
    config: ResolvedConfig,
    *,
    environ: Mapping[str, str] = os.environ,
    transport: httpx.AsyncBaseTransport | None = None,
    retry: RetryFn | None = None,
    loopback_only: bool = False,
) -> AsyncIterator[GatewayApp]:
    """The ASGI app with the backends' router open for as long as the block runs."""
    from muxlang.runtime.backends import open_router
    from muxlang.serve.metrics import MeteredState, Metrics

    keys = gateway_keys(config, environ)
    ring = client_keys(config, environ)
    inner, password = shared_state(config, environ)
    metrics = Metrics()
    state = MeteredState(inner, metrics)
    secrets = backend_secrets(config, environ) + [k.secret.decode() for k in ring.keys]
    if password:
        secrets.append(password)
    try:
        ping = getattr(inner, "ping", None)
        if ping is not None:
            await ping()  # logs once when Redis is not there yet; serving goes on
        async with open_router(
            config, environ=environ, transport=transport, hide_urls=True
        ) as router:
            passthrough = Passthrough(config, _expander(environ), transport=transport)
            try:
                gateway = Gateway(
                    config,
                    MeteredBackends(router),
                    retry=retry or _default_retry(),
                    passthrough=MeteredRelay(passthrough),
                    state=state,
                    now=time.time,
                )
                yield GatewayApp(
                    gateway,
                    api_keys=keys,
                    max_body_bytes=config.serve.max_body_bytes,
                    secrets=secrets,
                    loopback_only=loopback_only,
                    keys=ring,
                    state=state,
                    metrics=metrics,
                )
            finally:
                with trio.CancelScope(shield=True):
                    await passthrough.aclose()
    finally:
        with trio.CancelScope(shield=True):
            await state.aclose()


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket bound to ``host:port`` (raises ServeError when it can't)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def hypercorn_config() -> HypercornConfig:
    """How hypercorn serves each connection (the socket and the accept loop are
    :mod:`muxlang.serve.listener`'s)."""
    hc = HypercornConfig()
    hc.accesslog = None
    hc.errorlog = logging.getLogger("hypercorn.error")
    hc.graceful_timeout = 3.0
    # hypercorn's idle timer runs from a connection's start until a whole request head
    # has arrived, and again between requests: it is the header-read timeout that
    # closes slowloris connections (and idle keep-alive ones after as long)
    hc.keep_alive_timeout = HEADER_TIMEOUT
    hc.h11_max_incomplete_size = MAX_HEAD_BYTES
    hc.backlog = 1024
    return hc


def raise_fd_limit(wanted: int = MAX_OPEN_FILES) -> int:
    """Raise this process's open-file limit towards ``wanted`` (never above the hard
    limit): every connection holds a descriptor, and the usual soft limit of 1024 is
    what a few hundred slow connections exhaust. Returns the limit now in force."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft
        return target
    return soft


async def serve_app(
    app: Any,
    sock: socket.socket,
    *,
    on_listening: Callable[[str], None] | None = None,
    shutdown: Callable[[], Awaitable[None]] | None = None,
    caps: ConnectionCaps,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on the bound ``sock`` (hypercorn's per-connection server behind
    the connection caps of :mod:`muxlang.serve.listener`) until ``shutdown``."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in str(host) else str(host)
    url = f"http://{shown}:{port}"
    async with trio.open_nursery() as nursery:
        await nursery.start(
            partial(
                serve_capped,
                app,
                hypercorn_config(),
                sock,
                caps,
                shutdown_trigger=shutdown or trio.sleep_forever,
            )
        )
        if on_listening is not None:
            on_listening(url)
        task_status.started(url)


def listening_url(host: str, url: str) -> str:
    """The bound ``url`` as the user asked for it: ``http://localhost:8317 (127.0.0.1)``
    for ``--host localhost``; just ``url`` when the asked host is the bound address."""
    bound = urlsplit(url)
    asked = host.strip().strip("[]")
    if not asked or bound.hostname is None or asked.lower() == bound.hostname.lower():
        return url
    shown = f"[{asked}]" if ":" in asked else asked
    return f"{bound.scheme}://{shown}:{bound.port} ({bound.hostname})"


async def _signals(stop: trio.Event, got: list[int]) -> None:
    # SIGHUP (terminal closed, SSH dropped) stops the gateway as SIGTERM does
    terminals = [fd for fd in (1, 2) if os.isatty(fd)]  # a hung-up one no longer says so
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async for signum in signals:
            got.append(signum)
            if signum == signal.SIGHUP:  # the terminal is gone: writing to it fails (EIO)
                for fd in terminals:
                    with contextlib.suppress(OSError):
                        os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
            stop.set()
            return


async def run_server(
    config: ResolvedConfig,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    environ: Mapping[str, str] = os.environ,
) -> int:
    """``muxlang serve``: returns the exit status (0 after SIGTERM, 130 after Ctrl-C)."""
    raise_fd_limit()
    # every CLI backend the gateway starts is held to [defaults] max_output
    process.OUTPUT_LIMIT.set(parse_size(config.defaults.max_output))
    keys = gateway_keys(config, environ)
    check_bind(host, keys or [key.key for key in config.serve.keys.values()])
    sock = bind_socket(host, port)
    stop = trio.Event()
    got: list[int] = []

    def listening(url: str) -> None:
        print(
            f"muxlang serve: listening on {listening_url(host, url)}", file=sys.stderr, flush=True
        )

    gateway = open_gateway(config, environ=environ, loopback_only=is_loopback(host))
    async with gateway as app, trio.open_nursery() as nursery:
        nursery.start_soon(_signals, stop, got)
        caps = ConnectionCaps(
            total=config.serve.max_connections, per_peer=config.serve.max_connections_per_client
        )
        await serve_app(app, sock, on_listening=listening, shutdown=stop.wait, caps=caps)
        nursery.cancel_scope.cancel()
    with contextlib.suppress(OSError):  # after a SIGHUP the terminal may be gone
        print("muxlang serve: stopped", file=sys.stderr, flush=True)
    return 130 if got and got[0] == signal.SIGINT else 0
