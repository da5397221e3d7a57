"""`muxlang validate` as a user runs it: a whole cold process.

Anchor (the floor): ``python -c "import lark, networkx, pydantic, click"``, the
libraries a validator built on them could not avoid importing. Measured, taking
turns with the floor so load bursts hit both alike:

- one 50-step workflow (shell, query, for_each, if, apply; templates with
  filters and blocks in every step);
- 200 workflow files of 10 steps in one call.

- CPU per step of checking one workflow of 1,000 and of 20,000 steps (in
  process): the growth must stay within 1.25x (linear).

Run: ``.venv/bin/python bench/validate.py [--quick] [--scaling-only]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PYTHON, clean_env, emit, interleaved

FLOOR = [PYTHON, "-c", "import lark, networkx, pydantic, click"]
MUXLANG = str(Path(PYTHON).with_name("muxlang"))

CONFIG = """\
[backends.claude]
command = "claude"
args = ["-p"]

[backends.openai]
command = "https://api.openai.com/v1"
model = "gpt-4o"
api_key = "${OPENAI_API_KEY:-none}"

[roles.analyzer]
description = "Code analysis"
backends = ["claude", "openai"]
execution = "parallel"
"""


def workflow(name: str, steps: int) -> str:
    """A realistic workflow of ``steps`` steps, clean under ``validate``."""
    out = [
        f'name = "{name}"',
        'description = "Benchmark workflow"',
        "",
        "[args.base]",
        'description = "Revision to diff against"',
        'default = "HEAD~1"',
        "",
    ]
    for i in range(steps):
        prev = f"s{i - 1}"
        out.append("[[steps]]")
        out.append(f'name = "s{i}"')
        kind = i % 5
        if i == 0:
            out.append('type = "shell"')
            out.append('run = "git diff {{ args.base | shell_escape }}"')
        elif kind == 1:
            out.append('type = "query"')
            out.append('role = "analyzer"')
            out.append(
                f'prompt = """Review step {i}:\n{{{{ steps.{prev}.output | trim }}}}\n'
                f"{{% if steps.{prev}.status == 'success' %}}It passed.{{% else %}}"
                f'It failed: {{{{ steps.{prev}.error | default("?") }}}}{{% endif %}}\n"""'
            )
        elif kind == 2:
            out.append('type = "shell"')
            out.append(f'for_each = "steps.{prev}.output | lines | nonblank"')
            out.append("max_parallel = 4")
            out.append('run = "wc -c {{ item | shell_escape }} # {{ loop.index }}"')
        elif kind == 3:
            out.append('type = "query"')
            out.append('backend = "claude"')
            out.append(f"if = \"steps.{prev}.status == 'success' and steps.{prev}.output\"")
            out.append(
                f'prompt = "Summarise: {{{{ steps.{prev}.output | truncate(2000) }}}} '
                f'({{{{ steps.{prev}.results | length }}}} results)"'
            )
        else:
            out.append('type = "shell"')
            out.append('run = "printf %s \\"$PREV\\" | wc -l"')
            out.append(f'env = {{ PREV = "{{{{ steps.{prev}.output }}}}" }}')
            out.append('timeout = "2m"')
        out.append("")
    return "\n".join(out)


def project(root: Path, files: int, steps: int) -> list[str]:
    """A project with ``files`` workflows of ``steps`` steps; their paths."""
    (root / ".muxlang" / "workflows").mkdir(parents=True)
    (root / ".muxlang" / "config.toml").write_text(CONFIG)
    paths = []
    for n in range(files):
        path = root / ".muxlang" / "workflows" / f"w{n}.toml"
        path.write_text(workflow(f"w{n}", steps))
        paths.append(str(path))
    return paths


def measure(quick: bool) -> dict[str, Any]:
    runs = 5 if quick else 15
    env = clean_env(HOME=tempfile.gettempdir() + "/muxlang-bench-home")
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "one"
        many = Path(tmp) / "many"
        [single] = project(one, 1, 50)
        paths = project(many, 200, 10)
        commands = {
            "floor": FLOOR,
            "validate_50_steps": [MUXLANG, "-C", str(one), "validate", single],
            "validate_200_files": [MUXLANG, "-C", str(many), "validate", *paths],
        }
        times = interleaved(commands, runs, cwd=one, env=env)
    floor = times["floor"]
    for name, timing in times.items():
        out[name] = timing.to_json()
        if name != "floor":
            out[name]["ratio_best_wall"] = round(timing.best / floor.best, 2)
            out[name]["ratio_median_wall"] = round(timing.median / floor.median, 2)
            assert timing.cpu_best is not None
            assert floor.cpu_best is not None
            out[name]["ratio_best_cpu"] = round(timing.cpu_best / floor.cpu_best, 2)
    out["validate_200_files"]["ms_per_file_over_floor"] = round(
        (times["validate_200_files"].best - floor.best) / 200 * 1000, 2
    )
    out["scaling"] = scaling(quick)
    out["target"] = "validate 50 steps <= 1.25x the floor"
    out["met"] = out["validate_50_steps"]["ratio_best_wall"] <= 1.25
    # CPU ratio too: on a loaded machine wall time waits for a core, CPU does not
    out["met_cpu"] = out["validate_50_steps"]["ratio_best_cpu"] <= 1.25
    return out


#: sizes of the linearity measure, and its target: CPU per step at the larger
#: size at most this many times that at the smaller one
SCALING_SIZES = (1000, 20000)
SCALING_QUICK = (1000, 5000)
SCALING_TARGET = 1.25


def _forget_templates() -> None:
    """Empty the template parser's in-process caches, so that every measured check
    parses its templates as a ``validate`` process does (the 8,192-tree cache would
    hold all of 1,000 steps' templates and none of 20,000's)."""
    from muxlang.template import parser

    for cached in (parser._tree, parser._parse_template_cached, parser._parse_expression_cached):
        cached.cache_clear()


def scaling(quick: bool) -> dict[str, Any]:
    """CPU per step of loading and checking one workflow (in this process, warm
    imports and grammars, template caches emptied) at 1,000 and 20,000 steps: the
    ratio shows whether per-step work grows with the workflow."""
    import time

    from muxlang.compiler.project import validate_workflow

    out: dict[str, Any] = {}
    sizes = SCALING_QUICK if quick else SCALING_SIZES
    with tempfile.TemporaryDirectory() as tmp:
        [path] = project(Path(tmp) / "warm", 1, 20)
        validate_workflow(Path(path), Path(tmp) / "warm")  # imports, grammars, config
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            [path] = project(Path(tmp), 1, n)
            best = float("inf")
            for _ in range(2):
                _forget_templates()
                start = time.process_time()
                found = validate_workflow(Path(path), Path(tmp))
                best = min(best, time.process_time() - start)
            assert not [d for d in found if d.is_error], found
        out[f"cpu_us_per_step_{n}"] = round(best / n * 1e6, 1)
    small, large = (out[f"cpu_us_per_step_{n}"] for n in sizes)
    out["growth"] = round(large / small, 2)
    out["target_growth"] = SCALING_TARGET
    out["met"] = out["growth"] <= SCALING_TARGET
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--scaling-only", action="store_true", help="only the linearity measure")
    options = parser.parse_args()
    emit({"scaling": scaling(options.quick)} if options.scaling_only else measure(options.quick))


if __name__ == "__main__":
    main()
