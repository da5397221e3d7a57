"""Shared helpers of the benchmark suite: the machine, timing, the fake upstream.

Every figure in ``bench/results.json`` is a ratio against an anchor measured in
the same run on the same machine, because the absolute numbers move with the
load (the machine this suite was written on has two cores shared with other
work). Wall time is the best (and median) of N; for whole processes the CPU
time (user + system, from ``getrusage``) is recorded too, since it is far less
sensitive to other processes than the wall clock.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import re
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
FAKE_SERVER = REPO / "tests" / "fakes" / "llm_server.py"

LIBRARIES = (
    "lark",
    "networkx",
    "pydantic",
    "pydantic-core",
    "click",
    "trio",
    "httpx",
    "httpcore",
    "hypercorn",
    "rich",
    "jinja2",
)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{platform.system()} {platform.release()}",
        "libraries": versions,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_average_at_start": load,
    }


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for child processes: no proxies (loopback only), no
    MUXLANG_* settings of the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUXLANG")}
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        env.pop(proxy, None)
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


@dataclass(frozen=True)
class Timing:
    """Times of N runs of one thing, in seconds."""

    walls: tuple[float, ...]
    cpus: tuple[float, ...] = ()

    @property
    def best(self) -> float:
        return min(self.walls)

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    @property
    def cpu_best(self) -> float | None:
        return min(self.cpus) if self.cpus else None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "runs": len(self.walls),
            "best_s": round(self.best, 4),
            "median_s": round(self.median, 4),
        }
        if self.cpus:
            out["cpu_best_s"] = round(min(self.cpus), 4)
            out["cpu_median_s"] = round(statistics.median(self.cpus), 4)
        return out


def interleaved(
    commands: Mapping[str, Sequence[str]],
    runs: int,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Timing]:
    """Time several commands taking turns, so a burst of load on the machine
    hits each of them alike rather than only the one that happened to run then."""
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for argv in commands.values():  # warm-up: .pyc files, grammar caches, page cache
        _once(argv, cwd, env)
    for _ in range(runs):
        for name, argv in commands.items():
            one = _once(argv, cwd, env)
            walls[name].extend(one.walls)
            cpus[name].extend(one.cpus)
    return {name: Timing(tuple(walls[name]), tuple(cpus[name])) for name in commands}


def _once(argv: Sequence[str], cwd: Path | None, env: dict[str, str] | None) -> Timing:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode})")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing((wall,), (cpu,))


def peak_rss_mb(
    argv: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[float, float, subprocess.CompletedProcess[bytes]]:
    """Run ``argv`` (output discarded) in a fresh child, via a tiny wrapper so the
    figure is that child's own peak RSS, not the largest of all our children."""
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
        "t = time.perf_counter() - t\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "sys.stderr.buffer.write(r.stderr[-2000:])\n"
        "print(rss, t, r.returncode)\n"
    )
    done = subprocess.run(
        [PYTHON, "-c", wrapper, *argv], cwd=cwd, env=env, capture_output=True, check=False
    )
    fields = done.stdout.split()
    if len(fields) != 3:
        raise SystemExit(f"peak RSS wrapper failed:\n{done.stderr.decode(errors='replace')}")
    rss_kb, seconds, code = int(fields[0]), float(fields[1]), int(fields[2])
    if code != 0:
        raise SystemExit(
            f"{' '.join(argv)} failed ({code}):\n{done.stderr.decode(errors='replace')}"
        )
    return rss_kb / 1024, seconds, done


# --------------------------------------------------------------------------- processes


@contextlib.contextmanager
def started(
    argv: Sequence[str],
    pattern: str,
    *,
    env: dict[str, str] | None = None,
    stream: str = "stdout",
    timeout: float = 60,
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start a server process, wait for the line matching ``pattern`` (its first
    group, e.g. the URL, is yielded), and stop it (SIGTERM, then SIGKILL) after."""
    proc = subprocess.Popen(
        list(argv),
        env=env,
        stdout=subprocess.PIPE if stream == "stdout" else subprocess.DEVNULL,
        stderr=subprocess.PIPE if stream == "stderr" else subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        pipe = proc.stdout if stream == "stdout" else proc.stderr
        assert pipe is not None
        deadline = time.monotonic() + timeout
        found = None
        seen: list[str] = []
        while time.monotonic() < deadline:
            line = pipe.readline()
            if not line:
                break
            seen.append(line)
            match = re.search(pattern, line)
            if match:
                found = match.group(1)
                break
        if found is None:
            raise SystemExit(f"could not start {' '.join(argv)}:\n{''.join(seen[-20:])}")
        # keep draining the pipe so the server never blocks on a full one
        drain = subprocess.Popen(["cat"], stdin=pipe, stdout=subprocess.DEVNULL)
        try:
            yield proc, found
        finally:
            drain.kill()
            drain.wait()
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@dataclass(frozen=True)
class Upstream:
    url: str
    pid: int

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)


@contextlib.contextmanager
def fake_upstream(latency: float = 0.0, text: str = "ok") -> Iterator[Upstream]:
    """tests/fakes/llm_server.py in its own process (its CPU is not ours)."""
    argv = [PYTHON, str(FAKE_SERVER), "--latency", str(latency), "--text", text]
    with started(argv, r"(http://127\.0\.0\.1:\d+)", env=clean_env()) as (proc, url):
        yield Upstream(url, proc.pid)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


# --------------------------------------------------------------------------- output


def emit(result: dict[str, Any]) -> None:
    """A benchmark script's result: one JSON line on stdout (bench/run.py reads it)."""
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()


def read_result(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.splitlines()):
        if line.startswith("RESULT "):
            value: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return value
    raise ValueError("no RESULT line")


# --------------------------------------------------------------------------- HTTP load


async def http_load(
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    total: int,
    concurrency: int,
) -> dict[str, Any]:
    """``total`` POSTs, ``concurrency`` at a time, each timed to its last byte.

    Several small httpx clients rather than one big pool: one client with a
    large pool costs far more CPU per request (NOTES.md), which would make the
    load generator, not the server, the thing measured."""
    import httpx
    import trio

    latencies: list[float] = []
    errors = 0
    per = 8
    clients = [
        httpx.AsyncClient(
            timeout=120,
            limits=httpx.Limits(max_connections=per, max_keepalive_connections=per),
            trust_env=False,
        )
        for _ in range(max(1, -(-concurrency // per)))
    ]
    remaining = total
    data = json.dumps(body).encode()
    sent = {"content-type": "application/json", **headers}

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            try:
                async with client.stream("POST", url, content=data, headers=sent) as response:
                    async for _ in response.aiter_raw():
                        pass
            except httpx.TransportError:
                errors += 1  # counted, not timed: a dropped connection is no latency figure
                continue
            latencies.append(time.perf_counter() - start)
            if response.status_code != 200:
                errors += 1

    began = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for i in range(concurrency):
            nursery.start_soon(worker, clients[i % len(clients)])
    elapsed = time.perf_counter() - began
    for client in clients:
        await client.aclose()
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": round(statistics.median(latencies) * 1000, 3),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 3),
        "rps": round(len(latencies) / elapsed, 1),
    }
