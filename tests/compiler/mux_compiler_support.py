"""Builders for workflows in compiler tests: hand-made ASTs (no parser needed)
and, when the parsers are there, workflows loaded from TOML text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from muxlang.compiler.plan import ResolvedConfig
from muxlang.config.models import BackendConfig, ConfigFile, RoleConfig
from muxlang.source import Span
from muxlang.template import ast as t
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

_col = [1]


def sp(width: int = 1) -> Span:
    """A fresh span on line 1 (each call further right), so positions differ."""
    start = _col[0]
    _col[0] += width + 1
    return Span(1, start, 1, start + width)


def name(n: str) -> t.Name:
    return t.Name(n, sp(len(n)))


def attr(obj: t.Expr, n: str) -> t.Attr:
    s = sp(len(n))
    return t.Attr(obj, n, obj.span.to(s), s)


def path(dotted: str) -> t.Expr:
    """``steps.diff.output`` as an AST."""
    first, *rest = dotted.split(".")
    expr: t.Expr = name(first)
    for part in rest:
        expr = attr(expr, part)
    return expr


def lit(value: Any) -> t.Literal:
    return t.Literal(value, sp())


def filt(operand: t.Expr, n: str, *args: t.Expr, **kwargs: t.Expr) -> t.Filter:
    s = sp(len(n))
    return t.Filter(operand, n, args, tuple(kwargs.items()), operand.span.to(s), s)


def tpl(*nodes: t.Node | str | t.Expr) -> TemplateField:
    body: list[t.Node] = []
    for node in nodes:
        if isinstance(node, str):
            body.append(t.Text(node, sp(len(node))))
        elif isinstance(node, t.Text | t.Output | t.If | t.For):
            body.append(node)
        else:
            body.append(t.Output(node, node.span))
    return TemplateField("<tpl>", t.Template(tuple(body), sp(), "<tpl>"), sp())


def ex(expr: t.Expr) -> ExprField:
    return ExprField("<expr>", expr, expr.span)


def shell(n: str, run: TemplateField | str = "true", **kw: Any) -> ShellStep:
    return ShellStep(
        name=n,
        type="shell",
        span=sp(),
        name_span=sp(len(n)),
        run=tpl(run) if isinstance(run, str) else run,
        **kw,
    )


def query(n: str, prompt: TemplateField | str = "hi", **kw: Any) -> QueryStep:
    kw.setdefault("role", Ref("analyzer", sp(8)))
    return QueryStep(
        name=n,
        type="query",
        span=sp(),
        name_span=sp(len(n)),
        prompt=tpl(prompt) if isinstance(prompt, str) else prompt,
        **kw,
    )


def apply(n: str, source: str, **kw: Any) -> ApplyStep:
    return ApplyStep(
        name=n, type="apply", span=sp(), name_span=sp(len(n)), source=Ref(source, sp()), **kw
    )


def ref(n: str) -> Ref:
    return Ref(n, sp(len(n)))


def workflow(*steps: AnyStep, args: tuple[str, ...] = (), **kw: Any) -> Workflow:
    return Workflow(
        path="wf.toml",
        name="wf",
        steps=steps,
        args=tuple(Arg(a, None, None, True, sp()) for a in args),
        span=sp(),
        **kw,
    )


def config(**kw: Any) -> ResolvedConfig:
    kw.setdefault("backends", {"claude": BackendConfig(command="claude")})
    kw.setdefault("roles", {"analyzer": RoleConfig(backends=["claude"])})
    return ResolvedConfig(project_root=Path("."), **kw)


def local_config(**tables: Any) -> ConfigFile:
    return ConfigFile.model_validate(tables)


def cli_project(root: Path, monkeypatch: pytest.MonkeyPatch, config: Path | None = None) -> Path:
    """``root`` as an empty project (a git root with ``.muxlang/workflows``), the working
    directory and HOME; with ``config``, that file as the user layer and colour left to
    the command (NO_COLOR unset)."""
    (root / ".git").mkdir()
    (root / ".muxlang" / "workflows").mkdir(parents=True)
    monkeypatch.chdir(root)
    monkeypatch.setenv("HOME", str(root))
    if config is not None:
        monkeypatch.setenv("MUXLANG_CONFIG", str(config))
        monkeypatch.delenv("NO_COLOR", raising=False)
    return root
