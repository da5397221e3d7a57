"""``muxlang run W --resume [RUN]``: reuse what an earlier run already did (SPEC section 10).

A step's recorded result is reused when, in the earlier run, it succeeded and
its inputs are unchanged:

- its definition (the step as written, positions aside, hashed) and the
  backends it would ask (their identity: command or URL, protocol, model,
  options; a role's mode and members);
- its rendered command, or prompt and system (for for_each steps: the list of
  items and each item's rendered text);
- the results of the steps it reads: every one of them was reused too;
- for apply steps: every file it wrote still holds the bytes it wrote.

Every step that runs again says why (``failed before``, ``changed: prompt``,
``reads X, which re-ran``).

Inside a step that repeats or calls a workflow (or both, or a for_each of
calls), a resumed run reuses what finished when the step itself only failed or
was stopped: the iterations before the first unfinished one, and each nested
step that the rules above reuse, by its qualified name (``outer.inner``,
``outer#2.inner``, ``outer[3].inner``; :mod:`muxlang.records.nested`). From
the first iteration in which anything ran again, nothing later is reused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from muxlang.records.nested import base, flatten, groups
from muxlang.records.nested import file_hashes as file_hashes
from muxlang.records.store import StepRow
from muxlang.records.writer import digest as _hash
from muxlang.records.writer import source_text, split_steps
from muxlang.workflow import ExprField, QueryStep, Ref, TemplateField

if TYPE_CHECKING:
    from muxlang.compiler.plan import CompiledStep, Plan
    from muxlang.steps.base import Outcome


def definition(value: Any) -> Any:
    """A step of the workflow AST as plain data, positions left out: templates and
    expressions by their source text, references by name — so moving a step or
    editing a comment changes nothing, and every key that changes what it does does."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is TemplateField or kind is ExprField:
        return value.source
    if kind is Ref:
        return value.name
    names = _FIELDS.get(kind)
    if names is None and hasattr(kind, "__dataclass_fields__"):
        names = _FIELDS[kind] = tuple(
            f.name for f in dataclasses.fields(value) if f.name not in _POSITIONS
        )
    if names is not None:
        return {name: definition(getattr(value, name)) for name in names}
    if isinstance(value, Mapping):
        return {str(k): definition(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [definition(v) for v in value]
    return value


_PLAIN = frozenset({str, int, float, bool, type(None)})
#: the non-position field names of each AST node type
_FIELDS: dict[type, tuple[str, ...]] = {}
_POSITIONS = frozenset({"span", "name_span", "spans"})


def step_texts(plan: Plan) -> dict[str, str]:
    """Each step's text in the workflow file: from its ``[[steps]]`` header to the
    next one (the last step: to the end of the file). Empty when the file cannot be
    read (then :func:`definition` is used)."""
    try:
        text = source_text(Path(plan.workflow.path).read_bytes())
    except OSError:
        return {}
    if text is None:
        return {}
    return split_steps(text, [(step.name, step.span.line) for step in plan.workflow.steps])


def fingerprints(plan: Plan) -> dict[str, str]:
    """``DEFINITION:BACKENDS`` hashes of every step of ``plan``.

    The definition is the step's text in the workflow file (a moved step keeps
    it; an edit inside it, comments included, runs it again — the safe side),
    or, for a step with no file, its :func:`definition`; the backends part is the
    identity of the role or backend a query step asks."""
    from muxlang.runtime.accounting import identity

    texts = step_texts(plan)
    out: dict[str, str] = {}
    for name in plan.order:
        step = plan.step(name).step
        target: Any = None
        if isinstance(step, QueryStep):
            if step.role is not None:
                target = identity(plan, step.role.name, "role")
            elif step.backend is not None:
                target = identity(plan, step.backend.name, "backend")
        own = texts.get(name)
        body = _hash(own) if own is not None else _hash(definition(step))
        out[name] = f"{body}:{_hash(target) if target is not None else ''}"
    return out


def record_of(row: StepRow) -> dict[str, Any]:
    """A step record (``steps.NAME``) rebuilt from its stored row."""
    record: dict[str, Any] = {
        k: v for k, v in row.fields.items() if k not in ("file_hashes", "members", "nested")
    }
    record.update(
        output=row.output or "",
        status=row.status,
        error=row.error,
        duration_ms=row.duration_ms,
    )
    if row.kind == "shell":
        record["exit_code"] = row.exit_code
        record["stderr"] = row.stderr or ""
    elif row.kind == "query":
        record["backend"] = row.backend
        record["usage"] = {"input_tokens": row.input_tokens, "output_tokens": row.output_tokens}
        record["cost"] = row.cost
    if row.item >= 0:
        record["item"] = row.item_value
    return record


@dataclasses.dataclass
class Old:
    """What the earlier run left of one step, nested step, iteration or item."""

    status: str
    record: dict[str, Any]
    #: the trace key its rendered texts go back under when reused
    key: tuple[str, int]
    fingerprint: str | None = None
    command: str | None = None
    prompt: str | None = None
    system: str | None = None
    file_hashes: Any = None
    items: list[Old] | None = None
    item_value: Any = None
    #: a ``uses`` step: the digest of the workflow it called
    calls: str | None = None
    #: what the earlier run's trace said of it (origin ``reused``...)
    origin: str | None = None


def _earlier(previous: list[StepRow]) -> dict[str, Old]:
    """Every step of the earlier run by qualified name, nested ones included."""
    items: dict[str, list[StepRow]] = {}
    for row in previous:
        if row.item >= 0:
            items.setdefault(row.name, []).append(row)
    out: dict[str, Old] = {}
    for row in previous:
        if row.item >= 0:
            continue
        rows = sorted(items.get(row.name, ()), key=lambda r: r.item)
        record = record_of(row)
        if rows:
            record["results"] = [record_of(r) for r in rows]
        nested = row.fields.get("nested")
        nested = nested if isinstance(nested, Mapping) else {}
        out[row.name] = Old(
            status=row.status,
            record=record,
            key=(row.name, -1),
            fingerprint=row.fingerprint,
            command=row.command,
            prompt=row.prompt,
            system=row.system,
            file_hashes=row.fields.get("file_hashes"),
            items=[
                Old(
                    r.status,
                    record_of(r),
                    (row.name, r.item),
                    command=r.command,
                    prompt=r.prompt,
                    system=r.system,
                    item_value=r.item_value,
                )
                for r in rows
            ]
            or None,
            calls=nested.get("calls") if isinstance(nested.get("calls"), str) else None,
        )
        facts = nested.get("steps")
        if isinstance(facts, Mapping):
            _add_nested(out, row.name, record, facts)
    return out


def _add_nested(out: dict[str, Old], name: str, record: Mapping[str, Any], facts: Any) -> None:
    for qualified, entry, key in flatten(name, record):
        known = facts.get(qualified)
        known = known if isinstance(known, Mapping) else {}
        out[qualified] = Old(
            status=str(entry.get("status", "")),
            record=dict(entry),
            key=key,
            command=known.get("command"),
            prompt=known.get("prompt"),
            system=known.get("system"),
            file_hashes=known.get("file_hashes"),
            origin=known.get("origin"),
        )
    for qualified, entry, _ in flatten(name, record):
        results = entry.get("results")
        old = out[qualified]
        if isinstance(results, list) and results and "#" not in qualified.rpartition(".")[2]:
            old.items = [out[f"{qualified}[{i + 1}]"] for i in range(len(results))]
            for item, result in zip(old.items, results, strict=True):
                item.item_value = result.get("item") if isinstance(result, Mapping) else None


class Resume:
    """The reuse hook of one resumed run (``trace.Trace.reuse``).

    Top-level steps are reused whole (the module doc). Inside a ``uses`` group or a
    repeating step that ran again only because it had failed (or was stopped) — its
    definition, the workflow it calls, its backends, its rendered text and what it
    reads unchanged — each nested step is judged by the same rules, and each
    iteration that finished is reused, up to the first one that runs again: from
    there on, every later iteration runs.
    """

    def __init__(
        self,
        plan: Plan,
        previous: list[StepRow],
        *,
        on_rerun: Callable[[str, str], None],
        current: Mapping[str, str] | None = None,
    ) -> None:
        self.plan = plan
        self.old = _earlier(previous)
        self.on_rerun = on_rerun
        self.current = dict(current) if current is not None else fingerprints(plan)
        self.reused: set[str] = set()
        self.reasons: dict[str, str] = {}
        #: groups (uses or repeating steps) whose insides may be reused one by one
        self.partial: set[str] = set()
        #: group -> the first of its iterations in which something ran again
        self.broken: dict[str, int] = {}

    def __call__(self, compiled: CompiledStep, values: Mapping[str, Any]) -> Outcome | None:
        """The step's earlier outcome when it can be reused, else None (it runs)."""
        from muxlang.runtime.trace import qualified

        name = qualified(compiled.name)
        try:
            reason, partial = self._decide(name, compiled, values)
        except Exception as exc:  # a template error: running the step will report it
            reason, partial = f"cannot compare its inputs ({type(exc).__name__})", False
        if reason is not None:
            if partial:
                self.partial.add(name)
            self._rerun(name, reason)
            return None
        from muxlang.steps.base import Outcome

        old = self.old[name]
        fields = {k: v for k, v in old.record.items() if k not in _OWN}
        self.reused.add(name)
        self._mark_reused(name, old)
        return Outcome(fields)

    def iteration(self, step: str, number: int) -> dict[str, Any] | None:
        """The fields of iteration ``number`` of the repeating step ``step`` (qualified)
        when the earlier run finished it and it may be reused, else None (it runs)."""
        if step not in self.partial or step in self.broken:
            return None
        name = f"{step}#{number}"
        old = self.old.get(name)
        if old is None or old.status != "success":
            self._rerun(name, "did not run before" if old is None else f"{old.status} before")
            return None
        self.reused.add(name)
        self._mark_reused(name, old)
        owner = self.old.get(step)
        run_trace = _trace()
        if run_trace is not None and owner is not None:
            run_trace.mark(
                owner.key, command=owner.command, prompt=owner.prompt, system=owner.system
            )
        return {k: v for k, v in old.record.items() if k not in _OWN and k != "iteration"}

    # ------------------------------------------------------------------ bookkeeping

    def _rerun(self, name: str, reason: str) -> None:
        self.reasons[name] = reason
        for group, number in groups(name + ".x"):  # the groups it is in, and itself
            if number is not None:
                self.broken[group] = min(self.broken.get(group, number), number)
        run_trace = _trace()
        if run_trace is not None:
            run_trace.mark((name, -1), rerun=reason)
        self.on_rerun(name, reason)

    def _mark_reused(self, name: str, old: Old) -> None:
        """The reused records keep what they sent, for the next resume and ``show``;
        so do the records inside them."""
        run_trace = _trace()
        if run_trace is None:
            return
        inside = [
            (key, entry)
            for key, entry in self.old.items()
            if key.startswith((f"{name}.", f"{name}#", f"{name}["))
        ]
        for key, entry in [(name, old), *inside]:
            if entry.key[0] == key or entry.key[1] >= 0:
                run_trace.mark(
                    entry.key, command=entry.command, prompt=entry.prompt, system=entry.system
                )
            run_trace.mark((key, -1), origin="reused")
        for item in old.items or ():
            run_trace.mark(item.key, command=item.command, prompt=item.prompt, system=item.system)

    # ------------------------------------------------------------------ why

    def _decide(
        self, name: str, compiled: CompiledStep, values: Mapping[str, Any]
    ) -> tuple[str | None, bool]:
        """Why the step runs again (None: it is reused), and whether what is inside it
        (iterations, nested steps) may still be reused one by one."""
        for group, number in groups(name):
            if group not in self.partial:
                return f"{group} runs again whole", False
            first = self.broken.get(group)
            if number is not None and first is not None and number > first:
                return f"iteration {first} of {group} ran again", False
        old = self.old.get(name)
        if old is None:
            return "did not run before", False
        before = (
            None if old.status == "success" else f"{_STOPPED.get(old.status, old.status)} before"
        )
        try:
            other = self._inputs(name, compiled, values, old)
        except Exception:
            if before is None:
                raise
            return before, False
        if other is not None:
            step = compiled.step
            grouping = step.repeat is not None or step.type == "uses"
            # a group that failed and changed: the change is why nothing inside is reused
            return (f"{before}; {other}" if before and grouping else before or other), False
        return before, True

    def _inputs(
        self, name: str, compiled: CompiledStep, values: Mapping[str, Any], old: Old
    ) -> str | None:
        nested = "." in name
        if not nested:  # nested definitions are covered by their call's digest
            old_def, _, old_backends = (old.fingerprint or ":").partition(":")
            new_def, _, new_backends = self.current.get(name, ":").partition(":")
            if old_def != new_def:
                return "changed: definition"
            if old_backends != new_backends:
                return "changed: backends"
        plan = self._plan_of(name)
        called = plan.calls.get(compiled.name)
        if called is not None and not nested:  # (its digest covers the calls within)
            from muxlang.records.nested import call_digest

            if old.calls is None:
                return "the workflow it calls was not recorded"
            if old.calls != call_digest(called):
                return "changed: the workflow it calls"
        prefix = name.rpartition(".")[0]
        for dependency in compiled.dependencies:
            full = f"{prefix}.{dependency}" if prefix else dependency
            if full not in self.reused:
                return f"reads {full}, which re-ran"
        step = compiled.step
        if step.for_each is not None:
            reason = self._items_reason(plan, compiled, values, old)
            if reason is not None and reason.endswith(" before") and old.status != "success":
                return None  # an item that failed: the step's own status says so
            return reason
        changed = self._rendered_change(plan, step, values, old)
        if changed is not None:
            return changed
        if step.type == "apply":
            return self._files_reason(old)
        return self._source_reason(plan, prefix, compiled.name)

    def _plan_of(self, name: str) -> Plan:
        """The plan a (nested) step belongs to."""
        plan = self.plan
        for segment in name.split(".")[:-1]:
            plan = plan.calls[base(segment)]
        return plan

    def _source_reason(self, plan: Plan, prefix: str, name: str) -> str | None:
        """A query step an apply step reads runs again when that apply must: the apply
        re-asks the source's backend when its verify fails, which needs the request."""
        for other in plan.order:
            step = plan.step(other).step
            source = getattr(step, "source", None)
            if step.type != "apply" or source is None or source.name != name:
                continue
            old = self.old.get(f"{prefix}.{other}" if prefix else other)
            if old is None or old.status != "success" or self._files_reason(old) is not None:
                return f"apply step {other} reads it, and runs again"
        return None

    def _rendered_change(
        self, plan: Plan, step: Any, values: Mapping[str, Any], old: Old
    ) -> str | None:
        from muxlang.runtime.context import render

        path = plan.workflow.path
        if step.type == "shell":
            if render("run", step.run, values, path=path) != (old.command or ""):
                return "changed: command"
        elif step.type == "query":
            if render("prompt", step.prompt, values, path=path) != (old.prompt or ""):
                return "changed: prompt"
            system = render("system", step.system, values, path=path) if step.system else None
            if system != old.system:
                return "changed: system"
        return None

    def _items_reason(
        self, plan: Plan, compiled: CompiledStep, values: Mapping[str, Any], old: Old
    ) -> str | None:
        from muxlang.runtime.context import evaluate, loop_values

        step = compiled.step
        assert step.for_each is not None
        items = evaluate("for_each", step.for_each, values, path=plan.workflow.path)
        before = old.items or []
        if not isinstance(items, list) or [r.item_value for r in before] != items:
            return "changed: items"
        for index, (item, entry) in enumerate(zip(items, before, strict=True)):
            if entry.status != "success":
                return f"item {index + 1} {entry.status} before"
            scope = {**values, "item": item, "loop": loop_values(index, len(items))}
            changed = self._rendered_change(plan, step, scope, entry)
            if changed is not None:
                return f"{changed} (item {index + 1})"
        return None

    def _files_reason(self, old: Old) -> str | None:
        expected = old.file_hashes
        if not isinstance(expected, dict):
            return "its files were not recorded"
        now = file_hashes(self.plan.config.project_root, list(expected))
        for path, digest in expected.items():
            if now.get(path) != digest:
                return f"changed: {path} no longer holds what the apply wrote"
        return None


#: a step whose row was left unfinished (its run was killed in it) was interrupted
_STOPPED = {"pending": "interrupted", "running": "interrupted"}

#: a record's own facts of the earlier run, which the new run sets itself
_OWN = frozenset({"status", "error", "duration_ms"})


def _trace() -> Any:
    from muxlang.runtime.trace import current_trace

    return current_trace()
