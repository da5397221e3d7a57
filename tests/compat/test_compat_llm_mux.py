"""llm-mux files keep working (SPEC section 12), through the real CLI.

Each case is a workflow written the way llm-mux's README, examples and tests
write them (our own files, from llm-mux's documented keys). Each is placed
where llm-mux would read it (``.llm-mux/workflows/``), validated (exit 0, with
exactly the MUX050/MUX051 warnings listed) and, where it can run here, run:
the output shows the key kept its llm-mux meaning. Every llm-mux key has a case.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fakes.llm_server import FakeLLMServer, Reply

#: a CLI "LLM": answers in turn with the lines of $0.answers (the last one repeats)
LLM = """#!/bin/sh
n=$(cat "$0.count" 2>/dev/null || echo 0); echo $((n+1)) > "$0.count"
total=$(wc -l < "$0.answers")
if [ "$n" -ge "$total" ]; then n=$((total-1)); fi
sed -n "$((n+1))p" "$0.answers"
"""


@dataclass
class Case:
    id: str
    workflow: str
    #: the codes validate reports, in order (all warnings: exit 0)
    codes: list[str] = field(default_factory=list)
    #: `muxlang run` arguments (none by default), or None when the case is only validated
    run: list[str] | None = field(default_factory=list)
    #: step -> expected output (after the run)
    outputs: dict[str, str] = field(default_factory=dict)
    #: step -> a piece of its error (the run fails)
    errors: dict[str, str] = field(default_factory=dict)
    #: the answers of the CLI backend `llm`, in turn
    answers: list[str] = field(default_factory=list)
    exit_code: int = 0


SHELL_ECHO = '[[steps]]\nname = "s"\ntype = "shell"\nrun = "echo ok"\n'

CASES = [
    Case(
        "version",
        'name = "v"\nversion = 1\n' + SHELL_ECHO,
        outputs={"s": "ok"},
    ),
    Case(
        "args-required",
        """
        name = "a"
        [args.cluster]
        required = true
        description = "Cluster name"
        [[steps]]
        name = "s"
        type = "shell"
        run = "echo {{ args.cluster }}"
        """,
        run=["cluster=prod-1"],
        outputs={"s": "prod-1"},
    ),
    Case(
        "args-required-missing",
        """
        name = "a"
        [args.cluster]
        required = true
        [[steps]]
        name = "s"
        type = "shell"
        run = "echo {{ args.cluster }}"
        """,
        exit_code=2,
    ),
    Case(
        "args-optional",
        """
        name = "a"
        [args.alert_time]
        required = false
        description = "defaults to nothing"
        [[steps]]
        name = "s"
        type = "shell"
        run = "echo [{{ args.alert_time }}]"
        """,
        outputs={"s": "[]"},
    ),
    Case(
        "args-unmarked-are-optional-in-llm-mux-files",
        """
        name = "a"
        [args.note]
        description = "llm-mux's required defaults to false"
        [[steps]]
        name = "s"
        type = "shell"
        run = "echo [{{ args.note }}]"
        """,
        outputs={"s": "[]"},
    ),
    Case(
        "unknown-role-fails-when-run",
        """
        name = "u"
        [[steps]]
        name = "ask"
        type = "query"
        role = "default"
        prompt = "hi"
        """,
        codes=["MUX030"],
        errors={"ask": "unknown role `default`"},
        exit_code=1,
    ),
    Case(
        "retries",
        """
        name = "r"
        [[steps]]
        name = "flaky"
        type = "shell"
        retries = 2
        retry_delay = 1
        run = 'n=$(cat n 2>/dev/null || echo 0); echo $((n+1)) > n; test "$n" -ge 2 && echo third'
        """,
        outputs={"flaky": "third"},
    ),
    Case(
        "retries-exhausted",
        """
        name = "r"
        [[steps]]
        name = "flaky"
        type = "shell"
        retries = 1
        retry_delay = 1
        run = 'echo x >> tries; exit 3'
        """,
        errors={"flaky": "exit"},
        exit_code=1,
    ),
    Case(
        "step-timeout-milliseconds",
        """
        name = "t"
        [[steps]]
        name = "slow"
        type = "shell"
        timeout = 1000
        run = "sleep 30"
        """,
        codes=["MUX051"],
        errors={"slow": "timed out after 1"},
        exit_code=1,
    ),
    Case(
        "workflow-timeout-milliseconds",
        'name = "t"\ntimeout = 1800000\n' + SHELL_ECHO,
        codes=["MUX051"],
        outputs={"s": "ok"},
    ),
    Case(
        "small-timeout-quiet",
        'name = "t"\n' + SHELL_ECHO + "timeout = 500\n",
        outputs={"s": "ok"},
    ),
    Case(
        "query-parallel-min-success",
        """
        name = "p"
        [[steps]]
        name = "ask"
        type = "query"
        backend = "llm"
        parallel = true
        min_success = 1
        prompt = "hello"
        """,
        codes=["MUX050", "MUX050"],
        outputs={"ask": "hi"},
        answers=["hi"],
    ),
    Case(
        "options-list",
        """
        name = "o"
        [[steps]]
        name = "ask"
        type = "query"
        backend = "llm"
        prompt = "hello"
        options = ["a", "b"]
        """,
        codes=["MUX050"],
        outputs={"ask": "hi"},
        answers=["hi"],
    ),
    Case(
        "defaults-keys",
        """
        name = "d"
        [defaults]
        timeout = 120
        parallel = true
        max_concurrent = 2
        command_wrapper = "nix-shell --run"
        """
        + SHELL_ECHO,
        codes=["MUX050", "MUX050", "MUX050"],
        outputs={"s": "ok"},
    ),
    Case(
        "ecosystems",
        'name = "e"\n' + SHELL_ECHO + '\n[ecosystems.web]\nprojects = ["a"]\n',
        codes=["MUX050"],
        outputs={"s": "ok"},
    ),
    Case(
        "backend-env-pairs",
        """
        name = "b"
        [backends.envllm]
        command = "sh"
        args = ["-c", "printf '%s' \\"$GREETING\\"", "sh"]
        env = [["GREETING", "hello from env"]]
        [[steps]]
        name = "ask"
        type = "query"
        backend = "envllm"
        prompt = "x"
        """,
        outputs={"ask": "hello from env"},
    ),
    Case(
        "backend-costs",
        """
        name = "c"
        [backends.priced]
        command = "true"
        input_cost_per_million = 3.0
        output_cost_per_million = 15.0
        """
        + SHELL_ECHO,
        outputs={"s": "ok"},
    ),
    Case(
        "store-step",
        """
        name = "st"
        [[steps]]
        name = "facts"
        type = "shell"
        run = '''echo "it's \\$(not run)"'''
        [[steps]]
        name = "keep"
        type = "store"
        depends_on = ["facts"]
        prompt = "stored: {{ steps.facts.output }}"
        """,
        codes=["MUX050"],
        outputs={"keep": "stored: it's $(not run)"},
    ),
    Case(
        "input-step",
        """
        name = "in"
        [[steps]]
        name = "confirm"
        type = "input"
        prompt = "Continue?"
        options = ["yes", "no"]
        """,
        codes=["MUX050"],
        errors={"confirm": "exit"},
        exit_code=1,
    ),
    Case(
        "output-schema-asks-again",
        """
        name = "os"
        [[steps]]
        name = "ask"
        type = "query"
        backend = "llm"
        prompt = "give JSON"
        retries = 1
        retry_delay = 1
        [steps.output_schema]
        type = "object"
        required = ["files"]
        properties = { files = { type = "array", items = { type = "string" } } }
        [[steps]]
        name = "use"
        type = "shell"
        run = "echo {{ steps.ask.data.files | join(' + ') }}"
        """,
        answers=['{"file": "wrong key"}', '{"files": ["a.py", "b.py"]}'],
        outputs={"use": "a.py + b.py"},
    ),
    Case(
        "output-schema-fails",
        """
        name = "os"
        [[steps]]
        name = "ask"
        type = "query"
        backend = "llm"
        prompt = "give JSON"
        output_schema = { type = "array" }
        """,
        answers=["not json at all"],
        errors={"ask": "output_schema: the answer is not JSON"},
        exit_code=1,
    ),
    Case(
        "failed-field-and-empty-if",
        """
        name = "f"
        continue_on_error = true
        [[steps]]
        name = "bad"
        type = "shell"
        run = "exit 1"
        continue_on_error = true
        [[steps]]
        name = "report"
        type = "shell"
        if = "always()"
        run = "echo {{ steps.bad.failed }}"
        [[steps]]
        name = "plain"
        type = "shell"
        if = ""
        run = "echo runs"
        """,
        outputs={"report": "true", "plain": "runs"},
        exit_code=0,
    ),
    Case(
        "workflow-name",
        """
        name = "my-flow"
        [[steps]]
        name = "s"
        type = "shell"
        run = "echo {{ workflow }} {{ workflow.name }}"
        """,
        outputs={"s": "my-flow my-flow"},
    ),
    Case(
        "strftime-now",
        """
        name = "time"
        [[steps]]
        name = "s"
        type = "shell"
        run = '''
        echo {{ '2026-02-14T12:34:56Z' | strftime('%Y-%m-%d') }} \\
          {{ now() | strftime('%Y') | length }} {{ 'now' | strftime('%H') | length }}'''
        """,
        outputs={"s": "2026-02-14 4 2"},
    ),
    Case(
        "table-literal",
        """
        name = "tl"
        [[steps]]
        name = "s"
        type = "shell"
        if = "'a' in {'a': 1, 'b': [1, 2]}"
        run = "echo {{ {'team': 'core', 'n': 2}['team'] }} {{ {'k': workflow.name} | json }}"
        """,
        outputs={"s": '{"k":"tl"}'.join(["core ", ""])},
    ),
    Case(
        "truncate-chars",
        """
        name = "tc"
        [[steps]]
        name = "s"
        type = "shell"
        run = "printf '%s' {{ 'abcdef' | truncate_chars(3) }}"
        """,
        outputs={"s": "abc\n[truncated]"},
    ),
]


def muxlang(root: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "muxlang", "-C", str(root), *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "NO_COLOR": "1",
    }


def project(tmp_path: Path, case: Case) -> tuple[Path, Path]:
    root = tmp_path / "repo"
    workflows = root / ".llm-mux" / "workflows"
    workflows.mkdir(parents=True)
    llm = root / "llm.sh"
    llm.write_text(LLM)
    llm.chmod(0o755)
    (root / "llm.sh.answers").write_text("".join(a + "\n" for a in case.answers or ["hi"]))
    (root / ".llm-mux" / "config.toml").write_text(f'[backends.llm]\ncommand = "{llm}"\n')
    path = workflows / f"{case.id}.toml"
    path.write_text(textwrap.dedent(case.workflow))
    return root, path


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_llm_mux_workflow_validates_and_runs(
    case: Case, tmp_path: Path, environ: dict[str, str]
) -> None:
    root, path = project(tmp_path, case)
    checked = muxlang(root, "validate", "--format", "json", str(path), env=environ)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    found = json.loads(checked.stdout)
    assert [d["code"] for d in found] == case.codes, found
    assert all(d["severity"] == "warning" for d in found)
    if case.run is None:
        return
    ran = muxlang(root, "run", case.id, *case.run, "--output", "json", env=environ)
    assert ran.returncode == case.exit_code, ran.stdout + ran.stderr
    if case.exit_code == 2:
        assert "cluster" in ran.stderr
        return
    steps = json.loads(ran.stdout)["steps"]
    for name, output in case.outputs.items():
        assert steps[name]["status"] == "success", steps[name]
        assert steps[name]["output"] == output
    for name, error in case.errors.items():
        assert steps[name]["status"] == "failed"
        assert steps[name]["failed"] is True
        assert error in steps[name]["error"], steps[name]["error"]


def test_retries_run_the_step_again_and_stop(tmp_path: Path, environ: dict[str, str]) -> None:
    case = next(c for c in CASES if c.id == "retries-exhausted")
    root, _ = project(tmp_path, case)
    muxlang(root, "run", case.id, env=environ)
    assert (root / "tries").read_text() == "x\nx\n"  # the first run and one retry


def test_same_timeout_outside_llm_mux_is_seconds_and_said(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    (tmp_path / ".muxlang").mkdir()
    path = tmp_path / "wf.toml"
    path.write_text(SHELL_ECHO + "timeout = 30000\n")
    checked = muxlang(tmp_path, "validate", "--format", "json", str(path), env=environ)
    assert checked.returncode == 0
    [diag] = json.loads(checked.stdout)
    assert diag["code"] == "MUX051"
    assert "seconds here" in diag["message"]
    assert '"30s"' in diag["hint"]
    llm_mux = tmp_path / ".llm-mux" / "workflows" / "wf.toml"
    llm_mux.parent.mkdir(parents=True)
    llm_mux.write_text(SHELL_ECHO + "timeout = 30000\n")
    checked = muxlang(tmp_path, "validate", "--format", "json", str(llm_mux), env=environ)
    [diag] = json.loads(checked.stdout)
    assert "read as milliseconds (30 s)" in diag["message"]


def test_llm_mux_config_file_validates(tmp_path: Path, environ: dict[str, str]) -> None:
    (tmp_path / ".llm-mux").mkdir()
    config = tmp_path / ".llm-mux" / "config.toml"
    config.write_text(
        textwrap.dedent(
            """
            [defaults]
            timeout = 300
            parallel = false
            max_concurrent = 4

            [backends.claude-api]
            type = "claude"
            api_key_env = "MY_ANTHROPIC_KEY"
            model = "claude-sonnet-4-20250514"

            [backends.local]
            command = "http://localhost:11434/v1"
            model = "llama3"
            env = [["OLLAMA_HOST", "127.0.0.1"]]

            [roles.analyzer]
            description = "Code analysis"
            backends = ["claude-api", "local"]
            execution = "fallback"
            min_success = 1

            [teams.rust]
            detect = ["Cargo.toml"]
            verify = "cargo test"
            [teams.rust.roles.analyzer]
            backends = ["local"]
            """
        )
    )
    checked = muxlang(tmp_path, "validate", "--format", "json", str(config), env=environ)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert [d["code"] for d in json.loads(checked.stdout)] == ["MUX050", "MUX050"]


@pytest.mark.parametrize("kind", ["api_key_env", "type-claude"])
def test_backend_key_from_api_key_env(kind: str, tmp_path: Path, environ: dict[str, str]) -> None:
    """`api_key_env` names the variable holding the key; `type = "claude"` speaks
    the Anthropic API (its key from ANTHROPIC_API_KEY unless api_key_env says)."""
    root = tmp_path / "repo"
    (root / ".llm-mux").mkdir(parents=True)
    with FakeLLMServer() as server:
        server.script(Reply.answer("from the server"))
        backend = (
            f'command = "{server.url}/v1"\napi_key_env = "MY_KEY"\nmodel = "m"\n'
            if kind == "api_key_env"
            else f'type = "claude"\ncommand = "{server.url}"\n'
        )
        (root / "wf.toml").write_text(
            f'[backends.api]\n{backend}\n[[steps]]\nname = "ask"\ntype = "query"\n'
            'backend = "api"\nprompt = "hello"\n'
        )
        env = {**environ, "MY_KEY": "sk-my-key", "ANTHROPIC_API_KEY": "sk-ant-key"}
        ran = muxlang(root, "run", "wf.toml", "--output", "json", env=env)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert json.loads(ran.stdout)["steps"]["ask"]["output"] == "from the server"
        [request] = server.requests
    if kind == "api_key_env":
        assert request.headers["authorization"] == "Bearer sk-my-key"
    else:
        assert request.path.endswith("/v1/messages")
        assert request.headers["x-api-key"] == "sk-ant-key"


def test_every_key_has_a_case() -> None:
    """The keys llm-mux accepts and muxlang spells differently, each exercised above."""
    text = "\n".join(c.workflow for c in CASES)
    for key in (
        "version",
        "required",
        "retries",
        "retry_delay",
        "options",
        "parallel",
        "min_success",
        "command_wrapper",
        "[defaults]",
        "env = [[",
        "input_cost_per_million",
        'type = "store"',
        'type = "input"',
        "output_schema",
        ".failed",
        "{{ workflow }}",
        'if = ""',
        "strftime",
        "now()",
        "truncate_chars",
        "{'a': 1",
        "ecosystems",
        "timeout = 1000",
    ):
        assert key in text, key
