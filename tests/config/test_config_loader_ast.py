"""The Workflow AST the loader builds, and template errors at file positions."""

from __future__ import annotations

from pathlib import Path

import pytest

from muxlang.compiler.loader import load_workflow
from muxlang.config.discovery import stdlib_dir
from muxlang.workflow import ApplyStep, QueryStep, ShellStep, Workflow

REPO = Path(__file__).resolve().parents[2]


def load(text: str, name: str = "review.toml") -> Workflow:
    workflow, problems = load_workflow(Path(name), text)
    assert problems == []
    assert workflow is not None
    return workflow


FULL = """\
description = "Review"
timeout = "2m"
max_concurrent = 3

[args.base]
description = "Revision"
default = "HEAD~1"

[args.file]

[[steps]]
name = "diff"
type = "shell"
run = "git diff {{ args.base | shell_escape }}"
cwd = "sub"
timeout = "500ms"
env = { BASE = "{{ args.base }}" }

[[steps]]
name = "fix"
type = "query"
backend = "claude"
prompt = "Fix:\\n{{ steps.diff.output }}"
system = "terse"
options = { temperature = 0.1 }
if = "steps.diff.output != ''"
depends_on = ["diff"]

[[steps]]
name = "apply"
type = "apply"
source = "steps.fix"
verify = "make test"
verify_retries = 2
continue_on_error = true
"""


def test_workflow_fields_and_defaults() -> None:
    wf = load(FULL)
    assert wf.name == "review"  # defaults to the file's stem
    assert wf.description == "Review"
    assert wf.timeout == 120.0
    assert wf.max_concurrent == 3
    assert [(a.name, a.default, a.required) for a in wf.args] == [
        ("base", "HEAD~1", False),
        ("file", None, True),
    ]
    assert [a.span.line for a in wf.args] == [5, 9]  # their [args.NAME] headers
    assert [s.name for s in wf.steps] == ["diff", "fix", "apply"]


def test_shell_step() -> None:
    diff = load(FULL).steps[0]
    assert isinstance(diff, ShellStep)
    assert diff.run.source == "git diff {{ args.base | shell_escape }}"
    assert not diff.run.template.is_constant
    assert diff.cwd is not None
    assert diff.cwd.source == "sub"
    assert diff.timeout == 0.5
    assert [k for k, _ in diff.env] == ["BASE"]
    assert diff.span.line == 11  # the [[steps]] header
    assert (diff.name_span.line, diff.name_span.column) == (12, 8)
    assert diff.spans["run"].line == 14
    assert set(diff.spans) == {"name", "type", "run", "cwd", "timeout", "env"}
    assert [key for key, _ in diff.templates()] == ["run", "cwd", "env.BASE"]


def test_query_step() -> None:
    fix = load(FULL).steps[1]
    assert isinstance(fix, QueryStep)
    assert fix.role is None
    assert fix.backend is not None
    assert fix.backend.name == "claude"
    assert fix.backend.span.line == 22
    assert fix.prompt.source == "Fix:\n{{ steps.diff.output }}"
    assert fix.system is not None
    assert fix.system.template.is_constant
    assert dict(fix.options) == {"temperature": 0.1}
    assert fix.if_ is not None
    assert fix.if_.source == "steps.diff.output != ''"
    assert [(r.name, r.span.line) for r in fix.depends_on] == [("diff", 27)]


def test_apply_source_is_normalised_with_the_span_of_the_name() -> None:
    apply = load(FULL).steps[2]
    assert isinstance(apply, ApplyStep)
    assert apply.source.name == "fix"
    # source = "steps.fix" : the name starts after `"steps.` (column 10 + 7)
    assert (apply.source.span.line, apply.source.span.column) == (32, 17)
    assert apply.source.span.end_column == 20
    assert apply.verify_retries == 2
    assert apply.rollback_on_failure is True
    assert apply.continue_on_error is True


def test_bare_source_name_is_kept() -> None:
    wf = load(
        '[[steps]]\nname = "q"\ntype = "query"\nrole = "r"\nprompt = "p"\n'
        '[[steps]]\nname = "a"\ntype = "apply"\nsource = "q"\n'
    )
    apply = wf.steps[1]
    assert isinstance(apply, ApplyStep)
    assert apply.source.name == "q"


def test_explicit_name_wins_over_the_stem() -> None:
    assert load('name = "mine"\n', "other.toml").name == "mine"


def test_workflow_config_tables_keep_only_what_was_written() -> None:
    wf = load('[backends.claude]\ntimeout = 5\n[roles.r]\nbackends = ["claude"]\n')
    assert wf.config.model_dump(exclude_unset=True) == {
        "backends": {"claude": {"timeout": 5}},
        "roles": {"r": {"backends": ["claude"]}},
    }
    assert wf.config_spans[("backends", "claude")].line == 1
    assert wf.config_spans[("roles", "r")].line == 3


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        # escapes before the error shift the column: \" is two characters in the file
        ('[[steps]]\nname = "a"\ntype = "shell"\nrun = "echo \\"{{ x | }}\\""\n', 4, 22),
        # inside a multi-line string, on its own line
        (
            '[[steps]]\nname = "a"\ntype = "query"\nrole = "r"\n'
            'prompt = """\nline one\n  {{ args.x ~ }}\n"""\n',
            7,
            15,
        ),
        # a literal string after a line-ending backslash continuation
        (
            '[[steps]]\nname = "a"\ntype = "shell"\nrun = """\\\n    echo {{ a | }}"""\n',
            5,
            17,
        ),
        ('[[steps]]\nname = "a"\ntype = "shell"\nrun = "x"\nif = "a =="\n', 5, 11),
        ('[[steps]]\nname = "a"\ntype = "shell"\nrun = "x"\nfor_each = "a b"\n', 5, 15),
        ('[[steps]]\nname = "a"\ntype = "shell"\nrun = "x"\nenv = { A = "{{ }}" }\n', 5, 17),
    ],
    ids=["escaped", "multiline", "continuation", "if", "for_each", "env"],
)
def test_template_syntax_errors_point_into_the_file(text: str, line: int, column: int) -> None:
    workflow, problems = load_workflow(Path("w.toml"), text)
    assert workflow is None
    assert [(d.code, d.span.line, d.span.column) for d in problems] == [("MUX010", line, column)]


def test_template_errors_are_reported_with_schema_errors() -> None:
    text = '[[steps]]\nname = "a"\ntype = "shell"\nrun = "{{ x | }}"\noutptu = 1\n'
    _, problems = load_workflow(Path("w.toml"), text)
    assert sorted(d.code for d in problems) == ["MUX002", "MUX010"]


@pytest.mark.parametrize(
    "path",
    sorted([*stdlib_dir().glob("*.toml"), *(REPO / "examples").glob("*.toml")]),
    ids=lambda p: p.name,
)
def test_bundled_and_example_workflows_load_cleanly(path: Path) -> None:
    workflow, problems = load_workflow(path)
    assert problems == []
    assert workflow is not None
