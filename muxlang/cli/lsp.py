"""``muxlang lsp``: the language server, LSP 3.17 over stdin/stdout (SPEC 14).

pygls and lsprotocol are imported here only, when the command runs.
"""

from __future__ import annotations

from typing import Any

import click

from muxlang.cli.options import global_options


@click.command("lsp")
@click.option("--stdio", is_flag=True, help="Talk over stdin/stdout (the default and only way).")
@global_options
def lsp_command(stdio: bool, **_: Any) -> None:
    """Run the language server for workflow and config files, over stdio.

    \b
    Editors start it themselves: see docs/editors.md for VS Code, Neovim,
    Helix and Zed. Diagnostics (as `muxlang validate`), completion, hover,
    go to definition, document symbols and quick fixes.
    """
    from muxlang.lsp.server import main

    main()
