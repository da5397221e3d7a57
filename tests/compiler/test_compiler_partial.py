"""`validate` reports schema errors and the compiler's checks of the rest in one run:
the loader builds a partial workflow from everything valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from muxlang.compiler.loader import load_workflow, load_workflow_partial
from muxlang.compiler.project import validate_workflow
from muxlang.workflow import QueryStep, ShellStep

TEXT = """\
[[steps]]
name = "diff"
type = "shell"
run = "git diff"
timeout = "2x"
cwd = 5
env = { A = "{{ steps.diff.output }}", B = 2 }

[[steps]]
name = "ask"
type = "query"
backend = "claude"
prompt = "{{ steps.diff.output }}"
depends_on = ["diff", "bad name"]

[[steps]]
name = "gone"
type = "nope"
run = "x"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wf.toml"
    path.write_text(text)
    return path


def test_load_workflow_still_gives_none_on_errors(tmp_path: Path) -> None:
    workflow, found = load_workflow(write(tmp_path, TEXT))
    assert workflow is None
    assert {d.code for d in found} == {"MUX003", "MUX005", "MUX006"}


def test_partial_workflow_keeps_every_valid_part(tmp_path: Path) -> None:
    workflow, found, unbuilt = load_workflow_partial(write(tmp_path, TEXT))

    assert workflow is not None
    assert [s.name for s in workflow.steps] == ["diff", "ask"]
    diff, ask = workflow.steps
    assert isinstance(diff, ShellStep)
    assert isinstance(ask, QueryStep)
    assert diff.run.source == "git diff"
    assert diff.timeout is None
    assert diff.cwd is None
    assert [name for name, _ in diff.env] == ["A"]
    assert [ref.name for ref in ask.depends_on] == ["diff"]
    assert ask.backend is not None
    assert ask.backend.name == "claude"
    assert unbuilt == frozenset({"gone"})
    # wrong types; the `type` word outside its set; a step name that is not a name
    assert sorted(d.code for d in found) == [*["MUX003"] * 3, "MUX005", "MUX006"]


def test_validate_reports_schema_and_semantic_problems_together(tmp_path: Path) -> None:
    text = TEXT + (
        '\n[[steps]]\nname = "use"\ntype = "shell"\n'
        'run = "echo {{ steps.gone.output }} {{ steps.nope.output | shell_escape }}"\n'
    )
    found = validate_workflow(write(tmp_path, text), tmp_path, environ={"HOME": str(tmp_path)})

    codes = sorted(d.code for d in found)
    assert codes.count("MUX003") == 3
    assert codes.count("MUX005") == codes.count("MUX006") == 1
    unknown = [d.message for d in found if d.code == "MUX021"]
    assert unknown == ["unknown step `nope` in `run`"]  # `gone` stays known


def test_a_broken_local_role_is_not_also_reported_missing(tmp_path: Path) -> None:
    text = """\
[roles.analyzer]
execution = "parallel"

[roles.mine]
backends = "claude"

[[steps]]
name = "ask"
type = "query"
role = "mine"
prompt = "hi"
timeout = "soon"
"""
    found = validate_workflow(write(tmp_path, text), tmp_path, environ={"HOME": str(tmp_path)})

    assert sorted(d.code for d in found) == ["MUX003", "MUX003"]


def test_run_reports_every_problem_at_once_and_runs_nothing(tmp_path: Path) -> None:
    import subprocess
    import sys

    marker = tmp_path / "ran"
    text = f"""\
[[steps]]
name = "first"
type = "shell"
run = "touch {marker}"
timeout = "2x"

[[steps]]
name = "second"
type = "shell"
run = "echo {{{{ steps.frist.output | shell_escape }}}}"
"""
    done = subprocess.run(
        [sys.executable, "-m", "muxlang", "run", str(write(tmp_path, text))],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
    )

    assert done.returncode == 2
    assert "error[MUX003]" in done.stderr
    assert "error[MUX021]: unknown step `frist`" in done.stderr
    assert done.stderr.index("MUX003") < done.stderr.index("MUX021")  # in file order
    assert not marker.exists()


@pytest.mark.parametrize("kind", ['["shell"]', "{ a = 1 }", "1", '"nope"'])
def test_a_step_whose_type_is_not_a_type_name_is_left_out(tmp_path: Path, kind: str) -> None:
    text = f'[[steps]]\nname = "odd"\ntype = {kind}\nrun = "x"\n\n' + (
        '[[steps]]\nname = "next"\ntype = "shell"\nrun = "echo {{ steps.odd.status }}"\n'
    )
    workflow, found, unbuilt = load_workflow_partial(write(tmp_path, text))

    assert workflow is not None
    assert [s.name for s in workflow.steps] == ["next"]
    assert unbuilt == frozenset({"odd"})
    # a word outside the set of types is MUX005; any other value the wrong type
    assert [d.code for d in found] == ["MUX005" if kind == '"nope"' else "MUX003"]


@pytest.mark.parametrize("for_each", ['"steps.list.output | "', "5"])
def test_a_broken_for_each_still_binds_item(tmp_path: Path, for_each: str) -> None:
    text = f"""\
[[steps]]
name = "list"
type = "shell"
run = "ls"

[[steps]]
name = "count"
type = "shell"
for_each = {for_each}
run = "wc -l {{{{ item | shell_escape }}}}"
"""
    found = validate_workflow(write(tmp_path, text), tmp_path, environ={"HOME": str(tmp_path)})

    assert len(found) == 1
    assert found[0].code in ("MUX003", "MUX010")  # not also MUX024 for `item`


def test_a_broken_arg_is_still_declared(tmp_path: Path) -> None:
    text = """\
[args]
base = 1
other = { default = [1] }

[[steps]]
name = "a"
type = "shell"
run = "echo {{ args.base }} {{ args.other }} {{ args.nope }}"
"""
    found = validate_workflow(write(tmp_path, text), tmp_path, environ={"HOME": str(tmp_path)})

    assert [d.code for d in found] == ["MUX003", "MUX003", "MUX025"]
    assert found[-1].message == "undeclared arg `nope`"


def test_a_config_file_checked_on_top_may_hold_partial_tables(tmp_path: Path) -> None:
    """A config file that is not a layer of the project (or an editor's buffer) is
    merged on top key by key: a partial role is completed by the layers below."""
    from muxlang.compiler.project import validate_config

    other = tmp_path / "other" / "config.toml"
    other.parent.mkdir()
    other.write_text(
        '[roles.analyzer]\nexecution = "parallel"\n\n'
        '[roles.new]\nexecution = "race"\n\n'
        '[roles.mine]\nbackends = ["analyzer", "new", "ghost"]\n\n'
        "[backends.claude]\ntimeout = 60\n"
    )

    found = validate_config(other, tmp_path, environ={"HOME": str(tmp_path)})

    assert [d.message for d in found] == [
        "role `mine` uses `ghost`, which is neither a backend nor a role"
    ]
