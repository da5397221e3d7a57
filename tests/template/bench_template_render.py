"""Benchmark: parse once, render 100,000 times, muxlang against Jinja2.

Not collected by pytest (the name does not start with ``test_``). Run it with
``.venv/bin/python tests/template/bench_template_render.py [N]``.
"""

from __future__ import annotations

import shlex
import sys
import time
from typing import Any

import jinja2

from muxlang.template import parse_template, render

CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "insert": ("Hello {{ args.who }}!", {"args": {"who": "world"}}),
    "prompt": (
        "Review these changes:\n{{ steps.diff.output }}\nBase: {{ args.base }} team={{ team }}",
        {"steps": {"diff": {"output": "diff text " * 20}}, "args": {"base": "main"}, "team": "r"},
    ),
    "filters": (
        "{{ steps.list.output | lines | join(', ') | upper }} {{ args.file | shell_escape }}",
        {"steps": {"list": {"output": "a\nb\nc\n"}}, "args": {"file": "it's"}},
    ),
    "loop": (
        "{% for f in files %}{{ loop.index }}. {{ f }}{% if not loop.last %}\n{% endif %}"
        "{% endfor %}",
        {"files": [f"file{i}.py" for i in range(10)]},
    ),
    "condition": (
        "{% if team == 'rust' and steps.a.status == 'success' %}yes {{ steps.a.output }}"
        "{% else %}no{% endif %}",
        {"team": "rust", "steps": {"a": {"status": "success", "output": "o"}}},
    ),
}


def main(n: int) -> None:
    env = jinja2.Environment(keep_trailing_newline=True)
    env.filters["shell_escape"] = shlex.quote
    env.filters["lines"] = str.splitlines
    for name, (source, names) in CASES.items():
        theirs = env.from_string(source)
        ours = parse_template(source)
        assert theirs.render(names) == render(ours, names), name
        start = time.perf_counter()
        for _ in range(n):
            theirs.render(names)
        jinja_s = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(n):
            render(ours, names)
        ours_s = time.perf_counter() - start
        print(
            f"{name:10} jinja2 {jinja_s:6.3f}s  muxlang {ours_s:6.3f}s  "
            f"muxlang/jinja2 = {ours_s / jinja_s:.2f}"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
