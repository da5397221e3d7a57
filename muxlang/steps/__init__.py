"""Step types, one module each, registered in :data:`REGISTRY`.

A new step type is one module defining a :class:`~muxlang.steps.base.StepKind`
(``KIND``) plus one line here. See :mod:`muxlang.steps.base` for what a kind
holds and docs/architecture.md for where the other parts of muxlang ask it.
"""

from __future__ import annotations

from collections.abc import Mapping

from muxlang.steps import apply, query, shell, uses
from muxlang.steps.base import Outcome, Shapes, StepError, StepKind, StepRunner
from muxlang.workflow import AnyStep

#: every step type by the ``type`` written in the file
REGISTRY: Mapping[str, StepKind] = {
    kind.name: kind
    for kind in (
        shell.KIND,
        query.KIND,
        apply.KIND,
        uses.KIND,
    )
}


def step_kind(step: AnyStep) -> StepKind:
    """The step type of ``step``."""
    return REGISTRY[step.type]


__all__ = ["REGISTRY", "Outcome", "Shapes", "StepError", "StepKind", "StepRunner", "step_kind"]
