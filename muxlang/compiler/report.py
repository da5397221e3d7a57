"""Diagnostics rendered for people and for machines: ``text``, ``json``, ``github``
and ``sarif`` (SPEC section 5).

Every renderer takes the diagnostics (already sorted) and returns the text for
stdout; :func:`summary` is the one line for stderr. Nothing here imports more
than the standard library, so ``muxlang validate`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from muxlang.diagnostics import CODES, Diagnostic, Severity
from muxlang.rules import RULES, Rule

FORMATS = ("text", "json", "github", "sarif")

SourceReader = Callable[[str], str | None]

_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_COLOURS = {Severity.ERROR: "\x1b[1;31m", Severity.WARNING: "\x1b[1;33m"}
_BLUE = "\x1b[1;34m"
_CYAN = "\x1b[36m"

#: GitHub shows at most this many annotations of each kind per step.
GITHUB_ANNOTATION_LIMIT = 10


def read_source(path: str) -> str | None:
    """The text of ``path`` as the loader saw it (no newline translation), or None
    when it cannot be read or must not be (a file that resolves outside its
    project is never shown, not even one line of it)."""
    from muxlang.config.discovery import read_file

    try:
        return read_file(path).decode("utf-8", errors="replace")
    except OSError:
        return None


def _cached(reader: SourceReader) -> SourceReader:
    cache: dict[str, str | None] = {}

    def read(path: str) -> str | None:
        if path not in cache:
            cache[path] = reader(path)
        return cache[path]

    return read


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def counts(diagnostics: Iterable[Diagnostic]) -> tuple[int, int, int]:
    """(errors, warnings, files with a diagnostic)."""
    errors = warnings = 0
    files: set[str] = set()
    for d in diagnostics:
        files.add(d.file)
        if d.is_error:
            errors += 1
        else:
            warnings += 1
    return errors, warnings, len(files)


def summary(diagnostics: Sequence[Diagnostic], files_checked: int | None = None) -> str:
    """``Found 3 errors, 1 warning in 2 files.``, or that nothing was found."""
    errors, warnings, files = counts(diagnostics)
    if not diagnostics:
        checked = f" in {_plural(files_checked, 'file')}" if files_checked is not None else ""
        return f"No problems found{checked}."
    parts = []
    if errors or not warnings:
        parts.append(_plural(errors, "error"))
    if warnings:
        parts.append(_plural(warnings, "warning"))
    return f"Found {', '.join(parts)} in {_plural(files, 'file')}."


# --------------------------------------------------------------------------- text


def _caret_line(source_line: str, column: int, end_column: int | None) -> tuple[str, str]:
    """The source line with tabs expanded, and the caret underline below it."""
    prefix = source_line[: max(column - 1, 0)]
    start = len(prefix.expandtabs(4))
    shown = source_line.expandtabs(4)
    if end_column is None:  # the span runs past this line: underline to its end
        end = max(len(shown), start + 1)
    else:
        end = len(source_line[: max(end_column - 1, column)].expandtabs(4))
    return shown, " " * start + "^" * max(end - start, 1)


def format_diagnostic(
    d: Diagnostic, *, color: bool = False, read: SourceReader = read_source
) -> str:
    """One diagnostic as text: the location line, the source with carets, the hint."""

    def paint(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    span = d.span
    head = (
        f"{paint(_BOLD, f'{d.file}:{span.line}:{span.column}:')} "
        f"{paint(_COLOURS[d.severity], f'{d.severity.value}[{d.code}]')}: "
        f"{paint(_BOLD, d.message) if color else d.message}"
    )
    lines = [head]
    text = read(d.file)
    if text is not None:
        # line breaks as TOML (and the positions) count them: only LF, CRLF
        source_lines = [line.removesuffix("\r") for line in text.split("\n")]
        if span.line == len(source_lines) + 1:
            source_lines.append("")  # at the end of the file, after its last line break
        if 1 <= span.line <= len(source_lines):
            source = source_lines[span.line - 1]
            column = span.column
            end = span.end_column if span.end_line == span.line else None
            if source.startswith("\ufeff"):  # a BOM counts as a column but shows as none
                source, column = source[1:], max(column - 1, 1)
                end = max(end - 1, column) if end is not None else None
            shown, carets = _caret_line(source, column, end)
            number = str(span.line)
            pad = " " * len(number)
            lines.append(paint(_BLUE, f"{pad} |"))
            lines.append(f"{paint(_BLUE, f'{number} |')} {shown}")
            lines.append(f"{paint(_BLUE, f'{pad} |')} {paint(_COLOURS[d.severity], carets)}")
            if d.hint:
                lines.append(f"{pad} {paint(_CYAN, '= hint:')} {d.hint}")
            return "\n".join(lines)
    if d.hint:
        lines.append(f"  {paint(_CYAN, '= hint:')} {d.hint}")
    return "\n".join(lines)


def render_text(
    diagnostics: Sequence[Diagnostic], *, color: bool = False, read: SourceReader = read_source
) -> str:
    """Every diagnostic as text, a blank line between them (ends with a newline)."""
    cached = _cached(read)
    blocks = [format_diagnostic(d, color=color, read=cached) for d in diagnostics]
    return "".join(block + "\n\n" for block in blocks)


# --------------------------------------------------------------------------- json


def to_json(d: Diagnostic) -> dict[str, object]:
    """The stable JSON shape of one diagnostic (fields are added, never renamed)."""
    return {
        "file": d.file,
        "line": d.span.line,
        "column": d.span.column,
        "end_line": d.span.end_line,
        "end_column": d.span.end_column,
        "severity": d.severity.value,
        "code": d.code,
        "message": d.message,
        "hint": d.hint,
    }


def render_json(diagnostics: Sequence[Diagnostic]) -> str:
    import json  # only for --output json

    return json.dumps([to_json(d) for d in diagnostics], indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- github


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_line(d: Diagnostic) -> str:
    """One ``::error``/``::warning`` workflow command."""
    kind = "error" if d.is_error else "warning"
    span = d.span
    props = {
        "file": d.file,
        "line": str(span.line),
        "col": str(span.column),
        "endLine": str(span.end_line),
        "endColumn": str(span.end_column),
        "title": d.code,
    }
    head = ",".join(f"{key}={_escape_property(value)}" for key, value in props.items())
    message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
    return f"::{kind} {head}::{_escape_data(message)}"


def github_summary(diagnostics: Sequence[Diagnostic]) -> str:
    """The summary line, saying when GitHub will not show every annotation."""
    line = summary(diagnostics)
    errors, warnings, _ = counts(diagnostics)
    if max(errors, warnings) > GITHUB_ANNOTATION_LIMIT:
        line += (
            f" GitHub shows only {GITHUB_ANNOTATION_LIMIT} annotations of each kind;"
            " run `muxlang validate` to see them all."
        )
    return line


def render_github(diagnostics: Sequence[Diagnostic]) -> str:
    return "".join(github_line(d) + "\n" for d in diagnostics)


# --------------------------------------------------------------------------- sarif

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _artifact(file: str) -> dict[str, str]:
    from urllib.parse import quote

    path = Path(file)
    if path.is_absolute():
        return {"uri": path.as_uri()}
    return {"uri": quote(path.as_posix()), "uriBaseId": "%SRCROOT%"}


def _sarif_rule(rule: Rule) -> dict[str, object]:
    """A ``reportingDescriptor``: GitHub code scanning wants ``help`` on every
    rule and shows ``name``, so the name says what is wrong."""
    text = (
        f"{rule.explanation}\n\nBad:\n{rule.bad}\nFixed:\n{rule.fixed}\n"
        f"Silence one finding with `# muxlang: ignore[{rule.code}]`."
    )
    markdown = (
        f"{rule.explanation}\n\n**Bad**\n\n```toml\n{rule.bad}```\n\n"
        f"**Fixed**\n\n```toml\n{rule.fixed}```\n\n"
        f"Silence one finding with `# muxlang: ignore[{rule.code}]` on its line or the "
        f"line above; see [{rule.code}]({rule.help_uri})."
    )
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.explanation},
        "help": {"text": text, "markdown": markdown},
        "defaultConfiguration": {"level": str(rule.severity)},
        "helpUri": rule.help_uri,
    }


def sarif_log(diagnostics: Sequence[Diagnostic], version: str | None = None) -> dict[str, object]:
    """A SARIF 2.1.0 log: one run, a rule for every code, one result per diagnostic."""
    codes = sorted(CODES)
    index = {code: i for i, code in enumerate(codes)}
    rules = [_sarif_rule(RULES[code]) for code in codes]
    results = []
    for d in diagnostics:
        message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
        results.append(
            {
                "ruleId": d.code,
                "ruleIndex": index[d.code],
                "level": "error" if d.is_error else "warning",
                "message": {"text": message},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": _artifact(d.file),
                            "region": {
                                "startLine": d.span.line,
                                "startColumn": d.span.column,
                                "endLine": d.span.end_line,
                                "endColumn": d.span.end_column,
                            },
                        }
                    }
                ],
            }
        )
    driver: dict[str, object] = {
        "name": "muxlang",
        "informationUri": "https://github.com/muxlang/muxlang",
        "rules": rules,
    }
    if version:
        driver["version"] = version
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": driver},
                "columnKind": "unicodeCodePoints",
                "originalUriBaseIds": {"%SRCROOT%": {"uri": Path.cwd().as_uri() + "/"}},
                "results": results,
            }
        ],
    }


def render_sarif(diagnostics: Sequence[Diagnostic]) -> str:
    import json  # only for --output sarif

    from muxlang import __version__

    return json.dumps(sarif_log(diagnostics, __version__), indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- dispatch

RENDERERS: Mapping[str, Callable[[Sequence[Diagnostic]], str]] = {
    "json": render_json,
    "github": render_github,
    "sarif": render_sarif,
}


def render(diagnostics: Sequence[Diagnostic], fmt: str = "text", *, color: bool = False) -> str:
    """The stdout text of ``fmt`` for ``diagnostics``."""
    if fmt == "text":
        return render_text(diagnostics, color=color)
    return RENDERERS[fmt](diagnostics)
