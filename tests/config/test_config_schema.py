"""`muxlang schema`: draft-07, accepts the seed README's files, rejects unknown keys."""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import pytest
from click.testing import CliRunner

from muxlang.cli import cli
from muxlang.cli.schema import build_schema
from tests.fixtures import seed


def check(schema: dict[str, Any], instance: Any, root: dict[str, Any] | None = None) -> list[str]:
    """A small draft-07 validator for the keywords our schemas use; returns errors."""
    root = root if root is not None else schema
    errors: list[str] = []
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/definitions/")
        assert schema["$ref"].startswith("#/definitions/"), schema["$ref"]
        return check(root["definitions"][name], instance, root)
    kinds: dict[str, type | tuple[type, ...]] = {
        "object": dict,
        "array": list,
        "string": str,
        "boolean": bool,
        "integer": int,
        "number": (int, float),
    }
    expected = schema.get("type")
    if expected is not None:
        ok = isinstance(instance, kinds[expected])
        if expected in ("integer", "number") and isinstance(instance, bool):
            ok = False
        if not ok:
            return [f"{instance!r} is not {expected}"]
    if "const" in schema and instance != schema["const"]:
        errors.append(f"{instance!r} != {schema['const']!r}")
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{instance!r} not in {schema['enum']}")
    if (
        "pattern" in schema
        and isinstance(instance, str)
        and not re.search(schema["pattern"], instance)
    ):
        errors.append(f"{instance!r} does not match {schema['pattern']}")
    if "minimum" in schema and instance < schema["minimum"]:
        errors.append(f"{instance} < {schema['minimum']}")
    if "exclusiveMinimum" in schema and instance <= schema["exclusiveMinimum"]:
        errors.append(f"{instance} <= {schema['exclusiveMinimum']}")
    if isinstance(instance, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in instance:
                errors.append(f"missing {key}")
        for key, value in instance.items():
            if key in props:
                errors += check(props[key], value, root)
            elif schema.get("additionalProperties") is False:
                errors.append(f"unknown key {key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += check(schema["additionalProperties"], value, root)
    if isinstance(instance, list) and "items" in schema:
        for item in instance:
            errors += check(schema["items"], item, root)
    if "anyOf" in schema and all(check(s, instance, root) for s in schema["anyOf"]):
        errors.append(f"{instance!r} matches none of anyOf")
    for member in schema.get("allOf", []):
        if "if" in member:  # if/then/else: the branch the `if` picks
            branch = member.get("then" if not check(member["if"], instance, root) else "else")
            errors += check(branch, instance, root) if branch is not None else []
        else:
            errors += check(member, instance, root)
    if "oneOf" in schema:
        matching = [s for s in schema["oneOf"] if not check(s, instance, root)]
        if len(matching) != 1:
            errors.append(f"{instance!r} matches {len(matching)} of oneOf")
    return errors


WORKFLOWS = {
    "quick-start": seed.REVIEW_WORKFLOW,
    "step-types": "\n".join((seed.STEP_TYPES, seed.CONDITIONAL, seed.ITERATION)),
    "parallel-analysis": seed.PARALLEL_WORKFLOW,
}

CONFIGS = {
    "quick-start": """
[backends.claude]
command = "claude"
args = ["-p"]

[backends.openai]
command = "https://api.openai.com/v1"
model = "gpt-4"
api_key = "${OPENAI_API_KEY}"

[roles.analyzer]
description = "Code analysis tasks"
backends = ["claude", "codex"]
execution = "parallel"  # first | parallel | fallback
""",
    "backend-options": "\n".join((seed.BACKEND_OPTIONS, seed.TEAMS)),
}


def test_schema_is_draft_07_with_definitions_and_descriptions() -> None:
    schema = build_schema("workflow")
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert "$defs" not in json.dumps(schema)
    assert "definitions" in schema
    # step types discriminated on `type` with if/then (not a bare oneOf)
    steps = schema["properties"]["steps"]["items"]
    assert steps["properties"]["type"]["enum"][:3] == ["shell", "query", "apply"]
    assert [s["then"]["$ref"] for s in steps["allOf"]][:3] == [
        "#/definitions/ShellStepSpec",
        "#/definitions/QueryStepSpec",
        "#/definitions/ApplyStepSpec",
    ]
    assert steps["allOf"][0]["if"] == {
        "properties": {"type": {"const": "shell", "description": "A shell step."}},
        "required": ["type"],
    }
    shell = schema["definitions"]["ShellStepSpec"]
    assert shell["properties"]["type"]["const"] == "shell"
    assert "description" in shell["properties"]["run"]
    assert '"null"' not in json.dumps(schema)  # TOML has no null


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_seed_workflows_validate(name: str) -> None:
    assert check(build_schema("workflow"), tomllib.loads(WORKFLOWS[name])) == []


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_seed_configs_validate(name: str) -> None:
    assert check(build_schema("config"), tomllib.loads(CONFIGS[name])) == []


def test_partial_backend_table_is_valid_in_a_layer() -> None:
    assert check(build_schema("config"), {"backends": {"claude": {"timeout": 10}}}) == []


@pytest.mark.parametrize(
    ("kind", "document"),
    [
        ("workflow", {"steps": [{"name": "a", "type": "shell", "run": "x", "outptu": 1}]}),
        ("workflow", {"stepz": []}),
        ("workflow", {"steps": [{"name": "a", "type": "shel", "run": "x"}]}),
        ("workflow", {"steps": [{"name": "a", "type": "shell"}]}),
        ("config", {"roles": {"r": {"backends": ["a"], "execution": "paralel"}}}),
        ("config", {"backends": {"b": {"command": "x", "protocl": "openai"}}}),
    ],
)
def test_schema_rejects_unknown_keys_and_bad_values(kind: str, document: dict[str, Any]) -> None:
    assert check(build_schema(kind), document) != []


def test_schema_command_prints_json() -> None:
    runner = CliRunner()
    workflow = runner.invoke(cli, ["schema"])
    assert workflow.exit_code == 0
    assert json.loads(workflow.stdout) == build_schema("workflow")
    config = runner.invoke(cli, ["schema", "config"])
    assert json.loads(config.stdout)["title"] == "muxlang config.toml"
    assert "steps" not in json.loads(config.stdout)["properties"]
    bad = runner.invoke(cli, ["schema", "pipeline"])
    assert bad.exit_code == 2
