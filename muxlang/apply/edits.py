"""Edits in an LLM's answer: pure parsing, no file system (SPEC section 7).

Accepted, anywhere in the text (prose around them is ignored):

* a JSON object ``{"path", "old", "new"}`` (replace ``old``, which must occur
  exactly once, with ``new``), a list of them, ``{"edits": [...]}``, or a
  whole-file ``{"path", "content"}``; bare, or inside a fenced code block;
* a unified diff (``--- a/x`` / ``+++ b/x`` / ``@@`` hunks, several files and
  hunks, ``/dev/null`` for created or deleted files), bare or fenced.

:func:`parse_edits` returns the edits in the order they appear, numbered from 1,
or raises :class:`~muxlang.apply.errors.EditParseError` (and nothing else).
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from muxlang._frozen import frozen
from muxlang.apply.errors import EditParseError
from muxlang.template.filters import KIND_ARTICLES
from muxlang.template.values import kind_of

__all__ = [
    "Edit",
    "Hunk",
    "Patch",
    "Replace",
    "WriteFile",
    "describe",
    "parse_edits",
]


@frozen(slots=True)
class Replace:
    """Replace the one occurrence of ``old`` in ``path`` with ``new``.

    An empty ``old`` creates ``path`` with ``new`` when the file does not exist.
    """

    index: int
    path: str
    old: str
    new: str


@frozen(slots=True)
class WriteFile:
    """Write ``content`` as the whole of ``path`` (created when missing)."""

    index: int
    path: str
    content: str


LineTag = Literal[" ", "-", "+"]


@frozen(slots=True)
class Hunk:
    """One ``@@`` hunk. ``old_start`` is None for a bare ``@@`` header (no numbers)."""

    header: str
    old_start: int | None
    old_len: int | None
    new_start: int | None
    new_len: int | None
    lines: tuple[tuple[LineTag, str], ...]
    #: ``\\ No newline at end of file`` followed the last old-side / new-side line
    old_no_newline: bool = False
    new_no_newline: bool = False

    @property
    def old_lines(self) -> list[str]:
        return [text for tag, text in self.lines if tag != "+"]

    @property
    def new_lines(self) -> list[str]:
        return [text for tag, text in self.lines if tag != "-"]


@frozen(slots=True)
class Patch:
    """One file of a unified diff. ``old_path`` None: created; ``new_path`` None: deleted."""

    index: int
    old_path: str | None
    new_path: str | None
    hunks: tuple[Hunk, ...]

    @property
    def path(self) -> str:
        path = self.new_path if self.new_path is not None else self.old_path
        assert path is not None
        return path


Edit = Replace | WriteFile | Patch


def describe(edit: Edit) -> str:
    """``edit 2 (src/app.py)``: how messages name an edit."""
    return f"edit {edit.index} ({edit.path})"


# --------------------------------------------------------------------------- entry point

_JSON_LANGS = frozenset({"json", "jsonc", "json5"})
_DIFF_LANGS = frozenset({"diff", "patch", "udiff"})
#: at most this many places in prose are tried as the start of a JSON value
_MAX_JSON_PROBES = 200


def parse_edits(text: str) -> tuple[Edit, ...]:
    """Every edit in ``text``, in order; :class:`EditParseError` when there are none
    or one is malformed.

    Fenced blocks are read first (all of them that hold edits, in order); without
    any, the whole text is tried as JSON, then as a unified diff, then the first
    JSON value in the prose that looks like edits.
    """
    try:
        return _parse(text)
    except EditParseError:
        raise
    except (RecursionError, ValueError, TypeError, IndexError, KeyError) as exc:  # pragma: no cover
        # defensive: a parser bug must still read as a parse error, never a traceback
        raise EditParseError(f"could not read the edits: {exc}") from exc


def _parse(text: str) -> tuple[Edit, ...]:
    text = text.replace("\r\n", "\n")
    found: list[Edit] = []
    json_problem: str | None = None
    for number, (lang, body) in enumerate(_fenced_blocks(text), 1):
        kind = _block_kind(lang, body)
        if kind == "json":
            try:
                value = _loads(body)
            except _NotJson as exc:
                if lang in _JSON_LANGS and json_problem is None:
                    json_problem = f"fenced json block {number} is not valid JSON: {exc}"
                continue
            if _looks_like_edits(value):
                found.extend(_json_edits(value, len(found)))
        elif kind == "diff":
            found.extend(_parse_diff(body, len(found)))
    if found:
        return tuple(found)
    if json_problem is not None:
        raise EditParseError(json_problem)

    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            value = _loads(stripped)
        except _NotJson:
            pass
        else:
            if _looks_like_edits(value):
                return tuple(_json_edits(value, 0))
    if _has_diff(text):
        edits = _parse_diff(text, 0)
        if edits:
            return tuple(edits)
    value = _first_json_in_prose(text)
    if value is not None:
        return tuple(_json_edits(value, 0))
    raise EditParseError(
        "no edits found in the source step's output: expected a JSON object "
        '{"path", "old", "new"} (or a list of them, {"edits": [...]}, '
        '{"path", "content"}) or a unified diff, bare or in a fenced block'
    )


# --------------------------------------------------------------------------- fenced blocks

_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})[ \t]*([^`\s]*)[^`]*$")


def _fenced_blocks(text: str) -> list[tuple[str, str]]:
    """``(language, body)`` of each fenced code block; an unclosed one runs to the end."""
    blocks: list[tuple[str, str]] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        indent, fence, lang = m.group(1), m.group(2), m.group(3).lower()
        body: list[str] = []
        i += 1
        while i < len(lines):
            line = lines[i]
            rest = line[len(indent) :] if line.startswith(indent) else None
            if (
                rest is not None
                and rest.startswith(fence[0] * len(fence))
                and not rest.rstrip().strip(fence[0])
            ):
                break
            body.append(line[len(indent) :] if line.startswith(indent) else line)
            i += 1
        blocks.append((lang, "\n".join(body)))
        i += 1
    return blocks


def _block_kind(lang: str, body: str) -> Literal["json", "diff", "other"]:
    if lang in _JSON_LANGS:
        return "json"
    if lang in _DIFF_LANGS:
        return "diff"
    head = body.lstrip()
    if head[:1] in ("{", "[") and lang in ("", "text", "javascript", "js"):
        return "json"
    if _has_diff(body):
        return "diff"
    return "other"


# --------------------------------------------------------------------------- JSON


class _NotJson(Exception):
    pass


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _NotJson(f"{exc.msg} (line {exc.lineno}, column {exc.colno})") from exc
    except (ValueError, RecursionError) as exc:
        raise _NotJson(str(exc) or type(exc).__name__) from exc


def _looks_like_edits(value: Any) -> bool:
    if isinstance(value, dict):
        return "path" in value or isinstance(value.get("edits"), list)
    if isinstance(value, list):
        return any(isinstance(item, dict) and "path" in item for item in value)
    return False


def _first_json_in_prose(text: str) -> Any | None:
    """The first JSON value in ``text`` that looks like edits, or None."""
    decoder = json.JSONDecoder()
    probes = 0
    for m in re.finditer(r'\{\s*"|\[\s*\{', text):
        probes += 1
        if probes > _MAX_JSON_PROBES:
            break
        try:
            value, _ = decoder.raw_decode(text, m.start())
        except (ValueError, RecursionError):
            continue
        if _looks_like_edits(value):
            return value
    return None


def _json_edits(value: Any, before: int) -> list[Edit]:
    """Edits from a decoded JSON value; ``before`` edits were found earlier."""
    if isinstance(value, dict) and "path" not in value and "edits" in value:
        items = value["edits"]
        if not isinstance(items, list):
            raise EditParseError('"edits" must be a list of edit objects')
    elif isinstance(value, list):
        items = value
    else:
        items = [value]
    if not items:
        raise EditParseError('"edits" is empty: there is nothing to apply')
    return [_json_edit(item, before + n) for n, item in enumerate(items, 1)]


def _json_edit(item: Any, index: int) -> Edit:
    if not isinstance(item, dict):
        raise EditParseError(
            f'edit {index}: expected an object with "path", got {_json_type(item)}'
        )
    path = item.get("path")
    if not isinstance(path, str) or not path.strip():
        what = "missing" if path is None else f"must be a non-empty string, got {_json_type(path)}"
        raise EditParseError(f'edit {index}: "path" {what}')
    where = f"edit {index} ({path})"
    if "content" in item:
        content = item["content"]
        if not isinstance(content, str):
            raise EditParseError(f'{where}: "content" must be a string, got {_json_type(content)}')
        if "old" in item or "new" in item:
            raise EditParseError(f'{where}: give either "content" or "old" and "new", not both')
        return WriteFile(index, path, content)
    for key in ("old", "new"):
        if key not in item:
            raise EditParseError(
                f'{where}: missing "{key}" (an edit has "old" and "new", or "content")'
            )
        if not isinstance(item[key], str):
            raise EditParseError(f'{where}: "{key}" must be a string, got {_json_type(item[key])}')
    return Replace(index, path, item["old"], item["new"])


#: where JSON's words differ from the template kinds' (:data:`KIND_ARTICLES`)
_JSON_WORDS = {"none": "null", "table": "an object"}


def _json_type(value: Any) -> str:
    """The type of a parsed JSON value, for messages: ``a string``, ``null`` ..."""
    kind = kind_of(value)
    return _JSON_WORDS.get(kind) or KIND_ARTICLES[kind]


# --------------------------------------------------------------------------- unified diff

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_DIFF_MARK = re.compile(r"^--- [^\n]*\n\+\+\+ ", re.MULTILINE)


def _has_diff(text: str) -> bool:
    return "+++ " in text and _DIFF_MARK.search(text) is not None


def _is_file_header(lines: list[str], i: int) -> bool:
    return lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ ")


def _is_hunk_end(lines: list[str], i: int, expecting_both: bool) -> bool:
    """Whether line ``i`` ends the hunk. While the header's counts still expect old and
    new lines, ``--- x`` + ``+++ y`` are a removed and an added line, not a new file."""
    line = lines[i]
    # a fence closes the block the diff is in; an indented one is a context line
    return line.startswith(("@@", "diff --git ", "```", "~~~")) or (
        not expecting_both and _is_file_header(lines, i)
    )


def _unquote(quoted: str) -> str:
    """A path git quoted C-style (``"caf\\303\\251.txt"``), as text."""
    try:
        raw = quoted.encode("latin-1", "backslashreplace").decode("unicode_escape")
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeError, ValueError):
        return quoted


def _diff_path(raw: str) -> str | None:
    """The file name of a ``---``/``+++`` line (after the marker); None for /dev/null."""
    path = raw.split("\t", 1)[0].rstrip()
    if len(path) >= 2 and path[0] == path[-1] == '"':
        path = _unquote(path[1:-1])
    return None if path == "/dev/null" else path


def _parse_diff(text: str, before: int) -> list[Edit]:
    """Every file of the unified diff(s) in ``text``; lines outside them are ignored."""
    lines = text.split("\n")
    edits: list[Edit] = []
    i = 0
    while i < len(lines):
        if not _is_file_header(lines, i):
            i += 1
            continue
        old_path = _diff_path(lines[i][4:])
        new_path = _diff_path(lines[i + 1][4:])
        # git's a/ and b/ prefixes go when both sides carry them
        if (old_path is None or old_path.startswith("a/")) and (
            new_path is None or new_path.startswith("b/")
        ):
            old_path = old_path[2:] if old_path is not None else None
            new_path = new_path[2:] if new_path is not None else None
        elif old_path is not None and new_path is not None and old_path != new_path:
            # one side prefixed only ("--- a/x" / "+++ x"): the same file
            if old_path.startswith("a/") and old_path[2:] == new_path:
                old_path = new_path
            elif new_path.startswith("b/") and new_path[2:] == old_path:
                new_path = old_path
        index = before + len(edits) + 1
        shown = new_path if new_path is not None else old_path
        if old_path is None and new_path is None:
            raise EditParseError(f"edit {index}: diff header names /dev/null on both sides")
        assert shown is not None
        if not shown.strip():
            raise EditParseError(f"edit {index}: diff header has no file name")
        if old_path is not None and new_path is not None and old_path != new_path:
            raise EditParseError(
                f"edit {index} ({shown}): the diff renames {old_path} to {new_path}; "
                "renames are not supported (delete one file and create the other)"
            )
        i += 2
        hunks: list[Hunk] = []
        while i < len(lines) and lines[i].startswith("@@"):
            hunk, i = _parse_hunk(lines, i, index, shown, len(hunks) + 1)
            hunks.append(hunk)
        if not hunks:
            raise EditParseError(f"edit {index} ({shown}): the diff has no @@ hunks")
        edits.append(Patch(index, old_path, new_path, tuple(hunks)))
    return edits


def _parse_hunk(lines: list[str], i: int, index: int, path: str, number: int) -> tuple[Hunk, int]:
    header = lines[i]
    m = _HUNK.match(header)
    old_start: int | None
    old_len: int | None
    new_start: int | None
    new_len: int | None
    if m is not None:
        old_start, new_start = int(m.group(1)), int(m.group(3))
        old_len = int(m.group(2)) if m.group(2) is not None else 1
        new_len = int(m.group(4)) if m.group(4) is not None else 1
        old_left: int | None = old_len
        new_left: int | None = new_len
    else:  # a bare "@@" (LLMs write them): no position, searched for in the whole file
        old_start = old_len = new_start = new_len = None
        old_left = new_left = None
    i += 1
    body: list[tuple[LineTag, str]] = []
    old_nl = new_nl = False
    blank_tail = 0  # how many of the last body lines were empty raw lines
    while i < len(lines):
        line = lines[i]
        satisfied = old_left is None or (old_left <= 0 and new_left is not None and new_left <= 0)
        if line.startswith("\\"):
            if body:
                if body[-1][0] == "-":
                    old_nl = True
                elif body[-1][0] == "+":
                    new_nl = True
                else:
                    old_nl = new_nl = True
            i += 1
            continue
        expecting_both = bool(old_left and new_left and old_left > 0 and new_left > 0)
        if _is_hunk_end(lines, i, expecting_both):
            break
        if line == "":
            if satisfied:
                break
            tag: LineTag = " "
            content = ""
        elif line[0] in " -+":
            tag, content = line[0], line[1:]  # type: ignore[assignment]
        else:
            break
        body.append((tag, content))
        blank_tail = blank_tail + 1 if line == "" else 0
        if old_left is not None and new_left is not None:
            if tag != "+":
                old_left -= 1
            if tag != "-":
                new_left -= 1
        i += 1
    if blank_tail and old_left is not None and new_left is not None and max(old_left, new_left) > 0:
        # the header promised more lines than came: the blank lines that ended the
        # hunk were the gap before the prose (or the end of the text), not context
        del body[-blank_tail:]
    if not body:
        raise EditParseError(f"edit {index} ({path}), hunk {number} ({header}): the hunk is empty")
    return (
        Hunk(
            header=header,
            old_start=old_start,
            old_len=old_len,
            new_start=new_start,
            new_len=new_len,
            lines=tuple(body),
            old_no_newline=old_nl,
            new_no_newline=new_nl,
        ),
        i,
    )
