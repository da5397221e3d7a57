"""Every diagnostic code as a :class:`Rule` object: one meaning per code.

The rules are data: a group file ``<group>.toml`` in this package per concern
(``files``, ``templates``, ``steps``, ``config``, ``safety`` ...), one
``[[rule]]`` row per code with the fields of :class:`Rule`. To add one: add a
row to a group's file (or add a group file and its name to :data:`GROUPS`);
the code then exists for :class:`~muxlang.diagnostics.Diagnostic`, ``muxlang
rule``, SARIF output, ``--select``/``--ignore`` and the language server.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence

from muxlang.rules.rule import DOCS_URL, Rule, Severity

__all__ = ["DOCS_URL", "GROUPS", "RULES", "Rule", "Severity", "code_pattern", "selected"]

#: the groups, each the name of a data file ``<group>.toml`` of its rules
GROUPS = ("files", "templates", "steps", "calls", "config", "safety", "compat")


def load_group(group: str) -> tuple[Rule, ...]:
    """The rules of one group file, in the file's order."""
    # a plain open (not importlib.resources, ~10 ms to import), and tomllib only here:
    # a clean `validate` never reads a rule
    import tomllib

    with open(os.path.join(os.path.dirname(__file__), f"{group}.toml"), "rb") as file:
        rows = tomllib.load(file)["rule"]
    return tuple(
        Rule(**{**row, "severity": Severity(row.get("severity", Severity.ERROR))}) for row in rows
    )


def _collect() -> dict[str, Rule]:
    found: dict[str, Rule] = {}
    names: set[str] = set()
    for group in GROUPS:
        for rule in load_group(group):
            if rule.code in found or rule.name in names:
                raise ValueError(f"rule {rule.code} ({rule.name}) is defined twice")
            found[rule.code] = rule
            names.add(rule.name)
    return dict(sorted(found.items()))


class _Rules(Mapping[str, Rule]):
    """:data:`RULES`, read from the group files the first time it is used: a run
    of ``validate`` that finds nothing never needs them (~2 ms of TOML saved)."""

    _rules: dict[str, Rule] | None = None

    def _all(self) -> dict[str, Rule]:
        if self._rules is None:
            self._rules = _collect()
        return self._rules

    def __getitem__(self, code: str) -> Rule:
        return self._all()[code]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __contains__(self, code: object) -> bool:
        return code in self._all()


#: every rule, by code, in code order
RULES: Mapping[str, Rule] = _Rules()

_CODE_PREFIX = re.compile(r"MUX\d{0,3}")


def code_pattern(text: str) -> str | None:
    """``text`` as a code or a code prefix (``MUX04``, ``mux`` ...), upper-cased;
    None when it is neither or when no rule has that prefix."""
    pattern = text.strip().upper()
    if not _CODE_PREFIX.fullmatch(pattern):
        return None
    if not any(code.startswith(pattern) for code in RULES):
        return None
    return pattern


def selected(code: str, select: Sequence[str] = (), ignore: Sequence[str] = ()) -> bool:
    """Whether ``code`` is reported under ``--select``/``--ignore`` prefixes (as in
    ruff: with no ``select`` every code is; the longer matching prefix wins, and
    on a tie ``ignore`` does)."""
    chosen = max((len(p) for p in select if code.startswith(p)), default=-1) if select else 0
    dropped = max((len(p) for p in ignore if code.startswith(p)), default=-1)
    return chosen >= 0 and chosen > dropped
