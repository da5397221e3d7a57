"""Definition hashes of a recorded run's steps, for ``--resume`` (SPEC section 10).

Light on purpose: the record writer's process (:mod:`muxlang.records.writer`)
imports it without site-packages. :mod:`muxlang.records.resume` hashes the plan it
compiled with the same functions, so the two always agree.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from typing import Any


def digest(value: Any) -> str:
    """The hash of plain data that fingerprints use (``--resume``)."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def source_text(data: bytes) -> str | None:
    """A workflow file's bytes as text, as ``Path.read_text`` reads it (None: not UTF-8)."""
    try:
        return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8").read()
    except ValueError:
        return None


def split_steps(text: str, starts: list[tuple[str, int]]) -> dict[str, str]:
    """Each step's text: from its ``[[steps]]`` line (``starts``: name and line) to
    the next step's (the last step: to the end of the file)."""
    lines = text.splitlines(keepends=True)
    steps = sorted(starts, key=lambda start: start[1])
    out: dict[str, str] = {}
    for index, (name, line) in enumerate(steps):
        end = steps[index + 1][1] - 1 if index + 1 < len(steps) else len(lines)
        out.setdefault(name, "".join(lines[line - 1 : end]))
    return out


def summary(facts: Mapping[str, Any]) -> dict[str, Any]:
    """What the history keeps of a plan: order, edges, step types, for_each steps."""
    return {
        "order": facts["order"],
        "edges": [[a, b] for a, b in zip(facts["sources"], facts["targets_of"], strict=True)],
        "types": facts["types"],
        "for_each": facts["for_each"],
    }


def fingerprints_of(facts: Mapping[str, Any]) -> dict[str, str]:
    """``DEFINITION:BACKENDS`` of each step (see :func:`muxlang.records.resume.fingerprints`),
    from the facts the run sent: the file's bytes and where each step starts, the
    definitions of steps with no text, and each query step's backends' identity."""
    source = facts.get("source")
    text = source_text(source) if source is not None else None
    starts = list(zip(facts["names"], facts["lines"], strict=True))
    texts = split_steps(text, starts) if text is not None else {}
    definitions = facts["definitions"]
    targets = facts["targets"]
    identities = facts["identities"]
    asked = {key: digest(value) for key, value in identities.items()}
    out: dict[str, str] = {}
    for name in facts["order"]:
        own = texts.get(name)
        body = digest(own) if own is not None else digest(definitions.get(name))
        target = targets.get(name)
        out[name] = f"{body}:{asked[target] if target is not None else ''}"
    return out
