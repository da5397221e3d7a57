"""``arg_reads``: which args a workflow reads unguarded (checked before a run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from muxlang.compiler.arg_reads import arg_reads
from muxlang.compiler.loader import load_workflow


def reads(tmp_path: Path, run: str, if_: str | None = None) -> list[str]:
    condition = f"if = {if_!r}\n" if if_ else ""
    path = tmp_path / "w.toml"
    path.write_text(f'[[steps]]\nname = "s"\ntype = "shell"\n{condition}run = {run!r}\n')
    workflow, problems = load_workflow(path)
    assert workflow is not None, problems
    return list(arg_reads(workflow))


@pytest.mark.parametrize(
    ("run", "if_", "expected"),
    [
        ("echo {{ args.a }} {{ args['b'] }}", None, ["a", "b"]),
        ("echo {{ args.a | default('x') }}", None, []),
        ("echo {{ args.a | default(args.b) }}", None, ["b"]),
        ("echo {% if args.a is defined %}{{ args.a }}{% endif %}", None, []),
        ("echo {% if args.a is defined %}{% else %}{{ args.a }}{% endif %}", None, ["a"]),
        ("echo {% if args.a is not defined %}{{ args.a }}{% endif %}", None, ["a"]),
        ("echo {{ args.a }}", "args.a is defined", []),
        ("echo {{ args.b }}", "args.a is defined and args.a == 'x'", ["b"]),
        ("echo {{ args.a }}", "args.a is defined or true", ["a"]),
        ("echo {% for x in args.list %}{{ x }}{% endfor %}", None, ["list"]),
        ("echo {{ team }} {{ env.HOME | default('') }}", None, []),
    ],
)
def test_guarded_reads_are_not_required(
    tmp_path: Path, run: str, if_: str | None, expected: list[str]
) -> None:
    assert reads(tmp_path, run, if_) == expected
