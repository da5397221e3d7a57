"""TOML text → checked Workflow AST (MUX001–MUX004, MUX010).

:func:`load_workflow` parses a workflow file with muxlang's positioned TOML
reader, validates it against :class:`~muxlang.config.models.WorkflowFile`
(every pydantic error mapped to a file position by
:mod:`muxlang.config.validation`), parses every template and expression with
positions inside the file, and builds the frozen AST of :mod:`muxlang.workflow`.
It reports every problem it finds at once; the workflow is ``None`` when any of
them is an error.

:func:`load_config_file` does the same for a ``config.toml`` layer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from muxlang.config.models import (
    ApplyStepSpec,
    ConfigFile,
    QueryStepSpec,
    ShellStepSpec,
    WorkflowFile,
)
from muxlang.config.validation import partial_model, table_spans, validate
from muxlang.diagnostics import Diagnostic
from muxlang.source import Span
from muxlang.toml.nodes import Array, Document, Node, String, Table
from muxlang.workflow import (
    AnyStep,
    ApplyStep,
    Arg,
    ExprField,
    QueryStep,
    Ref,
    ShellStep,
    TemplateField,
    Workflow,
)

#: Top-level keys of a workflow that form its config layer.
CONFIG_KEYS = frozenset(ConfigFile.model_fields)

T = TypeVar("T")


def _read(path: Path, text: str | None) -> tuple[str | None, list[Diagnostic]]:
    if text is not None:
        return text, []
    try:
        return path.read_text(encoding="utf-8"), []
    except UnicodeDecodeError as exc:
        return None, [
            Diagnostic(str(path), Span.point(1, 1), "MUX001", f"not UTF-8 text: {exc.reason}")
        ]
    except OSError as exc:
        return None, [
            Diagnostic(
                str(path), Span.point(1, 1), "MUX001", f"cannot read file: {exc.strerror or exc}"
            )
        ]


def parse_document(path: Path, text: str | None = None) -> tuple[Document | None, list[Diagnostic]]:
    """Read and parse a TOML file; a syntax error becomes MUX001 at its position."""
    from muxlang.toml import TOMLDecodeError, parse

    source, problems = _read(path, text)
    if source is None:
        return None, problems
    try:
        return parse(source, str(path)), []
    except TOMLDecodeError as exc:
        span = getattr(exc, "span", None)
        if not isinstance(span, Span):
            span = Span.point(int(getattr(exc, "line", 1)), int(getattr(exc, "column", 1)))
        message = str(getattr(exc, "msg", None) or exc)
        return None, [Diagnostic(str(path), span, "MUX001", message)]


def load_config_file(
    path: Path, text: str | None = None
) -> tuple[ConfigFile | None, dict[tuple[str, ...], Span], list[Diagnostic]]:
    """A ``config.toml`` layer: its tables (partial: required keys are checked after
    the layers are merged), the header span of each table, and its problems."""
    doc, problems = parse_document(path, text)
    if doc is None:
        return None, {}, problems
    problems = validate(str(path), doc.root, ConfigFile, partial=CONFIG_KEYS)
    if problems:
        return None, {}, _sorted(problems)
    config = partial_model(ConfigFile, doc.root.to_python())
    assert isinstance(config, ConfigFile)
    return config, table_spans(doc.root), []


def load_workflow(path: Path, text: str | None = None) -> tuple[Workflow | None, list[Diagnostic]]:
    """Parse, validate and build a workflow; every problem is reported at once."""
    doc, problems = parse_document(path, text)
    if doc is None:
        return None, problems
    return _Builder(path, doc).build()


def _sorted(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(diagnostics, key=Diagnostic.sort_key)


class _Builder:
    """Builds the Workflow AST of one document, collecting diagnostics."""

    def __init__(self, path: Path, doc: Document) -> None:
        self.path = path
        self.file = str(path)
        self.doc = doc
        self.root = doc.root
        self.problems: list[Diagnostic] = []

    def diag(self, span: Span, code: str, message: str, hint: str | None = None) -> None:
        self.problems.append(Diagnostic(self.file, span, code, message, hint=hint))

    def build(self) -> tuple[Workflow | None, list[Diagnostic]]:
        self.problems.extend(validate(self.file, self.root, WorkflowFile, partial=CONFIG_KEYS))
        self._check_query_targets()
        # templates are parsed even when the schema has problems: report everything
        steps = self._steps()
        if any(d.is_error for d in self.problems):
            return None, _sorted(self.problems)
        data = self.root.to_python()
        spec = WorkflowFile.model_validate({k: v for k, v in data.items() if k not in CONFIG_KEYS})
        config = partial_model(ConfigFile, {k: v for k, v in data.items() if k in CONFIG_KEYS})
        assert isinstance(config, ConfigFile)
        name_node = self.root.get("name")
        workflow = Workflow(
            path=self.file,
            name=spec.name if spec.name is not None else self.path.stem,
            description=spec.description,
            timeout=_seconds(spec.timeout),
            max_concurrent=spec.max_concurrent,
            continue_on_error=spec.continue_on_error,
            args=self._args(spec),
            steps=tuple(step for step in steps if step is not None),
            config=config,
            span=name_node.span if name_node is not None else Span.point(1, 1),
            config_spans={
                path: span
                for path, span in table_spans(self.root).items()
                if path and path[0] in CONFIG_KEYS
            },
        )
        return workflow, _sorted(self.problems)

    # -- checks pydantic cannot express

    def _check_query_targets(self) -> None:
        for table in self._step_tables():
            kind = table.get("type")
            if not (isinstance(kind, String) and kind.value == "query"):
                continue
            role, backend = table.get("role"), table.get("backend")
            name = _string(table.get("name"))
            label = f"query step `{name}`" if name else "query step"
            if role is None and backend is None:
                self.diag(
                    table.span,
                    "MUX004",
                    f"{label} has no `role` or `backend`: query steps need one of them",
                )
            elif role is not None and backend is not None:
                later = backend if _after(backend.span, role.span) else role
                self.diag(
                    later.span,
                    "MUX003",
                    f"{label} has both `role` and `backend`: give exactly one",
                    hint="a role already names its backends",
                )

    def _step_tables(self) -> list[Table]:
        steps = self.root.get("steps")
        if not isinstance(steps, Array):
            return []
        return [item for item in steps.items if isinstance(item, Table)]

    # -- AST

    def _args(self, spec: WorkflowFile) -> tuple[Arg, ...]:
        table = self.root.get("args")
        out = []
        for name, arg in spec.args.items():
            node = table.get(name) if isinstance(table, Table) else None
            span = node.span if node is not None else Span.point(1, 1)  # `[args.NAME]`
            out.append(
                Arg(
                    name=name,
                    description=arg.description,
                    default=arg.default,
                    required="default" not in arg.model_fields_set,
                    span=span,
                )
            )
        return tuple(out)

    def _steps(self) -> list[AnyStep | None]:
        return [self._step(table) for table in self._step_tables()]

    def _step(self, table: Table) -> AnyStep | None:
        """Parse the step's templates; build it when its keys are valid."""
        before = len(self.problems)
        # schema problems were all collected before: no error means a valid step
        kind = _string(table.get("type"))
        templates: dict[str, TemplateField] = {}
        for key in ("run", "cwd", "prompt", "system", "verify", "verify_retry_prompt"):
            node = table.get(key)
            if isinstance(node, String):
                field = self._template(node)
                if field is not None:
                    templates[key] = field
        env: list[tuple[str, TemplateField]] = []
        env_node = table.get("env")
        if isinstance(env_node, Table):
            for env_name, entry in env_node.entries.items():
                if isinstance(entry.value, String):
                    field = self._template(entry.value)
                    if field is not None:
                        env.append((env_name, field))
        exprs: dict[str, ExprField] = {}
        for key in ("if", "for_each"):
            node = table.get(key)
            if isinstance(node, String):
                expr = self._expression(node)
                if expr is not None:
                    exprs[key] = expr
        if len(self.problems) != before or any(d.is_error for d in self.problems):
            return None  # the workflow is not built: templates were only checked
        assert kind in ("shell", "query", "apply")  # the schema check passed
        return self._build_step(table, kind, templates, tuple(env), exprs)

    def _build_step(
        self,
        table: Table,
        kind: str,
        templates: Mapping[str, TemplateField],
        env: tuple[tuple[str, TemplateField], ...],
        exprs: Mapping[str, ExprField],
    ) -> AnyStep:
        data = table.to_python()
        name_node = table.get("name")
        assert name_node is not None
        depends = table.get("depends_on")
        common: dict[str, Any] = {
            "name": data["name"],
            "type": kind,
            "span": table.span,
            "name_span": name_node.span,
            "depends_on": tuple(
                Ref(item.value, item.span)
                for item in (depends.items if isinstance(depends, Array) else ())
                if isinstance(item, String)
            ),
            "if_": exprs.get("if"),
            "for_each": exprs.get("for_each"),
            "env": env,
            "spans": {key: entry.value.span for key, entry in table.entries.items()},
        }
        if kind == "shell":
            shell = ShellStepSpec.model_validate(data)
            return ShellStep(
                **common,
                **_common_values(shell),
                run=templates["run"],
                cwd=templates.get("cwd"),
            )
        if kind == "query":
            query = QueryStepSpec.model_validate(data)
            return QueryStep(
                **common,
                **_common_values(query),
                prompt=templates["prompt"],
                role=_ref(table.get("role")),
                backend=_ref(table.get("backend")),
                system=templates.get("system"),
                options=query.options,
            )
        apply = ApplyStepSpec.model_validate(data)
        source = table.get("source")
        assert isinstance(source, String)
        return ApplyStep(
            **common,
            **_common_values(apply),
            source=_source_ref(source),
            verify=templates.get("verify"),
            verify_retries=apply.verify_retries,
            verify_retry_prompt=templates.get("verify_retry_prompt"),
            rollback_on_failure=apply.rollback_on_failure,
        )

    def _template(self, node: String) -> TemplateField | None:
        from muxlang.template import TemplateSyntaxError, parse_template

        return self._parse(node, parse_template, TemplateSyntaxError, TemplateField)

    def _expression(self, node: String) -> ExprField | None:
        from muxlang.template import TemplateSyntaxError, parse_expression

        return self._parse(node, parse_expression, TemplateSyntaxError, ExprField)

    def _parse(
        self,
        node: String,
        parser: Callable[..., Any],
        error_type: type[Exception],
        wrap: Callable[[str, Any, Span], T],
    ) -> T | None:
        try:
            parsed = parser(node.value, node.locator())
        except error_type as exc:
            span = getattr(exc, "span", None)
            message = getattr(exc, "message", None) or (exc.args[0] if exc.args else str(exc))
            self.diag(
                span if isinstance(span, Span) else node.span,
                "MUX010",
                str(message),
                hint=getattr(exc, "hint", None),
            )
            return None
        return wrap(node.value, parsed, node.span)


def _common_values(spec: ShellStepSpec | QueryStepSpec | ApplyStepSpec) -> dict[str, Any]:
    return {
        "max_parallel": spec.max_parallel,
        "fail_fast": spec.fail_fast,
        "continue_on_error": spec.continue_on_error,
        "timeout": _seconds(spec.timeout),
    }


def _seconds(value: float | str | None) -> float | None:
    """A validated Duration (the model's validator already made it seconds)."""
    return None if value is None else float(value)


def _string(node: Node | None) -> str | None:
    return node.value if isinstance(node, String) else None


def _ref(node: Node | None) -> Ref | None:
    return Ref(node.value, node.span) if isinstance(node, String) else None


def _source_ref(node: String) -> Ref:
    """``"steps.fix"`` → ``fix`` with the span of the name alone."""
    value = node.value
    prefix = "steps."
    if value.startswith(prefix) and len(value) > len(prefix):
        return Ref(value[len(prefix) :], node.locator()(len(prefix), len(value)))
    return Ref(value, node.span)


def _after(a: Span, b: Span) -> bool:
    return (a.line, a.column) > (b.line, b.column)
