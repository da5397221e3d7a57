"""Hostile workflow arguments through the real CLI: `muxlang run` passes them into
`run` and an apply step's `verify`, and the commands see exactly the text given."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PAYLOADS = [
    "$(touch pwned)",
    "`touch pwned`",
    'it\'s "quoted" \\ $HOME ${HOME} * ? [a] ~ ! # ;',
    "line\nEOF\ntouch pwned\n",
    "",
    "héllo ✓ 日本",
]

#: what each `run` prints: the payload four times, from four contexts
RUN_WORKFLOW = r"""
[args.x]
description = "anything"

[[steps]]
name = "show"
type = "shell"
run = '''
printf '%s|' {{ args.x }} "{{ args.x }}" '{{ args.x }}'  # {{ args.x }}
cat <<EOF
{{ args.x }}
EOF
'''
"""

LLM = """#!/bin/sh
printf '```json\\n{"path": "note.txt", "content": "hi"}\\n```\\n'
"""

VERIFY_WORKFLOW = r"""
[args.x]
description = "anything"

[backends.fake]
command = "{llm}"

[[steps]]
name = "ask"
type = "query"
backend = "fake"
prompt = "write a note"

[[steps]]
name = "apply"
type = "apply"
source = "ask"
verify = '''
printf '%s|' {{{{ args.x }}}} "{{{{ args.x }}}}" '{{{{ args.x }}}}' > verify.out  # {{{{ args.x }}}}
cat >> verify.out <<EOF
{{{{ args.x }}}}
EOF
'''
"""


def muxlang(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "muxlang", "-C", str(root), *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def expected(payload: str) -> str:
    return f"{payload}|{payload}|{payload}|{payload}\n"


@pytest.mark.parametrize("payload", PAYLOADS)
def test_run_prints_each_argument_exactly(tmp_path: Path, payload: str) -> None:
    (tmp_path / ".muxlang").mkdir()
    (tmp_path / "wf.toml").write_text(RUN_WORKFLOW)
    result = muxlang(tmp_path, "run", "wf.toml", f"x={payload}", "--output", "json")
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)["steps"]["show"]["output"]
    assert output == expected(payload).rstrip("\n")
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_verify_sees_each_argument_exactly(tmp_path: Path, payload: str) -> None:
    (tmp_path / ".muxlang").mkdir()
    llm = tmp_path / "llm.sh"
    llm.write_text(LLM)
    llm.chmod(0o755)
    (tmp_path / "wf.toml").write_text(VERIFY_WORKFLOW.format(llm=llm))
    result = muxlang(tmp_path, "run", "wf.toml", f"x={payload}")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "note.txt").read_text() == "hi"
    assert (tmp_path / "verify.out").read_text() == expected(payload)
    assert not (tmp_path / "pwned").exists()


def test_dry_run_shows_the_quoted_command(tmp_path: Path) -> None:
    (tmp_path / ".muxlang").mkdir()
    (tmp_path / "wf.toml").write_text(
        '[[steps]]\nname = "s"\ntype = "shell"\nrun = "git log {{ args.rev }}"\n'
    )
    result = muxlang(tmp_path, "run", "wf.toml", "rev=$(touch pwned)", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "git log '$(touch pwned)'" in result.stdout
    assert not (tmp_path / "pwned").exists()


def test_env_values_and_prompts_are_not_quoted(tmp_path: Path) -> None:
    """`env` values and prompts are not shell code: they arrive as the text itself."""
    (tmp_path / ".muxlang").mkdir()
    (tmp_path / "wf.toml").write_text(
        """
[backends.echo]
command = "sh"
args = ["-c", "printf '%s' \\"$1\\"", "sh"]

[[steps]]
name = "viaenv"
type = "shell"
run = 'printf "%s" "$VALUE"'
env = { VALUE = "{{ args.x }}" }

[[steps]]
name = "ask"
type = "query"
backend = "echo"
prompt = "{{ args.x }}"
"""
    )
    payload = 'it\'s "$(touch pwned)"'
    result = muxlang(tmp_path, "run", "wf.toml", f"x={payload}", "--output", "json")
    assert result.returncode == 0, result.stderr
    steps = json.loads(result.stdout)["steps"]
    assert steps["viaenv"]["output"] == payload
    assert steps["ask"]["output"] == payload
    assert not (tmp_path / "pwned").exists()
