"""Template rendering against Jinja2 rendering the equivalent template.

Both engines parse each template once, then render it N times (default
100,000) through their public call: ``muxlang.template.render(tpl, scope)`` and
``jinja2.Template.render(scope)``. Before timing, the two outputs are checked to
be identical, so both do the same work. Runs alternate between the engines and
the best of R repeats is kept.

Run: ``.venv/bin/python bench/template.py [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jinja2
from common import emit

from muxlang.template import parse_template, render

#: name -> (template source, valid for both engines)
TEMPLATES = {
    "prompt": (
        "Review these changes to {{ workflow.name }} against {{ args.base }}:\n"
        "{{ steps.diff.output | trim }}\n"
        "{% if steps.tests.status == 'success' %}The tests pass.{% else %}"
        "The tests failed: {{ steps.tests.error | default('unknown') }}{% endif %}\n"
        "Focus on {{ args.focus | upper }}."
    ),
    "loop": (
        "Files:\n{% for f in files %}{{ loop.index }}. {{ f | upper }}"
        "{% if not loop.last %}, {% endif %}{% endfor %}\n"
    ),
    "text": "Explain this error in one paragraph: {{ error }}",
}

SCOPE: dict[str, Any] = {
    "workflow": {"name": "review"},
    "args": {"base": "HEAD~1", "focus": "correctness"},
    "steps": {
        "diff": {
            "output": "  diff --git a/x b/x\n+added line\n-removed line\n  ",
            "status": "success",
        },
        "tests": {"output": "", "status": "failed", "error": "exit status 1"},
    },
    "files": [f"src/module_{i}.py" for i in range(10)],
    "error": "TypeError: unsupported operand type(s) for +: 'int' and 'str'",
}


def _loop(fn: Any, n: int) -> float:
    gc.collect()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - start


def measure(quick: bool) -> dict[str, Any]:
    n = 20_000 if quick else 100_000
    repeats = 3 if quick else 5
    env = jinja2.Environment(autoescape=False, keep_trailing_newline=True)
    out: dict[str, Any] = {"renders": n, "repeats": repeats}
    ratios = []
    for name, source in TEMPLATES.items():
        ours = parse_template(source)
        theirs = env.from_string(source)
        expected = theirs.render(SCOPE)
        got = render(ours, SCOPE)
        if got != expected:
            raise SystemExit(f"{name}: outputs differ:\nmuxlang {got!r}\njinja2  {expected!r}")
        best_ours = best_theirs = float("inf")
        for _ in range(repeats):
            best_ours = min(best_ours, _loop(lambda: render(ours, SCOPE), n))  # noqa: B023
            best_theirs = min(best_theirs, _loop(lambda: theirs.render(SCOPE), n))  # noqa: B023
        ratio = best_ours / best_theirs
        ratios.append(ratio)
        out[name] = {
            "muxlang_us": round(best_ours / n * 1e6, 2),
            "jinja2_us": round(best_theirs / n * 1e6, 2),
            "ratio": round(ratio, 2),
        }
    out["target"] = "muxlang render time <= Jinja2's for every template"
    out["met"] = all(r <= 1.0 for r in ratios)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    emit(measure(parser.parse_args().quick))


if __name__ == "__main__":
    main()
