"""``muxlang recover``: roll back an apply that a killed run left half-done."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from muxlang.cli.options import global_options, settings

MARKERS = (".muxlang", ".llm-mux", ".git")


def _project_root(directory: Path | None) -> Path:
    """``-C DIR``, else the config package's discovery (SPEC section 1)."""
    if directory is not None:
        return directory
    import muxlang.config

    find_project_root = getattr(muxlang.config, "find_project_root", None)
    if callable(find_project_root):  # the config package's discovery, once it exists
        try:
            return Path(find_project_root(Path.cwd()))
        except TypeError:
            return Path(find_project_root())
    cwd = Path.cwd()
    for candidate in (cwd, *cwd.parents):
        if any((candidate / marker).exists() for marker in MARKERS):
            return candidate
    return cwd


@click.command("recover")
@global_options
@click.pass_context
def recover_command(ctx: click.Context, /, **given: Any) -> None:
    """Roll back an apply that a killed run left half-done.

    Restores every file the interrupted apply changed, byte for byte, and
    removes the files it created. Other files are never touched.
    """
    from muxlang.apply.errors import JournalError
    from muxlang.apply.journal import recover_tree

    opts = settings(ctx, **given)
    root = _project_root(opts.directory)
    try:
        report = recover_tree(root)
    except JournalError as exc:
        _emit(opts.output, "error", [], f"cannot recover: {exc}", root, failed=True)
        ctx.exit(1)
    except OSError as exc:
        message = f"cannot recover: {exc.strerror or exc}"
        _emit(opts.output, "error", [], message, root, failed=True)
        ctx.exit(1)
    if report.status == "locked":
        message = f"nothing recovered: {report.message}"
        _emit(opts.output, "locked", [], message, root, failed=True)
        ctx.exit(1)
    removed = set(report.removed)
    lines = (
        [report.message]
        + [f"  {'removed' if path in removed else 'restored'} {path}" for path in report.paths]
        + [f"  {line}" for line in report.kept]
    )
    restored = [path for path in report.paths if path not in removed]
    _emit(
        opts.output,
        report.status,
        restored,
        "\n".join(lines),
        root,
        removed=list(report.removed),
        kept=list(report.kept),
    )


def _emit(
    mode: str,
    status: str,
    paths: list[str],
    message: str,
    root: Path,
    *,
    failed: bool = False,
    removed: list[str] | None = None,
    kept: list[str] | None = None,
) -> None:
    """``--output json``: one object on stdout. Otherwise the message on stderr, as
    SPEC 7 asks of a recovery (``--quiet`` keeps only failures). ``paths`` are the
    files put back, ``removed`` the ones the apply had created, ``kept`` one line per
    file left as the user changed it (muxlang's copy of the original beside it)."""
    if mode in ("json", "jsonl"):
        document = {
            "status": status,
            "restored": paths,
            "removed": removed or [],
            "kept": kept or [],
            "message": message.splitlines()[0] if message else "",
            "root": os.fspath(root),
        }
        click.echo(json.dumps(document))
    elif mode != "quiet" or failed:
        click.echo(message, err=True)
