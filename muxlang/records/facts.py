"""A recorded step or run summed up in words: the same in ``muxlang show``,
``muxlang runs`` and the HTML report (``muxlang show --html``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from muxlang.records.store import StepRow


def duration(ms: int | None) -> str:
    """``12 ms``, ``1.2 s``, ``2 m 5 s``; ``-`` when nothing was measured."""
    if ms is None:
        return "-"
    from muxlang.runtime.output import format_ms

    return format_ms(ms)


def money(cost: float | None) -> str:
    """``$0.0123`` below a dollar, ``$1.50`` above; ``-`` when there is no price."""
    if cost is None:
        return "-"
    return f"${cost:.4f}" if cost < 1 else f"${cost:.2f}"


def measured(row: StepRow) -> list[str]:
    """What was measured about one step, in the order both views print it:
    its time (unless skipped), exit code, backend, attempts, tokens and cost."""
    facts: list[str] = []
    if row.status != "skipped":
        facts.append(duration(row.duration_ms))
    if row.exit_code is not None:
        facts.append(f"exit code {row.exit_code}")
    if row.backend:
        facts.append(f"backend {row.backend}")
    if row.attempts > 1:
        facts.append(f"{row.attempts} attempts")
    if row.input_tokens or row.output_tokens:
        facts.append(f"{row.input_tokens:,} in / {row.output_tokens:,} out tokens")
    if row.cost is not None:
        facts.append(money(row.cost))
    return facts
