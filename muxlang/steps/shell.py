"""The ``shell`` step type: ``run`` (a command for ``sh -c``) and ``cwd``."""

from __future__ import annotations

import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from muxlang.steps.base import Outcome, Shapes, StepError, StepKind, StepRunner
from muxlang.workflow import ShellStep, TemplateField


def _previewed(step: ShellStep) -> tuple[tuple[str, TemplateField], ...]:
    shown: list[tuple[str, TemplateField]] = [("run", step.run)]
    if step.cwd is not None:
        shown.append(("cwd", step.cwd))
    return tuple(shown)


def _combine_items(ran: list[dict[str, Any]]) -> dict[str, Any]:
    """A for_each shell step: the first failing item's exit code, every item's stderr."""
    codes = [r["exit_code"] for r in ran if r.get("exit_code")]
    return {
        "exit_code": codes[0] if codes else (0 if ran else None),
        "stderr": "\n".join(r["stderr"] for r in ran if r.get("stderr")),
    }


async def _run(
    step: ShellStep, values: Mapping[str, Any], runner: StepRunner, item: bool
) -> Outcome:
    command = runner.render("run", step.run, values)
    runner.note(step.name, values, command=command)
    cwd = _cwd(step, values, runner)
    env = runner.env(step, values)
    try:
        result = await runner.spawn(["sh", "-c", command], cwd=cwd, env=env)
    except StepError as exc:  # the shell could not be started
        return Outcome({"exit_code": None, "stderr": ""}, str(exc))
    stdout = text_of(result.stdout)
    stderr = result.stderr.decode("utf-8", errors="replace").rstrip("\r\n")
    fields = {"output": stdout, "exit_code": result.returncode, "stderr": stderr}
    if result.returncode == 0:
        return Outcome(fields)
    return Outcome(fields, _exit_message(result.returncode, stderr))


def _cwd(step: ShellStep, values: Mapping[str, Any], runner: StepRunner) -> Path:
    root = runner.project_root.resolve()
    if step.cwd is None:
        return root
    rendered = runner.render("cwd", step.cwd, values)
    if "\0" in rendered:
        raise StepError(f"cwd {rendered!r} contains a NUL byte")
    target = (root / rendered).resolve()
    if not target.is_relative_to(root):
        raise StepError(f"cwd {rendered!r} is outside the project root {str(root)!r}")
    if not target.is_dir():
        raise StepError(f"cwd {rendered!r} is not a directory")
    return target


STDERR_TAIL_LINES = 10
STDERR_TAIL_CHARS = 2000


def _exit_message(returncode: int, stderr: str) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        message = f"killed by {name}"
    else:
        message = f"exit code {returncode}"
    tail = stderr_tail(stderr)
    return f"{message}: {tail}" if tail else message


def stderr_tail(stderr: str) -> str:
    """The last lines of ``stderr``, short enough for an error message."""
    lines = stderr.strip().splitlines()[-STDERR_TAIL_LINES:]
    tail = "\n".join(lines)
    if len(tail) > STDERR_TAIL_CHARS:
        tail = "…" + tail[-STDERR_TAIL_CHARS:]
    return tail


def text_of(output: bytes | bytearray) -> str:
    """``output.decode("utf-8", "replace").rstrip("\\r\\n")`` without a copy of a big
    output: the newlines are dropped from the bytes (a UTF-8 sequence never holds
    one) and the rest is decoded in place."""
    end = len(output)
    while end and output[end - 1] in (10, 13):
        end -= 1
    return str(memoryview(output)[:end], "utf-8", "replace")


KIND = StepKind(
    name="shell",
    node=ShellStep,
    fields={"exit_code": "number", "stderr": "string"},
    defaults=lambda: {"exit_code": None, "stderr": ""},
    shell_fields=frozenset({"run", "cwd"}),
    previewed=_previewed,
    shapes=Shapes(mermaid=('["', '"]'), dot="box"),
    run=_run,
    combine_items=_combine_items,
)
