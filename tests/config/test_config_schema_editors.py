"""`muxlang schema` for editors: every property described, an `$id`, step types
discriminated on `type`, so a JSON-Schema validator (the `jsonschema` library,
as editors and check-jsonschema use) names a misspelt key plainly; and
`muxlang init` associates the schemas with the files (`.taplo.toml`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema.exceptions import best_match

from muxlang.cli.schema import build_schema


def undescribed(node: Any, path: str = "") -> list[str]:
    """Every property (at any depth, in definitions too) without a description."""
    missing: list[str] = []
    if isinstance(node, dict):
        for name, body in node.get("properties", {}).items():
            if isinstance(body, dict) and not body.get("description"):
                missing.append(f"{path}.{name}")
        for key, value in node.items():
            missing += undescribed(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            missing += undescribed(value, f"{path}[{index}]")
    return missing


@pytest.mark.parametrize("kind", ["workflow", "config"])
def test_every_property_has_a_description(kind: str) -> None:
    schema = build_schema(kind)
    assert undescribed(schema) == []
    assert len(json.dumps(schema)) > 1000  # the walk saw a real schema


@pytest.mark.parametrize("kind", ["workflow", "config"])
def test_schema_is_valid_draft_07_with_an_id(kind: str) -> None:
    schema = build_schema(kind)
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$id"].startswith("https://")
    assert schema["$id"].endswith(f"/{kind}.schema.json")


def errors(document: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    validator = jsonschema.Draft7Validator(build_schema("workflow"))
    return [(e.message, list(e.absolute_path)) for e in validator.iter_errors(document)]


def test_a_misspelt_key_gets_one_plain_message() -> None:
    doc = {"steps": [{"name": "ask", "type": "query", "role": "r", "promt": "hi"}]}
    validator = jsonschema.Draft7Validator(build_schema("workflow"))
    best = best_match(validator.iter_errors(doc))
    assert best is not None
    assert best.message == "Additional properties are not allowed ('promt' was unexpected)"
    assert list(best.absolute_path) == ["steps", 0]
    assert all("is not valid under any of the given schemas" not in m for m, _ in errors(doc))


def test_a_key_of_another_step_type_is_checked_against_its_own_type() -> None:
    doc = {"steps": [{"name": "a", "type": "shell", "run": "x", "prompt": "p"}]}
    assert errors(doc) == [
        ("Additional properties are not allowed ('prompt' was unexpected)", ["steps", 0])
    ]


def test_an_unknown_step_type_names_the_types() -> None:
    [(message, where)] = errors({"steps": [{"name": "a", "type": "shel", "run": "x"}]})
    assert message.startswith("'shel' is not one of ['shell', 'query', 'apply'")
    assert where == ["steps", 0, "type"]


def test_a_clean_workflow_passes() -> None:
    doc = {
        "name": "w",
        "steps": [
            {"name": "diff", "type": "shell", "run": "git diff"},
            {"name": "ask", "type": "query", "backend": "b", "prompt": "{{ steps.diff.output }}"},
        ],
    }
    assert errors(doc) == []


def test_init_writes_schemas_and_taplo_rules_and_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / ".xdg")}
    env.pop("MUXLANG_CONFIG", None)
    run = [sys.executable, "-m", "muxlang", "init"]
    done = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "wrote .taplo.toml" in done.stderr
    taplo = tomllib.loads((tmp_path / ".taplo.toml").read_text())
    by_schema = {rule["schema"]["path"]: rule["include"] for rule in taplo["rule"]}
    assert ".muxlang/workflows/**/*.toml" in by_schema[".muxlang/workflow.schema.json"]
    assert ".muxlang/config.toml" in by_schema[".muxlang/config.schema.json"]
    for kind in ("workflow", "config"):
        written = json.loads((tmp_path / f".muxlang/{kind}.schema.json").read_text())
        assert written == build_schema(kind)
    # the config and workflow init wrote validate against the schemas it wrote
    config = tomllib.loads((tmp_path / ".muxlang/config.toml").read_text())
    jsonschema.validate(config, build_schema("config"))
    check = tomllib.loads((tmp_path / ".muxlang/workflows/check.toml").read_text())
    jsonschema.validate(check, build_schema("workflow"))

    (tmp_path / ".taplo.toml").write_text("# mine\n")
    (tmp_path / ".muxlang/config.toml").unlink()
    again = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / ".taplo.toml").read_text() == "# mine\n"
    assert "kept .taplo.toml (it exists)" in again.stderr


@pytest.mark.parametrize("kind", ["workflow", "config"])
def test_published_schema_is_up_to_date(kind: str) -> None:
    """schemas/*.schema.json is what the `$id` (and SchemaStore) point at."""
    published = Path(__file__).parents[2] / "schemas" / f"{kind}.schema.json"
    assert json.loads(published.read_text(encoding="utf-8")) == build_schema(kind), (
        f"regenerate: python -m muxlang schema {kind} > schemas/{kind}.schema.json"
    )
