"""The steps inside a step's record, by qualified name, for ``--resume`` (issue 21).

A ``uses`` step's record holds its called workflow's step records
(``steps``), a repeating step's its iterations (``iterations``), a for_each
step's its items (``results``). :func:`flatten` names each of them as the
console and ``--output jsonl`` do: ``outer.inner`` (a nested step),
``outer#2`` (iteration 2) and ``outer#2.inner`` (a nested step of it),
``outer[3]`` (item 3). The recorder keeps, per qualified name, what the run's
trace knew of it (rendered command or prompt, where its result came from) and
for a ``uses`` step a digest of the workflow it calls, in the step row's
``nested`` field; resume reads them back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

#: (qualified step name, item index or -1): where the run's trace keeps what it sent
Key = tuple[str, int]

#: what the trace knew of a step, kept for the next resume
SENT = ("command", "prompt", "system")


def flatten(prefix: str, record: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any], Key]]:
    """Every record inside ``record`` (of the step named ``prefix``), depth first:
    (qualified name, record, the trace key of what it sent)."""
    iterations = record.get("iterations")
    results = record.get("results")
    if isinstance(iterations, list) and iterations:
        for entry in iterations:
            if isinstance(entry, Mapping):
                name = f"{prefix}#{entry.get('iteration')}"
                yield name, entry, (prefix, -1)
                yield from flatten(name, {k: v for k, v in entry.items() if k != "iterations"})
    elif isinstance(results, list) and results:
        for index, entry in enumerate(results):
            if isinstance(entry, Mapping):
                name = f"{prefix}[{index + 1}]"
                yield name, entry, (prefix, index)
                yield from flatten(name, {k: v for k, v in entry.items() if k != "results"})
    else:
        steps = record.get("steps")
        if isinstance(steps, Mapping):
            for inner, entry in steps.items():
                if isinstance(entry, Mapping):
                    name = f"{prefix}.{inner}"
                    yield name, entry, (name, -1)
                    yield from flatten(name, entry)


def base(segment: str) -> str:
    """``fix#2[3]`` -> ``fix``."""
    for mark in ("#", "["):
        segment = segment.partition(mark)[0]
    return segment


def iteration(segment: str) -> int | None:
    """``fix#2[3]`` -> 2; None when the segment names no iteration."""
    if "#" not in segment:
        return None
    digits = segment.partition("#")[2].partition("[")[0]
    return int(digits) if digits.isdigit() else None


def groups(name: str) -> Iterator[tuple[str, int | None]]:
    """The groups ``name`` runs in, outermost first, with the iteration of each:
    ``fix#2.review.diff`` -> (``fix``, 2), (``fix#2.review``, None)."""
    segments = name.split(".")
    for index in range(len(segments) - 1):
        segment = segments[index]
        yield ".".join([*segments[:index], base(segment)]), iteration(segment)


def file_hashes(root: Path, files: Any) -> dict[str, str | None]:
    """sha256 of each file an apply wrote, as it is now (None: it is gone)."""
    out: dict[str, str | None] = {}
    if not isinstance(files, list):
        return out
    for path in files:
        try:
            out[str(path)] = hashlib.sha256((root / str(path)).read_bytes()).hexdigest()
        except OSError:
            out[str(path)] = None
    return out


def nested_facts(
    name: str,
    record: Mapping[str, Any],
    sent: Any,
    root: Path | None,
) -> dict[str, dict[str, Any]]:
    """What the next resume needs of each record inside ``record`` (see the module
    doc); ``sent(key)`` is the trace's entry for a key (``Trace.get``)."""
    out: dict[str, dict[str, Any]] = {}
    for qualified, entry, key in flatten(name, record):
        facts: dict[str, Any] = {}
        own = sent(qualified, -1)
        for field in ("origin", "rerun"):
            if own.get(field):
                facts[field] = own[field]
        if key[0] == qualified or key[1] >= 0:  # (an iteration sent what its step did)
            texts = sent(*key)
            for field in SENT:
                if texts.get(field) is not None:
                    facts[field] = texts[field]
        if root is not None and entry.get("status") == "success" and "files" in entry:
            facts["file_hashes"] = file_hashes(root, entry.get("files"))
        out[qualified] = facts
    return out


def call_digest(plan: Any) -> str:
    """A hash of what a called workflow is: its file's bytes, those of the workflows
    it calls in turn, and the identity of every backend or role its query steps ask."""
    from muxlang.runtime.accounting import identity
    from muxlang.workflow import QueryStep

    parts: list[Any] = []
    try:
        parts.append(hashlib.sha256(Path(plan.workflow.path).read_bytes()).hexdigest())
    except OSError:
        parts.append(None)
    for name in plan.order:
        step = plan.step(name).step
        if isinstance(step, QueryStep):
            if step.role is not None:
                parts.append(identity(plan, step.role.name, "role"))
            elif step.backend is not None:
                parts.append(identity(plan, step.backend.name, "backend"))
        called = plan.calls.get(name)
        if called is not None:
            parts.append(call_digest(called))
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def nested_record(
    plan: Any, name: str, record: Mapping[str, Any], trace: Any, root: Path | None
) -> dict[str, Any] | None:
    """The ``nested`` field the recorder keeps with a ``uses`` or repeating step's row
    (None for other steps): the digest of the workflow it calls, and
    :func:`nested_facts` of what ran inside it."""
    if plan is None or name not in plan.graph:
        return None
    step = plan.step(name).step
    called = plan.calls.get(name)
    if called is None and step.repeat is None:
        return None
    sent = trace.get if trace is not None else (lambda step, index=-1: {})
    out: dict[str, Any] = {"steps": nested_facts(name, record, sent, root)}
    if called is not None:
        out["calls"] = call_digest(called)
    return out
