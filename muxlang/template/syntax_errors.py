"""Syntax errors of templates and expressions: Lark's exceptions turned into
messages a user can act on (the parser's one boundary for them, with
:func:`muxlang.template.parser.parse_template`)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Final

from lark import Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from muxlang.diagnostics import did_you_mean
from muxlang.source import Locator
from muxlang.template.errors import TemplateSyntaxError
from muxlang.template.parser import (
    _KEYWORDS,
    _TAG_NAMES,
    _TEMPLATE_TOKENS,
    _end,
    _expression_terminals,
    _start,
)

_OPENERS: Final = {"OUTPUT_OPEN": "}}", "IF_OPEN": "%}", "ELIF_OPEN": "%}", "FOR_OPEN": "%}"}
_BRACKETS: Final = {"LPAR": ")", "LSQB": "]"}
#: tokens after which an operand is expected, and how to say it
_OPERAND_AFTER: Final = frozenset(
    {
        "VBAR",
        "DOT",
        "IS",
        "FOR_OPEN",
        "OUTPUT_OPEN",
        "IF_OPEN",
        "ELIF_OPEN",
        "AND",
        "OR",
        "NOT",
        "IN",
        "TILDE",
        "COMP_OP",
        "LPAR",
        "LSQB",
        "COMMA",
        "EQUAL",
    }
)
_OPENER_NAMES: Final = {
    "OUTPUT_OPEN": "`{{`",
    "IF_OPEN": "tag `{% if`",
    "ELIF_OPEN": "tag `{% elif`",
    "FOR_OPEN": "tag `{% for`",
}
_NEEDS_OPERAND: Final = {
    "VBAR": "expected a filter name after `|`",
    "DOT": "expected a name after `.`",
    "IS": "expected `defined` or `not defined` after `is`",
    "FOR_OPEN": "expected a loop variable after `{% for`",
    "OUTPUT_OPEN": "expected an expression after `{{`",
    "IF_OPEN": "expected a condition after `{% if`",
    "ELIF_OPEN": "expected a condition after `{% elif`",
}


def _describe_tag(value: str) -> str:
    """``{%- else -%}`` → ``{% else %}``; ``{% if`` → ``{% if %}``."""
    word = re.sub(r"[{%}#\-\s]", "", value)
    return f"`{{% {word} %}}`"


class Errors:
    """Turns Lark's exceptions into messages a user can act on."""

    def __init__(self, source: str, locate: Locator, start: str) -> None:
        self.source = source
        self.locate = locate
        self.start = start

    def error(
        self, message: str, start: int, end: int, hint: str | None = None
    ) -> TemplateSyntaxError:
        end = max(end, start + 1) if start < len(self.source) else start
        return TemplateSyntaxError(message, self.locate(start, end), hint)

    def line_of(self, offset: int) -> int:
        return self.locate(offset, offset).line

    def translate(self, exc: UnexpectedInput) -> TemplateSyntaxError:
        stripped = self.source.lstrip()
        if self.start == "expression" and stripped.startswith("{{"):
            pos = len(self.source) - len(stripped)
            inner = re.fullmatch(r"\s*\{\{-?(.*?)-?\}\}\s*", self.source, re.S)
            return self.error(
                "an expression here is written without `{{ }}`",
                pos,
                pos + 2,
                hint=f"write `{inner.group(1).strip()}`"
                if inner
                else "write `steps.a.output != ''`, not `{{ steps.a.output != '' }}`",
            )
        if isinstance(exc, UnexpectedToken) and exc.token.value in ("{", "}"):
            # a lone brace lexes as a table literal's: say what the text around it is
            return self.unexpected_chars(exc.token.start_pos or 0)
        if isinstance(exc, UnexpectedToken):
            stack: list[Any] = []
            if exc.interactive_parser is not None:
                stack = list(exc.interactive_parser.parser_state.value_stack)
            return self.unexpected_token(exc.token, stack)
        if isinstance(exc, UnexpectedCharacters):
            return self.unexpected_chars(exc.pos_in_stream or 0)
        return self.error(  # pragma: no cover - LALR raises only the two above
            "syntax error", exc.pos_in_stream or 0, (exc.pos_in_stream or 0) + 1
        )

    # -- lexer errors: nothing matched at ``pos``
    def unexpected_chars(self, pos: int) -> TemplateSyntaxError:
        rest = self.source[pos:]
        if rest.startswith("{#"):
            return self.error(
                f"comment `{{#` at line {self.line_of(pos)} is never closed (expected `#}}`)",
                pos,
                pos + 2,
            )
        if rest.startswith("{%"):
            return self.bad_tag(pos)
        return self.bad_expression_text(pos)

    def bad_tag(self, pos: int) -> TemplateSyntaxError:
        rest = self.source[pos:]
        match = re.match(r"\{%-?\s*([A-Za-z_][A-Za-z0-9_-]*)?", rest)
        assert match is not None
        word = match.group(1)
        close = rest.find("%}")
        newline = rest.find("\n")
        tag_end = pos + close + 2 if close != -1 and (newline == -1 or close < newline) else None
        end = tag_end if tag_end is not None else pos + match.end()
        line = self.line_of(pos)
        if word is None:
            return self.error("expected a tag name after `{%`", pos, end)
        if word == "raw":
            if re.match(r"\{%-?\s*raw\s*-?%\}", rest):
                return self.error(
                    f"`{{% raw %}}` at line {line} is never closed (expected `{{% endraw %}}`)",
                    pos,
                    end,
                )
            return self.error("`{% raw %}` takes nothing after `raw`", pos, end)
        if word == "endraw":
            return self.error("`{% endraw %}` without a matching `{% raw %}`", pos, end)
        if word in _TAG_NAMES:
            if tag_end is None:
                return self.error(
                    f"tag `{{% {word}` at line {line} is never closed (expected `%}}`)",
                    pos,
                    pos + match.end(),
                )
            return self.error(f"`{{% {word} %}}` takes nothing after `{word}`", pos, end)
        hint = did_you_mean(word, _TAG_NAMES)
        message = f"unknown tag `{{% {word} %}}`"
        if hint:
            message += f": {hint}"
        return self.error(message, pos, end)

    def bad_expression_text(self, pos: int) -> TemplateSyntaxError:
        """An expression held something no expression token matches (or a stray token)."""
        rest = self.source[pos:]
        if rest[:1] in ("'", '"'):
            return self.error(
                f"string starting at line {self.line_of(pos)} is never closed "
                f"(expected a closing {rest[0]})",
                pos,
                pos + 1,
            )
        if rest.startswith(("}}", "%}", "-}}", "-%}")):
            closer = rest[:3] if rest[0] == "-" else rest[:2]
            return self.error(f"unexpected `{closer}`", pos, pos + len(closer))
        char = rest[:1]
        if char == "}":
            return self.error("unexpected `}`: did you mean `}}`?", pos, pos + 1)
        if char == "-":
            return self.error(
                "unexpected `-`: there is no subtraction, and a name cannot start with `-`",
                pos,
                pos + 1,
            )
        if not char.isprintable() or (char.isspace() and char != " "):
            name = unicodedata.name(char, "").lower()
            shown = f"U+{ord(char):04X}" + (f" ({name})" if name else "")
            return self.error(f"unexpected character {shown}", pos, pos + 1)
        hint = None
        if char in "+*/%":
            hint = "there is no arithmetic in templates"
        return self.error(f"unexpected character `{char}`", pos, pos + 1, hint)

    # -- parser errors
    def unexpected_token(self, token: Token, stack: list[Any]) -> TemplateSyntaxError:
        pos = token.start_pos if token.start_pos is not None else len(self.source)
        at_end = token.type == "$END"
        if at_end:
            pos = len(self.source)
        context = self.context(stack)
        in_expression = context is not None or self.start == "expression"

        if in_expression and token.type == "TEXT":
            # the root lexer's TEXT swallowed whatever follows: name its first token
            kind, text = self.first_expression_token(pos)
            if kind is None:
                return self.bad_expression_text(pos)
            token = Token(kind, text, pos, end_pos=pos + len(text))

        prev = stack[-1] if stack else None
        prev_type = prev.type if isinstance(prev, Token) else None
        before_prev = stack[-2] if len(stack) >= 2 else None
        end = self.token_end(token, pos)

        if in_expression:
            bracket = self.open_bracket(stack)
            if (
                bracket is not None
                and prev_type in ("COMMA", "LPAR", "LSQB")
                and (at_end or token.type in _TEMPLATE_TOKENS)
            ):
                opener, closer = bracket
                return self.error(
                    f"`{opener.value}` at line {self.line_of(_start(opener))} "
                    f"is never closed (expected `{closer}`)",
                    _start(opener),
                    _end(opener),
                )
            if prev_type == "NAME" and prev.value in _KEYWORDS:  # type: ignore[union-attr]
                # a keyword where an operand belongs was read as a name
                assert isinstance(prev, Token)
                where, until = _start(prev), _end(prev)
                if isinstance(before_prev, Token) and before_prev.type in _OPERAND_AFTER:
                    return self.error(
                        f"expected an expression after `{before_prev.value.strip()}`, "
                        f"found `{prev.value}`",
                        where,
                        until,
                    )
                return self.error(f"unexpected `{prev.value}`", where, until)
            if prev_type is not None and prev_type in _OPERAND_AFTER:
                if (
                    prev_type == "NOT"
                    and isinstance(before_prev, Token)
                    and before_prev.type == "IS"
                ):
                    return self.error("expected `defined` after `is not`", pos, end)
                if (
                    prev_type == "NOT"
                    and before_prev is not None
                    and not (isinstance(before_prev, Token) and before_prev.type in _OPERAND_AFTER)
                ):
                    return self.error("expected `in` after `not`", pos, end)
                message = _NEEDS_OPERAND.get(prev_type)
                if message is None:
                    message = f"expected an expression after `{prev.value}`"  # type: ignore[union-attr]
                return self.error(message, pos, end)
            if (
                prev_type == "NAME"
                and isinstance(before_prev, Token)
                and before_prev.type == "FOR_OPEN"
            ):
                return self.error("expected `in` after the loop variable", pos, end)
            chained = token.type in ("COMP_OP", "IN", "IS", "NOT") and self.in_comparison(stack)
            chain_hint = "comparisons do not chain: write `a < b and b < c`" if chained else None
            if token.type == "NAME" and token.value == "if":
                chain_hint = "there is no inline `if`: use `{% if %}…{% else %}…{% endif %}`"
            elif token.type == "LPAR":
                chain_hint = "there are no methods: apply a filter, `x | name(...)`"
            # the innermost open bracket, else the open `{{ ... }}` / `{% ... %}`
            unclosed = bracket if bracket is not None else context
            if unclosed is not None:
                opener, closer = unclosed
                if bracket is not None:
                    what, ends = f"`{opener.value}`", _TEMPLATE_TOKENS
                else:
                    what = _OPENER_NAMES[opener.type]
                    ends = _TEMPLATE_TOKENS - {"OUTPUT_CLOSE", "BLOCK_CLOSE"}
                if at_end or token.type in ends:
                    return self.error(
                        f"{what} at line {self.line_of(_start(opener))} is never closed "
                        f"(expected `{closer}`)",
                        _start(opener),
                        _end(opener),
                    )
                return self.error(
                    f"unexpected {self.describe(token)}; expected `{closer}`",
                    pos,
                    end,
                    chain_hint,
                )
            # a bare expression
            if at_end:
                if not stack:
                    return self.error("expected an expression, found nothing", pos, pos)
                return self.error("unexpected end of the expression", pos, pos)
            if token.type == "OUTPUT_OPEN":
                inner = re.fullmatch(r"\s*\{\{-?(.*?)-?\}\}\s*", self.source, re.S)
                return self.error(
                    "an expression here is written without `{{ }}`",
                    pos,
                    end,
                    hint=f"write `{inner.group(1).strip()}`"
                    if inner
                    else "write `steps.a.output != ''`, not `{{ steps.a.output != '' }}`",
                )
            return self.error(f"unexpected {self.describe(token)}", pos, end, chain_hint)

        # template level: a tag in the wrong place, or the end with blocks still open
        block = self.open_block(stack)
        if at_end:
            if block is None:  # pragma: no cover - every other end is fine
                return self.error("unexpected end of the template", pos, pos)
            word = "if" if block.type == "IF_OPEN" else "for"
            return self.error(
                f"`{{% {word} %}}` at line {self.line_of(_start(block))} is never closed "
                f"(expected `{{% end{word} %}}`)",
                _start(block),
                _end(block),
            )
        tag = _describe_tag(token.value)
        end = self.token_end(token, pos)
        if token.type in ("ENDIF", "ENDFOR", "ELSE", "ELIF_OPEN"):
            want = "if" if token.type in ("ENDIF", "ELIF_OPEN") else "for"
            if block is None:
                if token.type == "ELSE":
                    return self.error("`{% else %}` outside `{% if %}` or `{% for %}`", pos, end)
                return self.error(f"{tag} without a matching `{{% {want} %}}`", pos, end)
            open_word = "if" if block.type == "IF_OPEN" else "for"
            if token.type in ("ELSE", "ELIF_OPEN") and self.after_else(stack, block):
                return self.error(f"{tag} after `{{% else %}}`", pos, end)
            if token.type == "ELIF_OPEN":
                return self.error(
                    f"{tag} inside `{{% for %}}` at line {self.line_of(_start(block))}: "
                    "only `{% if %}` has `elif` (expected `{% endfor %}`)",
                    pos,
                    end,
                )
            return self.error(
                f"{tag} cannot close `{{% {open_word} %}}` at line "
                f"{self.line_of(_start(block))} (expected `{{% end{open_word} %}}`)",
                pos,
                end,
            )
        return self.error(f"unexpected {self.describe(token)}", pos, end)  # pragma: no cover

    # -- helpers
    def token_end(self, token: Token, pos: int) -> int:
        if token.type == "$END":
            return pos
        if token.end_pos is not None and token.type != "TEXT":
            return token.end_pos
        words = token.value.split()
        return pos + (len(words[0]) if words else 1)

    def describe(self, token: Token) -> str:
        if token.type == "$END":
            return "end of input"
        if token.type == "NAME":
            return f"name `{token.value}`"
        if token.type in ("INT", "FLOAT"):
            return f"number `{token.value}`"
        if token.type == "STRING":
            return f"string {token.value}"
        if token.type in ("IF_OPEN", "ELIF_OPEN", "FOR_OPEN", "ELSE", "ENDIF", "ENDFOR"):
            return _describe_tag(token.value)
        return f"`{token.value.strip()}`"

    def first_expression_token(self, pos: int) -> tuple[str | None, str]:
        best: tuple[str | None, str] = (None, "")
        for name, pattern in _expression_terminals():
            match = pattern.match(self.source, pos)
            if match and (
                len(match.group(0)) > len(best[1])
                or (len(match.group(0)) == len(best[1]) and best[0] == "NAME")
            ):
                best = (name, match.group(0))
        return best

    @staticmethod
    def context(stack: list[Any]) -> tuple[Token, str] | None:
        """The tag whose expression we are in (its opener and closer), if any."""
        for item in reversed(stack):
            if isinstance(item, Token):
                if item.type in _OPENERS:
                    return item, _OPENERS[item.type]
                if item.type in ("BLOCK_CLOSE", "ELSE"):
                    return None
            elif isinstance(item, Tree) and item.data in ("body", "if_block", "for_block"):
                return None
        return None

    @staticmethod
    def open_bracket(stack: list[Any]) -> tuple[Token, str] | None:
        for item in reversed(stack):
            if not isinstance(item, Token):
                continue
            if item.type in _OPENERS or item.type in ("BLOCK_CLOSE", "ELSE"):
                return None
            if item.type in _BRACKETS:
                return item, _BRACKETS[item.type]
        return None

    @staticmethod
    def in_comparison(stack: list[Any]) -> bool:
        """Whether the expression being read already holds a comparison."""
        for item in reversed(stack):
            if isinstance(item, Tree) and item.data in (
                "compare",
                "in_op",
                "not_in_op",
                "is_defined",
                "is_not_defined",
            ):
                return True
            if isinstance(item, Token):
                if item.type in ("COMP_OP", "IN", "IS"):
                    return True
                if item.type in _OPENERS or item.type in _BRACKETS:
                    return False
                if item.type in ("AND", "OR", "BLOCK_CLOSE"):
                    return False
        return False

    @staticmethod
    def open_block(stack: list[Any]) -> Token | None:
        for item in reversed(stack):
            if isinstance(item, Token) and item.type in ("IF_OPEN", "FOR_OPEN"):
                return item
        return None

    @staticmethod
    def after_else(stack: list[Any], block: Token) -> bool:
        seen = False
        for item in reversed(stack):
            if item is block:
                return seen
            if isinstance(item, Token) and item.type == "ELSE":
                seen = True
        return False
