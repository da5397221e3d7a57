"""Parse templates and expressions with ``muxlang/grammar.lark`` into the AST.

The one boundary where Lark exceptions become :class:`TemplateSyntaxError`.
The grammar is loaded once (LALR, conflict-free under ``strict=True`` as a test
checks; the analysed parser is cached on disk, see :mod:`muxlang._cache`);
results are cached by source when no locator is given.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final

import lark
from lark import Token, Tree
from lark.exceptions import UnexpectedInput, VisitError

from muxlang._cache import load_lark
from muxlang.source import LineIndex, Locator, Span
from muxlang.template import ast
from muxlang.template.errors import TemplateSyntaxError

__all__ = ["grammar", "parse_expression", "parse_template"]

#: how deeply expressions (and blocks) may nest; keeps every later recursion safe
MAX_DEPTH: Final = 100
_TOO_DEEP: Final = (
    f"nested too deeply (more than {MAX_DEPTH} levels of blocks, brackets and filters)"
)
_TAG_NAMES: Final = ("if", "elif", "else", "endif", "for", "endfor", "raw", "endraw")
#: words that are operators, so never names
_KEYWORDS: Final = frozenset(
    {"and", "or", "not", "in", "is", "defined", "true", "false", "none", "True", "False", "None"}
)


@functools.cache
def grammar() -> lark.Lark:
    """The Lark parser for both start symbols, built once."""
    # a plain open, as the rules' files: importlib.resources costs a cold start ~3 ms
    with open(
        os.path.join(os.path.dirname(os.path.dirname(__file__)), "grammar.lark"), encoding="utf-8"
    ) as file:
        text = file.read()
    return load_lark(
        "template-grammar",
        text,
        start=["template", "expression"],
        parser="lalr",
        lexer="contextual",
        # strict=True (no shift/reduce conflict, no colliding terminals) is
        # checked by tests/perf/test_perf_imports.py: at run time it would cost
        # ~0.3 s and need interegular, a development dependency
        strict=False,
        propagate_positions=True,
        maybe_placeholders=False,
    )


@functools.cache
def _expression_terminals() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """The grammar's own expression terminals, to name what an error stumbled on."""
    out = []
    for term in grammar().terminals:
        if term.name in _TEMPLATE_TOKENS - {"OUTPUT_CLOSE", "BLOCK_CLOSE"} or term.name in (
            "TEXT",
            "WS",
        ):
            continue
        out.append((term.name, re.compile(term.pattern.to_regexp())))
    return tuple(out)


# ----------------------------------------------------------------------------- public API


def parse_template(source: str, locate: Locator | None = None) -> ast.Template:
    """Parse a template. Positions come from ``locate`` (default: the source itself)."""
    if locate is None:
        return _parse_template_cached(source)
    return _parse(source, locate, "template")  # type: ignore[return-value]


def parse_expression(source: str, locate: Locator | None = None) -> ast.Expr:
    """Parse a bare expression (``if``, ``for_each``)."""
    if locate is None:
        return _parse_expression_cached(source)
    return _parse(source, locate, "expression")  # type: ignore[return-value]


@functools.lru_cache(maxsize=4096)
def _parse_template_cached(source: str) -> ast.Template:
    return _parse(source, LineIndex(source).span, "template")  # type: ignore[return-value]


@functools.lru_cache(maxsize=4096)
def _parse_expression_cached(source: str) -> ast.Expr:
    return _parse(source, LineIndex(source).span, "expression")  # type: ignore[return-value]


@functools.lru_cache(maxsize=8192)
def _tree(source: str, start: str) -> Tree[Token]:
    """The Lark tree of ``source``, cached: it holds offsets into ``source`` only
    (spans come from the builder's ``locate``), and the language server checks a
    file at every keystroke while most of its templates stay the same."""
    return grammar().parse(source, start=start)


def _parse(source: str, locate: Locator, start: str) -> ast.Template | ast.Expr:
    try:
        tree = _tree(source, start)
    except UnexpectedInput as exc:
        from muxlang.template.syntax_errors import Errors  # only when there is an error

        raise Errors(source, locate, start).translate(exc) from None
    builder = _Builder(source, locate)
    try:
        if start == "template":
            return builder.template(tree)
        return builder.expr(tree.children[0])
    except VisitError as exc:  # pragma: no cover - the builder raises nothing else
        if isinstance(exc.orig_exc, TemplateSyntaxError):
            raise exc.orig_exc from None
        raise


# ----------------------------------------------------------------------------- tree → AST

_TEMPLATE_TOKENS: Final = frozenset(
    {
        "TEXT",
        "RAW",
        "COMMENT",
        "OUTPUT_OPEN",
        "OUTPUT_CLOSE",
        "IF_OPEN",
        "ELIF_OPEN",
        "ELSE",
        "ENDIF",
        "FOR_OPEN",
        "ENDFOR",
        "BLOCK_CLOSE",
    }
)
_STRIP_AFTER: Final = ("-}}", "-%}", "-#}")
_STRIP_BEFORE: Final = ("{{-", "{%-", "{#-")
_RAW_RE: Final = re.compile(r"\{%(-?)\s*raw\s*(-?)%\}(.*?)\{%(-?)\s*endraw\s*(-?)%\}", re.S)
_ESCAPES: Final = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "0": "\0",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
}
_ESCAPE_RE: Final = re.compile(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|x[0-9a-fA-F]{2}|.)", re.S)


def _unescape(body: str) -> str:
    """Backslash escapes of a string literal, as in Python (unknown ones kept)."""
    if "\\" not in body:
        return body

    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if len(code) > 1:
            return chr(int(code[1:], 16))
        return _ESCAPES.get(code, "\\" + code)

    return _ESCAPE_RE.sub(one, body)


def _start(token: Token) -> int:
    return token.start_pos or 0


def _end(token: Token) -> int:
    return token.end_pos or 0


#: the rules whose direct children hold the template-level tokens
_TEMPLATE_RULES: Final = frozenset(
    {"template", "body", "text", "raw", "comment", "output"}
    | {"if_block", "elif_part", "else_part", "for_block"}
)


def _tokens_in_order(tree: Tree[Token]) -> Iterator[Token]:
    """The template-level tokens (text, tags) in source order; iterative, so any
    nesting depth is fine, and never inside an expression."""
    stack: list[Tree[Token] | Token] = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, Token):
            if item.type in _TEMPLATE_TOKENS:
                yield item
        elif item.data in _TEMPLATE_RULES:
            stack.extend(reversed(item.children))


class _Builder:
    """Builds AST nodes from a Lark tree, with spans through ``locate``."""

    def __init__(self, source: str, locate: Locator) -> None:
        self.source = source
        self.locate = locate
        # TEXT token start → (start, end) after whitespace control
        self.text_bounds: dict[int, tuple[int, int]] = {}
        self.depth = 0

    # -- spans
    def span_of(self, item: Tree[Token] | Token) -> Span:
        if isinstance(item, Token):
            return self.locate(item.start_pos or 0, item.end_pos or 0)
        meta = item.meta
        if meta.empty:
            return self.locate(0, 0)
        return self.locate(meta.start_pos, meta.end_pos)

    # -- templates
    def template(self, tree: Tree[Token]) -> ast.Template:
        self._whitespace_control(tree)
        body = self.body(tree.children[0])  # type: ignore[arg-type]
        return ast.Template(body, self.locate(0, len(self.source)), self.source)

    def _whitespace_control(self, tree: Tree[Token]) -> None:
        tokens = list(_tokens_in_order(tree))
        for i, tok in enumerate(tokens):
            if tok.type != "TEXT":
                continue
            start, end = _start(tok), tok.end_pos or 0
            text = tok.value
            if i > 0 and tokens[i - 1].value.endswith(_STRIP_AFTER):
                stripped = text.lstrip()
                start += len(text) - len(stripped)
                text = stripped
            if i + 1 < len(tokens) and tokens[i + 1].value.startswith(_STRIP_BEFORE):
                stripped = text.rstrip()
                end -= len(text) - len(stripped)
            self.text_bounds[_start(tok)] = (start, end)

    def body(self, tree: Tree[Token]) -> tuple[ast.Node, ...]:
        if self.depth > MAX_DEPTH:
            raise TemplateSyntaxError(_TOO_DEEP, self.span_of(tree))
        self.depth += 1
        try:
            return self._body(tree)
        finally:
            self.depth -= 1

    def _body(self, tree: Tree[Token]) -> tuple[ast.Node, ...]:
        nodes: list[ast.Node] = []
        for child in tree.children:
            assert isinstance(child, Tree)
            node = self.item(child)
            if node is not None:
                nodes.append(node)
        return tuple(nodes)

    def item(self, tree: Tree[Token]) -> ast.Node | None:
        kind = tree.data
        if kind == "text":
            tok = tree.children[0]
            assert isinstance(tok, Token)
            start, end = self.text_bounds.get(_start(tok), (_start(tok), _end(tok)))
            if start >= end:
                return None
            return ast.Text(self.source[start:end], self.locate(start, end))
        if kind == "raw":
            tok = tree.children[0]
            assert isinstance(tok, Token)
            match = _RAW_RE.fullmatch(tok.value)
            assert match is not None
            content = match.group(3)
            start = (_start(tok)) + match.start(3)
            if match.group(2):
                stripped = content.lstrip()
                start += len(content) - len(stripped)
                content = stripped
            if match.group(4):
                content = content.rstrip()
            if not content:
                return None
            return ast.Text(content, self.locate(start, start + len(content)))
        if kind == "comment":
            return None
        if kind == "output":
            return ast.Output(self.expr(tree.children[1]), self.span_of(tree))
        if kind == "if_block":
            return self.if_block(tree)
        if kind == "for_block":
            return self.for_block(tree)
        raise AssertionError(f"unexpected template node {kind}")  # pragma: no cover

    def if_block(self, tree: Tree[Token]) -> ast.If:
        children = tree.children
        branches = [(self.expr(children[1]), self.body(children[3]))]  # type: ignore[arg-type]
        else_body: tuple[ast.Node, ...] | None = None
        for part in children[4:]:
            if not isinstance(part, Tree):
                continue
            if part.data == "elif_part":
                branches.append((self.expr(part.children[1]), self.body(part.children[3])))  # type: ignore[arg-type]
            elif part.data == "else_part":
                else_body = self.body(part.children[1])  # type: ignore[arg-type]
        return ast.If(tuple(branches), else_body, self.span_of(tree))

    def for_block(self, tree: Tree[Token]) -> ast.For:
        children = tree.children
        var = children[1]
        assert isinstance(var, Token)
        if var.value in _KEYWORDS:
            raise TemplateSyntaxError(
                f"`{var.value}` is a keyword and cannot be a loop variable", self.span_of(var)
            )
        else_body: tuple[ast.Node, ...] | None = None
        for part in children[5:]:
            if isinstance(part, Tree) and part.data == "else_part":
                else_body = self.body(part.children[1])  # type: ignore[arg-type]
        return ast.For(
            var=var.value,
            iterable=self.expr(children[2]),
            body=self.body(children[4]),  # type: ignore[arg-type]
            span=self.span_of(tree),
            var_span=self.span_of(var),
            else_body=else_body,
        )

    # -- expressions
    def expr(self, node: Tree[Token] | Token) -> ast.Expr:
        assert not isinstance(node, Token), node  # every token is wrapped by a rule
        span = self.span_of(node)
        kind = node.data
        ch = node.children
        method: Callable[[Sequence[Any], Span], ast.Expr] = getattr(self, "x_" + str(kind))
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise TemplateSyntaxError(_TOO_DEEP, span)
        try:
            return method(ch, span)
        finally:
            self.depth -= 1

    def x_string(self, ch: Sequence[Token], span: Span) -> ast.Expr:
        return ast.Literal(_unescape(ch[0].value[1:-1]), span)

    def x_int(self, ch: Sequence[Token], span: Span) -> ast.Expr:
        if len(ch[0].value) > 100:
            raise TemplateSyntaxError("the number is too long (more than 100 digits)", span)
        return ast.Literal(int(ch[0].value), span)

    def x_float(self, ch: Sequence[Token], span: Span) -> ast.Expr:
        return ast.Literal(float(ch[0].value), span)

    def x_true(self, ch: Sequence[Token], span: Span) -> ast.Expr:
        return ast.Literal(True, span)

    def x_false(self, ch: Sequence[Token], span: Span) -> ast.Expr:
        return ast.Literal(False, span)

    def x_none(self, ch: Sequence[Token], span: Span) -> ast.Expr:
        return ast.Literal(None, span)

    def x_list(self, ch: Sequence[Tree[Token]], span: Span) -> ast.Expr:
        return ast.ListExpr(tuple(self.expr(c) for c in ch), span)

    def x_table(self, ch: Sequence[Tree[Token]], span: Span) -> ast.Expr:
        pairs = []
        for pair in ch:
            key, value = pair.children
            pairs.append((self.expr(key), self.expr(value)))
        return ast.TableExpr(tuple(pairs), span)

    def x_name(self, ch: Sequence[Token], span: Span) -> ast.Expr:
        if ch[0].value in _KEYWORDS:
            raise TemplateSyntaxError(f"expected an expression, found `{ch[0].value}`", span)
        return ast.Name(ch[0].value, span)

    def x_attr(self, ch: Sequence[Any], span: Span) -> ast.Expr:
        return ast.Attr(self.expr(ch[0]), ch[1].value, span, self.span_of(ch[1]))

    def x_index(self, ch: Sequence[Any], span: Span) -> ast.Expr:
        return ast.Index(self.expr(ch[0]), self.expr(ch[1]), span)

    def x_not_op(self, ch: Sequence[Any], span: Span) -> ast.Expr:
        return ast.Not(self.expr(ch[0]), span)

    def x_and_op(self, ch: Sequence[Any], span: Span) -> ast.Expr:
        return ast.BoolOp("and", self.expr(ch[0]), self.expr(ch[1]), span)

    def x_or_op(self, ch: Sequence[Any], span: Span) -> ast.Expr:
        return ast.BoolOp("or", self.expr(ch[0]), self.expr(ch[1]), span)

    def x_compare(self, ch: Sequence[Any], span: Span) -> ast.Expr:
        op = ch[1].value
        return ast.Compare(op, self.expr(ch[0]), self.expr(ch[2]), span)

    def x_in_op(self, ch: Sequence[Any], span: Span) -> ast.Expr:
        return ast.Compare("in", self.expr(ch[0]), self.expr(ch[1]), span)

    def x_not_in_op(self, ch: Sequence[Any], span: Span) -> ast.Expr:
        return ast.Compare("not in", self.expr(ch[0]), self.expr(ch[1]), span)

    def x_is_defined(self, ch: Sequence[Any], span: Span) -> ast.Expr:
        return ast.IsDefined(self.expr(ch[0]), False, span)

    def x_is_not_defined(self, ch: Sequence[Any], span: Span) -> ast.Expr:
        return ast.IsDefined(self.expr(ch[0]), True, span)

    def x_concat(self, ch: Sequence[Any], span: Span) -> ast.Expr:
        return ast.Concat(self.expr(ch[0]), self.expr(ch[1]), span)

    def _arguments(
        self, items: Sequence[Any]
    ) -> tuple[tuple[ast.Expr, ...], tuple[tuple[str, ast.Expr], ...], tuple[Span, ...]]:
        """Positional arguments, keyword arguments, and the span of each keyword's name."""
        args: list[ast.Expr] = []
        kwargs: list[tuple[str, ast.Expr]] = []
        kwarg_spans: list[Span] = []
        for item in items:
            if isinstance(item, Tree) and item.data == "kwarg":
                name_tok = item.children[0]
                assert isinstance(name_tok, Token)
                if any(k == name_tok.value for k, _ in kwargs):
                    raise TemplateSyntaxError(
                        f"argument `{name_tok.value}` is given twice", self.span_of(name_tok)
                    )
                kwargs.append((name_tok.value, self.expr(item.children[1])))
                kwarg_spans.append(self.span_of(name_tok))
            else:
                if kwargs:
                    raise TemplateSyntaxError(
                        "a positional argument cannot follow a keyword argument",
                        self.span_of(item),
                    )
                args.append(self.expr(item))
        return tuple(args), tuple(kwargs), tuple(kwarg_spans)

    def x_filter(self, ch: Sequence[Any], span: Span) -> ast.Expr:
        operand = self.expr(ch[0])
        name_tok: Token = ch[1]
        args: tuple[ast.Expr, ...] = ()
        kwargs: tuple[tuple[str, ast.Expr], ...] = ()
        kwarg_spans: tuple[Span, ...] = ()
        if len(ch) > 2:
            args, kwargs, kwarg_spans = self._arguments(ch[2].children)
        return ast.Filter(
            operand, name_tok.value, args, kwargs, span, self.span_of(name_tok), kwarg_spans
        )

    def x_call(self, ch: Sequence[Any], span: Span) -> ast.Expr:
        args, kwargs, _ = self._arguments(ch[1:])
        if kwargs:
            raise TemplateSyntaxError(
                f"`{ch[0].value}()` takes no keyword arguments", self.span_of(ch[0])
            )
        return ast.Call(ch[0].value, args, span)
