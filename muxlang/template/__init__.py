"""The template and expression language (SPEC section 4).

Syntax lives in ``muxlang/grammar.lark``; :mod:`.parser` builds the AST of
:mod:`.ast`; :mod:`.evaluate` renders it over plain values; :mod:`.filters` is
the filter library.

>>> from muxlang.template import parse_template, render
>>> render(parse_template("Hello {{ args.who | upper }}!"), {"args": {"who": "you"}})
'Hello YOU!'
"""

from muxlang.template.ast import Expr, Template, to_source
from muxlang.template.errors import TemplateError, TemplateSyntaxError
from muxlang.template.evaluate import compile_expression, compile_template, evaluate, render
from muxlang.template.filters import FILTERS, FilterError, FilterSpec
from muxlang.template.parser import parse_expression, parse_template
from muxlang.template.values import (
    KINDS,
    UNDEFINED,
    Scope,
    Undefined,
    Value,
    kind_of,
    to_json,
    to_text,
    truthy,
)

__all__ = [
    "FILTERS",
    "KINDS",
    "UNDEFINED",
    "Expr",
    "FilterError",
    "FilterSpec",
    "Scope",
    "Template",
    "TemplateError",
    "TemplateSyntaxError",
    "Undefined",
    "Value",
    "compile_expression",
    "compile_template",
    "evaluate",
    "kind_of",
    "parse_expression",
    "parse_template",
    "render",
    "to_json",
    "to_source",
    "to_text",
    "truthy",
]
