"""Helpers for the apply tests: tree snapshots, git, a scripted QueryService."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from muxlang.apply import ApplyRequest
from muxlang.llm import BackendError, ChatRequest, ErrorKind, QueryResult
from muxlang.source import UNKNOWN_SPAN
from muxlang.workflow import ApplyStep, Ref


def snapshot(root: Path) -> dict[str, tuple[str, int] | str]:
    """Every entry under ``root`` (but .git internals): hash+mode of files, link targets,
    and directories; so 'exactly as before' can be asserted."""
    result: dict[str, tuple[str, int] | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        if rel_dir.parts[:1] == (".git",):
            continue
        for name in dirnames:
            p = Path(dirpath) / name
            if p.is_symlink():
                result[(rel_dir / name).as_posix()] = "link->" + os.readlink(p)
            else:
                result[(rel_dir / name).as_posix() + "/"] = "dir"
        for name in filenames:
            p = Path(dirpath) / name
            rel = (rel_dir / name).as_posix()
            if p.is_symlink():
                result[rel] = "link->" + os.readlink(p)
            else:
                st = p.lstat()
                result[rel] = (hashlib.sha256(p.read_bytes()).hexdigest(), stat.S_IMODE(st.st_mode))
    # muxlang's run records (docs/history.md) are muxlang's state, not the tree's
    # (and a run creates `.muxlang/` to hold them when there was none)
    recorded = [name for name in RECORDS if result.pop(name, None) is not None]
    if recorded and not any(k.startswith(".muxlang/") and k != ".muxlang/" for k in result):
        result.pop(".muxlang/", None)
    return result


#: what every recorded run writes (the store creates `.muxlang/` and its .gitignore)
RECORDS = (
    ".muxlang/runs.db",
    ".muxlang/runs.db-wal",
    ".muxlang/runs.db-shm",
    ".muxlang/.gitignore",
)


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
        },
    ).stdout


@dataclass
class ScriptedQuery:
    """A QueryService that answers from a list and records what it was asked."""

    answers: list[str | BaseException]
    calls: list[tuple[str, ChatRequest, str]] = field(default_factory=list)

    async def query(
        self, target: str, request: ChatRequest, *, kind: Literal["role", "backend"]
    ) -> QueryResult:
        self.calls.append((target, request, kind))
        if not self.answers:
            raise BackendError(target, ErrorKind.SERVER, "no scripted answer left")
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return QueryResult(output=answer, outputs={target: answer}, backend=target)


def make_step(**kw: Any) -> ApplyStep:
    return ApplyStep(
        name=kw.pop("name", "apply"),
        type="apply",
        span=UNKNOWN_SPAN,
        name_span=UNKNOWN_SPAN,
        source=Ref("fix", UNKNOWN_SPAN),
        **kw,
    )


def make_request(
    root: Path,
    output: str,
    *,
    verify: str | None = None,
    answers: list[str | BaseException] | None = None,
    env: Mapping[str, str] | None = None,
    dry_run: bool = False,
    prompt: str = "Fix the bug in src/app.py",
    render: Any = None,
    **step_kw: Any,
) -> tuple[ApplyRequest, ScriptedQuery]:
    query = ScriptedQuery(list(answers or []))
    request = ApplyRequest(
        step=make_step(**step_kw),
        project_root=root,
        source_output=output,
        source_request=ChatRequest.from_prompt(prompt, system="You fix code."),
        source_target="fixer",
        source_kind="role",
        query=query,
        verify_command=verify,
        env=dict(env if env is not None else os.environ),
        render_retry_prompt=render,
        dry_run=dry_run,
    )
    return request, query
