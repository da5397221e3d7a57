"""Fan-out efficiency: a for_each of HTTP queries against a slow upstream.

The fake OpenAI upstream (tests/fakes/llm_server.py) runs in its own process on
loopback and answers every request after ``--latency`` (50 ms). A workflow whose
``for_each`` step asks a backend once per item (2,000 items, ``max_parallel``
100, ``max_concurrent`` high enough) runs through the real loader, compiler,
runtime and backends (``open_router``) in this process. The ideal wall time is
items / max_parallel x latency = 1 s. The anchor is a plain client measured in
the same run, taking turns with muxlang: 100 threads, each with its own
keep-alive ``http.client`` connection, sending the same requests (what a
script would do without muxlang); the ideal is recorded beside it.

Scenarios: one openai backend; a ``parallel`` role of 4 openai backends (each
item then makes 4 requests, so 4x the HTTP work in the same ideal time).

Run: ``.venv/bin/python bench/fanout.py [--quick] [--items N] [--parallel P]
[--only one_backend|parallel_role_of_4]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import trio
from common import Upstream, emit, fake_upstream

from muxlang.compiler import compile_workflow
from muxlang.compiler.loader import load_workflow
from muxlang.config import load_config
from muxlang.runtime import execute
from muxlang.runtime.backends import open_router


def _workflow(url: str, items: int, parallel: int, backends: int) -> str:
    target = 'backend = "b0"' if backends == 1 else 'role = "all"'
    lines = [
        'name = "fanout"',
        f"max_concurrent = {parallel * backends * 2}",
        "",
        "[[steps]]",
        'name = "list"',
        'type = "shell"',
        f'run = "seq {items}"',
        "",
        "[[steps]]",
        'name = "ask"',
        'type = "query"',
        target,
        'for_each = "steps.list.output | lines"',
        f"max_parallel = {parallel}",
        'prompt = "Item {{ item }}: answer briefly."',
        "",
        "[defaults]",
        f"max_concurrent = {parallel * backends * 2}",
        "",
    ]
    for i in range(backends):
        lines += [
            f"[backends.b{i}]",
            f'command = "{url}/v1"',
            'protocol = "openai"',
            'model = "fake"',
            'api_key = "sk-bench"',
            "max_retries = 0",
            "",
        ]
    if backends > 1:
        names = ", ".join(f'"b{i}"' for i in range(backends))
        lines += ["[roles.all]", f"backends = [{names}]", 'execution = "parallel"', ""]
    return "\n".join(lines)


async def _run_once(root: Path, text: str, limit: int) -> tuple[float, float, int]:
    path = root / "fanout.toml"
    path.write_text(text)
    workflow, found = load_workflow(path)
    assert workflow is not None, found
    env = {"HOME": str(root), "PATH": os.environ.get("PATH", "")}
    config, found = load_config(root, workflow=workflow, environ=env)
    assert not [d for d in found if d.is_error], found
    plan, found = compile_workflow(workflow, config)
    assert plan is not None, found
    async with open_router(config, environ=env, max_concurrent=limit) as router:
        start = trio.current_time()
        result = await execute(plan, args={}, query=router, environ=env)
        total = trio.current_time() - start
    assert result.success, result.error
    ask = result.steps["ask"]
    return ask["duration_ms"] / 1000, total, len(ask["results"])


def plain_client(url: str, items: int, parallel: int) -> float:
    """Wall seconds for ``items`` chat completions from ``parallel`` threads, each
    with its own keep-alive connection: the anchor a for_each is compared with."""
    where = urlsplit(url)
    host, port = where.hostname, where.port
    assert host is not None
    assert port is not None

    def worker(share: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
        try:
            for i in range(share):
                body = {
                    "model": "fake",
                    "messages": [{"role": "user", "content": f"Item {i}: answer briefly."}],
                }
                conn.request("POST", "/v1/chat/completions", json.dumps(body), headers)
                response = conn.getresponse()
                answer = json.loads(response.read())
                assert response.status == 200, answer
        finally:
            conn.close()

    shares = [items // parallel + (1 if n < items % parallel else 0) for n in range(parallel)]
    with ThreadPoolExecutor(parallel) as pool:
        start = time.perf_counter()
        list(pool.map(worker, shares))
        return time.perf_counter() - start


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def scenario(
    upstream: Upstream, items: int, parallel: int, latency: float, backends: int, runs: int
) -> dict[str, Any]:
    ideal = items / parallel * latency
    limit = parallel * backends * 2
    url = upstream.url
    best: tuple[float, float, float, float] | None = None
    plain, plain_cpu = float("inf"), 0.0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / ".git").mkdir()
        text = _workflow(url, items, parallel, backends)
        trio.run(_run_once, root, text.replace(f"seq {items}", f"seq {parallel}"), limit)  # warm
        for _ in range(runs):
            # taking turns: a burst of load hits the anchor and muxlang alike
            cpu = _cpu()
            wall = plain_client(url, items * backends, parallel * backends)
            if wall < plain:
                plain, plain_cpu = wall, _cpu() - cpu
            cpu, server_cpu = _cpu(), upstream.cpu_seconds()
            step, total, count = trio.run(_run_once, root, text, limit)
            cpu, server_cpu = _cpu() - cpu, upstream.cpu_seconds() - server_cpu
            assert count == items
            if best is None or step < best[0]:
                best = (step, total, cpu, server_cpu)
    assert best is not None
    step, total, cpu, server_cpu = best
    requests = items * backends
    return {
        "items": items,
        "max_parallel": parallel,
        "backends": backends,
        "requests": requests,
        "upstream_latency_s": latency,
        "ideal_s": round(ideal, 3),
        "step_wall_s": round(step, 3),
        "run_wall_s": round(total, 3),
        "ratio_to_ideal": round(step / ideal, 2),
        "plain_client_s": round(plain, 3),
        "ratio_to_plain": round(step / plain, 2),
        "plain_client_cpu_ms_per_request": round(plain_cpu / (items * backends) * 1000, 3),
        "cpu_s": round(cpu, 3),
        "cpu_ms_per_request": round(cpu / requests * 1000, 3),
        "upstream_cpu_s": round(server_cpu, 3),
        "met": step / plain <= 1.2,
    }


SCENARIOS = {"one_backend": 1, "parallel_role_of_4": 4}


def measure(
    quick: bool, items: int, parallel: int, latency: float, only: str | None = None
) -> dict[str, Any]:
    runs = 1 if quick else 3
    if quick:
        items = min(items, 1000)
    out: dict[str, Any] = {
        "target": "for_each wall time within 1.2x of a plain client of as many threads"
    }
    with fake_upstream(latency=latency) as upstream:
        for label, backends in SCENARIOS.items():
            if only in (None, label):
                out[label] = scenario(upstream, items, parallel, latency, backends, runs)
    out["met"] = all(out[k]["met"] for k in SCENARIOS if k in out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--parallel", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--only", choices=sorted(SCENARIOS), help="one scenario (A/B runs)")
    options = parser.parse_args()
    started = time.perf_counter()
    result = measure(options.quick, options.items, options.parallel, options.latency, options.only)
    result["bench_seconds"] = round(time.perf_counter() - started, 1)
    emit(result)


if __name__ == "__main__":
    main()
