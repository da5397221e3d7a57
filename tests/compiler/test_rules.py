"""The rule table: one object per code, each with a bad example that gets its
code from `validate` and a fixed one that `validate` passes cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest

from muxlang.compiler.project import validate_workflow
from muxlang.diagnostics import CODES, Diagnostic
from muxlang.rules import RULES, code_pattern, selected
from muxlang.source import Span

CODES_ = sorted(RULES)


def check(tmp_path: Path, text: str) -> list[Diagnostic]:
    path = tmp_path / "example.toml"
    path.write_text(text, encoding="utf-8")
    return validate_workflow(path, tmp_path, environ={"HOME": str(tmp_path)})


@pytest.mark.parametrize("code", CODES_)
def test_bad_example_gets_its_code_at_its_severity(code: str, tmp_path: Path) -> None:
    rule = RULES[code]
    found = [d for d in check(tmp_path, rule.bad) if d.code == code]
    assert found, f"{code}: its bad example is not reported"
    assert {d.severity for d in found} == {rule.severity}


@pytest.mark.parametrize("code", CODES_)
def test_fixed_example_is_clean(code: str, tmp_path: Path) -> None:
    assert check(tmp_path, RULES[code].fixed) == []


def test_every_rule_has_a_name_that_is_not_its_code_and_says_something() -> None:
    names = [rule.name for rule in RULES.values()]
    assert len(set(names)) == len(names)
    for code, rule in RULES.items():
        assert rule.code == code
        assert rule.name != code
        assert rule.name[0].isupper()
        assert rule.name.isalnum()
        assert rule.summary
        assert rule.explanation.endswith((".", ")"))


def test_codes_table_is_the_rule_table() -> None:
    assert {code: rule.summary for code, rule in RULES.items()} == CODES
    with pytest.raises(ValueError, match="MUX999"):
        Diagnostic("f.toml", Span.point(1, 1), "MUX999", "no such code")


def test_code_patterns_are_codes_or_prefixes_of_codes() -> None:
    assert code_pattern("mux040") == "MUX040"
    assert code_pattern("MUX04") == "MUX04"
    assert code_pattern("MUX") == "MUX"
    assert code_pattern("MUX9") is None  # no rule starts so
    assert code_pattern("E501") is None


@pytest.mark.parametrize(
    ("code", "select", "ignore", "reported"),
    [
        ("MUX040", (), (), True),
        ("MUX040", (), ("MUX040",), False),
        ("MUX040", (), ("MUX04",), False),
        ("MUX041", (), ("MUX040",), True),
        ("MUX021", ("MUX02",), (), True),
        ("MUX030", ("MUX02",), (), False),
        # the longer prefix wins: select all of MUX04 but MUX040
        ("MUX040", ("MUX04",), ("MUX040",), False),
        ("MUX040", ("MUX040",), ("MUX04",), True),
        ("MUX040", ("MUX040",), ("MUX040",), False),
    ],
)
def test_select_and_ignore_prefixes(
    code: str, select: tuple[str, ...], ignore: tuple[str, ...], reported: bool
) -> None:
    assert selected(code, select, ignore) is reported
