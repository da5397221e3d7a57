"""The grammar file: one LALR grammar, conflict-free under strict mode, two start symbols."""

from __future__ import annotations

from importlib import resources

import lark
import pytest

from muxlang.template.parser import grammar


def test_grammar_is_lalr_and_strict_clean() -> None:
    # strict=True raises on any shift/reduce conflict and on colliding terminals
    # (via interegular); the runtime loads the same grammar from a cache
    pytest.importorskip("interegular")
    text = resources.files("muxlang").joinpath("grammar.lark").read_text(encoding="utf-8")
    parser = lark.Lark(
        text,
        start=["template", "expression"],
        parser="lalr",
        lexer="contextual",
        strict=True,
        propagate_positions=True,
        maybe_placeholders=False,
    )
    assert parser.parse("a {{ b | c }}", start="template").data == "template"
    assert parser.parse("a and b", start="expression").data == "expression"


def test_grammar_is_built_once() -> None:
    assert grammar() is grammar()


def test_block_tags_are_single_terminals() -> None:
    names = {t.name for t in grammar().terminals}
    assert {"IF_OPEN", "ELIF_OPEN", "ELSE", "ENDIF", "FOR_OPEN", "ENDFOR", "RAW"} <= names
    tokens = list(grammar().lex("{%- else -%}"))
    assert [(t.type, t.value) for t in tokens][:1] == [("ELSE", "{%- else -%}")]
