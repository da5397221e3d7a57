"""Workflow arguments from the command line: ``name=value`` or positional.

Positional values fill the declared ``[args]`` in declaration order; ``name=value``
sets one by name. Unknown names, too many positional values and missing required
args are errors (exit 2 before anything runs). A workflow that declares no
``[args]`` accepts any ``name=value``; declared or not, every arg it reads
outside ``default(...)`` and ``is defined`` must have a value before anything
runs (:mod:`muxlang.compiler.arg_reads`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from muxlang.compiler.arg_reads import arg_reads
from muxlang.diagnostics import did_you_mean
from muxlang.workflow import Workflow

_NAMED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*)=(.*)$", re.DOTALL)


class ArgsError(Exception):
    """The command-line arguments do not fit the workflow's ``[args]``."""


def resolve_args(workflow: Workflow, given: Sequence[str]) -> dict[str, Any]:
    """The ``args`` table for a run: given values, then defaults."""
    declared = {arg.name: arg for arg in workflow.args}
    values: dict[str, Any] = {}
    positional: list[str] = []
    for text in given:
        match = _NAMED.match(text)
        if match is None:
            positional.append(text)
            continue
        name, value = match.group(1), match.group(2)
        if declared and name not in declared:
            hint = did_you_mean(name, declared)
            raise ArgsError(
                f"unknown argument {name!r} for workflow {workflow.name!r}"
                + (f" ({hint})" if hint else "")
                + f"; it takes: {_names(workflow)}"
            )
        if name in values:
            raise ArgsError(f"argument {name!r} given twice")
        values[name] = value
    free = [arg.name for arg in workflow.args if arg.name not in values]
    if len(positional) > len(free):
        extra = positional[len(free)]
        if not declared:
            raise ArgsError(
                f"workflow {workflow.name!r} declares no [args]; pass values as name=value "
                f"(got {extra!r})"
            )
        raise ArgsError(
            f"too many arguments for workflow {workflow.name!r}: {extra!r} is left over; "
            f"it takes: {_names(workflow)}"
        )
    for name, value in zip(free, positional, strict=False):
        values[name] = value
    missing = []
    for arg in workflow.args:
        if arg.name in values:
            continue
        if arg.required:
            missing.append(arg)
        else:
            values[arg.name] = arg.default
    if missing:
        described = ", ".join(
            f"{a.name} ({a.description})" if a.description else a.name for a in missing
        )
        raise ArgsError(
            f"missing required argument{'s' if len(missing) > 1 else ''} for workflow "
            f"{workflow.name!r}: {described}; pass {missing[0].name}=VALUE"
        )
    unset = {name: span for name, span in arg_reads(workflow).items() if name not in values}
    if unset:
        where = ", ".join(
            f"{name} ({workflow.path}:{span.line}:{span.column})" for name, span in unset.items()
        )
        first = next(iter(unset))
        raise ArgsError(
            f"workflow {workflow.name!r} reads argument{'s' if len(unset) > 1 else ''} "
            f"with no value: {where}; pass {first}=VALUE (nothing was run)"
        )
    return values


def _names(workflow: Workflow) -> str:
    return ", ".join(arg.name for arg in workflow.args) or "no arguments"
