"""A prompt is never read as an option by a CLI backend (issue 14 item 12).

The prompt is the last argv item; a gateway client (or a for_each item, or an
LLM's answer fed to the next step) that sends ``--dangerously-skip-permissions``
must reach the program as the prompt, not as that flag. ``optparse-llm`` (in
tests/fakes/bin) parses its options like claude/codex/gemini/ollama do.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest
from rel_support import gateway_project, run_muxlang, start_gateway, subprocess_env

from muxlang.runtime.backends.cli import prompt_argument

CONFIG = """
[backends.tool]
command = "optparse-llm"
args = ["-p"]
max_retries = 0

[backends.piped]
command = "optparse-llm"
args = ["-p"]
prompt_via = "stdin"
max_retries = 0
"""

FLAG = "--dangerously-skip-permissions"


def _project(tmp_path: Path) -> tuple[Path, Path]:
    return gateway_project(tmp_path, CONFIG)


@pytest.mark.parametrize("prompt", [FLAG, "-rf /", "--model=evil", "-", "--"])
def test_run_passes_a_dash_prompt_as_the_prompt(tmp_path: Path, prompt: str) -> None:
    root, home = _project(tmp_path)
    step = '[[steps]]\nname = "ask"\ntype = "query"\nbackend = "tool"\n'
    (root / "wf.toml").write_text(step + f"prompt = {json.dumps(prompt)}\n")
    done = run_muxlang(root, "run", "wf.toml", "--output", "json", env=subprocess_env(home))
    assert done.returncode == 0, done.stdout + done.stderr
    output = json.loads(done.stdout)["steps"]["ask"]["output"]
    assert not output.startswith("DANGER"), output
    assert output.startswith("prompt="), output
    assert output.strip().endswith(prompt), output


def _start_gateway(root: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    return start_gateway(root, env, stdout=subprocess.DEVNULL)


def test_a_gateway_clients_flag_is_not_a_flag(tmp_path: Path) -> None:
    root, home = _project(tmp_path)
    proc, url = _start_gateway(root, subprocess_env(home))
    try:
        for model in ("tool", "piped"):
            answer = httpx.post(
                url + "/v1/chat/completions",
                json={"model": model, "messages": [{"role": "user", "content": FLAG}]},
                timeout=60,
            )
            assert answer.status_code == 200, answer.text
            text = answer.json()["choices"][0]["message"]["content"]
            assert "DANGER" not in text, text
            assert text.startswith("prompt="), text
            assert text.strip().endswith(FLAG), text
            anthropic = httpx.post(
                url + "/v1/messages",
                json={
                    "model": model,
                    "max_tokens": 100,
                    "messages": [{"role": "user", "content": FLAG}],
                },
                timeout=60,
            )
            assert anthropic.status_code == 200, anthropic.text
            text = anthropic.json()["content"][0]["text"]
            assert "DANGER" not in text, text
            assert text.strip().endswith(FLAG), text
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def test_prompt_argument() -> None:
    assert prompt_argument(FLAG) == " " + FLAG
    assert prompt_argument("-") == " -"
    assert prompt_argument("hello -x") == "hello -x"
    assert prompt_argument("") == ""
