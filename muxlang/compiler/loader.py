"""TOML text → checked Workflow AST (MUX001–MUX004, MUX010).

:func:`load_workflow` parses a workflow file with muxlang's positioned TOML
reader, validates it against :class:`~muxlang.config.models.WorkflowFile`
(every pydantic error mapped to a file position by
:mod:`muxlang.config.validation`), parses every template and expression with
positions inside the file, and builds the frozen AST of :mod:`muxlang.workflow`.
It reports every problem it finds at once; the workflow is ``None`` when any of
them is an error.

:func:`load_workflow_partial` (for ``muxlang validate``) builds the workflow even
then, from everything that is valid, so that the compiler's checks report the
semantic problems of the rest of the file in the same run: a key with a schema
error is left out (a step keeps its name and good keys; a template that does not
parse is empty), and a step that cannot be built at all (its ``type`` or ``name``
is bad, an apply step has no ``source``) is left out while its name stays known.

:func:`load_config_file` does the same for a ``config.toml`` layer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from muxlang.compiler.node_values import (
    _after,
    _common_values,
    _config_spans,
    _ref,
    _repeat,
    _seconds,
    _source_ref,
    _string,
)
from muxlang.compiler.prune import prune
from muxlang.config.compat import translate_workflow
from muxlang.config.files import CONFIG_KEYS as CONFIG_KEYS
from muxlang.config.files import _sorted
from muxlang.config.files import load_config_file as load_config_file
from muxlang.config.files import parse_document as parse_document
from muxlang.config.model_walk import partial_model
from muxlang.config.models import (
    STEP_NAME_PATTERN,
    ApplyStepSpec,
    ConfigFile,
    QueryStepSpec,
    ShellStepSpec,
    UsesStepSpec,
    WorkflowFile,
)
from muxlang.config.validation import validate
from muxlang.diagnostics import Diagnostic, closest
from muxlang.source import Span
from muxlang.steps import REGISTRY as STEP_KINDS
from muxlang.toml.nodes import Array, Document, String, Table
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

T = TypeVar("T")


def load_workflow(path: Path, text: str | None = None) -> tuple[Workflow | None, list[Diagnostic]]:
    """Parse, validate and build a workflow; every problem is reported at once."""
    doc, problems = parse_document(path, text)
    if doc is None:
        return None, problems
    return _Builder(path, doc).build()


def load_workflow_partial(
    path: Path, text: str | None = None
) -> tuple[Workflow | None, list[Diagnostic], frozenset[str]]:
    """Like :func:`load_workflow`, but the workflow is built from everything valid
    even when there are errors (``None`` only when the TOML does not parse). The
    third item names the steps left out of it: references to them are not unknown."""
    doc, problems = parse_document(path, text)
    if doc is None:
        return None, problems, frozenset()
    builder = _Builder(path, doc)
    workflow, found = builder.build()
    if workflow is not None:
        return workflow, found, frozenset()
    return builder.build_partial(), found, frozenset(builder.unbuilt)


class _Builder:
    """Builds the Workflow AST of one document, collecting diagnostics."""

    def __init__(self, path: Path, doc: Document) -> None:
        self.path = path
        self.file = str(path)
        self.doc = doc
        # llm-mux's keys translated or reported (MUX050/MUX051: muxlang/config/compat.py)
        self.root, notes = translate_workflow(doc.root, self.file, doc.lines)
        self.problems: list[Diagnostic] = notes
        #: each step table with its parsed templates, env and expressions
        self.parsed: list[_Parsed] = []
        #: names of steps left out of a partial workflow
        self.unbuilt: list[str] = []

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
        workflow = self._workflow(spec, [step for step in steps if step is not None], config)
        return workflow, _sorted(self.problems)

    def _workflow(self, spec: WorkflowFile, steps: list[AnyStep], config: ConfigFile) -> Workflow:
        """The workflow of this file from its top-level keys, steps and config
        (the same for a whole document and a partial one)."""
        name_node = self.root.get("name")
        return Workflow(
            path=self.file,
            name=spec.name if spec.name is not None else self.path.stem,
            description=spec.description,
            timeout=_seconds(spec.timeout),
            max_concurrent=spec.max_concurrent,
            continue_on_error=spec.continue_on_error,
            max_tokens=spec.max_tokens,
            max_cost=spec.max_cost,
            args=self._args(spec),
            steps=tuple(steps),
            config=config,
            span=name_node.span if name_node is not None else Span.point(1, 1),
            config_spans=_config_spans(self.root),
        )

    # -- checks pydantic cannot express

    def _check_query_targets(self) -> None:
        for table in self._step_tables():
            kind = table.get("type")
            if not (isinstance(kind, String) and kind.value == "query"):
                continue
            role, backend = table.get("role"), table.get("backend")
            name = _string(table.get("name"))
            label = f"query step `{name}`" if name else "query step"
            misspelt = any(
                closest(key, ("role", "backend")) and key not in ("role", "backend")
                for key in table.entries
            )
            if role is None and backend is None and not misspelt:  # `rol`: MUX002 says it
                self.diag(
                    table.span,
                    "MUX004",
                    f"{label} has no `role` or `backend`: query steps need one of them",
                )
            elif role is not None and backend is not None:
                later = backend if _after(backend.span, role.span) else role
                self.diag(
                    later.span,
                    "MUX007",
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
            default, required = arg.default, "default" not in arg.model_fields_set
            if arg.required is False and required:
                default, required = "", False  # llm-mux: an optional arg with no value is ""
            out.append(
                Arg(
                    name=name,
                    description=arg.description,
                    default=default,
                    required=required,
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
        kind = _step_kind(table)
        templates: dict[str, TemplateField] = {}
        for key in ("run", "cwd", "prompt", "system", "verify", "verify_retry_prompt"):
            node = table.get(key)
            if isinstance(node, String):
                field = self._template(node)
                if field is not None:
                    templates[key] = field
        for arg_name, field in self._entry_templates(table.get("with")):
            templates[f"with.{arg_name}"] = field
        env = list(self._entry_templates(table.get("env")))
        exprs: dict[str, ExprField] = {}
        for key in ("if", "for_each"):
            node = table.get(key)
            if isinstance(node, String):
                expr = self._expression(node)
                if expr is not None:
                    exprs[key] = expr
        repeat_node = table.get("repeat")
        until_node = repeat_node.get("until") if isinstance(repeat_node, Table) else None
        if isinstance(until_node, String):
            until = self._expression(until_node)
            if until is not None:
                exprs["repeat.until"] = until
        self.parsed.append(_Parsed(table, templates, tuple(env), exprs))
        if len(self.problems) != before or any(d.is_error for d in self.problems):
            return None  # the workflow is not built: templates were only checked
        assert kind in _STEP_SPECS  # the schema check passed
        return self._build_step(table, kind, templates, tuple(env), exprs)

    def _build_step(
        self,
        table: Table,
        kind: str,
        templates: Mapping[str, TemplateField],
        env: tuple[tuple[str, TemplateField], ...],
        exprs: Mapping[str, ExprField],
        data: dict[str, Any] | None = None,
    ) -> AnyStep:
        """The step of ``table``; ``data`` is its valid part when not all of it is."""
        if data is None:
            data = table.to_python()
        name_node = table.get("name")
        assert name_node is not None
        depends = table.get("depends_on")
        valid_depends = data.get("depends_on", ())
        common: dict[str, Any] = {
            "name": data["name"],
            "type": kind,
            "span": table.span,
            "name_span": name_node.span,
            "depends_on": tuple(
                Ref(item.value, item.span)
                for item in (depends.items if isinstance(depends, Array) else ())
                if isinstance(item, String) and item.value in valid_depends
            ),
            "if_": exprs.get("if"),
            "for_each": exprs.get("for_each"),
            "env": env,
            "repeat": _repeat(table, data, exprs),
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
                cache=query.cache,
                output_schema=query.output_schema,
            )
        build = STEP_KINDS[kind].build
        if build is not None:  # a step type that builds its own node
            built: AnyStep = build(table, data, common, templates)
            return built
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

    # -- partial workflows (validate: report the semantic problems of the rest too)

    def build_partial(self) -> Workflow:
        """The workflow from every valid part of the document (see the module doc)."""
        data = self.root.to_python()
        top = {k: v for k, v in data.items() if k not in CONFIG_KEYS and k != "steps"}
        try:
            # a broken `[args.NAME]` still declares NAME (no MUX025 for its uses)
            valid_top, _ = prune(WorkflowFile, top, fill={("args", "*"): {}})
            spec = WorkflowFile.model_validate(valid_top)
        except ValidationError:  # not prunable: the workflow's defaults
            spec = WorkflowFile.model_validate({})
        config_data, _ = prune(
            ConfigFile,
            {k: v for k, v in data.items() if k in CONFIG_KEYS},
            fill=_CONFIG_FILL,
            keep_missing=True,
        )
        config = partial_model(ConfigFile, config_data)
        assert isinstance(config, ConfigFile)
        steps: list[AnyStep] = []
        for parsed in self.parsed:
            step = self._partial_step(parsed)
            if step is not None:
                steps.append(step)
            elif isinstance(name := _string(parsed.table.get("name")), str):
                self.unbuilt.append(name)
        return self._workflow(spec, steps, config)

    def _partial_step(self, parsed: _Parsed) -> AnyStep | None:
        table = parsed.table
        data = table.to_python()
        kind, name = _step_kind(table), data.get("name")
        if not isinstance(kind, str) or kind not in _STEP_SPECS or not isinstance(name, str):
            return None
        if not re.match(STEP_NAME_PATTERN, name):
            return None
        model = _STEP_SPECS[kind]
        # a bad `repeat` count still leaves a repeating step (its errors are reported)
        fill = {
            ("run",): "",
            ("prompt",): "",
            ("repeat", "max_iterations"): 1,
            ("repeat", "until"): "",
        }
        valid, missing = prune(model, data, fill=fill)
        if missing:
            return None  # e.g. an apply step without `source`
        templates = dict(parsed.templates)
        for key in ("run", "prompt"):
            if key in model.model_fields and key not in templates:
                templates[key] = self._empty_template(table)
        for key in list(templates):
            if key.partition(".")[0] not in valid:  # a key the schema rejected
                del templates[key]
                if key in ("run", "prompt"):
                    templates[key] = self._empty_template(table)
        exprs = {k: v for k, v in parsed.exprs.items() if k.partition(".")[0] in valid}
        node = table.get("for_each")
        if node is not None and "for_each" not in exprs:
            # a for_each that is broken is still a for_each: `item` is no error here
            from muxlang.template import parse_expression

            exprs["for_each"] = ExprField("[]", parse_expression("[]"), node.span)
        env = tuple((k, v) for k, v in parsed.env if k in valid.get("env", {}))
        return self._build_step(table, kind, templates, env, exprs, valid)

    @staticmethod
    def _empty_template(table: Table) -> TemplateField:
        from muxlang.template import parse_template

        return TemplateField("", parse_template(""), table.span)

    def _entry_templates(self, node: object) -> Iterator[tuple[str, TemplateField]]:
        """The parsed template of every string entry of a table (``with``, ``env``)."""
        if isinstance(node, Table):
            for name, entry in node.entries.items():
                if isinstance(entry.value, String):
                    field = self._template(entry.value)
                    if field is not None:
                        yield name, field

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


class _Parsed:
    """One step table and the parts of it the template parser accepted."""

    __slots__ = ("env", "exprs", "table", "templates")

    def __init__(
        self,
        table: Table,
        templates: Mapping[str, TemplateField],
        env: tuple[tuple[str, TemplateField], ...],
        exprs: Mapping[str, ExprField],
    ) -> None:
        self.table = table
        self.templates = templates
        self.env = env
        self.exprs = exprs


_STEP_SPECS: dict[str, type[ShellStepSpec | QueryStepSpec | ApplyStepSpec | UsesStepSpec]] = {
    "shell": ShellStepSpec,
    "query": QueryStepSpec,
    "apply": ApplyStepSpec,
    "uses": UsesStepSpec,
}


def _step_kind(table: Table) -> str | None:
    """A step table's type: its ``type``, or ``uses`` for a step that calls a workflow."""
    kind = _string(table.get("type"))
    if kind is None and table.get("type") is None and table.get("uses") is not None:
        return "uses"
    return kind


#: what a required config key the schema rejected becomes in a partial workflow (so
#: that the merge does not report it missing as well)
_CONFIG_FILL: dict[tuple[str, ...], Any] = {
    ("roles", "*", "backends"): [],
    ("backends", "*", "command"): "",
}
