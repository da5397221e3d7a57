"""Silencing findings: ``# muxlang: ignore[CODES]`` comments, ``[validate] ignore``
in config, and ``validate --select/--ignore`` (docs/validation.md).

Codes are matched as prefixes, as ruff does: ``MUX04`` means every MUX04x code.
A comment silences the codes it names on its own line and on the line below it
(so it can sit above a long line, or above a ``[[steps]]`` header).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from muxlang.diagnostics import Diagnostic

#: ``# muxlang: ignore[MUX040]``, ``#muxlang:ignore[MUX040, MUX021]``
DIRECTIVE = re.compile(r"#\s*muxlang:\s*ignore\[([A-Za-z0-9,\s]*)\]")


def inline_ignores(text: str) -> dict[int, tuple[str, ...]]:
    """Line number (1-based) to the code patterns silenced on it, from the
    directives in ``text``: each counts for its own line and the one below."""
    found: dict[int, tuple[str, ...]] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        if "muxlang" not in line:
            continue
        codes: list[str] = []
        for match in DIRECTIVE.finditer(line):
            codes.extend(c.strip().upper() for c in match.group(1).split(",") if c.strip())
        for at in (number, number + 1):
            if codes:
                found[at] = (*found.get(at, ()), *codes)
    return found


def matches(code: str, patterns: Iterable[str]) -> bool:
    return any(code.startswith(p) for p in patterns)


def suppress(
    diagnostics: Sequence[Diagnostic],
    *,
    text_of: Callable[[str], str | None],
    ignore: Sequence[str] = (),
) -> list[Diagnostic]:
    """``diagnostics`` without those a directive in their file, or the project's
    ``[validate] ignore`` (``ignore``), silences. ``text_of`` gives a file's text."""
    directives: dict[str, Mapping[int, tuple[str, ...]]] = {}
    kept: list[Diagnostic] = []
    for d in diagnostics:
        if matches(d.code, ignore):
            continue
        lines = directives.get(d.file)
        if lines is None:
            text = text_of(d.file)
            lines = directives[d.file] = inline_ignores(text) if text is not None else {}
        if matches(d.code, lines.get(d.span.line, ())):
            continue
        kept.append(d)
    return kept
