"""What ``muxlang init`` writes so that editors find muxlang's JSON Schemas with
no setup: the schemas under ``.muxlang/`` and a ``.taplo.toml`` associating them
with the workflow and config files (taplo / Even Better TOML, and the editors
that embed taplo: Helix, Zed). An existing file is never overwritten.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

#: the files' places under the project root
WORKFLOW_SCHEMA = ".muxlang/workflow.schema.json"
CONFIG_SCHEMA = ".muxlang/config.schema.json"
TAPLO = ".taplo.toml"

TAPLO_RULES = f"""\
# muxlang: validate workflows and config against muxlang's JSON Schemas
# (written by `muxlang init`; refresh the schemas with `muxlang schema`).
[[rule]]
include = [".muxlang/workflows/**/*.toml", ".llm-mux/workflows/**/*.toml"]
[rule.schema]
path = "{WORKFLOW_SCHEMA}"

[[rule]]
include = [".muxlang/config.toml", ".llm-mux/config.toml"]
[rule.schema]
path = "{CONFIG_SCHEMA}"
"""


def write_editor_files(
    root: Path, write: Callable[[Path, str], None]
) -> tuple[list[Path], list[Path]]:
    """Write what is missing of the schemas and ``.taplo.toml`` with ``write``
    (atomic); the paths written and the paths kept as they were."""
    from muxlang.cli.schema import build_schema

    written: list[Path] = []
    kept: list[Path] = []

    def render(name: str) -> str:
        if name == TAPLO:
            return TAPLO_RULES
        kind = "workflow" if name == WORKFLOW_SCHEMA else "config"
        return json.dumps(build_schema(kind), indent=2) + "\n"

    for name in (WORKFLOW_SCHEMA, CONFIG_SCHEMA, TAPLO):
        path = root / name
        if path.exists() or path.is_symlink():
            kept.append(path)
            continue
        write(path, render(name))
        written.append(path)
    return written, kept
