"""MUX006 checks of config tables that their schema cannot express: a role's
``min_success`` above the number of its entries, and a team's ``detect`` pattern
that can never match (see docs/validation.md).

Each check looks at one file — a config layer, or a workflow's own tables — and
reports a problem only where that file wrote the value, so a problem is told once,
in the file that has it, at the position the loader read it from (no file is
read again).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath

from muxlang.compiler.plan import ResolvedConfig
from muxlang.compiler.roles import KeyPath, Locate
from muxlang.config.models import ConfigFile
from muxlang.diagnostics import Diagnostic
from muxlang.source import Span


def locator(positions: Mapping[KeyPath, Span]) -> Locate:
    """A :data:`Locate` over the positions the loader kept for one file."""

    def locate(keys: KeyPath) -> Span | None:
        return positions.get(tuple(keys))

    return locate


def _backends(count: int) -> str:
    return f"{count} backend{'s' if count != 1 else ''}"


def _min_success(
    file: str, locate: Locate, keys: KeyPath, value: int, entries: int, what: str
) -> Iterator[Diagnostic]:
    if entries == 0 or value <= entries:
        return  # an empty `backends` is a problem of its own, not of `min_success`
    span = locate((*keys, "min_success")) or locate((*keys, "backends"))
    if span is None:
        return  # written in another file: reported when that file is checked
    yield Diagnostic(
        file,
        span,
        "MUX006",
        f"`min_success` is {value} but {what} lists {_backends(entries)}",
        hint=f"a parallel role can get at most {entries} answer"
        f"{'s' if entries != 1 else ''}: lower `min_success` to {entries} or less, "
        "or add backends",
    )


def check_min_success(config: ResolvedConfig, file: str, locate: Locate) -> Iterator[Diagnostic]:
    """MUX006: a role (or a team's override of one) whose ``min_success`` is more
    than the number of entries in its ``backends``: it could never succeed."""
    active = config.teams.get(config.team) if config.team else None
    for name, role in config.roles.items():
        if active is not None and name in active.roles:
            continue  # the roles carry the team's override: checked with the team below
        yield from _min_success(
            file,
            locate,
            ("roles", name),
            role.min_success,
            len(role.backends),
            f"role `{name}`",
        )
    for team_name, team in config.teams.items():
        for name, override in team.roles.items():
            base = config.roles.get(name)
            value = override.min_success or (base.min_success if base else 1)
            entries = override.backends if override.backends is not None else None
            if entries is None:
                entries = list(base.backends) if base else []
            yield from _min_success(
                file,
                locate,
                ("teams", team_name, "roles", name),
                value,
                len(entries),
                f"role `{name}` (team `{team_name}`)",
            )


def glob_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a usable ``detect`` glob, or None when it is one."""
    if not pattern.strip():
        return "it is empty"
    path = PurePosixPath(pattern)
    if path.is_absolute() or pattern.startswith("~"):
        return "it is absolute; patterns are relative to the project root"
    if ".." in path.parts:
        return "`..` leaves the project root"
    if _unclosed_class(pattern):
        return "a `[` opens a character class that is never closed (`[[]` is a literal `[`)"
    return None


def _unclosed_class(pattern: str) -> bool:
    """A ``[`` with no ``]`` to close it (fnmatch's rules: a ``]`` right after ``[``
    or ``[!`` belongs to the class)."""
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i] != "[":
            i += 1
            continue
        j = i + 1
        if j < n and pattern[j] == "!":
            j += 1
        if j < n and pattern[j] == "]":
            j += 1
        close = pattern.find("]", j)
        if close < 0:
            return True
        i = close + 1
    return False


def check_detect_globs(layer: ConfigFile, file: str, locate: Locate) -> Iterator[Diagnostic]:
    """MUX006: a team's ``detect`` pattern that is not a valid glob relative to the
    project root (empty, absolute, leaving the root, an unclosed ``[``): team
    detection would silently never match it."""
    for team_name, team in layer.teams.items():
        for index, pattern in enumerate(team.detect):
            problem = glob_problem(pattern)
            if problem is None:
                continue
            span = locate(("teams", team_name, "detect", index))
            if span is None:
                continue
            yield Diagnostic(
                file,
                span,
                "MUX006",
                f"`detect` pattern `{pattern}` of team `{team_name}` is not a valid glob: "
                f"{problem}",
                hint='patterns are globs relative to the project root, e.g. "Cargo.toml" '
                'or "src/**/*.py"',
            )
