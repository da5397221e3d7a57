"""The compiler: static checks (MUX011-MUX040) and the lowering of a workflow to a
:class:`~muxlang.compiler.plan.Plan`. Renderers for diagnostics live in
:mod:`muxlang.compiler.report`; the TOML-to-AST loader in :mod:`muxlang.compiler.loader`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from muxlang.compiler.build import compile_workflow as compile_workflow

__all__ = ["compile_workflow"]


def __getattr__(name: str) -> Any:
    # Lazy: ``import muxlang.compiler.loader`` must not pull in the checks (and the
    # checks import the loader's neighbours), so the package itself imports nothing.
    if name == "compile_workflow":
        from muxlang.compiler.build import compile_workflow

        return compile_workflow
    raise AttributeError(f"module 'muxlang.compiler' has no attribute {name!r}")
