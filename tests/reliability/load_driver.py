"""Run a big generated workflow in this process and report memory as it goes.

    python load_driver.py foreach 10000 DIR
    python load_driver.py steps 1000 DIR

Prints one JSON object: success, duration, and RSS (KiB) sampled at 20 %, 50 %
and 100 % of the calls, so a test can compare growth in the second half with
the first. Queries go to an in-process scripted service (no network, no
processes): what is measured is the compiler, scheduler and records.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rel_support import plan_from_toml, rss_kib

from muxlang.llm import ChatRequest
from muxlang.runtime import execute
from tests.fakes.scripted import ScriptedQueryService


def foreach_body(n: int) -> str:
    return f"""
[backends.b]
command = "b"

[[steps]]
name = "items"
type = "shell"
run = "seq 1 {n}"

[[steps]]
name = "each"
type = "query"
backend = "b"
for_each = "steps.items.output | lines"
max_parallel = 16
prompt = "item {{{{ item }}}} of {{{{ loop.length }}}}"

[[steps]]
name = "count"
type = "query"
backend = "b"
prompt = "{{{{ steps.each.results | length }}}}"
"""


def steps_body(n: int) -> str:
    parts = ['[backends.b]\ncommand = "b"\n']
    for i in range(n):
        ref = f" after {{{{ steps.s{i - 1}.output | length }}}}" if i else ""
        parts.append(
            f'[[steps]]\nname = "s{i}"\ntype = "query"\nbackend = "b"\nprompt = "step {i}{ref}"\n'
        )
    return "\n".join(parts)


def main() -> None:
    kind, count, directory = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    body = foreach_body(count) if kind == "foreach" else steps_body(count)
    started = time.monotonic()
    plan = plan_from_toml(directory, body)
    compiled = time.monotonic() - started
    total = count + 1
    marks = {max(1, total // 5): "p20", max(1, total // 2): "p50"}
    samples: dict[str, int] = {"start": rss_kib_self()}
    calls = 0

    def answer(request: ChatRequest) -> str:
        nonlocal calls
        calls += 1
        if calls in marks:
            gc.collect()
            samples[marks[calls]] = rss_kib_self()
        return "ok " + request.prompt_text[:40]

    service = ScriptedQueryService(default=answer)
    result: Any = trio.run(lambda: execute(plan, args={}, query=service))
    gc.collect()
    samples["end"] = rss_kib_self()
    print(
        json.dumps(
            {
                "success": result.success,
                "calls": calls,
                "compile_s": round(compiled, 2),
                "total_s": round(time.monotonic() - started, 2),
                "rss": samples,
                "final": result.output[:80],
            }
        )
    )


def rss_kib_self() -> int:
    import os

    return rss_kib(os.getpid())


if __name__ == "__main__":
    main()
