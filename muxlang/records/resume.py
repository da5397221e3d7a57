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
``reads X, which re-ran``). Keys are plain step-name strings, so nested names
(``uses``/``repeat``) need nothing special here.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def record_of(row: StepRow) -> dict[str, Any]:
    """A step record (``steps.NAME``) rebuilt from its stored row."""
    record: dict[str, Any] = {
        k: v for k, v in row.fields.items() if k not in ("file_hashes", "members")
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


class Resume:
    """The reuse hook of one resumed run (``trace.Trace.reuse``)."""

    def __init__(
        self,
        plan: Plan,
        previous: list[StepRow],
        *,
        on_rerun: Callable[[str, str], None],
        current: Mapping[str, str] | None = None,
    ) -> None:
        self.plan = plan
        self.steps = {r.name: r for r in previous if r.item < 0}
        self.items: dict[str, list[StepRow]] = {}
        for row in previous:
            if row.item >= 0:
                self.items.setdefault(row.name, []).append(row)
        for rows in self.items.values():
            rows.sort(key=lambda r: r.item)
        self.on_rerun = on_rerun
        self.current = dict(current) if current is not None else fingerprints(plan)
        self.reused: set[str] = set()
        self.reasons: dict[str, str] = {}

    def __call__(self, compiled: CompiledStep, values: Mapping[str, Any]) -> Outcome | None:
        """The step's earlier outcome when it can be reused, else None (it runs)."""
        name = compiled.name
        try:
            reason = self._reason(compiled, values)
        except Exception as exc:  # a template error: running the step will report it
            reason = f"cannot compare its inputs ({type(exc).__name__})"
        if reason is not None:
            self.reasons[name] = reason
            from muxlang.runtime.trace import current_trace

            run_trace = current_trace()
            if run_trace is not None:
                run_trace.mark((name, -1), rerun=reason)
            self.on_rerun(name, reason)
            return None
        from muxlang.steps.base import Outcome

        row = self.steps[name]
        fields = record_of(row)
        for key in ("status", "error", "duration_ms"):
            fields.pop(key, None)
        if name in self.items:
            fields["results"] = [record_of(r) for r in self.items[name]]
        self.reused.add(name)
        # the reused rows keep what the step sent, for the next resume and `show`
        from muxlang.runtime.trace import current_trace

        run_trace = current_trace()
        if run_trace is not None:
            for sent in (row, *self.items.get(name, ())):
                run_trace.mark(
                    (name, sent.item),
                    command=sent.command,
                    prompt=sent.prompt,
                    system=sent.system,
                    origin="reused",
                )
        return Outcome(fields)

    # ------------------------------------------------------------------ why

    def _reason(self, compiled: CompiledStep, values: Mapping[str, Any]) -> str | None:
        name = compiled.name
        row = self.steps.get(name)
        if row is None:
            return "did not run before"
        if row.status != "success":
            return f"{row.status} before"
        old_def, _, old_backends = (row.fingerprint or ":").partition(":")
        new_def, _, new_backends = self.current.get(name, ":").partition(":")
        if old_def != new_def:
            return "changed: definition"
        if old_backends != new_backends:
            return "changed: backends"
        for dependency in compiled.dependencies:
            if dependency not in self.reused:
                return f"reads {dependency}, which re-ran"
        step = compiled.step
        if step.for_each is not None:
            return self._items_reason(compiled, values)
        changed = self._rendered_change(step, values, row)
        if changed is not None:
            return changed
        if step.type == "apply":
            return self._files_reason(row)
        return self._source_reason(name)

    def _source_reason(self, name: str) -> str | None:
        """A query step an apply step reads runs again when that apply must: the apply
        re-asks the source's backend when its verify fails, which needs the request."""
        for other in self.plan.order:
            step = self.plan.step(other).step
            source = getattr(step, "source", None)
            if step.type != "apply" or source is None or source.name != name:
                continue
            row = self.steps.get(other)
            if row is None or row.status != "success" or self._files_reason(row) is not None:
                return f"apply step {other} reads it, and runs again"
        return None

    def _rendered_change(self, step: Any, values: Mapping[str, Any], row: StepRow) -> str | None:
        from muxlang.runtime.context import render

        path = self.plan.workflow.path
        if step.type == "shell":
            if render("run", step.run, values, path=path) != (row.command or ""):
                return "changed: command"
        elif step.type == "query":
            if render("prompt", step.prompt, values, path=path) != (row.prompt or ""):
                return "changed: prompt"
            system = render("system", step.system, values, path=path) if step.system else None
            if system != row.system:
                return "changed: system"
        return None

    def _items_reason(self, compiled: CompiledStep, values: Mapping[str, Any]) -> str | None:
        from muxlang.runtime.context import evaluate, loop_values

        step = compiled.step
        assert step.for_each is not None
        items = evaluate("for_each", step.for_each, values, path=self.plan.workflow.path)
        before = self.items.get(compiled.name, [])
        if not isinstance(items, list) or [r.item_value for r in before] != items:
            return "changed: items"
        for index, (item, row) in enumerate(zip(items, before, strict=True)):
            if row.status != "success":
                return f"item {index + 1} {row.status} before"
            scope = {**values, "item": item, "loop": loop_values(index, len(items))}
            changed = self._rendered_change(step, scope, row)
            if changed is not None:
                return f"{changed} (item {index + 1})"
        return None

    def _files_reason(self, row: StepRow) -> str | None:
        expected = row.fields.get("file_hashes")
        if not isinstance(expected, dict):
            return "its files were not recorded"
        now = file_hashes(self.plan.config.project_root, list(expected))
        for path, digest in expected.items():
            if now.get(path) != digest:
                return f"changed: {path} no longer holds what the apply wrote"
        return None
