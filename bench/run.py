"""The whole benchmark suite, in one command.

    .venv/bin/python bench/run.py            # full run (about 5 minutes here)
    .venv/bin/python bench/run.py --quick    # smaller counts (about 2 minutes)
    .venv/bin/python bench/run.py --only validate,template

Each benchmark runs in its own process (bench/<name>.py), so one cannot warm or
load the next; each reports its figures as ratios against an anchor measured in
the same run. Prints a table and writes bench/results.json (with the machine:
CPU, cores, Python and library versions, date, load average), which
docs/performance.md quotes. ``--output PATH`` writes elsewhere; with ``--only``
an existing file keeps its other benchmarks and lists the partial update.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PYTHON, REPO, clean_env, machine, read_result

BENCH = REPO / "bench"
RESULTS = BENCH / "results.json"


def _script(name: str, *args: str) -> Callable[[bool], dict[str, Any]]:
    def run(quick: bool) -> dict[str, Any]:
        argv = [PYTHON, str(BENCH / f"{name}.py"), *args]
        if quick and name != "scheduler":
            argv.append("--quick")
        done = subprocess.run(
            argv, capture_output=True, text=True, cwd=REPO, env=clean_env(), check=False
        )
        try:
            return read_result(done.stdout)
        except ValueError:
            return {"error": f"exit {done.returncode}", "stderr": done.stderr[-3000:]}

    return run


def _scheduler(quick: bool) -> dict[str, Any]:
    return _script("scheduler", "--json", "--repeat", "2" if quick else "5")(quick)


def _gateway_protocols(quick: bool) -> dict[str, Any]:
    """bench/gateway.py (the gateway's own: pass-through, translated, streamed),
    its JSON written to a temporary file instead of its default place."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "gateway.json"
        code = (
            "import sys, pathlib; sys.path.insert(0, sys.argv[1]); import gateway; "
            "gateway.RESULTS = pathlib.Path(sys.argv[2]); gateway.main(sys.argv[3:])"
        )
        requests = "300" if quick else "1000"
        done = subprocess.run(
            [PYTHON, "-c", code, str(BENCH), str(out), "--requests", requests],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=clean_env(),
            check=False,
        )
        if not out.exists():
            return {"error": f"exit {done.returncode}", "stderr": done.stderr[-3000:]}
        result: dict[str, Any] = json.loads(out.read_text())
        return result


BENCHMARKS: dict[str, Callable[[bool], dict[str, Any]]] = {
    "validate": _script("validate"),
    "template": _script("template"),
    "scheduler": _scheduler,
    "fanout": _script("fanout"),
    "records": _script("records"),
    "gateway": _script("gateway_compare"),
    "gateway_protocols": _gateway_protocols,
    "gateway_state": _script("gateway_state"),
    "memory": _script("memory"),
    "toml_memory": _script("toml_memory"),
    "diff_match": _script("diff_match"),
    "lsp": _script("lsp"),
}


def _rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(measure, figure, target, verdict) for the table."""
    rows: list[tuple[str, str, str, str]] = []

    def verdict(ok: object) -> str:
        return "met" if ok is True else ("MISSED" if ok is False else "-")

    v = results.get("validate", {})
    if "validate_50_steps" in v:
        one = v["validate_50_steps"]
        rows.append(
            (
                "validate, 50 steps (cold process)",
                f"{one['best_s'] * 1000:.0f} ms = {one['ratio_best_wall']:.2f}x floor "
                f"(CPU {one['ratio_best_cpu']:.2f}x)",
                "<= 1.25x floor",
                verdict(v.get("met")) + (" (CPU met)" if v.get("met_cpu") else ""),
            )
        )
        many = v["validate_200_files"]
        rows.append(
            (
                "validate, 200 files in one call",
                f"{many['best_s']:.2f} s = {many['ratio_best_wall']:.1f}x floor, "
                f"{many['ms_per_file_over_floor']:.1f} ms/file",
                "-",
                "-",
            )
        )
    sc = v.get("scaling", {})
    if sc:
        sizes = sorted(int(k.rsplit("_", 1)[1]) for k in sc if k.startswith("cpu_us"))
        target = sc.get("target_growth")
        rows.append(
            (
                f"validate, CPU per step at {sizes[0]:,} / {sizes[-1]:,} steps",
                f"{sc[f'cpu_us_per_step_{sizes[0]}']:.0f} / "
                f"{sc[f'cpu_us_per_step_{sizes[-1]}']:.0f} us (x{sc['growth']:.2f})",
                f"<= x{target:.2f}" if target else "-",
                verdict(sc.get("met")),
            )
        )
    t = results.get("template", {})
    for name in ("prompt", "loop", "text"):
        if name in t:
            f = t[name]
            rows.append(
                (
                    f"template render '{name}' vs Jinja2",
                    f"{f['muxlang_us']:.2f} us vs {f['jinja2_us']:.2f} us = {f['ratio']:.2f}x",
                    "<= 1.0x",
                    verdict(f["ratio"] <= 1.0),
                )
            )
    s = results.get("scheduler", {})
    if "shapes" in s:
        steps = s["steps"]
        for name, f in s["shapes"].items():
            rows.append(
                (
                    f"scheduler, {steps} steps, {name}",
                    f"{f[f'us_per_step_{steps}']:.0f} us/step wall, "
                    f"{f[f'cpu_us_per_step_{steps}']:.0f} CPU "
                    f"(x{f['growth_4x']:.2f} per step at 4x the steps)",
                    "< 500 us/step",
                    verdict(f[f"us_per_step_{steps}"] < 500),
                )
            )
    fo = results.get("fanout", {})
    for key, label in (("one_backend", "1 backend"), ("parallel_role_of_4", "parallel role of 4")):
        if key in fo:
            f = fo[key]
            rows.append(
                (
                    f"for_each {f['items']} x HTTP, {label}",
                    (
                        f"{f['step_wall_s']:.2f} s vs plain client {f['plain_client_s']:.2f} s "
                        f"= {f['ratio_to_plain']:.2f}x"
                        if "plain_client_s" in f
                        else f"{f['step_wall_s']:.2f} s"
                    )
                    + f", ideal {f['ideal_s']:.2f} s = {f['ratio_to_ideal']:.2f}x "
                    f"({f['cpu_ms_per_request']:.2f} ms CPU/request)",
                    "<= 1.2x plain client",
                    verdict(f["met"]),
                )
            )
    g = results.get("gateway", {})
    if "added" in g:
        for name, added in g["added"].items():
            t1 = g["targets"][name]
            rows.append(
                (
                    f"gateway {name}: added p50/p99, 1 client",
                    f"{added['c1']['p50_ms']:.2f} / {added['c1']['p99_ms']:.2f} ms "
                    f"({t1['c1'].get('server_cpu_ms_per_request', 0):.2f} ms CPU/request)",
                    "< 1 ms p50" if name == "muxlang" else "-",
                    verdict(added["c1"]["p50_ms"] < 1.0) if name == "muxlang" else "-",
                )
            )
            direct_rps = g["targets"]["direct"]["c32"]["rps"]
            share = t1["c32"]["rps"] / direct_rps
            rows.append(
                (
                    f"gateway {name}: 32 clients",
                    f"+{added['c32']['p50_ms']:.1f} ms p50, {t1['c32']['rps']:.0f} req/s "
                    f"= {share:.0%} of direct ({direct_rps:.0f})",
                    ">= 50% of direct" if name == "muxlang" else "-",
                    verdict(share >= 0.5) if name == "muxlang" else "-",
                )
            )
    gs = results.get("gateway_state", {})
    if "state_calls" in gs:
        calls = gs["state_calls"]
        for name, label in (("no_key", "no key"), ("with_key", "a key with limits")):
            suffix = "+key" if name == "with_key" else ""
            rows.append(
                (
                    f"gateway state in Redis vs memory, {label}",
                    f"+{calls['added_waited_p50_ms'][name]:.2f} ms p50 per request "
                    f"(Redis {calls['redis' + suffix]['waited_p50_ms']:.2f} ms, "
                    f"p99 {calls['redis' + suffix]['waited_p99_ms']:.2f} ms)",
                    "< 0.5 ms p50",
                    verdict(calls["added_waited_p50_ms"][name] < 0.5),
                )
            )
    rec = results.get("records", {})
    for name, f in rec.get("scheduler", {}).items():
        rows.append(
            (
                f"recording, scheduler 1000 steps, {name}",
                f"+{f['us_per_step_added']:.0f} us/step wall (+{f['overhead'] * 100:.0f}%), "
                f"CPU +{f['cpu_overhead'] * 100:.0f}%",
                "<= +5%",
                verdict(f["overhead"] <= 0.05),
            )
        )
    if "fanout" in rec:
        f = rec["fanout"]
        rows.append(
            (
                f"recording, for_each {f['items']} x HTTP",
                f"wall {f['wall_s_without']:.2f} -> {f['wall_s_with']:.2f} s, "
                f"CPU +{f['cpu_overhead'] * 100:.0f}%",
                "<= +5%",
                verdict(f["cpu_overhead"] <= 0.05),
            )
        )
    if "shell" in rec:
        f = rec["shell"]
        rows.append(
            (
                f"recording, `muxlang run` of {f['steps']} shell steps",
                f"{f['wall_s_without']:.2f} -> {f['wall_s_with']:.2f} s "
                f"({f['overhead'] * 100:+.0f}%)",
                "<= +5%",
                verdict(f["overhead"] <= 0.05),
            )
        )
    if "history" in rec:
        f = rec["history"]
        rows.append(
            (
                f"`muxlang runs`, {f['runs']:,} runs recorded",
                f"{f['command_ms']:.0f} ms (Python alone {f['python_startup_ms']:.0f} ms; "
                f"query {f['store_query_ms']:.2f} ms)",
                "< 200 ms",
                verdict(f["met"]),
            )
        )
    m = results.get("memory", {})
    if "for_each" in m:
        f = m["for_each"]
        rows.append(
            (
                f"peak RSS, for_each of {f['items']}",
                f"{f['peak_rss_mb']:.0f} MB ({f['kb_per_item']:.1f} KB/item over 10 items)",
                "-",
                "-",
            )
        )
        f = m["big_output"]
        rows.append(
            (
                f"peak RSS, step printing {f['output_mb']:.0f} MB",
                f"{f['peak_rss_mb']:.0f} MB (+{f['extra_mb']:.0f} MB = "
                f"{f['copies_of_output']:.1f}x the output)",
                "-",
                "-",
            )
        )
    tm = results.get("toml_memory", {})
    if "shapes" in tm:
        shapes = tm["shapes"]
        rows.append(
            (
                f"TOML reader, {tm['string_mb']:.0f} MB string: peak memory",
                f"{tm['worst_plain']:.1f} B per input byte (worst of 4 string forms; "
                f"1 escape in 4 chars: {shapes['escape_dense']['peak_bytes_per_byte']:.1f})",
                f"<= {tm['target_bytes_per_byte']:.0f} B/B",
                verdict(tm.get("met")),
            )
        )
    dm = results.get("diff_match", {})
    if "cases" in dm:
        cases = dm["cases"]
        rows.append(
            (
                f"apply: {dm['hunk_lines']:,}-line hunk vs {dm['file_lines']:,}-line file",
                f"{cases['no_match']['seconds']:.2f} s no match, "
                f"{cases['match']['seconds']:.2f} s match",
                f"< {dm['target_s']:.0f} s",
                verdict(dm.get("met")),
            )
        )
    lsp = results.get("lsp", {}).get("diagnostics_200_steps")
    if lsp:
        rows.append(
            (
                f"lsp: diagnostics after a change, {lsp['steps']} steps (warm)",
                f"{lsp['median_ms']:.0f} ms median, {lsp['p90_ms']:.0f} ms p90 "
                f"({lsp['cpu_median_ms']:.0f} ms server CPU)",
                f"<= {lsp['target_ms']:.0f} ms",
                verdict(lsp.get("met")),
            )
        )
    for name, value in results.items():
        if isinstance(value, dict) and "error" in value:
            rows.append((name, "FAILED: " + value["error"], "-", "-"))
    return rows


def table(results: dict[str, Any]) -> str:
    rows = [("measure", "figure", "target", ""), *_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller counts, fewer repeats")
    parser.add_argument("--only", help="comma-separated: " + ",".join(BENCHMARKS))
    parser.add_argument("--output", type=Path, default=RESULTS)
    options = parser.parse_args()
    chosen = options.only.split(",") if options.only else list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    results: dict[str, Any] = {
        "machine": machine(),
        "quick": options.quick,
        "command": "bench/run.py" + (" --quick" if options.quick else ""),
    }
    began = time.perf_counter()
    for name in chosen:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        results[name] = BENCHMARKS[name](options.quick)
        results[name].setdefault("bench_seconds", round(time.perf_counter() - start, 1))
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["total_seconds"] = round(time.perf_counter() - began, 1)
    if options.only and options.output.exists():
        # a partial run updates its benchmarks in the file and says so
        merged = json.loads(options.output.read_text())
        merged.setdefault("partial_updates", []).append(
            {"benchmarks": chosen, "machine": results["machine"]}
        )
        merged.update({name: results[name] for name in chosen})
        results = merged
    print(table(results))
    options.output.write_text(json.dumps(results, indent=2) + "\n")
    shown = (
        options.output.relative_to(REPO) if options.output.is_relative_to(REPO) else options.output
    )
    print(f"\nwritten to {shown}", file=sys.stderr)


if __name__ == "__main__":
    main()
