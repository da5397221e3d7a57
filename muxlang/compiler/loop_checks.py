"""MUX023 for ``loop``: a field the ``loop`` table does not have.

``loop`` (in a for_each step, or in a template ``{% for %}`` body) has exactly
the fields of :data:`muxlang.template.loop.LOOP_FIELDS`; ``validate`` rejects
any other, so that ``run`` never meets one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from muxlang.diagnostics import Diagnostic, did_you_mean
from muxlang.template import ast as t
from muxlang.template.loop import LOOP_FIELDS

if TYPE_CHECKING:
    from muxlang.compiler.checks import CheckContext


def check_loop_fields(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX023: ``loop.X`` where ``loop`` has no field X (``loop.bogus``)."""
    for site in ctx.sites:
        if not (site.item_available or "loop" in site.bound):
            continue  # `loop` outside any loop is MUX024's
        for node in ctx.nodes(site):
            found = t.member(node, "loop")
            if found is None:
                continue
            key, span = found
            if key in LOOP_FIELDS:
                continue
            yield ctx.diag(
                span,
                "MUX023",
                f"`loop` has no field `{key}`",
                did_you_mean(key, LOOP_FIELDS)
                or "fields: " + ", ".join(f"`{name}`" for name in LOOP_FIELDS),
            )
