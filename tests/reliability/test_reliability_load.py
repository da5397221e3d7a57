"""Load: a 10,000-item for_each and a 1,000-step workflow with flat memory, and the
gateway holding 200 concurrent streaming clients.

Memory is measured in a subprocess (tests/reliability/load_driver.py) as RSS at
20 %, 50 % and 100 % of the calls; the bounds are generous on purpose (they
catch a leak or a quadratic copy, not a few kilobytes per record).

The gateway test runs 200 clients for a short, bounded time by default; with
``MUXLANG_SOAK=1`` it holds them for 30 s (the figure of the issue).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import trio
from rel_support import (
    gateway_project,
    muxlang_argv,
    run_muxlang,
    start_gateway,
    stop_gateway,
    subprocess_env,
)

from tests.fakes.llm_server import FakeLLMServer, RecordedRequest, Reply

DRIVER = Path(__file__).resolve().parent / "load_driver.py"
SOAK = os.environ.get("MUXLANG_SOAK") == "1"


def drive(kind: str, count: int, directory: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, str(DRIVER), kind, str(count), str(directory)],
        capture_output=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    report: dict[str, object] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return report


@pytest.mark.slow
def test_ten_thousand_item_for_each_with_flat_memory(tmp_path: Path) -> None:
    report = drive("foreach", 10_000, tmp_path)
    assert report["success"] is True
    assert report["calls"] == 10_001
    assert report["final"] == "ok 10000"
    rss = report["rss"]
    assert isinstance(rss, dict)
    # 8,000 items between the 20 % mark and the end: under 8 KiB each on average
    assert rss["end"] - rss["p20"] < 64 * 1024, rss
    assert rss["end"] < 400 * 1024, rss


@pytest.mark.slow
def test_thousand_step_workflow_with_flat_memory(tmp_path: Path) -> None:
    report = drive("steps", 1_000, tmp_path)
    assert report["success"] is True
    assert report["calls"] == 1_000
    assert report["final"] == "ok step 999 after 20"
    rss = report["rss"]
    assert isinstance(rss, dict)
    assert rss["end"] - rss["p20"] < 64 * 1024, rss


# --------------------------------------------------------------------------- gateway


def expected_text(prompt: str) -> str:
    return f"answer to {prompt}: " + " ".join(f"w{i}" for i in range(12))


def responder(request: RecordedRequest) -> Reply:
    return Reply(text=expected_text(request.prompt), chunk_delay=0.01)


async def one_openai_stream(client: httpx.AsyncClient, url: str, model: str, prompt: str) -> str:
    payload = {"model": model, "stream": True, "messages": [{"role": "user", "content": prompt}]}
    text: list[str] = []
    done = False
    async with client.stream("POST", url + "/v1/chat/completions", json=payload) as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                done = True
                continue
            chunk = json.loads(data)
            for choice in chunk.get("choices") or []:
                text.append((choice.get("delta") or {}).get("content") or "")
    assert done, f"no [DONE] for {prompt}"
    return "".join(text)


async def one_anthropic_stream(client: httpx.AsyncClient, url: str, model: str, prompt: str) -> str:
    payload = {
        "model": model,
        "stream": True,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": prompt}],
    }
    text: list[str] = []
    stopped = False
    async with client.stream("POST", url + "/v1/messages", json=payload) as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if event.get("type") == "content_block_delta":
                text.append(event["delta"].get("text", ""))
            elif event.get("type") == "message_stop":
                stopped = True
    assert stopped, f"no message_stop for {prompt}"
    return "".join(text)


@pytest.mark.slow
async def test_gateway_holds_two_hundred_streaming_clients(tmp_path: Path) -> None:
    clients = 200
    hold = 30.0 if SOAK else 4.0
    with FakeLLMServer(default=responder, record=False) as upstream:
        root, home = gateway_project(
            tmp_path,
            f"""
[defaults]
max_concurrent = 256

[backends.up]
command = "{upstream.url}/v1"
model = "m"
max_retries = 0
""",
        )
        proc, url = await trio.to_thread.run_sync(lambda: start_gateway(root, subprocess_env(home)))
        completed = 0
        failures: list[str] = []
        try:
            limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
            timeout = httpx.Timeout(60.0)
            async with httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False) as client:
                deadline = trio.current_time() + hold

                async def worker(i: int) -> None:
                    nonlocal completed
                    n = 0
                    while True:
                        prompt = f"client {i} request {n}"
                        one = one_anthropic_stream if i % 4 == 0 else one_openai_stream
                        try:
                            got = await one(client, url, "up", prompt)
                        except (httpx.HTTPError, AssertionError) as exc:
                            failures.append(f"{prompt}: {type(exc).__name__}: {exc}")
                            return
                        if got != expected_text(prompt):
                            failures.append(f"{prompt}: got {got!r}")
                            return
                        completed += 1
                        n += 1
                        if trio.current_time() >= deadline:
                            return

                with trio.fail_after(hold + 120):
                    async with trio.open_nursery() as nursery:
                        for i in range(clients):
                            nursery.start_soon(worker, i)
        finally:
            _out, err = await trio.to_thread.run_sync(lambda: stop_gateway(proc))
        assert failures == [], failures[:5]
        assert completed >= clients
        assert b"Traceback" not in err, err.decode()[-2000:]
        print(f"gateway: {clients} clients, {completed} streams in {hold:g} s")


def test_soak_switch_is_documented() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
    assert "MUXLANG_SOAK" in doc.read_text()


def test_run_json_of_a_big_for_each_is_one_object(tmp_path: Path) -> None:
    """--output json of a 2,000-item shell-free for_each: one parseable object."""
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / ".git").mkdir()
    wf = tmp_path / "big.toml"
    wf.write_text(
        """
[[steps]]
name = "nums"
type = "shell"
run = "seq 1 2000"

[[steps]]
name = "pick"
type = "shell"
for_each = "steps.nums.output | lines"
if = "item == '1'"
max_parallel = 8
run = "echo one"
"""
    )
    started = time.monotonic()
    done = run_muxlang(
        tmp_path, "run", str(wf), "--output", "json", env=subprocess_env(home), timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    report = json.loads(done.stdout)
    results = report["steps"]["pick"]["results"]
    assert len(results) == 2000
    assert results[0]["status"] == "success"
    assert {r["status"] for r in results[1:]} == {"skipped"}
    assert time.monotonic() - started < 100


@pytest.mark.slow
def test_ten_thousand_http_queries_through_muxlang_run(tmp_path: Path) -> None:
    """The real path: `muxlang run` asks the fake upstream 10,000 times over HTTP;
    peak RSS (sampled from /proc) stays bounded and every result is reported."""
    from rel_support import rss_kib

    with FakeLLMServer(record=False) as upstream:
        (tmp_path / ".git").mkdir()
        home = tmp_path / "home"
        home.mkdir()
        wf = tmp_path / "many.toml"
        wf.write_text(
            f"""
[backends.b]
command = "{upstream.url}/v1"

[[steps]]
name = "nums"
type = "shell"
run = "seq 1 10000"

[[steps]]
name = "each"
type = "query"
backend = "b"
for_each = "steps.nums.output | lines"
max_parallel = 32
prompt = "item {{{{ item }}}}"
"""
        )
        out_path = tmp_path / "out.json"
        with out_path.open("wb") as out, (tmp_path / "err.txt").open("wb") as err:
            proc = subprocess.Popen(
                muxlang_argv("-C", str(tmp_path), "run", str(wf), "--output", "json"),
                env=subprocess_env(home),
                stdout=out,
                stderr=err,
            )
            peak = 0
            deadline = time.monotonic() + 180
            while proc.poll() is None and time.monotonic() < deadline:
                with contextlib.suppress(OSError):
                    peak = max(peak, rss_kib(proc.pid))
                time.sleep(0.05)
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        assert proc.returncode == 0, (tmp_path / "err.txt").read_text()[-2000:]
        report = json.loads(out_path.read_text())
        results = report["steps"]["each"]["results"]
        assert len(results) == 10_000
        assert {r["status"] for r in results} == {"success"}
        assert results[9_999]["output"] == "item 10000"
        assert 0 < peak < 300 * 1024, peak
