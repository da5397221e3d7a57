"""Every kind of schema problem in a workflow or config file, at its file position."""

from __future__ import annotations

from pathlib import Path

import pytest

from muxlang.compiler.loader import load_config_file, load_workflow
from muxlang.diagnostics import Diagnostic

SHELL = '[[steps]]\nname = "diff"\ntype = "shell"\nrun = "git diff"\n'


def problems(text: str, name: str = "wf.toml") -> list[Diagnostic]:
    workflow, diagnostics = load_workflow(Path(name), text)
    if diagnostics:
        assert workflow is None
    return diagnostics


# (case id, workflow text, expected code, line, column, words the message must contain)
CASES = [
    (
        "toml-syntax",
        'name = "x"\nsteps = [\n',
        "MUX001",
        3,
        1,
        [],
    ),
    (
        "unknown-step-key",
        SHELL + 'outptu = "x"\n',
        "MUX002",
        5,
        1,
        ["unknown key `outptu`", "step `diff`"],
    ),
    (
        "unknown-key-named-like-the-step-type",
        SHELL + "shell = true\n",
        "MUX002",
        5,
        1,
        ["unknown key `shell`", "step `diff`"],
    ),
    (
        "unknown-key-in-inline-step",
        'steps = [{ name = "a", type = "shell", run = "x", bogus = 1 }]\n',
        "MUX002",
        1,
        51,
        ["unknown key `bogus` in step `a`"],
    ),
    (
        "unknown-top-key",
        'nmae = "x"\n' + SHELL,
        "MUX002",
        1,
        1,
        ["unknown key `nmae`"],
    ),
    (
        "unknown-backend-key",
        '[backends.claude]\ncommand = "claude"\nprotocl = "openai"\n',
        "MUX002",
        3,
        1,
        ["`protocl`", "backend `claude`"],
    ),
    (
        "unknown-team-role-key",
        '[teams.rust]\ndetect = ["Cargo.toml"]\n[teams.rust.roles.analyzer]\nbackend = ["x"]\n',
        "MUX002",
        4,
        1,
        ["`backend`"],
    ),
    (
        "unknown-arg-key",
        '[args.base]\ndefualt = "HEAD"\n' + SHELL,
        "MUX002",
        2,
        1,
        ["`defualt`", "arg `base`"],
    ),
    (
        "wrong-type-integer",
        'max_concurrent = "four"\n' + SHELL,
        "MUX003",
        1,
        18,
        ["`max_concurrent` must be an integer", 'string "four"'],
    ),
    (
        "wrong-type-string",
        '[[steps]]\nname = "diff"\ntype = "shell"\nrun = 3\n',
        "MUX003",
        4,
        7,
        ["`run` must be a string", "integer 3"],
    ),
    (
        "wrong-type-array",
        '[roles.r]\nbackends = "claude"\n',
        "MUX003",
        2,
        12,
        ["`backends` must be an array"],
    ),
    (
        "wrong-type-bool",
        SHELL + 'continue_on_error = "yes"\n',
        "MUX003",
        5,
        21,
        ["boolean"],
    ),
    (
        "array-item-type",
        SHELL + 'depends_on = ["a", 3]\n',
        "MUX003",
        5,
        20,
        ["item 2 of `depends_on`", "integer 3"],
    ),
    (
        "execution-literal",
        '[roles.r]\nbackends = ["a"]\nexecution = "paralel"\n',
        "MUX005",
        3,
        13,
        ["`execution` must be one of first, fallback, parallel, race", '"paralel"'],
    ),
    (
        "protocol-literal",
        '[backends.b]\ncommand = "https://x"\nprotocol = "opneai"\n',
        "MUX005",
        3,
        12,
        ["`protocol` must be one of openai, anthropic, gemini, ollama"],
    ),
    (
        "prompt-via-literal",
        '[backends.b]\ncommand = "x"\nprompt_via = "pipe"\n',
        "MUX005",
        3,
        14,
        ["`prompt_via` must be one of arg, stdin"],
    ),
    (
        "step-type-invalid",
        '[[steps]]\nname = "diff"\ntype = "shel"\nrun = "x"\n',
        "MUX005",
        3,
        8,
        ["`type` must be one of shell, query, apply", '"shel"'],
    ),
    (
        "step-name-pattern",
        '[[steps]]\nname = "bad name"\ntype = "shell"\nrun = "x"\n',
        "MUX006",
        2,
        8,
        ["step name", '"bad name"'],
    ),
    (
        "duration",
        SHELL + 'timeout = "2 minutes"\n',
        "MUX003",
        5,
        11,
        ["`timeout` must be a number of seconds or a duration"],
    ),
    (
        "duration-wrong-type",
        SHELL + "timeout = true\n",
        "MUX003",
        5,
        11,
        ["`timeout` must be a number of seconds or a duration", "boolean true"],
    ),
    (
        "backend-timeout-takes-durations-like-a-step",
        '[backends.b]\ncommand = "x"\ntimeout = "5 minutes"\n',
        "MUX003",
        3,
        11,
        ["`timeout` must be a number of seconds or a duration", 'string "5 minutes"'],
    ),
    (
        "table-value-type",
        SHELL + "env = { A = 1 }\n",
        "MUX003",
        5,
        13,
        ["`env.A` must be a string", "integer 1"],
    ),
    (
        "minimum",
        "max_concurrent = 0\n" + SHELL,
        "MUX006",
        1,
        18,
        ["at least 1"],
    ),
    (
        "table-expected",
        'backends = "claude"\n' + SHELL,
        "MUX003",
        1,
        12,
        ["must be a table"],
    ),
    (
        "missing-run",
        '[[steps]]\nname = "diff"\ntype = "shell"\n',
        "MUX004",
        1,
        1,
        ["step `diff` has no `run`: shell steps need one"],
    ),
    (
        "missing-type",
        '[[steps]]\nname = "diff"\nrun = "x"\n',
        "MUX004",
        1,
        1,
        ["step `diff` has no `type`", "shell, query, apply"],
    ),
    (
        "missing-name",
        '[[steps]]\ntype = "shell"\nrun = "x"\n',
        "MUX004",
        1,
        1,
        ["has no `name`"],
    ),
    (
        "query-without-target",
        '[[steps]]\nname = "ask"\ntype = "query"\nprompt = "hi"\n',
        "MUX004",
        1,
        1,
        ["`role` or `backend`"],
    ),
    (
        "query-with-both",
        '[[steps]]\nname = "ask"\ntype = "query"\nprompt = "hi"\nrole = "a"\nbackend = "b"\n',
        "MUX007",
        6,
        11,
        ["both `role` and `backend`"],
    ),
]


@pytest.mark.parametrize(
    ("text", "code", "line", "column", "words"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_each_error_kind_has_its_code_and_position(
    text: str, code: str, line: int, column: int, words: list[str]
) -> None:
    found = problems(text)
    assert [(d.code, d.span.line, d.span.column) for d in found] == [(code, line, column)], found
    for word in words:
        assert word in found[0].message


def test_unknown_key_hint_says_did_you_mean() -> None:
    [d] = problems(SHELL + 'cwdd = "."\n')
    assert d.hint == "did you mean `cwd`?"


def test_key_of_another_step_type_is_named() -> None:
    [d] = problems(SHELL + 'prompt = "explain"\n')
    assert d.code == "MUX002"
    assert d.hint is not None
    assert "`prompt` is a key of query steps" in d.hint


def test_literal_error_has_did_you_mean() -> None:
    [d] = problems('[roles.r]\nbackends = ["a"]\nexecution = "paralel"\n')
    assert d.hint == "did you mean `parallel`?"


def test_key_span_covers_the_key_and_value_span_the_value() -> None:
    [unknown] = problems(SHELL + 'outptu = "x"\n')
    assert (unknown.span.line, unknown.span.column, unknown.span.end_column) == (5, 1, 7)
    [wrong] = problems('[roles.r]\nbackends = ["a"]\nexecution = "paralel"\n')
    assert (wrong.span.column, wrong.span.end_column) == (13, 22)


def test_every_problem_is_reported_at_once_in_file_order() -> None:
    text = (
        'nmae = "x"\n'
        "[[steps]]\n"
        'name = "a"\n'
        'type = "shell"\n'
        "[[steps]]\n"
        'name = "b"\n'
        'type = "query"\n'
        'prompt = "p"\n'
        'role = "x"\n'
        "outptu = 1\n"
        "[roles.r]\n"
        'execution = "race"\n'
        'backends = "x"\n'
    )
    found = problems(text)
    assert [(d.code, d.span.line) for d in found] == [
        ("MUX002", 1),
        ("MUX004", 2),
        ("MUX002", 10),
        ("MUX003", 13),
    ]


def test_partial_config_tables_in_a_workflow_are_not_errors_at_load() -> None:
    workflow, found = load_workflow(Path("w.toml"), "[backends.claude]\ntimeout = 10\n" + SHELL)
    assert found == []
    assert workflow is not None
    assert workflow.config.backends["claude"].model_dump(exclude_unset=True) == {"timeout": 10}


def test_config_file_errors_carry_the_config_path(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[backends.claude]\ncommand = "claude"\nretries = 3\n')
    config, _, found = load_config_file(path)
    assert config is None
    [d] = found
    assert (d.file, d.code, d.span.line, d.span.column) == (str(path), "MUX002", 3, 1)
    assert d.hint == "did you mean `max_retries`?"


def test_unreadable_file_is_a_diagnostic_not_a_traceback(tmp_path: Path) -> None:
    workflow, [d] = load_workflow(tmp_path / "absent.toml")
    assert workflow is None
    assert d.code == "MUX001"
    assert "cannot read" in d.message


def test_step_key_at_the_top_level_says_where_it_belongs() -> None:
    [d] = problems('run = "git diff"\n')
    assert d.code == "MUX002"
    assert d.hint == "`run` is a key of steps: put it under a `[[steps]]` header"


def test_workflow_key_in_a_config_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[[steps]]\nname = "a"\n')
    _, _, [d] = load_config_file(path)
    assert d.code == "MUX002"
    assert d.hint == "`steps` belongs in a workflow file, not in config.toml"
