"""``muxlang schema [workflow|config]``: the JSON Schema (draft-07) for editors.

Generated from the pydantic models of :mod:`muxlang.config.models`, so it
accepts exactly the keys ``muxlang validate`` accepts, with their descriptions.
pydantic writes JSON Schema 2020-12; editors such as taplo (Even Better TOML)
read draft-07 best, so ``$defs`` become ``definitions``, and what TOML cannot
express (``null``) is dropped. Attach it with ``#:schema ./workflow.schema.json``
on the first line of a TOML file.
"""

from __future__ import annotations

import json
from typing import Any

import click

from muxlang.cli.options import global_options

DRAFT_07 = "http://json-schema.org/draft-07/schema#"

_TITLES = {
    "workflow": "muxlang workflow",
    "config": "muxlang config.toml",
}


def build_schema(kind: str = "workflow") -> dict[str, Any]:
    """The draft-07 JSON Schema of a workflow file or of ``config.toml``."""
    from muxlang.config.models import ConfigFile, WorkflowFile

    model = WorkflowFile if kind == "workflow" else ConfigFile
    raw = model.model_json_schema(by_alias=True, mode="validation")
    definitions = raw.pop("$defs", {})
    schema: dict[str, Any] = {"$schema": DRAFT_07, **_convert(raw)}
    schema["title"] = _TITLES[kind]
    schema["description"] = (
        "A muxlang workflow: steps (shell, query, apply) and optional config tables."
        if kind == "workflow"
        else "muxlang configuration: defaults, backends, roles, teams."
    )
    if definitions:
        partial = _config_definitions()
        schema["definitions"] = {
            name: _convert(_optional(body) if name in partial else body)
            for name, body in definitions.items()
        }
    return schema


def _config_definitions() -> set[str]:
    """Tables a config layer may give partially (a later layer may set only
    ``timeout`` of a backend another layer defines): no key is required there,
    ``muxlang validate`` checks required keys after merging the layers."""
    from muxlang.config.models import ConfigFile

    return set(ConfigFile.model_json_schema().get("$defs", {}))


def _optional(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "required"}


def _convert(node: Any) -> Any:
    """2020-12 → draft-07, and drop ``null`` (TOML has none)."""
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            out[key] = value.replace("#/$defs/", "#/definitions/")
        elif key == "default" and value is None:
            continue
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: _convert(body) for name, body in value.items()}
        elif key == "discriminator":
            continue  # an OpenAPI keyword; the oneOf's `type` consts already discriminate
        else:
            out[key] = _convert(value)
    for union in ("anyOf", "oneOf"):
        members = out.get(union)
        if isinstance(members, list):
            kept = [m for m in members if m != {"type": "null"}]
            if len(kept) == 1 and len(kept) != len(members):
                del out[union]
                merged = {**kept[0], **out}
                out = merged
            else:
                out[union] = kept
    return out


@click.command("schema")
@click.argument("kind", type=click.Choice(["workflow", "config"]), default="workflow")
@global_options
def schema_command(kind: str, **_: Any) -> None:
    """Print the JSON Schema (draft-07) of workflow or config files.

    Save it and point your editor at it with a first line such as
    `#:schema ./workflow.schema.json` (taplo, Even Better TOML).
    """
    click.echo(json.dumps(build_schema(kind), indent=2, ensure_ascii=False))
