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
    "init": ("muxlang.cli.init", "Write a starter .muxlang/ for this project."),
    "recover": ("muxlang.cli.recover", "Roll back an apply that a killed run left half-done."),
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

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="muxlang", prog_name="muxlang")
@global_options
def cli(**_: Any) -> None:
    """muxlang: declarative workflows for LLM work."""


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        cli.main(args=argv, prog_name="muxlang")
    except KeyboardInterrupt:  # pragma: no cover - commands handle Ctrl-C themselves
        sys.exit(130)
