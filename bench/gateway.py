"""What `muxlang serve` adds over calling an upstream directly.

Starts the fake upstream (tests/fakes/llm_server.py) and a `muxlang serve`
subprocess on loopback, then sends the same chat request at a fixed number of
concurrent clients (default 32):

- direct       POST upstream/v1/chat/completions
- passthrough  POST gateway/v1/chat/completions, model = an openai backend (bytes relayed)
- translated   POST gateway/v1/messages, same backend (Anthropic → internal → OpenAI)
- direct-stream, passthrough-stream, translated-stream: the same with
  "stream": true (latency to the last byte)

Prints p50/p99 latency and requests per second per scenario, the gateway's p50
overhead over the direct call of the same kind, and the CPU time the gateway
process spent per request (the figure least disturbed by other load on the
machine), and writes the figures to bench/results/gateway.json.

    .venv/bin/python bench/gateway.py [--requests 1000] [--concurrency 32] [--latency 0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import trio

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "gateway.json"


def _start(argv: list[str], pattern: str, env: dict[str, str], stream: str) -> tuple[Any, str]:
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    pipe = proc.stdout if stream == "stdout" else proc.stderr
    assert pipe is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = pipe.readline()
        if not line:
            break
        match = re.search(pattern, line)
        if match:
            return proc, match.group(1)
    proc.kill()
    raise SystemExit(f"could not start: {' '.join(argv)}")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), 0 when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stop(proc: Any) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


async def _load(
    url: str, body: dict[str, Any], headers: dict[str, str], total: int, concurrency: int
) -> dict[str, float]:
    """``total`` POSTs, ``concurrency`` at a time; latency to the last byte of each answer."""
    latencies: list[float] = []
    errors = 0
    # several small clients: one big pool costs far more CPU per request (NOTES.md)
    per = 8
    clients = [
        httpx.AsyncClient(
            timeout=60,
            limits=httpx.Limits(max_connections=per, max_keepalive_connections=per),
        )
        for _ in range(max(1, concurrency // per))
    ]
    remaining = total
    data = json.dumps(body).encode()
    headers = {"content-type": "application/json", **headers}
    first_error: list[str] = []

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            async with client.stream("POST", url, content=data, headers=headers) as response:
                raw = b"".join([chunk async for chunk in response.aiter_raw()])
            if response.status_code != 200:
                errors += 1
                if not first_error:
                    first_error.append(f"{response.status_code} {raw[:300]!r}")
            latencies.append(time.perf_counter() - start)

    began = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for i in range(concurrency):
            nursery.start_soon(worker, clients[i % len(clients)])
    elapsed = time.perf_counter() - began
    for client in clients:
        await client.aclose()
    if first_error:
        raise SystemExit(f"{url}: {errors} of {len(latencies)} requests failed: {first_error[0]}")
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 2),
        "rps": round(len(latencies) / elapsed, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1000, help="per scenario")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.0, help="upstream seconds per answer")
    parser.add_argument("--no-write", action="store_true", help="do not write the JSON file")
    args = parser.parse_args(argv)

    load_before = round(os.getloadavg()[0], 2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUXLANG")}
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        env.pop(proxy, None)
    text = "The quick brown fox jumps over the lazy dog. " * 4
    upstream, up_url = _start(
        [
            sys.executable,
            str(REPO / "tests" / "fakes" / "llm_server.py"),
            "--latency",
            str(args.latency),
            "--text",
            text,
        ],
        r"(http://127\.0\.0\.1:\d+)",
        env,
        "stdout",
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        (root / ".muxlang").mkdir(parents=True)
        (root / ".muxlang" / "config.toml").write_text(
            f'[backends.up]\ncommand = "{up_url}/v1"\nprotocol = "openai"\n'
            f'model = "fake"\napi_key = "sk-bench"\nmax_retries = 0\n'
        )
        genv = {**env, "HOME": tmp, "XDG_CONFIG_HOME": tmp}
        gateway, gw_url = _start(
            [sys.executable, "-m", "muxlang", "-C", str(root), "serve", "--port", "0"],
            r"listening on (http://127\.0\.0\.1:\d+)",
            genv,
            "stderr",
        )
        try:
            chat = {"model": "up", "messages": [{"role": "user", "content": "Say something."}]}
            messages = {**chat, "max_tokens": 100}
            auth = {"authorization": "Bearer x"}
            streamed = {**chat, "stream": True}
            scenarios = [
                ("direct", up_url + "/v1/chat/completions", chat, auth),
                ("passthrough", gw_url + "/v1/chat/completions", chat, {}),
                ("translated", gw_url + "/v1/messages", messages, {}),
                ("direct-stream", up_url + "/v1/chat/completions", streamed, auth),
                ("passthrough-stream", gw_url + "/v1/chat/completions", streamed, {}),
                ("translated-stream", gw_url + "/v1/messages", {**messages, "stream": True}, {}),
            ]
            figures: dict[str, dict[str, float]] = {}
            for name, url, body, headers in scenarios:
                # a short warm-up opens the connections
                trio.run(_load, url, body, headers, args.concurrency, args.concurrency)
                cpu = _cpu_seconds(gateway.pid)
                figures[name] = trio.run(_load, url, body, headers, args.requests, args.concurrency)
                used = _cpu_seconds(gateway.pid) - cpu
                figures[name]["gateway_cpu_ms_per_request"] = round(used * 1000 / args.requests, 3)
        finally:
            _stop(gateway)
            _stop(upstream)

    def baseline(name: str) -> dict[str, float]:
        return figures["direct-stream" if name.endswith("stream") else "direct"]

    print(
        f"{'scenario':<20}{'requests':>9}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'req/s':>9}{'+p50 ms':>9}{'gw cpu ms/req':>15}"
    )
    for name, f in figures.items():
        extra = f["p50_ms"] - baseline(name)["p50_ms"]
        print(
            f"{name:<20}{f['requests']:>9}{f['errors']:>8}{f['p50_ms']:>9.2f}{f['p99_ms']:>9.2f}"
            f"{f['rps']:>9.1f}{extra:>9.2f}{f['gateway_cpu_ms_per_request']:>15.3f}"
        )
    load_after = round(os.getloadavg()[0], 2)
    print(f"load average before/after: {load_before} / {load_after} on {os.cpu_count()} CPUs")
    report = {
        "concurrency": args.concurrency,
        "requests_per_scenario": args.requests,
        "upstream_latency_s": args.latency,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "scenarios": figures,
        "overhead_p50_ms": {
            n: round(f["p50_ms"] - baseline(n)["p50_ms"], 2)
            for n, f in figures.items()
            if not n.startswith("direct")
        },
    }
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=2) + "\n")
        print(f"written to {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
