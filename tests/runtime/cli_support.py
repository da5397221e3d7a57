"""The real ``muxlang`` command line on a project in a test's directory: in
process (click's runner), or as a subprocess stopped with Ctrl-C."""

from __future__ import annotations

import json
import signal
import textwrap
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from test_runtime_processes import processes_with
from test_runtime_sigint import launch, signal_when, wait_for

from muxlang.cli import cli


def write(root: Path, body: str, name: str = "wf.toml") -> Path:
    """``body`` (dedented) as ``root/name``, in a project (``root/.muxlang``)."""
    (root / ".muxlang").mkdir(exist_ok=True)
    path = root / name
    path.write_text(textwrap.dedent(body))
    return path


def invoke(root: Path, command: str, *args: str) -> Result:
    """``muxlang -C root COMMAND ARGS``; an argument ``wf.toml`` names ``root/wf.toml``."""
    args = tuple(str(root / a) if a == "wf.toml" else a for a in args)
    return CliRunner().invoke(cli, ["-C", str(root), command, *args], catch_exceptions=False)


def run_json(root: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """``muxlang run wf.toml --output json ARGS``: the exit code and the report."""
    result = invoke(root, "run", "wf.toml", "--output", "json", *args)
    return result.exit_code, json.loads(result.stdout)


def ctrl_c_when_running(root: Path, mark: str) -> dict[str, Any]:
    """``muxlang run wf.toml --output json`` as a subprocess, Ctrl-C once a process
    carrying ``mark`` runs; it must exit 130 and leave no such process: its report."""
    proc = launch(root, "--output", "json")
    stdout, stderr = signal_when(proc, signal.SIGINT, lambda: wait_for(mark, 1))
    assert proc.returncode == 130, stderr
    report: dict[str, Any] = json.loads(stdout)
    assert processes_with(mark) == []
    return report
