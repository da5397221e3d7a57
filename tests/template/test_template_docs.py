"""docs/language.md documents every filter, and its examples render as it says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from muxlang.template import FILTERS, parse_template, render

DOC = Path(__file__).resolve().parents[2] / "docs" / "language.md"
EXAMPLE = re.compile(r"^(\{\{.*\}\})\s+→ (.*)$", re.M)


def examples() -> list[tuple[str, str]]:
    return EXAMPLE.findall(DOC.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_every_filter_has_a_section_with_an_example(name: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    assert re.search(rf"^### .*`{name}[`(]", text, re.M), f"no section for `{name}`"
    assert any(re.search(rf"\|\s*{name}\b", source) for source, _ in examples()), name


def test_there_are_examples() -> None:
    assert len(examples()) >= 30


@pytest.mark.parametrize(("source", "expected"), examples())
def test_doc_example_renders_as_documented(source: str, expected: str) -> None:
    assert render(parse_template(source), {}) == expected


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_documented_signature_matches_the_function(name: str) -> None:
    assert f"`{FILTERS[name].signature}`" in DOC.read_text(encoding="utf-8")
