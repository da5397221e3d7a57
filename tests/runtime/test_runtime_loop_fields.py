"""`validate` and `run` agree on every `loop` field (issue 15): each field
`validate` accepts renders in `run`, and an unknown one is MUX023 with a hint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import invoke, write

from muxlang.template.loop import LOOP_FIELDS


def test_every_loop_field_validates_and_runs_in_for_each(tmp_path: Path) -> None:
    shown = " ".join(f"{name}={{{{ loop.{name} }}}}" for name in LOOP_FIELDS)
    write(
        tmp_path,
        f"""
        [[steps]]
        name = "each"
        type = "shell"
        for_each = "['a', 'b', 'c']"
        max_parallel = 1
        run = "echo {shown}"
        """,
    )
    checked = invoke(tmp_path, "validate", "wf.toml")
    assert checked.exit_code == 0, checked.output
    ran = invoke(tmp_path, "run", "wf.toml", "--output", "json")
    assert ran.exit_code == 0, ran.output
    outputs = [r["output"] for r in json.loads(ran.stdout)["steps"]["each"]["results"]]
    assert outputs[0] == ("index=1 index0=0 length=3 first=true last=false revindex=3 revindex0=2")
    assert outputs[2] == ("index=3 index0=2 length=3 first=false last=true revindex=1 revindex0=0")


def test_every_loop_field_renders_in_a_template_for(tmp_path: Path) -> None:
    shown = " ".join(f"{{{{ loop.{name} }}}}" for name in LOOP_FIELDS)
    write(
        tmp_path,
        f"""
        [[steps]]
        name = "t"
        type = "shell"
        run = "echo {{% for x in ['p', 'q'] %}}[{shown}]{{% endfor %}}"
        """,
    )
    assert invoke(tmp_path, "validate", "wf.toml").exit_code == 0
    ran = invoke(tmp_path, "run", "wf.toml")
    assert ran.exit_code == 0, ran.output
    assert ran.stdout.strip() == "[1 0 2 true false 2 1][2 1 2 false true 1 0]"


@pytest.mark.parametrize(
    ("expression", "column", "hint"),
    [
        ("loop.bogus", 32, "fields: `index`"),
        ("loop.idnex", 32, "did you mean `index`?"),
        ("loop['lenght']", 32, "did you mean `length`?"),
    ],
)
def test_unknown_loop_field_is_mux023_at_its_position_and_nothing_runs(
    tmp_path: Path, expression: str, column: int, hint: str
) -> None:
    write(
        tmp_path,
        f"""\
        [[steps]]
        name = "each"
        type = "shell"
        for_each = "['a']"
        run = "touch ran; echo {{{{ {expression} }}}}"
        """,
    )
    checked = invoke(tmp_path, "validate", "--format", "json", "wf.toml")
    assert checked.exit_code == 1
    (found,) = json.loads(checked.stdout)
    assert found["code"] == "MUX023"
    assert (found["line"], found["column"]) == (5, column)
    assert hint in found["hint"]
    ran = invoke(tmp_path, "run", "wf.toml")
    assert ran.exit_code == 2
    assert not (tmp_path / "ran").exists()


def test_unknown_loop_field_in_a_template_for_is_mux023(tmp_path: Path) -> None:
    write(
        tmp_path,
        """\
        [[steps]]
        name = "t"
        type = "shell"
        run = "echo {% for x in [1] %}{{ loop.revindx }}{% endfor %}"
        """,
    )
    checked = invoke(tmp_path, "validate", "wf.toml")
    assert checked.exit_code == 1
    assert "wf.toml:4:" in checked.output
    assert "error[MUX023]: `loop` has no field `revindx`" in checked.output
    assert "did you mean `revindex`?" in checked.output
