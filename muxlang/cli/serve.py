"""``muxlang serve``: the gateway (SPEC section 9, docs/gateway.md).

Exit status: 0 after SIGTERM or SIGHUP, 130 after Ctrl-C, 2 when it cannot start (config
errors, a non-loopback address without ``[serve] api_keys``, the port in use).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from muxlang.cli.options import global_options, settings


@click.command(name="serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8317,
    show_default=True,
    help="Port to listen on (0: any free port; the address is printed on stderr).",
)
@global_options
@click.pass_context
def serve_command(ctx: click.Context, /, host: str, port: int, **given: Any) -> None:
    """Serve roles and backends behind OpenAI- and Anthropic-compatible APIs.

    Point any OpenAI client at http://HOST:PORT/v1 or any Anthropic client at
    http://HOST:PORT, and use a role or backend name as the model.
    """
    import trio

    from muxlang.config import find_project_root, load_config
    from muxlang.serve.server import ServeError, run_server

    options = settings(ctx, **given)
    configure_logging(debug=bool(options.debug))
    root = find_project_root(Path.cwd(), options.directory)
    config, diagnostics = load_config(root, team=options.team, environ=os.environ)
    errors = [d for d in diagnostics if d.is_error]
    if diagnostics:
        from muxlang.compiler import report

        sys.stderr.write(report.render_text(diagnostics))
    if errors:
        click.echo("muxlang serve: the configuration has errors; nothing started", err=True)
        ctx.exit(2)
    try:
        status = trio.run(run_server, config, host, port)
    except BaseException as exc:
        found = _find(exc, (ServeError, KeyboardInterrupt))
        if isinstance(found, ServeError):
            click.echo(f"muxlang serve: error: {found}", err=True)
            ctx.exit(2)
        if isinstance(found, KeyboardInterrupt):
            ctx.exit(130)
        raise
    ctx.exit(status)


def configure_logging(*, debug: bool) -> None:
    """Warnings from everyone on stderr; with ``debug``, muxlang's own debug records too.

    Only the ``muxlang`` loggers go down to DEBUG: the root stays at WARNING, so
    httpx/httpcore/hypercorn connection chatter never floods ``--debug``.
    """
    logging.basicConfig(
        level=logging.WARNING,
        format="muxlang serve: %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("muxlang").setLevel(logging.DEBUG if debug else logging.NOTSET)


def _find(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> BaseException | None:
    """``exc`` itself, or the first of ``kinds`` inside (nested) exception groups."""
    if isinstance(exc, kinds):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _find(inner, kinds)
            if found is not None:
                return found
    return None
