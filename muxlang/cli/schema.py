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
#: where ``schemas/*.schema.json`` of the repository are served from
SCHEMA_BASE = "https://raw.githubusercontent.com/muxlang/muxlang/main/schemas"

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
    schema: dict[str, Any] = _convert(raw)
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
    steps = schema.get("properties", {}).get("steps")
    if steps is not None and "oneOf" in steps.get("items", {}):
        steps["items"] = _discriminated(steps["items"]["oneOf"], schema["definitions"])
    return {"$schema": DRAFT_07, "$id": schema_id(kind), **schema}


def schema_id(kind: str) -> str:
    """Where the published schema lives (the ``$id``; docs/editors.md)."""
    return f"{SCHEMA_BASE}/{kind}.schema.json"


def _discriminated(members: list[Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """Step types as ``if``/``then`` on ``type`` rather than a bare ``oneOf``: a
    validator then checks a step against its own type only, so a misspelt key
    gets one message naming it (not one "not valid under any" per type). A step
    kind without a ``type`` (``uses``) is told apart by the key it requires."""
    branches: list[dict[str, Any]] = []
    tags: list[str] = []
    keys: list[str] = []
    for member in members:
        ref = member["$ref"]
        body = definitions[ref.rsplit("/", 1)[-1]]
        tag = body.get("properties", {}).get("type", {}).get("const")
        if isinstance(tag, str):
            tags.append(tag)
            condition: dict[str, Any] = {
                "properties": {"type": {"const": tag, "description": f"A {tag} step."}},
                "required": ["type"],
            }
        else:
            key = next(k for k in body.get("required", []) if k != "name")
            keys.append(key)
            condition = {"required": [key], "not": {"required": ["type"]}}
        branches.append({"if": condition, "then": {"$ref": ref}})
    kinds = ", ".join(tags) + "".join(f"; or no `type` and `{key}`" for key in keys)
    items: dict[str, Any] = {
        "type": "object",
        "description": f"A step ([[steps]]): its `type` ({kinds}) says which keys it takes.",
        "required": ["name"] if keys else ["name", "type"],
        "properties": {
            "type": {"enum": tags, "description": "The step type: " + ", ".join(tags) + "."}
        },
        "allOf": branches,
    }
    if keys:
        items["anyOf"] = [{"required": ["type"]}, *({"required": [key]} for key in keys)]
    return items


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
