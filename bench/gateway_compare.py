"""`muxlang serve` against calling the upstream directly, and against LiteLLM's proxy.

The fake OpenAI upstream (tests/fakes/llm_server.py), the muxlang gateway and,
when it is installed, the LiteLLM proxy each run in their own process on
loopback; the load generator (this process) sends the same chat completion
request (not streamed) to each:

- direct   POST upstream/v1/chat/completions
- muxlang  POST `muxlang serve`/v1/chat/completions, model = an openai backend
- litellm  POST LiteLLM proxy/v1/chat/completions, model = the same upstream

at 1 client (the latency a gateway adds, without queueing) and at 32 concurrent
clients (latency under load and throughput). Added latency = p50 through the
gateway - p50 direct, at the same concurrency. The servers' CPU per request is
read from /proc.

On a shared machine the load moves between runs by more than the gateway
costs, so direct and muxlang are measured in ``--rounds`` rounds (3; 2 with
``--quick``), taking turns with both servers up; each figure is the median over
the rounds (their raw figures are under ``rounds``) and the 32-client share is
the median of each round's own muxlang/direct ratio.

LiteLLM never goes into the project's dependencies: install it in a separate
venv (``python -m venv /tmp/litellm-venv && /tmp/litellm-venv/bin/pip install
'litellm[proxy]'``) and pass ``--litellm /tmp/litellm-venv/bin/litellm`` (the
default; it is skipped when absent).

Run: ``.venv/bin/python bench/gateway_compare.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import trio
from common import (
    PYTHON,
    clean_env,
    emit,
    fake_upstream,
    http_load,
    process_cpu_seconds,
    started,
)

LITELLM_KEY = "sk-bench-master-0123456789abcdef0123456789abcdef"
DEFAULT_LITELLM = "/tmp/litellm-venv/bin/litellm"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _bench(
    url: str, headers: dict[str, str], pid: int | None, plan: list[tuple[int, int]]
) -> dict[str, Any]:
    body = {"model": "up", "messages": [{"role": "user", "content": "Say something."}]}
    out: dict[str, Any] = {}
    for concurrency, total in plan:
        trio.run(http_load, url, body, headers, max(concurrency * 2, 20), concurrency)  # warm-up
        cpu = process_cpu_seconds(pid) if pid else 0.0
        figures = trio.run(http_load, url, body, headers, total, concurrency)
        if pid:
            figures["server_cpu_ms_per_request"] = round(
                (process_cpu_seconds(pid) - cpu) / total * 1000, 3
            )
        out[f"c{concurrency}"] = figures
    return out


def _median_figures(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per concurrency, the median over ``rounds`` of every numeric figure."""
    out: dict[str, Any] = {}
    for c in rounds[0]:
        keys = [k for k, v in rounds[0][c].items() if isinstance(v, int | float)]
        out[c] = {}
        for k in keys:
            values = [r[c][k] for r in rounds]
            middle = statistics.median(values)
            ints = all(isinstance(v, int) for v in values)
            out[c][k] = int(middle) if ints else round(middle, 3)
    return out


def measure(quick: bool, litellm: str, latency: float, rounds: int = 3) -> dict[str, Any]:
    plan = [(1, 200), (32, 600)] if quick else [(1, 500), (32, 2000)]
    env = clean_env()
    text = "The quick brown fox jumps over the lazy dog. " * 4
    out: dict[str, Any] = {"upstream_latency_s": latency, "plan": plan}
    with (
        fake_upstream(latency=latency, text=text) as upstream,
        tempfile.TemporaryDirectory() as tmp,
    ):
        targets: dict[str, dict[str, Any]] = {}
        root = Path(tmp) / "project"
        (root / ".muxlang").mkdir(parents=True)
        (root / ".muxlang" / "config.toml").write_text(
            f'[backends.up]\ncommand = "{upstream.url}/v1"\nprotocol = "openai"\n'
            'model = "fake"\napi_key = "sk-bench"\nmax_retries = 0\n'
        )
        genv = {**env, "HOME": tmp, "XDG_CONFIG_HOME": tmp}
        argv = [PYTHON, "-m", "muxlang", "-C", str(root), "serve", "--port", "0"]
        with started(
            argv, r"listening on (http://127\.0\.0\.1:\d+)", env=genv, stream="stderr"
        ) as (
            proc,
            url,
        ):
            sides = {
                "direct": (
                    upstream.url + "/v1/chat/completions",
                    {"authorization": "Bearer x"},
                    None,
                ),
                "muxlang": (url + "/v1/chat/completions", {}, proc.pid),
            }
            taken: dict[str, list[dict[str, Any]]] = {"direct": [], "muxlang": []}
            for i in range(rounds):
                for name in ("direct", "muxlang") if i % 2 == 0 else ("muxlang", "direct"):
                    where, headers, pid = sides[name]
                    taken[name].append(_bench(where, headers, pid, plan))
            for name, figures in taken.items():
                targets[name] = _median_figures(figures)
            out["rounds"] = taken
            out["throughput_share_c32_rounds"] = [
                round(m["c32"]["rps"] / d["c32"]["rps"], 3)
                for d, m in zip(taken["direct"], taken["muxlang"], strict=True)
            ]
        if Path(litellm).exists():
            config = Path(tmp) / "litellm.yaml"
            config.write_text(
                "model_list:\n  - model_name: up\n    litellm_params:\n"
                f"      model: openai/fake\n      api_base: {upstream.url}/v1\n"
                "      api_key: sk-bench\n"
            )
            port = _free_port()
            lenv = {
                **env,
                "HOME": tmp,
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "LITELLM_MASTER_KEY": LITELLM_KEY,
                "LITELLM_TELEMETRY": "False",
            }
            argv = [litellm, "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
            with started(
                argv,
                r"Uvicorn running on (http://127\.0\.0\.1:\d+)",
                env=lenv,
                stream="stderr",
                timeout=180,
            ) as (proc, url):
                targets["litellm"] = _bench(
                    url + "/v1/chat/completions",
                    {"authorization": f"Bearer {LITELLM_KEY}"},
                    proc.pid,
                    plan,
                )
            out["litellm_version"] = _litellm_version(litellm)
        else:
            out["litellm"] = f"not measured: {litellm} does not exist"
    out["targets"] = targets
    direct = targets["direct"]
    added: dict[str, Any] = {}
    for name, figures in targets.items():
        if name == "direct":
            continue
        added[name] = {
            c: {
                "p50_ms": round(f["p50_ms"] - direct[c]["p50_ms"], 3),
                "p99_ms": round(f["p99_ms"] - direct[c]["p99_ms"], 3),
            }
            for c, f in figures.items()
        }
    out["added"] = added
    out["target"] = (
        "below 1 ms added at p50, at least half the direct throughput at 32 clients, "
        "and ahead of LiteLLM"
    )
    mux = targets["muxlang"]
    share = statistics.median(out["throughput_share_c32_rounds"])
    out["throughput_share_c32"] = round(share, 3)
    out["met_latency"] = added["muxlang"]["c1"]["p50_ms"] < 1.0
    out["met_throughput"] = share >= 0.5
    met = out["met_latency"] and out["met_throughput"]
    if "litellm" in targets:
        lite = targets["litellm"]
        met = (
            met
            and mux["c32"]["rps"] > lite["c32"]["rps"]
            and (mux["c1"]["p50_ms"] < lite["c1"]["p50_ms"])
        )
    out["met"] = met
    return out


def _litellm_version(litellm: str) -> str | None:
    pip = Path(litellm).with_name("pip")
    try:
        import subprocess

        done = subprocess.run(
            [str(pip), "show", "litellm"], capture_output=True, text=True, check=False, timeout=60
        )
    except OSError:
        return None
    for line in done.stdout.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--litellm", default=os.environ.get("LITELLM", DEFAULT_LITELLM))
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--rounds", type=int, default=None, help="turns of direct and muxlang")
    options = parser.parse_args()
    rounds = options.rounds or (2 if options.quick else 3)
    began = time.perf_counter()
    result = measure(options.quick, options.litellm, options.latency, rounds)
    result["rounds_taken"] = rounds
    result["bench_seconds"] = round(time.perf_counter() - began, 1)
    emit(result)


if __name__ == "__main__":
    main()
