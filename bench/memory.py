"""Peak memory (RSS) of `muxlang run`, whole process.

- a for_each of 10,000 items, each a query to the fake OpenAI upstream (its own
  process, no latency), ``max_parallel`` 100; anchor: the same workflow over 10
  items, so the difference is what the items cost;
- a shell step printing 50 MB (``head -c``); anchor: the same step printing 1
  byte, so the difference is what holding (and printing) that output costs,
  against the 50 MB it is.

Each run is a fresh ``muxlang run`` process; its stdout goes to /dev/null.

Run: ``.venv/bin/python bench/memory.py [--quick]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PYTHON, clean_env, emit, fake_upstream, peak_rss_mb

MUXLANG = str(Path(PYTHON).with_name("muxlang"))
MB = 1024 * 1024


def _for_each(url: str, items: int) -> str:
    return f"""\
name = "many"
max_concurrent = 200

[[steps]]
name = "list"
type = "shell"
run = "seq {items}"

[[steps]]
name = "ask"
type = "query"
backend = "up"
for_each = "steps.list.output | lines"
max_parallel = 100
prompt = "Item {{{{ item }}}}: answer briefly."

[[steps]]
name = "count"
type = "shell"
run = "echo {{{{ steps.ask.results | length }}}}"

[backends.up]
command = "{url}/v1"
protocol = "openai"
model = "fake"
api_key = "sk-bench"
max_retries = 0
"""


def _printer(size: int) -> str:
    return f"""\
name = "big"

[[steps]]
name = "print"
type = "shell"
run = "head -c {size} /dev/zero | tr '\\\\0' x"
"""


def _run(root: Path, name: str, text: str) -> tuple[float, float]:
    path = root / f"{name}.toml"
    path.write_text(text)
    env = clean_env(HOME=str(root))
    rss, seconds, _ = peak_rss_mb([MUXLANG, "-C", str(root), "run", str(path)], cwd=root, env=env)
    return rss, seconds


def measure(quick: bool) -> dict[str, Any]:
    items = 2000 if quick else 10_000
    size = 10 * MB if quick else 50 * MB
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / ".git").mkdir()
        with fake_upstream(latency=0.0, text="a short answer") as upstream:
            base, _ = _run(root, "few", _for_each(upstream.url, 10))
            many, seconds = _run(root, "many", _for_each(upstream.url, items))
        out["for_each"] = {
            "items": items,
            "peak_rss_mb": round(many, 1),
            "anchor_10_items_mb": round(base, 1),
            "kb_per_item": round((many - base) * 1024 / items, 2),
            "wall_s": round(seconds, 2),
        }
        small, _ = _run(root, "small", _printer(1))
        big, seconds = _run(root, "big", _printer(size))
        out["big_output"] = {
            "output_mb": size / MB,
            "peak_rss_mb": round(big, 1),
            "anchor_1_byte_mb": round(small, 1),
            "extra_mb": round(big - small, 1),
            "copies_of_output": round((big - small) / (size / MB), 2),
            "wall_s": round(seconds, 2),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    emit(measure(parser.parse_args().quick))


if __name__ == "__main__":
    main()
