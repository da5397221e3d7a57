"""``muxlang rule`` and the SARIF rules, through the real command line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from mux_compiler_support import cli_project

from muxlang.cli import cli
from muxlang.rules import RULES

DOCS = Path(__file__).parents[2] / "docs" / "validation.md"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_rule_explains_one_code_with_examples() -> None:
    code, out, _ = invoke("rule", "MUX021")
    assert code == 0
    assert out.startswith("MUX021 UnknownStepReference (error)\n")
    assert "Unknown step referenced." in out
    assert "Bad:\n\n    name = " in out
    assert "{{ steps.dif.exit_code }}" in out
    assert "Fixed:\n\n" in out
    assert "{{ steps.diff.exit_code }}" in out
    assert "# muxlang: ignore[MUX021]" in out
    assert "docs/validation.md#mux021" in out


def test_rule_takes_lower_case_codes_and_names() -> None:
    assert invoke("rule", "mux040")[1] == invoke("rule", "UntrustedShellCode")[1]
    assert "(warning)" in invoke("rule", "mux040")[1]


def test_rule_lists_every_code_one_a_line() -> None:
    code, out, _ = invoke("rule")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == list(RULES)
    assert re.match(r"MUX008  EmptyWorkflow +warning  a workflow with no steps$", lines[7])


def test_rule_as_json() -> None:
    _, out, _ = invoke("--output", "json", "rule")
    listed = json.loads(out)
    assert [r["code"] for r in listed] == list(RULES)
    assert set(listed[0]) >= {"code", "name", "severity", "summary", "explanation", "bad", "fixed"}
    _, one, _ = invoke("--output", "json", "rule", "MUX005")
    assert json.loads(one)["name"] == "ValueNotAllowed"


def test_unknown_rule_is_a_usage_error_with_did_you_mean() -> None:
    code, _, err = invoke("rule", "MUX0211")
    assert code == 2
    assert "no rule `MUX0211`" in err
    assert "did you mean `MUX021`?" in err


def test_every_rule_has_its_anchor_in_the_docs() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for rule in RULES.values():
        assert f'<a id="{rule.anchor}"></a>\n\n### {rule.code} ' in text


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return cli_project(tmp_path, monkeypatch)


def test_sarif_rules_meet_github_code_scanning(project: Path) -> None:
    (project / ".muxlang/workflows/bad.toml").write_text(RULES["MUX021"].bad, encoding="utf-8")
    code, out, _ = invoke("validate", "--format", "sarif")
    assert code == 1
    run = json.loads(out)["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(RULES)
    for rule in rules:
        assert rule["name"] != rule["id"]
        assert rule["name"] == RULES[rule["id"]].name
        assert rule["help"]["text"]
        assert "```toml" in rule["help"]["markdown"]
        assert rule["helpUri"].endswith(f"docs/validation.md#{rule['id'].lower()}")
        assert rule["shortDescription"]["text"] == RULES[rule["id"]].summary
    levels = {r["id"]: r["defaultConfiguration"]["level"] for r in rules}
    assert levels["MUX008"] == levels["MUX040"] == "warning"
    assert levels["MUX021"] == "error"
    [result] = run["results"]
    assert rules[result["ruleIndex"]]["name"] == "UnknownStepReference"
