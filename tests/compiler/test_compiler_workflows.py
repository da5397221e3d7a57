"""Checks and lowering on workflows written as TOML (through the real loader and
template parser): scoping, references in every place, what stays quiet."""

from __future__ import annotations

from pathlib import Path

import pytest
from mux_compiler_support import config

from muxlang.compiler import compile_workflow
from muxlang.compiler.loader import load_workflow

DOCS = Path(__file__).resolve().parents[2] / "docs" / "validation.md"


def check(text: str, tmp_path: Path):
    path = tmp_path / "wf.toml"
    path.write_text(text, encoding="utf-8")
    workflow, found = load_workflow(path)
    assert workflow is not None, found
    plan, diagnostics = compile_workflow(workflow, config())
    return plan, [(d.code, d.span.line, d.span.column) for d in diagnostics], diagnostics


def steps(*bodies: str) -> str:
    return "\n".join(f"[[steps]]\n{body.strip()}\n" for body in bodies)


SHELL_A = 'name = "a"\ntype = "shell"\nrun = "ls"'


def test_template_for_binds_its_variable_and_loop(tmp_path: Path) -> None:
    text = steps(
        SHELL_A,
        """
name = "b"
type = "query"
role = "analyzer"
prompt = "{% for f in steps.a.output | lines %}{{ loop.index }} {{ f }}{% else %}none{% endfor %}"
""",
    )
    plan, found, _ = check(text, tmp_path)
    assert found == []
    assert plan is not None
    assert plan.step("b").dependencies == ("a",)


def test_loop_variable_does_not_leak_out_of_the_for(tmp_path: Path) -> None:
    text = steps(
        SHELL_A,
        """
name = "b"
type = "query"
role = "analyzer"
prompt = "{% for f in steps.a.output | lines %}{{ f }}{% endfor %}{{ f }} {{ loop.index }}"
""",
    )
    _, found, _ = check(text, tmp_path)
    assert found == [("MUX026", 10, 70), ("MUX024", 10, 78)]


def test_index_syntax_and_hyphenated_names_are_references(tmp_path: Path) -> None:
    text = steps(
        'name = "check-files"\ntype = "shell"\nrun = "ls"',
        """
name = "b"
type = "query"
role = "analyzer"
prompt = "{{ steps['check-files'].output }} {{ steps.check-files['exit_code'] }}"
""",
        """
name = "c"
type = "query"
role = "analyzer"
prompt = "{{ steps['nope'].output }} {{ steps.check-files['outptu'] }}"
""",
    )
    _, found, diagnostics = check(text, tmp_path)
    assert [code for code, *_ in found] == ["MUX021", "MUX023"]
    assert diagnostics[0].hint is None or "check-files" in diagnostics[0].hint


def test_references_in_if_for_each_env_and_system_make_edges(tmp_path: Path) -> None:
    text = steps(
        SHELL_A,
        'name = "b"\ntype = "shell"\nrun = "ls"',
        'name = "c"\ntype = "shell"\nrun = "ls"',
        'name = "d"\ntype = "shell"\nrun = "ls"',
        """
name = "q"
type = "query"
role = "analyzer"
prompt = "hi"
system = "{{ steps.a.output }}"
if = "steps.b.status == 'success'"
for_each = "steps.c.output | lines"
env = { X = "{{ steps.d.output }}" }
""",
    )
    plan, found, _ = check(text, tmp_path)
    assert found == []
    assert plan is not None
    assert plan.step("q").dependencies == ("a", "b", "c", "d")
    assert plan.order == ("a", "b", "c", "d", "q")


def test_status_functions_and_per_item_if(tmp_path: Path) -> None:
    text = steps(
        SHELL_A,
        """
name = "b"
type = "shell"
run = "echo {{ item | shell_escape }}"
for_each = "['x', 'y']"
if = "failure() or item == 'x'"
depends_on = ["a"]
""",
    )
    plan, found, _ = check(text, tmp_path)
    assert found == []
    assert plan is not None
    assert plan.step("b").status_functions == frozenset({"failure"})
    assert plan.step("b").if_per_item


def test_retry_prompt_sees_original_and_error(tmp_path: Path) -> None:
    text = steps(
        'name = "fix"\ntype = "query"\nrole = "analyzer"\nprompt = "fix"',
        """
name = "apply"
type = "apply"
source = "fix"
verify = "make test"
verify_retries = 1
verify_retry_prompt = "{{ original }} failed: {{ error }}"
""",
    )
    _, found, _ = check(text, tmp_path)
    assert found == []


def test_verify_is_a_shell_command_for_mux040(tmp_path: Path) -> None:
    text = steps(
        'name = "fix"\ntype = "query"\nrole = "analyzer"\nprompt = "fix"',
        """
name = "apply"
type = "apply"
source = "fix"
verify = "make test {{ steps.fix.output | raw }}"
""",
    )
    _, found, _ = check(text, tmp_path)
    assert found == [("MUX040", 11, 24)]


def test_quiet_on_a_typical_workflow(tmp_path: Path) -> None:
    text = '[args.base]\ndefault = "HEAD~1"\n\n' + steps(
        'name = "diff"\ntype = "shell"\nrun = "git diff {{ args.base | shell_escape }}"',
        """
name = "files"
type = "shell"
run = "git diff --name-only {{ args.base | shell_escape }}"
""",
        """
name = "review"
type = "query"
role = "analyzer"
for_each = "steps.files.output | lines | nonblank"
max_parallel = 2
prompt = '''
File {{ loop.index }} of {{ loop.length }}: {{ item }}
{% if steps.diff.output | length > 1000 %}(long diff){% endif %}
{{ steps.diff.output | truncate(2000) }}
'''
""",
        """
name = "report"
type = "shell"
run = 'printf "%s\\n" "$OUT" > review.md'
env = { OUT = "{{ steps.review.results | length }} {{ steps.review.output }}" }
if = "always()"
""",
    )
    plan, found, _ = check(text, tmp_path)
    assert found == []
    assert plan is not None
    assert plan.final_steps() == ("report",)


@pytest.mark.parametrize("code", [f"MUX0{n:02d}" for n in (1, 2, 3, 4, 10, 11, 12, 13)])
def test_docs_explain_every_code(code: str) -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert f"### {code} " in text


def test_docs_explain_every_code_in_the_table() -> None:
    from muxlang.diagnostics import CODES

    text = DOCS.read_text(encoding="utf-8")
    assert [code for code in CODES if f"### {code} " not in text] == []
