"""What quoting every insertion for its shell context costs (SPEC section 11).

A ``run`` template is rendered by ``render_shell`` (a small sh lexer over the
literal text, each value encoded for its place) instead of the plain
``render``. This measures, for a typical command with four insertions in four
contexts, the time per render of each, and sets it against the anchor every
shell step pays anyway: starting ``sh -c true``. It also renders a value of
10 KB and of 1 MB into a here-document and an unquoted word, to show the cost
grows linearly with the value (time per KB).

Run: ``.venv/bin/python bench/shell_quoting.py [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import emit

from muxlang.template import parse_template, render
from muxlang.template.shell import render_shell

COMMAND = (
    "git diff {{ args.base }} -- \"{{ args.path }}\" | grep -F '{{ args.word }}' # {{ args.base }}"
)
SCOPE: dict[str, Any] = {"args": {"base": "HEAD~1", "path": "src/it's here", "word": "$(x)"}}
BIG = "cat <<EOF\n{{ x }}\nEOF\nprintf '%s' {{ x }}"
LINE = "a line with $(x), `y`, 'single' and \"double\" quotes\n"


def _best(fn: Any, n: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - start) / n)
    return best


def measure(quick: bool) -> dict[str, Any]:
    n = 2_000 if quick else 20_000
    repeats = 3 if quick else 5
    template = parse_template(COMMAND)
    plain = _best(lambda: render(template, SCOPE), n, repeats)
    quoted = _best(lambda: render_shell(template, SCOPE), n, repeats)
    spawn = _best(lambda: subprocess.run(["sh", "-c", "true"], check=True), 20, repeats)
    big = parse_template(BIG)
    per_kb = {}
    for size_kb in (10, 1000):
        value = (LINE * (size_kb * 1024 // len(LINE) + 1))[: size_kb * 1024]
        seconds = _best(lambda v=value: render_shell(big, {"x": v}), 3, repeats)
        per_kb[f"{size_kb}_kb_us_per_kb"] = round(seconds / size_kb * 1e6, 2)
    return {
        "renders": n,
        "plain_render_us": round(plain * 1e6, 1),
        "shell_render_us": round(quoted * 1e6, 1),
        "sh_c_true_us": round(spawn * 1e6, 1),
        "shell_render_share_of_spawn": round(quoted / spawn, 4),
        **per_kb,
        "target": "quoting costs under 5% of starting the shell it feeds, and is linear",
        "met": quoted / spawn < 0.05,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    emit(measure(parser.parse_args().quick))


if __name__ == "__main__":
    main()
