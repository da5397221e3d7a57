"""``muxlang run WORKFLOW [ARG ...]``: load, check, and run a workflow.

Everything that can be wrong before a step runs (unknown workflow, invalid
file, unknown argument) exits 2 with a message and runs nothing. Then the run:
exit 0 when it succeeded, 1 when it failed, 130 on Ctrl-C (143 on SIGTERM or SIGHUP),
after every process was stopped and any apply in progress rolled back.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal

import click

from muxlang._frozen import frozen
from muxlang.cli.options import Settings, global_options, settings, use_color
from muxlang.cli.run_prepare import (
    NotRun,
    debug_logging,
    prepare,
    preview_run,
    recover_interrupted,
    usage_error,
)
from muxlang.cli.workflow_help import RunCommand, complete_arg, complete_workflow

if TYPE_CHECKING:
    from muxlang.compiler.plan import Plan
    from muxlang.llm import ChatRequest, QueryResult, QueryService
    from muxlang.runtime.events import Reporter
    from muxlang.runtime.scheduler import RunResult

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


@frozen(slots=True)
class RunOptions:
    """The command's own flags, built once from what click parsed: each field is
    the name of one of ``run``'s options (the global ones are :class:`Settings`)."""

    dry_run: bool = False
    no_write: bool = False
    keep_going: bool = False
    #: ``--max-concurrent``; None: the workflow's own limit (see :meth:`limit`)
    max_concurrent: int | None = None
    no_record: bool = False
    resume: str | None = None
    no_cache: bool = False
    refresh_cache: bool = False
    print_step: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RunOptions:
        """From click's parameters (the global options among them are left to
        :func:`settings`)."""
        return cls(**{name: params[name] for name in cls.__dataclass_fields__})

    @property
    def record(self) -> bool:
        return not self.no_record

    @property
    def cache(self) -> Literal["use", "off", "refresh"]:
        """How the answer cache is used: ``--no-cache`` wins over ``--refresh-cache``."""
        return "off" if self.no_cache else "refresh" if self.refresh_cache else "use"

    def limit(self, plan: Plan) -> int:
        """Steps and backend calls in flight at once."""
        return self.max_concurrent or plan.max_concurrent


@click.command("run", cls=RunCommand)
@click.argument("workflow", shell_complete=complete_workflow)
@click.argument("args", nargs=-1, metavar="[ARG]...", shell_complete=complete_arg)
@click.option(
    "--dry-run", is_flag=True, help="Print the plan with what it can render; run nothing."
)
@click.option(
    "--no-write",
    is_flag=True,
    help="Run every step, but apply steps write nothing: they show the diff they would write.",
)
@click.option("--keep-going", is_flag=True, help="After a failure, let independent steps finish.")
@click.option(
    "--max-concurrent",
    type=click.IntRange(min=1),
    metavar="N",
    default=None,
    help="Steps and backend calls in flight at once.",
)
@click.option(
    "--no-record",
    is_flag=True,
    help="Keep no record of this run in .muxlang/runs.db (see `muxlang runs`).",
)
@click.option(
    "--resume",
    "resume",
    is_flag=False,
    flag_value="latest",
    default=None,
    metavar="[RUN]",
    help="Reuse what an earlier run (default: this workflow's newest failed or interrupted "
    "one) did, where its inputs are unchanged; run the rest.",
)
@click.option("--no-cache", is_flag=True, help="Ignore cached answers (and cache nothing).")
@click.option(
    "--refresh-cache", is_flag=True, help="Ask again where a step caches, and replace the cache."
)
@click.option(
    "--print",
    "print_step",
    metavar="STEP",
    default=None,
    help="Print this step's output (default: the last step nothing depends on).",
)
@global_options
@click.pass_context
def run_command(ctx: click.Context, /, workflow: str, args: tuple[str, ...], **given: Any) -> None:
    """Run WORKFLOW (a name or a .toml path).

    ARG is name=value, or a value for the next declared [args] in order.
    Exit status: 0 success, 1 the workflow failed, 2 usage/config/validation
    error (nothing ran), 130 interrupted.
    """
    opts = settings(ctx, **given)
    if opts.debug:
        debug_logging()
    run = RunOptions.from_params(given)
    try:
        code = _run(workflow, args, opts, run)
    except NotRun as stop:
        stop.report(stop.workflow or workflow, opts.output)
        code = EXIT_USAGE
    except KeyboardInterrupt:  # Ctrl-C outside the run (loading, printing): nothing to stop
        click.echo("interrupted", err=True)
        code = EXIT_INTERRUPTED
    ctx.exit(code)


def _run(workflow: str, args: Sequence[str], opts: Settings, run: RunOptions) -> int:
    """The command's work; returns the exit status."""
    print_step = run.print_step
    if run.record and not run.dry_run:
        from muxlang.records.writer import prestart

        prestart()  # the record writer starts while the workflow loads and compiles
    plan, run_args = prepare(
        workflow, args, opts.directory, opts.team, run.max_concurrent, warn=opts.output == "console"
    )
    if print_step is not None and print_step not in plan.order:
        from muxlang.diagnostics import did_you_mean

        hint = did_you_mean(print_step, plan.order)
        usage_error(
            f"--print: no step named {print_step!r} in workflow {plan.workflow.name!r}"
            + (f" ({hint})" if hint else ""),
            workflow=plan.workflow.name,
        )
    if not plan.order and opts.output != "quiet":
        # validate warns too (MUX004); a run of nothing must not look like work done
        click.echo(f"note: workflow `{plan.workflow.name}` has no steps: nothing to run", err=True)
    if run.dry_run:
        preview_run(plan, run_args, opts.output, run.limit(plan))
        return 0
    recover_interrupted(plan.config.project_root, opts.output, plan.workflow.name)
    earlier = _earlier_run(plan, run.resume) if run.resume is not None else None
    result, signum, run_id = _execute(plan, run_args, opts, run, earlier)
    try:
        _print_result(result, opts.output, run_id)
    except BrokenPipeError:  # `muxlang run x | head -1`: not an error of the run
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if result.interrupted:
        # SIGHUP (terminal closed, SSH dropped) is a SIGTERM: same stop, same status
        return EXIT_TERMINATED if signum in (signal.SIGTERM, signal.SIGHUP) else EXIT_INTERRUPTED
    return 0 if result.success else EXIT_FAILED


def hung_up(terminals: list[int]) -> None:
    """After SIGHUP the terminal is gone and every write to it fails (EIO), which
    would crash the stop half-way: ``terminals`` (those of stdout and stderr that
    were a terminal when the run began) now go to /dev/null."""
    for fd in terminals:
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), fd)


def _print_result(result: RunResult, output: str, run_id: str | None = None) -> None:
    """stdout at the end of a run: the JSON object (with the recorded run's id), or
    the run's output."""
    if output == "json":
        from muxlang.runtime.output import dumps

        click.echo(dumps({**result.to_json(), "run_id": run_id}))
    elif output in ("console", "quiet") and result.final_step is not None:
        record = result.steps[result.final_step]
        if record["status"] == "success" and record["output"]:
            _echo_large(str(record["output"]))
    sys.stdout.flush()


_SLICE = 1 << 20


def _echo_large(text: str) -> None:
    """``click.echo(text)``, in slices: a 50 MB output is not copied twice more,
    once with its newline appended and once encoded (docs/performance.md). With
    an escape character in the text, slices end after a newline, so that an ANSI
    sequence click may strip is never cut in two."""
    plain = "\x1b" not in text
    start = 0
    while len(text) - start > _SLICE:
        if plain:
            end = start + _SLICE
        else:
            end = text.find("\n", start + _SLICE) + 1
            if end == 0:
                break
        click.echo(text[start:end], nl=False)
        start = end
    click.echo(text[start:] if start else text)


# --------------------------------------------------------------------------- running


def _reporter(output: str) -> Reporter:
    from muxlang.runtime.output import JsonlReporter, LiveReporter, PlainReporter

    if output == "jsonl":
        return JsonlReporter(sys.stdout)
    if output == "json":
        return PlainReporter(sys.stderr, verbose=False)
    if output == "quiet":
        return PlainReporter(sys.stderr, verbose=False)
    if sys.stderr.isatty() and os.environ.get("TERM") != "dumb":
        from rich.console import Console

        return LiveReporter(Console(stderr=True))
    return PlainReporter(sys.stderr, color=use_color(sys.stderr))


def _execute(
    plan: Plan,
    run_args: Mapping[str, Any],
    opts: Settings,
    run: RunOptions,
    earlier: tuple[str, list[Any]] | None = None,
) -> tuple[RunResult, int | None, str | None]:
    """The run's result, the signal that stopped it, and its id in the history
    (None when it is not recorded)."""
    import trio

    from muxlang.apply import execute_apply
    from muxlang.config.models import parse_size
    from muxlang.runtime import process, trace
    from muxlang.runtime.scheduler import execute

    output = opts.output
    max_concurrent = run.limit(plan)
    reporter = _reporter(output)
    run_trace = trace.Trace()
    if hasattr(reporter, "trace"):
        reporter.trace = run_trace
    run_trace.on_progress = getattr(reporter, "step_progress", None)
    if earlier is not None:
        from muxlang.records.resume import Resume

        on_rerun = getattr(reporter, "step_rerun", None)
        run_trace.reuse = Resume(
            plan, earlier[1], on_rerun=on_rerun if on_rerun is not None else lambda n, r: None
        )
    if run.record:
        reporter = _recording(
            plan, run_args, reporter, run_trace, earlier[0] if earlier is not None else None
        )
    received: list[int] = []

    async def main() -> RunResult:
        trace.install(run_trace)
        # every command this run starts is held to [defaults] max_output
        process.OUTPUT_LIMIT.set(parse_size(plan.config.defaults.max_output))
        interrupt = trio.Event()
        # (a hung-up terminal no longer says it is one: ask before)
        terminals = [fd for fd in (1, 2) if os.isatty(fd)]
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:

            async def watch() -> None:
                async for signum in signals:
                    received.append(signum)
                    if signum == signal.SIGHUP:
                        hung_up(terminals)
                    if not interrupt.is_set():
                        interrupt.set()
                        # after a SIGHUP the terminal may be gone: writing to it fails
                        if output != "jsonl" and signum != signal.SIGHUP:
                            click.echo(
                                "\ninterrupted: stopping running steps (Ctrl-C again does not "
                                "hurry it: processes get 5 s to exit)",
                                err=True,
                            )

            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch)
                on_retry = getattr(reporter, "backend_retry", None)
                async with _query_service(plan, max_concurrent, on_retry) as router:
                    result = await execute(
                        plan,
                        args=run_args,
                        query=_accounting(plan, router, run.cache),
                        reporter=reporter,
                        keep_going=run.keep_going,
                        environ=os.environ,
                        max_concurrent=max_concurrent,
                        interrupt=interrupt,
                        print_step=run.print_step,
                        debug=opts.debug,
                        no_write=run.no_write,
                        apply=execute_apply,
                    )
                nursery.cancel_scope.cancel()
        return result

    result = trio.run(main)
    run_id = getattr(reporter, "run_id", None) if run.record else None
    return result, (received[0] if received else None), run_id


def _accounting(plan: Plan, router: QueryService, cache: str) -> QueryService:
    """The router with budgets, usage/cost and the answer cache around it."""
    from muxlang.runtime.accounting import Accounting, Budget, caches

    budget = Budget(max_tokens=plan.workflow.max_tokens, max_cost=plan.workflow.max_cost)
    caching = cache != "off" and caches(plan)  # (the workflows it calls included)
    store = None
    warned: list[bool] = []

    def broken(exc: Exception) -> None:
        if not warned:
            warned.append(True)
            click.echo(f"warning: the answer cache cannot be used: {exc}", err=True)

    if caching:
        from muxlang.records.store import Store, StoreError, default_path

        try:
            store = Store(default_path(plan.config.project_root))
        except StoreError as exc:
            broken(exc)
    return Accounting(
        router, plan, budget, cache=store, refresh=cache == "refresh", on_cache_error=broken
    )


def _earlier_run(plan: Plan, ref: str) -> tuple[str, list[Any]]:
    """``--resume [RUN]``: the run to resume (its id and step rows), or exit 2."""
    from muxlang.records.store import Store, StoreError, default_path

    name = plan.workflow.name
    try:
        with Store(default_path(plan.config.project_root), create=False) as store:
            if ref == "latest":
                found = store.latest(name, ("failed", "interrupted"))
                if found is None:
                    usage_error(
                        f"--resume: no failed or interrupted run of {name!r} is recorded "
                        "(see `muxlang runs`)",
                        workflow=name,
                    )
            else:
                try:
                    found = store.run(ref)
                except LookupError as exc:
                    usage_error(f"--resume: {exc}", workflow=name)
                if found is None:
                    usage_error(f"--resume: no run {ref!r} is recorded", workflow=name)
                if found.workflow != name:
                    usage_error(
                        f"--resume: run {found.id} is of workflow {found.workflow!r}, not {name!r}",
                        workflow=name,
                    )
            if not store.recorded_here(found.id):
                usage_error(
                    f"--resume: run {found.id} was not recorded by muxlang for this user "
                    "(a runs.db from the repository?): nothing of it is reused",
                    workflow=name,
                )
            return found.id, store.steps(found.id)
    except StoreError as exc:
        usage_error(f"--resume: {exc}", workflow=name)


def _recording(
    plan: Plan,
    run_args: Mapping[str, Any],
    reporter: Reporter,
    run_trace: Any,
    resumed_from: str | None = None,
) -> Reporter:
    """``reporter`` wrapped so that the run is recorded (SPEC section 10)."""
    from muxlang.records.recorder import Recorder
    from muxlang.records.secrets import secret_values
    from muxlang.records.store import default_path

    return Recorder(
        reporter,
        default_path(plan.config.project_root),
        args=run_args,
        secrets=secret_values(plan.config.backends, os.environ),
        trace=run_trace,
        resumed_from=resumed_from,
    )


@asynccontextmanager
async def _query_service(
    plan: Plan, max_concurrent: int, on_retry: Any
) -> AsyncIterator[QueryService]:
    """The backends' router, opened only when the workflow asks a backend."""
    from muxlang.steps import step_kind

    needed = any(step_kind(s.step).asks_backends for s in plan.steps())
    if not needed:
        yield _Unavailable("this workflow has no query step")
        return
    try:
        backends: Any = importlib.import_module("muxlang.runtime.backends")
        open_router = backends.open_router
    except (ImportError, AttributeError):
        yield _Unavailable("LLM backends are not available in this build of muxlang")
        return
    async with open_router(
        plan.config, environ=os.environ, max_concurrent=max_concurrent, on_retry=on_retry
    ) as router:
        yield router


class _Unavailable:
    """A query service that fails every query with one message."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def query(
        self, target: str, request: ChatRequest, *, kind: Literal["role", "backend"]
    ) -> QueryResult:
        from muxlang.llm import BackendError, ErrorKind

        raise BackendError(target, ErrorKind.CONFIG, self.reason)
