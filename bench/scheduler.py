"""Scheduler overhead per step: 1,000 no-op steps through the real runtime.

Each step is a query step answered instantly by the in-process scripted query
service, so what is measured is the scheduler itself (dependency waits, skip
decisions, slots, records, events), not processes or the network. Shapes:

- wide: 1,000 independent steps (``max_concurrent`` 8 and 1,000);
- chain: each step depends on the one before;
- layered: 10 layers of 100, each step depending on 3 steps of the layer before;
- for_each: one step over 1,000 items (through the real loader and compiler).

The same shapes at 4x the steps show whether the cost per step grows with the
plan (it must not). Target: under 0.5 ms per step.

Run: ``.venv/bin/python bench/scheduler.py [--steps N] [--repeat R] [--json]``
(``--json``: the figures bench/run.py collects, also at 4x the steps).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/fakes: the scripted service

from muxlang.compiler.plan import CompiledStep, Plan, ResolvedConfig
from muxlang.runtime import execute
from muxlang.source import Span
from muxlang.template.ast import Template, Text
from muxlang.workflow import QueryStep, Ref, TemplateField, Workflow
from tests.fakes.scripted import ScriptedQueryService

SPAN = Span(1, 1, 1, 2)
PROMPT = TemplateField("ping", Template((Text("ping", SPAN),), SPAN, "ping"), SPAN)


def _plan(n: int, deps: Callable[[int], list[int]], max_concurrent: int) -> Plan:
    names = [f"s{i}" for i in range(n)]
    steps = [
        QueryStep(
            name=name,
            type="query",
            span=SPAN,
            name_span=SPAN,
            prompt=PROMPT,
            role=Ref("noop", SPAN),
        )
        for name in names
    ]
    graph = nx.DiGraph()
    for i, step in enumerate(steps):
        before = tuple(sorted(names[j] for j in deps(i)))
        graph.add_node(step.name, step=CompiledStep(step, before))
        for dep in before:
            graph.add_edge(dep, step.name)
    workflow = Workflow(
        path="bench.toml",
        name="bench",
        steps=tuple(steps),
        span=SPAN,
        max_concurrent=max_concurrent,
    )
    return Plan(workflow, ResolvedConfig(project_root=Path(".")), graph, tuple(names))


def _three_above(i: int, width: int) -> list[int]:
    """Three steps of the layer before: the one above and its two neighbours."""
    layer, pos = divmod(i, width)
    if layer == 0:
        return []
    start = (layer - 1) * width
    return sorted({start + pos, start + (pos + 1) % width, start + (pos - 1) % width})


def _for_each_plan(n: int) -> Plan:
    """One query step over ``n`` items, compiled from TOML by the real compiler."""
    from muxlang.compiler import compile_workflow
    from muxlang.compiler.loader import load_workflow
    from muxlang.config import load_config

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "each.toml"
        path.write_text(
            'name = "each"\nmax_concurrent = 8\n\n[[steps]]\nname = "items"\n'
            f'type = "query"\nrole = "noop"\nprompt = "x"\n\n[[steps]]\nname = "each"\n'
            f'type = "query"\nrole = "noop"\nfor_each = "range_of_{n}"\nmax_parallel = 8\n'
            'prompt = "item {{ item }} of {{ loop.length }}"\n\n'
            '[roles.noop]\nbackends = ["b"]\n[backends.b]\ncommand = "true"\n'
        )
        text = path.read_text().replace(f'"range_of_{n}"', f'"{list(range(n))}"')
        path.write_text(text)
        workflow, found = load_workflow(path)
        assert workflow is not None, found
        config, found = load_config(root, workflow=workflow, environ={"HOME": tmp})
        plan, found = compile_workflow(workflow, config)
        assert plan is not None, found
        return plan


def shapes(n: int) -> dict[str, Plan]:
    width = max(1, n // 10)
    return {
        "wide (max 8)": _plan(n, lambda i: [], 8),
        f"wide (max {n})": _plan(n, lambda i: [], n),
        "chain": _plan(n, lambda i: [i - 1] if i else [], 8),
        "layered 10x": _plan(n, lambda i: _three_above(i, width), 8),
        "for_each": _for_each_plan(n),
    }


async def _run(plan: Plan) -> float:
    return (await _run_both(plan))[0]


async def _run_both(plan: Plan) -> tuple[float, float]:
    """Wall and CPU seconds of one run (CPU: this process only, so neighbours on
    a shared machine do not count)."""
    service = ScriptedQueryService(default="pong")
    start, cpu = time.perf_counter(), time.process_time()
    result = await execute(plan, args={}, query=service)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert result.success, result.error
    return elapsed, cpu


def measure(steps: int, repeat: int) -> dict[str, Any]:
    """µs per step of every shape at ``steps`` and at 4x ``steps`` (bench/run.py)."""
    out: dict[str, Any] = {"steps": steps, "repeat": repeat, "shapes": {}}
    worst = 0.0
    for n in (steps, steps * 4):
        for label, plan in shapes(n).items():
            label = label.replace(f"max {n})", "max n)")
            runs = [trio.run(_run_both, plan) for _ in range(repeat)]
            times = [wall for wall, _ in runs]
            per_step = min(times) / n * 1e6
            entry = out["shapes"].setdefault(label, {})
            entry[f"us_per_step_{n}"] = round(per_step, 1)
            entry[f"cpu_us_per_step_{n}"] = round(min(cpu for _, cpu in runs) / n * 1e6, 1)
            entry[f"best_s_{n}"] = round(min(times), 4)
            entry[f"median_s_{n}"] = round(statistics.median(times), 4)
            if n == steps:
                worst = max(worst, per_step)
    for entry in out["shapes"].values():
        # CPU per step at 4x the steps over CPU per step at 1x: 1.0 = no growth
        entry["growth_4x"] = round(
            entry[f"cpu_us_per_step_{steps * 4}"] / entry[f"cpu_us_per_step_{steps}"], 2
        )
    out["worst_us_per_step"] = round(worst, 1)
    out["target"] = "under 500 us of scheduler time per step (1,000-step plans)"
    out["met"] = worst < 500
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="emit the figures for bench/run.py")
    options = parser.parse_args()
    if options.json:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from common import emit

        emit(measure(options.steps, options.repeat))
        return
    rows = []
    for label, plan in shapes(options.steps).items():
        times = [trio.run(_run, plan) for _ in range(options.repeat)]
        best, median = min(times), statistics.median(times)
        rows.append((label, options.steps, best, median, best / options.steps * 1e6))
    print(f"{'shape':<16} {'steps':>6} {'best s':>8} {'median s':>9} {'µs/step':>8}")
    for label, steps, best, median, per_step in rows:
        print(f"{label:<16} {steps:>6} {best:>8.3f} {median:>9.3f} {per_step:>8.1f}")


if __name__ == "__main__":
    main()
