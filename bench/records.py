"""Run records: what recording costs a run, and how fast the history answers.

- scheduler: the 1,000-step plans of bench/scheduler.py (wide and chain), run
  as ``--no-record`` runs them (with the trace the step executors note into, which
  `muxlang run` always installs) and with recording (a
  :class:`~muxlang.records.recorder.Recorder` writing every step to ``runs.db``).
  Runs alternate, each after the same pause; wall and CPU seconds of this process
  are compared, best of ``--repeat``.
- fan-out: the 2,000-query for_each of bench/fanout.py against the fake
  upstream (50 ms latency, 100 at once), without and with recording.
- history: ``muxlang runs`` (a whole process, as a user runs it) with 10,000
  runs recorded, and the store's own query.

Target: recording adds at most 5% to both runs; ``muxlang runs`` under 200 ms.

Run: ``.venv/bin/python bench/records.py [--quick] [--repeat R]``; ``--only breakdown``
splits the scheduler figure into its parts (trace, recorder, pickle and write, a reader
that only drains the pipe, writer).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trio
from common import PYTHON, clean_env, emit, fake_upstream

from muxlang.records.recorder import Recorder
from muxlang.records.store import StepRow, Store
from muxlang.records.writer import open_channel
from muxlang.runtime import execute, trace
from muxlang.runtime.events import NullReporter


def _recorder(db: Path, channel: Any = None) -> tuple[Recorder, trace.Trace]:
    run_trace = trace.Trace()
    recorder = Recorder(NullReporter(), db, args={}, secrets=(), trace=run_trace, channel=channel)
    return recorder, run_trace


# --------------------------------------------------------------------------- scheduler


def _toml_plan(root: Path, name: str, n: int, chain: bool, max_concurrent: int) -> Any:
    """A 1,000-step plan as `muxlang run` gets it: a workflow file, loaded and compiled
    (so each step's definition hash comes from its text in the file)."""
    from muxlang.compiler import compile_workflow
    from muxlang.compiler.loader import load_workflow
    from muxlang.config import load_config

    steps = "".join(
        f'[[steps]]\nname = "s{i}"\ntype = "query"\nrole = "noop"\nprompt = "ping"\n'
        + (f'depends_on = ["s{i - 1}"]\n' if chain and i else "")
        + "\n"
        for i in range(n)
    )
    path = root / f"{name}.toml"
    path.write_text(
        f'name = "{name}"\nmax_concurrent = {max_concurrent}\n\n{steps}'
        '[roles.noop]\nbackends = ["b"]\n[backends.b]\ncommand = "true"\n'
    )
    workflow, found = load_workflow(path)
    assert workflow is not None, found
    config, found = load_config(root, workflow=workflow, environ={"HOME": str(root)})
    plan, found = compile_workflow(workflow, config)
    assert plan is not None, found
    return plan


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def _scheduler_once(plan: Any, db: Path | None, local: bool = False) -> tuple[float, ...]:
    """One run: (wall, CPU of this process, CPU of the writer process)."""
    from tests.fakes.scripted import ScriptedQueryService

    reporter: Any = NullReporter()
    children = _children_cpu()
    if db is not None:
        # the CLI starts the writer before it loads and compiles the workflow (hundreds
        # of ms for 1,000 steps), so the child is ready when the run starts: the same here
        channel = open_channel(local=local)
        time.sleep(0.15)
        reporter, run_trace = _recorder(db, channel)
        trace.install(run_trace)
    else:
        time.sleep(0.15)  # the same pause before both runs (a CPU that idled runs colder)
        trace.install(trace.Trace())  # as `muxlang run --no-record` has it
    service = ScriptedQueryService(default="pong")
    wall, cpu = time.perf_counter(), time.process_time()
    result = await execute(plan, args={}, query=service, reporter=reporter)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert result.success, result.error
    return wall, cpu, _children_cpu() - children


def scheduler(repeat: int, local: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        plans = {
            "wide (max 8)": _toml_plan(root, "wide8", 1000, False, 8),
            "wide (max 1000)": _toml_plan(root, "wide1000", 1000, False, 1000),
            "chain": _toml_plan(root, "chain", 1000, True, 8),
        }
        for label, plan in plans.items():
            without: list[tuple[float, ...]] = []
            with_: list[tuple[float, ...]] = []
            db = root / "runs.db"  # an existing database, as every run but the first sees
            trio.run(_scheduler_once, plan, db, local)
            for _ in range(repeat):
                without.append(trio.run(_scheduler_once, plan, None))
                with_.append(trio.run(_scheduler_once, plan, db, local))
            wall_without, wall_with = min(r[0] for r in without), min(r[0] for r in with_)
            cpu_without, cpu_with = min(r[1] for r in without), min(r[1] for r in with_)
            out[label] = {
                "wall_s_without": round(wall_without, 4),
                "wall_s_with": round(wall_with, 4),
                "cpu_s_without": round(cpu_without, 4),
                "cpu_s_with": round(cpu_with, 4),
                "writer_cpu_s": round(min(r[2] for r in with_), 4),
                "median_wall_without": round(statistics.median(r[0] for r in without), 4),
                "median_wall_with": round(statistics.median(r[0] for r in with_), 4),
                "overhead": round(wall_with / wall_without - 1, 3),
                "cpu_overhead": round(cpu_with / cpu_without - 1, 3),
                "us_per_step_added": round((wall_with - wall_without) / 1000 * 1e6, 1),
                "cpu_us_per_step_added": round((cpu_with - cpu_without) / 1000 * 1e6, 1),
            }
    return out


# --------------------------------------------------------------------------- breakdown


class _Discard:
    """A channel that throws messages away: what the recorder costs without a pipe."""

    def send(self, message: Any) -> None:
        return None

    def send_many(self, messages: Any) -> None:
        return None

    def poll(self) -> None:
        return None

    def close(self) -> None:
        return None


def _unread_pipe(argv: tuple[str, ...] = ("sleep", "60")) -> Any:
    """A pipe into a child that is no writer: ``sleep`` (never reads) or ``cat``."""
    import fcntl

    from muxlang.records.writer import Pipe

    class Unread(Pipe):
        def close(self, timeout: float = 0.0) -> None:
            self.proc.kill()
            self.proc.wait()
            self.stdin.close()
            self.stdout.close()

    proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None
    assert proc.stdout is not None
    fcntl.fcntl(proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)  # room for every step
    return Unread(proc, proc.stdin, proc.stdout)


async def _variant_once(plan: Any, db: Path, kind: str) -> float:
    """CPU of one run: ``none`` (no trace, no recorder), ``trace`` (the trace alone),
    ``discard`` (a recorder whose channel drops messages), ``unread`` (pickle and
    write into a pipe nobody reads), ``cat`` (a child that only drains the pipe),
    ``writer`` (the real writer process)."""
    from tests.fakes.scripted import ScriptedQueryService

    reporter: Any = NullReporter()
    trace.install(trace.Trace() if kind == "trace" else None)
    if kind in ("discard", "unread", "cat", "writer"):
        channel = {
            "discard": _Discard,
            "unread": _unread_pipe,
            "cat": lambda: _unread_pipe(("cat",)),
            "writer": open_channel,
        }[kind]()
        if kind == "writer":
            time.sleep(0.15)  # ready, as `muxlang run` has it
        reporter, run_trace = _recorder(db, channel)
        trace.install(run_trace)
    cpu = time.process_time()
    await execute(plan, args={}, query=ScriptedQueryService(default="pong"), reporter=reporter)
    return time.process_time() - cpu


def breakdown(repeat: int) -> dict[str, Any]:
    """What each part of recording adds per step (µs of the run's CPU, best of
    ``repeat``, the variants alternating): the figures of performance.md §8 round 3."""
    kinds = ["none", "trace", "discard", "unread", "cat", "writer"]
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for label, chain, slots in (("wide (max 1000)", False, 1000), ("chain", True, 8)):
            plan = _toml_plan(root, label.split()[0], 1000, chain, slots)
            db = root / "runs.db"
            trio.run(_variant_once, plan, db, "writer")
            cpu: dict[str, list[float]] = {kind: [] for kind in kinds}
            for _ in range(repeat):
                for kind in kinds:
                    cpu[kind].append(trio.run(_variant_once, plan, db, kind))
            base = min(cpu["none"])
            out[label] = {"cpu_s_none": round(base, 4)} | {
                f"us_per_step_{kind}": round((min(cpu[kind]) - base) / 1000 * 1e6, 2)
                for kind in kinds[1:]
            }
    return out


# --------------------------------------------------------------------------- fan-out


async def _fanout_once(root: Path, text: str, limit: int, db: Path | None) -> tuple[float, float]:
    from muxlang.compiler import compile_workflow
    from muxlang.compiler.loader import load_workflow
    from muxlang.config import load_config
    from muxlang.runtime.backends import open_router

    path = root / "fanout.toml"
    path.write_text(text)
    workflow, found = load_workflow(path)
    assert workflow is not None, found
    env = {"HOME": str(root), "PATH": os.environ.get("PATH", "")}
    config, found = load_config(root, workflow=workflow, environ=env)
    plan, found = compile_workflow(workflow, config)
    assert plan is not None, found
    reporter: Any = NullReporter()
    if db is not None:
        reporter, run_trace = _recorder(db)
        trace.install(run_trace)
    else:
        trace.install(None)
    async with open_router(config, environ=env, max_concurrent=limit) as router:
        cpu = time.process_time()
        start = trio.current_time()
        result = await execute(plan, args={}, query=router, environ=env, reporter=reporter)
        wall = trio.current_time() - start
        cpu = time.process_time() - cpu
    assert result.success, result.error
    return wall, cpu


def fanout(items: int, runs: int) -> dict[str, Any]:
    import fanout as fan

    parallel, latency = 100, 0.05
    out: dict[str, Any] = {"items": items}
    with fake_upstream(latency=latency) as upstream, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / ".git").mkdir()
        text = fan._workflow(upstream.url, items, parallel, 1)
        db_path = root / "runs.db"
        trio.run(_fanout_once, root, text.replace(f"seq {items}", "seq 50"), 400, db_path)  # warm
        walls: dict[str, list[float]] = {"without": [], "with": []}
        cpus: dict[str, list[float]] = {"without": [], "with": []}
        for _ in range(runs):
            for label, db in (("without", None), ("with", db_path)):
                wall, cpu = trio.run(_fanout_once, root, text, 400, db)
                walls[label].append(wall)
                cpus[label].append(cpu)
    for label in ("without", "with"):
        out[f"wall_s_{label}"] = round(min(walls[label]), 3)
        out[f"cpu_s_{label}"] = round(min(cpus[label]), 3)
    out["wall_overhead"] = round(out["wall_s_with"] / out["wall_s_without"] - 1, 3)
    out["cpu_overhead"] = round(out["cpu_s_with"] / out["cpu_s_without"] - 1, 3)
    return out


# --------------------------------------------------------------------------- shell steps


def shell_steps(steps: int, repeat: int) -> dict[str, Any]:
    """``muxlang run`` of ``steps`` shell steps (``true``, 8 at once) as a user runs it,
    with and without ``--no-record``: what recording costs next to real (if tiny) work."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / ".git").mkdir()
        body = "".join(
            f'[[steps]]\nname = "s{i}"\ntype = "shell"\nrun = "true"\n\n' for i in range(steps)
        )
        (root / "wf.toml").write_text('name = "shell"\n\n' + body)
        env = clean_env()
        argv = [PYTHON, "-m", "muxlang", "-C", str(root), "run", "wf.toml", "--quiet"]
        subprocess.run(argv, env=env, check=True, capture_output=True)  # warm, creates the db
        times: dict[str, list[float]] = {"without": [], "with": []}
        for _ in range(repeat):
            for label, extra in (("without", ["--no-record"]), ("with", [])):
                start = time.perf_counter()
                subprocess.run([*argv, *extra], env=env, check=True, capture_output=True)
                times[label].append(time.perf_counter() - start)
    without, with_ = min(times["without"]), min(times["with"])
    return {
        "steps": steps,
        "wall_s_without": round(without, 3),
        "wall_s_with": round(with_, 3),
        "overhead": round(with_ / without - 1, 3),
    }


# --------------------------------------------------------------------------- history


def history(runs: int, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / ".git").mkdir()
        db = root / ".muxlang" / "runs.db"
        made = time.perf_counter()
        with Store(db) as store:
            for i in range(runs):
                run_id = store.start_run(workflow=f"wf{i % 7}", path="wf.toml", started=1.7e9 + i)
                store.save_steps(
                    run_id,
                    [StepRow(name=f"s{j}", status="success", output="x" * 200) for j in range(5)],
                )
                store.finish_run(run_id, status="success", ended=1.7e9 + i + 1)
        made = time.perf_counter() - made
        with Store(db) as store:
            query = []
            for _ in range(repeat):
                start = time.perf_counter()
                store.runs(limit=20)
                query.append(time.perf_counter() - start)
        command = []
        env = clean_env()
        for _ in range(repeat):
            start = time.perf_counter()
            done = subprocess.run(
                [PYTHON, "-m", "muxlang", "-C", str(root), "runs"],
                capture_output=True,
                env=env,
                check=False,
            )
            command.append(time.perf_counter() - start)
            assert done.returncode == 0, done.stderr
        floor = []
        for _ in range(repeat):
            start = time.perf_counter()
            subprocess.run([PYTHON, "-c", "pass"], env=env, check=True)
            floor.append(time.perf_counter() - start)
    return {
        "runs": runs,
        "fill_s": round(made, 2),
        "store_query_ms": round(min(query) * 1000, 2),
        "command_ms": round(min(command) * 1000, 1),
        "command_median_ms": round(statistics.median(command) * 1000, 1),
        "python_startup_ms": round(min(floor) * 1000, 1),
        "met": min(command) < 0.2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default=None, help="scheduler,fanout,shell,history,breakdown")
    parser.add_argument(
        "--local", action="store_true", help="the writer in the run's process (no child)"
    )
    options = parser.parse_args()
    repeat = 2 if options.quick else options.repeat
    result: dict[str, Any] = {
        "target": "recording adds <= 5% to the scheduler and fan-out runs; "
        "`muxlang runs` < 200 ms with 10,000 runs"
    }
    everything = {"scheduler", "fanout", "shell", "history"}
    only = set(options.only.split(",")) if options.only else everything
    if "scheduler" in only:
        result["scheduler"] = scheduler(repeat, options.local)
    if "fanout" in only:
        result["fanout"] = fanout(1000 if options.quick else 2000, 1 if options.quick else 3)
    if "shell" in only:
        result["shell"] = shell_steps(200, repeat)
    if "history" in only:
        result["history"] = history(2000 if options.quick else 10_000, repeat)
    if "breakdown" in only:  # not part of the default set: a diagnosis, not a target
        result["breakdown"] = breakdown(repeat)
    if only != everything:
        emit(result)
        return
    worst = max(entry["overhead"] for entry in result["scheduler"].values())
    result["met"] = (
        worst <= 0.05 and result["fanout"]["cpu_overhead"] <= 0.05 and result["history"]["met"]
    )
    emit(result)


if __name__ == "__main__":
    main()
