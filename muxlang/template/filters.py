"""The filter library (SPEC section 4): one typed function per filter, one table.

Each filter takes the value left of ``|`` first, then its arguments. Its type
annotations are the contract: :func:`_spec` derives the kinds of input it
accepts, the kind it returns and the kinds of each argument from them. The
evaluator checks the input and the arguments against those kinds before the call
(so the functions may rely on them) and turns a :class:`FilterError` into a
:class:`~muxlang.template.errors.TemplateError` at the filter's position. The
compiler uses the same table for MUX011 (unknown filter), MUX012 (wrong
arguments, :meth:`FilterSpec.check_args`, :attr:`FilterSpec.param_kinds`) and
MUX013 (static kinds).
"""

from __future__ import annotations

import inspect
import posixpath
import re
import shlex
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

from muxlang._frozen import frozen
from muxlang.diagnostics import did_you_mean
from muxlang.template.marks import RawText, ShellQuoted
from muxlang.template.values import UNDEFINED, Undefined, Value, kind_of, now, to_json, to_text

__all__ = ["FILTERS", "FilterError", "FilterSpec", "describe_kinds"]


class FilterError(ValueError):
    """A filter cannot do its work with the value or arguments it was given."""


@frozen(slots=True)
class FilterSpec:
    """What the compiler and the evaluator know about one filter."""

    name: str
    func: Callable[..., Any]
    doc: str
    #: the names of the arguments after the input, in order
    params: tuple[str, ...]
    #: how many of ``params`` must be given
    required: int
    #: default values of the optional parameters
    defaults: Mapping[str, Any]
    #: static kinds of input accepted (among ``KINDS``); empty = any
    accepts: frozenset[str]
    #: static kind of the result, or None when unknown / the same as the input
    returns: str | None
    #: static kinds each argument accepts (among ``KINDS``); empty = any
    param_kinds: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: whether an undefined input reaches the function (only ``default``)
    accepts_undefined: bool = False

    @property
    def max_args(self) -> int:
        """How many arguments the filter takes at most."""
        return len(self.params)

    @property
    def signature(self) -> str:
        """``join(sep=", ")``, for messages and docs."""
        if not self.params:
            return self.name
        parts = [
            p if p not in self.defaults else f"{p}={_literal(self.defaults[p])}"
            for p in self.params
        ]
        return f"{self.name}({', '.join(parts)})"

    def check_args(self, positional: int, keywords: Sequence[str]) -> str | None:
        """A message when ``positional`` arguments and ``keywords`` do not fit, else None."""
        if positional > len(self.params):
            most = len(self.params)
            if most == 0:
                return f"filter `{self.name}` takes no arguments, got {positional}"
            plural = "argument" if most == 1 else "arguments"
            return (
                f"filter `{self.name}` takes at most {most} {plural} "
                f"({', '.join(self.params)}), got {positional}"
            )
        given = set(self.params[:positional])
        for key in keywords:
            if key not in self.params:
                message = f"filter `{self.name}` has no argument `{key}`"
                hint = did_you_mean(key, self.params)
                if hint:
                    message += f": {hint}"
                elif self.params:
                    message += f" (it takes {', '.join(self.params)})"
                return message
            if key in given:
                return f"filter `{self.name}` got argument `{key}` twice"
            given.add(key)
        missing = [p for p in self.params[: self.required] if p not in given]
        if missing:
            names = ", ".join(f"`{m}`" for m in missing)
            return f"filter `{self.name}` needs {names}: `{self.signature}`"
        return None


def _literal(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return to_json(value)
    return repr(value)


#: a value kind with its article, for messages (the compiler's too)
KIND_ARTICLES: Final = {
    "string": "a string",
    "number": "a number",
    "bool": "a boolean",
    "none": "none",
    "list": "a list",
    "table": "a table",
    "undefined": "undefined",
}


def describe_kinds(kinds: frozenset[str] | Sequence[str]) -> str:
    """``{"string", "list"}`` → ``a string or a list``."""
    order = ["string", "number", "bool", "none", "list", "table", "undefined"]
    names = [KIND_ARTICLES[k] for k in order if k in kinds]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " or " + names[-1]


def _show(value: object) -> str:
    kind = kind_of(value)
    if kind in ("none", "undefined"):
        return kind
    return f"{KIND_ARTICLES[kind]} ({to_json(value) if kind != 'string' else repr(value)[:40]})"


# ----------------------------------------------------------------------------- the filters


def trim(value: str) -> str:
    """Strip whitespace at both ends: ``"  a b \\n" | trim`` → ``a b``."""
    return value.strip()


def lines(value: str) -> list[str]:
    """Split on ``\\n``, drop a trailing ``\\r`` from each line; no element for a
    final newline, and ``""`` gives ``[]``."""
    if not value:
        return []
    parts = value.split("\n")
    if parts[-1] == "":
        parts.pop()
    return [p[:-1] if p.endswith("\r") else p for p in parts]


def nonblank(value: list[Value]) -> list[Value]:
    """Keep the items of a list that are not blank (none, undefined or only whitespace)."""
    return [
        item
        for item in value
        if not (item is None or item is UNDEFINED or (isinstance(item, str) and not item.strip()))
    ]


def join(value: list[Value], sep: str = ", ") -> str:
    """Join a list's items as inserted text, separated by ``sep``."""
    try:
        return sep.join([to_text(item) for item in value])
    except ValueError as exc:
        raise FilterError(f"cannot join the list: {exc}") from None


def json_(value: Value) -> str:
    """Compact JSON: ``["a","b"]``, non-ASCII characters kept as they are."""
    try:
        return to_json(value)
    except (TypeError, ValueError) as exc:
        raise FilterError(str(exc)) from None


_FENCED_JSON: Final = re.compile(r"```[ \t]*json[^\n]*\n(.*?)```", re.S | re.I)


def _parse_json(text: str) -> tuple[Value, str | None]:
    """The value of JSON ``text``, or (None, why it is not JSON)."""
    import json  # here, not at the top: `validate` never reads JSON

    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
    except (ValueError, RecursionError) as exc:  # huge integers, absurd nesting
        return None, str(exc) or "nested too deeply"


def from_json(value: str) -> Value:
    """Parse JSON text; when the whole text is not JSON, the first fenced
    ```` ```json ```` block in it (as LLM answers often wrap it)."""
    parsed, error = _parse_json(value)
    if error is None:
        return parsed
    block = _FENCED_JSON.search(value)
    if block is None:
        raise FilterError(f"the text is not valid JSON and holds no ```json block: {error}")
    parsed, block_error = _parse_json(block.group(1))
    if block_error is not None:
        raise FilterError(f"the fenced ```json block is not valid JSON: {block_error}")
    return parsed


def shell_escape(value: str | int | float | bool | list[Value]) -> str:
    """Quote for POSIX sh as Python's ``shlex.quote`` does (``''`` for an empty
    string). A list becomes its items, each quoted, separated by spaces. In
    ``run`` and ``verify`` the result is never quoted again: elsewhere than an
    unquoted place the original text is quoted for that place instead."""
    if isinstance(value, list):
        try:
            texts = [to_text(item) for item in value]
        except ValueError as exc:
            raise FilterError(f"cannot quote the list: {exc}") from None
        return ShellQuoted(" ".join(shlex.quote(text) for text in texts), " ".join(texts))
    text = to_text(value)
    return ShellQuoted(shlex.quote(text), text)


def raw(value: str | int | float | bool | list[Value] | dict[str, Value]) -> str:
    """Insert into ``run`` or ``verify`` as it is, unquoted: the text is shell
    code, on purpose (every other insertion there is quoted for its place).
    Outside shell commands it changes nothing."""
    try:
        return RawText(to_text(value))
    except ValueError as exc:
        raise FilterError(str(exc)) from None


def strftime(value: str, format: str) -> str:
    """Format a time (RFC 3339 text such as ``now()`` gives, or the word
    ``"now"``) with C ``strftime`` codes, as llm-mux does: ``%Y-%m-%d %H:%M``."""
    text = now() if value == "now" else value
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise FilterError(
            f'{value!r} is not a time: give RFC 3339 text such as 2026-02-14T12:34:56Z, or "now"'
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(format)


def truncate_chars(value: str, limit: int) -> str:
    """Cut a text to ``limit`` characters and mark the cut with a line
    ``[truncated]``, as llm-mux does; a text that fits is kept whole."""
    limit = int(limit)
    if limit < 0:
        raise FilterError("`limit` must not be negative")
    if len(value) <= limit:
        return value
    return value[:limit] + "\n[truncated]"


def default(value: Value, v: Value = "") -> Value:
    """``v`` when the input is undefined, none or ``""``; otherwise the input."""
    if value is UNDEFINED or value is None or value == "":
        return v
    return value


def upper(value: str) -> str:
    """Upper-case a string."""
    return value.upper()


def lower(value: str) -> str:
    """Lower-case a string."""
    return value.lower()


def length(value: str | list[Value] | dict[str, Value]) -> int:
    """The number of characters of a string, items of a list or keys of a table."""
    return len(value)


def first(value: str | list[Value]) -> Value:
    """The first item of a list (or character of a string); undefined when empty."""
    return value[0] if value else UNDEFINED


def last(value: str | list[Value]) -> Value:
    """The last item of a list (or character of a string); undefined when empty."""
    return value[-1] if value else UNDEFINED


def _sort_key(case_sensitive: bool, attribute: str | None) -> Callable[[Value], Any]:
    def key(item: Value) -> Any:
        if attribute is not None:
            if not isinstance(item, dict):
                raise FilterError(f"`attribute` needs items that are tables, got {_show(item)}")
            item = item.get(attribute, UNDEFINED)
        if item is UNDEFINED or item is None:
            return (0, 0)
        if isinstance(item, bool):
            return (1, int(item))
        if isinstance(item, int | float):
            return (1, item)
        if isinstance(item, str):
            return (2, item if case_sensitive else item.lower())
        if isinstance(item, list):
            return (3, [key(i) for i in item])
        raise FilterError(f"cannot sort {_show(item)}")

    return key


def sort(
    value: list[Value],
    reverse: bool = False,
    case_sensitive: bool = False,
    attribute: str | None = None,
) -> list[Value]:
    """Sort a list (as Jinja: strings case-insensitively unless ``case_sensitive``;
    tables by their ``attribute`` key). Items of different kinds sort none,
    then numbers, then strings, then lists."""
    return sorted(value, key=_sort_key(case_sensitive, attribute), reverse=reverse)


def unique(value: list[Value], case_sensitive: bool = False) -> list[Value]:
    """The items of a list without repeats, first occurrence kept (as Jinja,
    strings compare case-insensitively unless ``case_sensitive``; ``1`` and
    ``1.0`` are one number, ``true`` is not a number)."""
    seen: set[str] = set()
    out: list[Value] = []
    for item in value:
        probe = item.lower() if isinstance(item, str) and not case_sensitive else item
        if isinstance(probe, float) and probe.is_integer():
            probe = int(probe)  # 1 and 1.0 are the same number
        try:
            key = to_json([kind_of(probe), probe])
        except (TypeError, ValueError):
            key = repr(probe)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def reverse(value: str | list[Value]) -> str | list[Value]:
    """A list's items, or a string's characters, in reverse order."""
    return value[::-1]


def replace(value: str, old: str, new: str, count: int | None = None) -> str:
    """Replace occurrences of ``old`` by ``new`` (the first ``count`` of them if given)."""
    return value.replace(old, new, -1 if count is None else int(count))


def split(value: str, sep: str | None = None, maxsplit: int = -1) -> list[str]:
    """Split a string as Python does: on runs of whitespace by default, else on ``sep``."""
    if sep == "":
        raise FilterError("`sep` must not be empty")
    return value.split(sep, int(maxsplit))


def indent(value: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    """Indent every line but the first by ``width`` spaces (or by the string
    ``width``), as Jinja: ``first`` indents the first line too, ``blank``
    indents blank lines too."""
    pad = width if isinstance(width, str) else " " * int(width)
    newline = "\n"
    value += newline  # so the last line is handled like the others
    if blank:
        rv = (newline + pad).join(value.splitlines())
    else:
        parts = value.splitlines()
        rv = parts.pop(0) if parts else ""
        if parts:
            rv += newline + newline.join(pad + line if line.strip() else line for line in parts)
    if first:
        rv = pad + rv
    return rv


def truncate(
    value: str, length: int = 255, killwords: bool = False, end: str = "...", leeway: int = 0
) -> str:
    """Cut a string to ``length`` characters, ending with ``end``, as Jinja: at a
    word boundary unless ``killwords``. A text within ``length + leeway`` is
    kept whole (``leeway`` defaults to 0 here, 5 in Jinja)."""
    length, leeway = int(length), int(leeway)
    if length < len(end):
        raise FilterError(f"`length` must be at least the length of `end` ({len(end)})")
    if len(value) <= length + leeway:
        return value
    if killwords:
        return value[: length - len(end)] + end
    result = value[: length - len(end)].rsplit(" ", 1)[0]
    return result + end


def basename(value: str) -> str:
    """The last component of a path: ``src/a.py`` → ``a.py`` (as ``posixpath.basename``)."""
    return posixpath.basename(value)


def dirname(value: str) -> str:
    """A path without its last component: ``src/a.py`` → ``src`` (as ``posixpath.dirname``)."""
    return posixpath.dirname(value)


# ----------------------------------------------------------------------------- the table


def _kinds(annotation: Any) -> frozenset[str]:
    """The template kinds a type annotation admits; empty = any (``Value``, ``Any``)."""
    if annotation is Any or annotation is Undefined:
        return frozenset()
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        parts = [_kinds(arg) for arg in typing.get_args(annotation)]
        if any(not part for part in parts):
            return frozenset()
        return frozenset().union(*parts)
    base = typing.get_origin(annotation) or annotation
    kind = {str: "string", bool: "bool", int: "number", float: "number", list: "list"}.get(base)
    if kind is None:
        kind = {dict: "table", type(None): "none"}.get(base)
    if kind is None:
        raise TypeError(f"no template kind for the annotation {annotation!r}")
    return frozenset({kind})


def _spec(func: Callable[..., Any], *, accepts_undefined: bool = False) -> FilterSpec:
    """A filter's spec, derived from its signature, annotations and docstring."""
    params = list(inspect.signature(func).parameters.values())
    hints = typing.get_type_hints(func)
    for p in params[1:]:
        assert p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, (func, p)
    accepts = _kinds(hints[params[0].name])
    returns = _kinds(hints["return"])
    params = params[1:]
    return FilterSpec(
        name=func.__name__.rstrip("_"),  # json_ is `json`
        func=func,
        doc=inspect.cleandoc(func.__doc__ or ""),
        params=tuple(p.name for p in params),
        required=sum(1 for p in params if p.default is inspect.Parameter.empty),
        defaults=MappingProxyType(
            {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
        ),
        accepts=accepts,
        returns=next(iter(returns)) if len(returns) == 1 else None,
        param_kinds=MappingProxyType({p.name: _kinds(hints[p.name]) for p in params}),
        accepts_undefined=accepts_undefined,
    )


#: Every filter, by name. The one table the evaluator and the compiler read.
FILTERS: Final[Mapping[str, FilterSpec]] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            _spec(trim),
            _spec(lines),
            _spec(nonblank),
            _spec(join),
            _spec(json_),
            _spec(from_json),
            _spec(shell_escape),
            _spec(raw),
            _spec(strftime),
            _spec(truncate_chars),
            _spec(default, accepts_undefined=True),
            _spec(upper),
            _spec(lower),
            _spec(length),
            _spec(first),
            _spec(last),
            _spec(sort),
            _spec(unique),
            _spec(reverse),
            _spec(replace),
            _spec(split),
            _spec(indent),
            _spec(truncate),
            _spec(basename),
            _spec(dirname),
        )
    }
)
