"""The output modes of ``muxlang run`` (SPEC section 8), as reporters.

- console: progress on stderr — a rich live view on a terminal (pending,
  running with elapsed time, done, failed, skipped), plain lines such as
  ``✓ diff (12 ms)`` otherwise; the run's output goes to stdout (by the CLI).
- json: nothing while running; one JSON object on stdout at the end.
- jsonl: one JSON event per line on stdout as things happen.
- quiet: nothing while running; failures are still summed up on stderr.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

from muxlang.runtime.events import NullReporter

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from muxlang.compiler.plan import Plan
    from muxlang.llm import BackendError
    from muxlang.runtime.scheduler import RunResult
    from muxlang.runtime.trace import Trace

SYMBOLS = {"success": "✓", "failed": "✗", "skipped": "-", "pending": "·", "running": "▸"}


def format_ms(ms: int) -> str:
    """``12 ms``, ``1.2 s``, ``2 m 5 s``."""
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} m {rest} s"


def step_line(
    name: str, record: Mapping[str, Any], reason: str | None, origin: str | None = None
) -> str:
    """One line (and an indented tail) describing a finished step; ``origin`` is
    ``cached`` or ``reused`` when the step's result was not made by this run."""
    status = str(record["status"])
    symbol = SYMBOLS.get(status, "?")
    if status == "skipped":
        return f"{symbol} {name} skipped" + (f" ({reason})" if reason else "")
    took = format_ms(int(record["duration_ms"]))
    line = f"{symbol} {name} ({origin}, {took})" if origin else f"{symbol} {name} ({took})"
    error = record.get("error")
    if status == "failed" and error:
        first, _, rest = str(error).partition("\n")
        line += f": {first}"
        if rest:
            line += "\n" + "\n".join("    " + part for part in rest.splitlines())
    return line


#: lines of a failed step's stdout and stderr the console shows
TAIL_LINES = 20


def _tail(text: str, limit: int = TAIL_LINES) -> tuple[list[str], int]:
    lines = text.rstrip("\n").splitlines()
    return lines[-limit:], len(lines)


def failure_detail(name: str, record: Mapping[str, Any], run_id: str | None) -> str:
    """What the console adds under a failed step: the last lines of its stdout and
    stderr, and the command that shows all of it (when the run is recorded)."""
    parts: list[str] = []
    error = str(record.get("error") or "")
    shell = "exit_code" in record
    for label, key in (("stdout" if shell else "output", "output"), ("stderr", "stderr")):
        text = str(record.get(key) or "")
        if not text.strip():
            continue
        lines, total = _tail(text)
        if key == "stderr" and total <= len(error.splitlines()) and text.strip() in error:
            continue  # the error message already holds all of it
        more = f", last {len(lines)} of {total} lines" if total > len(lines) else ""
        parts.append(f"    {label}{more}:")
        parts.extend(f"    │ {line}" for line in lines)
    if run_id is not None:
        parts.append(f"    the rest: muxlang show {run_id} {name}")
    return "\n".join(parts)


def usage_totals(result: RunResult) -> tuple[int, int, float | None]:
    """The run's input and output tokens and cost (None when no step had a price)."""
    inputs = outputs = 0
    cost: float | None = None
    for name in result.order:
        record = result.steps[name]
        usage = record.get("usage")
        if isinstance(usage, Mapping):
            inputs += int(usage.get("input_tokens") or 0)
            outputs += int(usage.get("output_tokens") or 0)
        value = record.get("cost")
        if isinstance(value, int | float):
            cost = (cost or 0.0) + value
    return inputs, outputs, cost


def usage_line(result: RunResult) -> str | None:
    """``tokens: 1,200 in / 340 out, $0.0087`` (None when nothing was used)."""
    inputs, outputs, cost = usage_totals(result)
    if not inputs and not outputs and cost is None:
        return None
    line = f"tokens: {inputs:,} in / {outputs:,} out"
    if cost is not None:
        line += f", ${cost:.4f}" if cost < 1 else f", ${cost:.2f}"
    return line


def summary_line(result: RunResult) -> str:
    """The last line of a run on stderr."""
    took = format_ms(result.duration_ms)
    if result.success:
        tolerated = sum(1 for n in result.order if result.steps[n]["status"] == "failed")
        note = (
            f" ({tolerated} failed step{'s' if tolerated != 1 else ''} allowed by "
            "continue_on_error)"
            if tolerated
            else ""
        )
        return f"✓ {result.workflow} succeeded in {took}{note}"
    if result.interrupted:
        finished = [n for n in result.order if result.steps[n]["status"] == "success"]
        done = ", ".join(finished) if finished else "none"
        return f"✗ {result.workflow} interrupted after {took}; finished: {done}"
    first_line = (result.error or "").partition("\n")[0]
    return f"✗ {result.workflow} failed in {took}: {first_line}"


def rollback_lines(run_trace: Trace | None) -> list[str]:
    """``↺ write: rolled back f.txt, g.txt`` for each apply step a stop rolled back."""
    from muxlang.runtime.trace import rollbacks

    lines = []
    for step, paths in rollbacks(run_trace):
        shown = ", ".join(paths[:10]) + (f" and {len(paths) - 10} more" if len(paths) > 10 else "")
        lines.append(f"↺ {step}: rolled back {shown} (as before the step)")
    return lines


def retry_line(error: BackendError, attempt: int, delay: float) -> str:
    """``↻ analyze: claude: rate_limit (429 slow down); retry 1 in 2.0 s`` — the step
    that asked leads, when the call was made by one."""
    from muxlang.runtime.trace import current_step

    key = current_step()
    step = ""
    if key is not None:
        step = f"{key[0]}" + (f" item {key[1] + 1}" if key[1] >= 0 else "") + ": "
    return (
        f"↻ {step}{error.backend}: {error.kind.value} ({error.message}); "
        f"retry {attempt} in {delay:.1f} s"
    )


def rerun_line(name: str, reason: str) -> str:
    """``↻ tests runs again: failed before`` (``--resume``)."""
    return f"↻ {name} runs again: {reason}"


def json_default(value: Any) -> Any:
    """Whatever is not plain JSON (tuples, the undefined value) in run records."""
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return None


def dumps(value: Any) -> str:
    """Standard JSON: a NaN or infinite float anywhere (a for_each item from
    ``from_json``, a TOML ``nan``) is written as ``null``, never as ``NaN``."""
    try:
        return json.dumps(value, ensure_ascii=False, default=json_default, allow_nan=False)
    except ValueError as exc:
        if "JSON compliant" not in str(exc):
            raise
        from muxlang.template.values import finite

        return json.dumps(finite(value), ensure_ascii=False, default=json_default)


def origin_of(run_trace: Trace | None, name: str) -> str | None:
    """``cached`` / ``reused`` when the trace says the step's result came from there."""
    if run_trace is None:
        return None
    origin = run_trace.get(name).get("origin")
    return {"cache": "cached", "reused": "reused"}.get(str(origin)) if origin else None


def members_line(run_trace: Trace | None, name: str) -> str | None:
    """``    claude answered, gpt failed (HTTP 500: ...), local unavailable (not on PATH)``:
    how each member of a parallel role did, under its step's line."""
    if run_trace is None:
        return None
    members = run_trace.get(name).get("members")
    if not members:
        return None
    parts = []
    for member in members:
        why = str(member.get("why") or "").partition("\n")[0]
        if len(why) > 80:
            why = why[:79] + "…"
        part = f"{member['entry']} {member['status']}"
        parts.append(part + (f" ({why})" if why and member["status"] != "answered" else ""))
    return "    " + ", ".join(parts)


class PlainReporter(NullReporter):
    """A line per finished step on ``stream`` (stderr), then a summary."""

    shows_steps = True

    def __init__(self, stream: IO[str], *, verbose: bool = True, color: bool = False) -> None:
        self.stream = stream
        self.verbose = verbose
        #: colour the status symbols (FORCE_COLOR in a CI log; never with NO_COLOR)
        self.color = color
        #: the run's id in the history, once it is recorded (set by the recorder)
        self.run_id: str | None = None
        #: what steps sent and where results came from (set by the run command)
        self.trace: Trace | None = None
        self.total = 0
        self.done = 0
        self.start = time.monotonic()

    def run_started(self, plan: Plan) -> None:
        self.total = len(plan.order)
        self.start = time.monotonic()
        if self.verbose and self.total:
            recorded = f" (run {self.run_id})" if self.run_id else ""
            self._write(f"▸ {plan.workflow.name}: {self.total} steps{recorded}")

    def step_started(self, name: str) -> None:
        if self.verbose:
            elapsed = format_ms(round((time.monotonic() - self.start) * 1000))
            self._write(f"▸ {name} started [{self.done}/{self.total} done, {elapsed}]")

    def step_finished(self, name: str, record: Mapping[str, Any], reason: str | None) -> None:
        self.done += 1
        if self.verbose:
            self._write(step_line(name, record, reason, origin_of(self.trace, name)))
            members = members_line(self.trace, name)
            if members:
                self._write(members)
            if record.get("status") == "failed":
                detail = failure_detail(name, record, self.run_id)
                if detail:
                    self._write(detail)

    def run_finished(self, result: RunResult) -> None:
        if self.verbose or not result.success:
            if not self.verbose:
                for name in result.order:
                    if result.steps[name]["status"] == "failed":
                        self._write(step_line(name, result.steps[name], None))
                        detail = failure_detail(name, result.steps[name], self.run_id)
                        if detail:
                            self._write(detail)
            usage = usage_line(result)
            if usage and self.verbose:
                self._write(usage)
            for line in rollback_lines(self.trace):
                self._write(line)
            self._write(summary_line(result))

    def backend_retry(self, error: BackendError, attempt: int, delay: float) -> None:
        """A backend call failed and will be retried (console mode shows it)."""
        if self.verbose:
            self._write(retry_line(error, attempt, delay))

    def step_rerun(self, name: str, reason: str) -> None:
        """``--resume``: ``name`` runs again, and why."""
        if self.verbose:
            self._write(rerun_line(name, reason))

    def step_progress(self, name: str, text: str) -> None:
        """A long step moved on (an apply step's ``verify, attempt 2/3``)."""
        if self.verbose:
            self._write(f"▸ {name}: {text}")

    def nested_finished(self, name: str, record: Mapping[str, Any], reason: str | None) -> None:
        """A step of a called workflow (``outer.inner``) finished."""
        if self.verbose:
            self._write("  " + step_line(name, record, reason, origin_of(self.trace, name)))

    def _write(self, text: str) -> None:
        if self.color and text[:1] in _SYMBOL_COLORS:
            text = f"\x1b[{_SYMBOL_COLORS[text[0]]}m{text[0]}\x1b[0m{text[1:]}"
        self.stream.write(text + "\n")
        self.stream.flush()


#: ANSI colours of the status symbols in plain (non-terminal) output
_SYMBOL_COLORS = {"✓": "32", "✗": "31", "-": "2", "▸": "36"}


class JsonlReporter(NullReporter):
    """One JSON object per line on ``stream`` (stdout) as things happen."""

    shows_steps = True

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.closed = False
        #: the run's id in the history, once it is recorded (set by the recorder)
        self.run_id: str | None = None

    def _emit(self, event: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            self.stream.write(dumps(event) + "\n")
            self.stream.flush()
        except BrokenPipeError:  # the reader went away (`| head`): the run goes on
            self.closed = True

    def run_started(self, plan: Plan) -> None:
        self._emit({"event": "run_started", "workflow": plan.workflow.name, "steps": plan.order})

    def step_started(self, name: str) -> None:
        self._emit({"event": "step_started", "step": name})

    def step_finished(self, name: str, record: Mapping[str, Any], reason: str | None) -> None:
        event: dict[str, Any] = {"event": "step_finished", "step": name, **record}
        if reason:
            event["reason"] = reason
        self._emit(event)

    def nested_started(self, name: str) -> None:
        """A step of a called workflow started: ``step`` is ``outer.inner``."""
        self.step_started(name)

    def nested_finished(self, name: str, record: Mapping[str, Any], reason: str | None) -> None:
        self.step_finished(name, record, reason)

    def run_finished(self, result: RunResult) -> None:
        self._emit(
            {
                "event": "run_finished",
                "workflow": result.workflow,
                "success": result.success,
                "duration_ms": result.duration_ms,
                "error": result.error,
                "interrupted": result.interrupted,
                "run_id": self.run_id,
            }
        )


class LiveReporter(NullReporter):
    """A rich live table of every step on a terminal (stderr)."""

    shows_steps = True

    def __init__(self, console: Console) -> None:
        from rich.live import Live

        self.console = console
        self.run_id: str | None = None
        self.trace: Trace | None = None
        self.workflow = ""
        self.start = time.monotonic()
        self.states: dict[str, str] = {}
        self.started: dict[str, float] = {}
        self.lines: dict[str, str] = {}
        self.progress: dict[str, str] = {}
        self.live = Live(
            console=console, refresh_per_second=8, transient=False, get_renderable=self._render
        )

    def run_started(self, plan: Plan) -> None:
        self.workflow = plan.workflow.name
        self.start = time.monotonic()
        for name in plan.order:
            self.states[name] = "pending"
            self.lines[name] = f"{SYMBOLS['pending']} {name}"
        self.live.start()

    def step_started(self, name: str) -> None:
        self.started[name] = time.monotonic()
        self.states[name] = "running"

    def step_finished(self, name: str, record: Mapping[str, Any], reason: str | None) -> None:
        self.states[name] = str(record["status"])
        self.lines[name] = step_line(name, record, reason, origin_of(self.trace, name))
        members = members_line(self.trace, name)
        if members:
            self.lines[name] += "\n" + members
        if record.get("status") == "failed":
            detail = failure_detail(name, record, self.run_id)
            if detail:
                self.lines[name] += "\n" + detail

    def item_finished(self, name: str, done: int, total: int) -> None:
        self.progress[name] = f", {done}/{total} items"

    def backend_retry(self, error: BackendError, attempt: int, delay: float) -> None:
        self.console.print(retry_line(error, attempt, delay), highlight=False, markup=False)

    def step_rerun(self, name: str, reason: str) -> None:
        self.console.print(rerun_line(name, reason), highlight=False, markup=False)

    def step_progress(self, name: str, text: str) -> None:
        self.progress[name] = f", {text}"

    def run_finished(self, result: RunResult) -> None:
        self.live.update(self._render(final=True), refresh=True)
        self.live.stop()
        usage = usage_line(result)
        if usage:
            self.console.print(usage, highlight=False, markup=False)
        for line in rollback_lines(self.trace):
            self.console.print(line, highlight=False, markup=False)
        self.console.print(summary_line(result), highlight=False, markup=False)

    def _render(self, final: bool = False) -> RenderableType:
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        table = Table.grid(padding=(0, 1))
        styles = {"success": "green", "failed": "red", "skipped": "dim", "pending": "dim"}
        now = time.monotonic()  # wall clock: rich refreshes from its own thread
        if not final:
            done = sum(1 for s in self.states.values() if s not in ("pending", "running"))
            recorded = f" · run {self.run_id}" if self.run_id else ""
            header = (
                f"{self.workflow}: {done}/{len(self.states)} steps done · "
                f"{now - self.start:.1f} s{recorded}"
            )
            table.add_row(Text("▸", style="bold"), Text(header, style="bold"))
        for name, state in list(self.states.items()):
            if state == "running" and not final:
                elapsed = now - self.started.get(name, now)
                table.add_row(
                    Spinner("dots", style="cyan"),
                    Text(f"{name} ({elapsed:.1f} s{self.progress.get(name, '')})"),
                )
            else:
                line = self.lines.get(name, name)
                symbol, _, rest = line.partition(" ")
                table.add_row(Text(symbol, style=styles.get(state, "")), Text(rest))
        return table
