"""The ``muxlang`` command line.

Each command lives in its own module under :mod:`muxlang.cli` and is imported
only when invoked, so ``muxlang validate`` never pays for trio, httpx or rich.
Options shared by every command (``-C``, ``--team``, ``--output``, ...) are
accepted before the command name or after it; see :mod:`muxlang.cli.options`.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from muxlang.cli.options import global_options

#: command name -> "module:attribute"; the module is imported on first use.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("muxlang.cli.run", "Run a workflow."),
    "validate": ("muxlang.cli.validate", "Check workflows and config without running anything."),
    "graph": ("muxlang.cli.graph", "Print a workflow's step graph (mermaid, dot, json)."),
    "workflows": ("muxlang.cli.listing", "List the workflows this project can run."),
    "backends": ("muxlang.cli.listing", "List configured backends."),
    "roles": ("muxlang.cli.listing", "List configured roles."),
    "teams": ("muxlang.cli.listing", "List configured teams and the detected one."),
    "doctor": ("muxlang.cli.doctor", "Check that every backend can be used."),
    "schema": ("muxlang.cli.schema", "Print the JSON Schema of workflow or config files."),
    "rule": ("muxlang.cli.rule", "Explain a diagnostic code, or list them all."),
    "lsp": ("muxlang.cli.lsp", "Run the language server (LSP over stdio) for editors."),
    "init": ("muxlang.cli.init", "Write a starter .muxlang/ for this project."),
    "recover": ("muxlang.cli.recover", "Roll back an apply that a killed run left half-done."),
    "runs": ("muxlang.cli.runs", "List recorded runs (and prune old ones)."),
    "show": ("muxlang.cli.show", "Show a recorded run, or one step of it in full."),
    "serve": ("muxlang.cli.serve", "Serve roles behind OpenAI- and Anthropic-compatible APIs."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module(COMMANDS[cmd_name][0])
        command = getattr(module, cmd_name.replace("-", "_") + "_command")
        assert isinstance(command, click.Command)
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = click.utils.make_str(args[0]) if args else ""
        if args and name not in COMMANDS and not name.startswith("-"):
            ctx.fail(unknown_command_message(name, ctx))
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def unknown_command_message(name: str, ctx: click.Context) -> str:
    """ "No such command", with what the user probably meant: a workflow of that name
    (``muxlang explain`` -> ``muxlang run explain``) or a command spelt nearly so."""
    from muxlang.config.discovery import find_project_root, list_workflows

    message = f"No such command '{name}'."
    try:
        directory = ctx.params.get("directory")
        root = find_project_root(directory=directory)
        workflows = {entry.name for entry in list_workflows(root)}
    except (OSError, ValueError):  # an unreadable tree only costs the hint
        workflows = set()
    if name in workflows:
        return f"{message} '{name}' is a workflow: run it with `muxlang run {name}`."
    candidates = {command: f"`{command}`" for command in COMMANDS}
    candidates.update({w: f"`run {w}` (a workflow)" for w in workflows if w not in COMMANDS})
    from muxlang.diagnostics import closest

    close = closest(name, candidates)
    return f"{message} Did you mean {candidates[close]}?" if close else message


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(None, "-V", "--version", package_name="muxlang", prog_name="muxlang")
@global_options
def cli(**_: Any) -> None:
    """muxlang: declarative workflows for LLM work."""


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        cli.main(args=argv, prog_name="muxlang")
    except KeyboardInterrupt:  # pragma: no cover - commands handle Ctrl-C themselves
        sys.exit(130)
