"""Options every command accepts, before or after the command name.

``muxlang -C dir run x`` and ``muxlang run x -C dir`` mean the same: the group
records what it was given in :class:`Settings` on the click context, and each
command's own copy of an option, when given, wins. Commands read the merged
result with :func:`settings`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

OUTPUT_MODES = ("console", "json", "jsonl", "quiet")


@dataclasses.dataclass
class Settings:
    directory: Path | None = None
    team: str | None = None
    output: str = "console"
    debug: bool = False
    quiet: bool = False


_OPTIONS: list[tuple[str, Callable[[F], F]]] = [
    (
        "directory",
        click.option(
            "-C",
            "directory",
            type=click.Path(file_okay=False, exists=True, path_type=Path),
            default=None,
            help="Run as if started in DIR (the project root).",
        ),
    ),
    ("team", click.option("--team", default=None, help="Use this team instead of detecting one.")),
    (
        "output",
        click.option(
            "--output",
            type=click.Choice(OUTPUT_MODES),
            default=None,
            help="console (default), json, jsonl or quiet.",
        ),
    ),
    ("debug", click.option("--debug", is_flag=True, default=None, help="Print debug detail.")),
    ("quiet", click.option("--quiet", is_flag=True, default=None, help="Print less.")),
]


def use_color(stream: Any) -> bool:
    """Colour on ``stream``: never with ``NO_COLOR``, always with ``FORCE_COLOR``
    (as CI logs want), else on a terminal that is not ``TERM=dumb``."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


def global_options(func: F) -> F:
    """Add the shared options; values given are merged into the context's Settings."""
    for _, decorator in reversed(_OPTIONS):
        func = decorator(func)
    return func


def settings(ctx: click.Context, **given: Any) -> Settings:
    """The merged settings: the command's own values win over the group's."""
    root = ctx.find_root()
    base = root.params if root is not ctx else {}
    merged = Settings()
    for name, _ in _OPTIONS:
        value = given.get(name)
        if value is None:
            value = base.get(name)
        if value is not None:
            setattr(merged, name, value)
    if merged.quiet and merged.output == "console":
        merged.output = "quiet"
    return merged
