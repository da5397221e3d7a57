"""Checking a workflow pauses Python's cyclic collector and always resumes it.

The pause makes a big workflow's check linear (docs/performance.md); leaving the
collector off afterwards would let a long-lived process (``muxlang lsp``, a
``run`` that validates first) grow without bound, so these tests pin the resume.
"""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from muxlang._gc import paused_gc
from muxlang.compiler.project import Target, validate, validate_workflow

WORKFLOW = """\
name = "w"

[[steps]]
name = "a"
type = "shell"
run = "echo {{ args.x | default('hi') }}"

[[steps]]
name = "b"
type = "shell"
run = "echo {{ steps.a.output | trim }}"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".muxlang" / "workflows").mkdir(parents=True)
    (tmp_path / ".muxlang" / "workflows" / "w.toml").write_text(WORKFLOW)
    return tmp_path


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_validate_resumes_the_collector(
    project: Path, collector_on: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = project / ".muxlang" / "workflows" / "w.toml"
    seen: list[bool] = []
    from muxlang.compiler import project as module

    original = module._validate_workflow

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(gc.isenabled())
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "_validate_workflow", spy)
    result = validate([Target(path, "workflow")], project)
    assert result.diagnostics == []
    assert seen == [False]  # paused while checking
    assert gc.isenabled()  # and on again after


def test_a_failing_check_still_resumes_the_collector(project: Path, collector_on: None) -> None:
    path = project / ".muxlang" / "workflows" / "w.toml"
    found = validate_workflow(path, project, text="name = \n")
    assert [d.code for d in found if d.is_error]
    assert gc.isenabled()
    with pytest.raises(RuntimeError), paused_gc():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_collector_the_caller_disabled_stays_disabled(project: Path) -> None:
    was = gc.isenabled()
    gc.disable()
    try:
        path = project / ".muxlang" / "workflows" / "w.toml"
        assert validate_workflow(path, project) == []
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()


def test_validate_process_freezes_the_heap_at_exit_and_still_prints_everything(
    project: Path,
) -> None:
    # the handler registered first runs at exit: it sees the heap frozen and the
    # collector on, and buffered output written before exit still arrives
    code = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0, gc.isenabled()))\n"
        "sys.stdout.write('x' * 100000)\n"
        "sys.argv = ['muxlang', '-C', sys.argv[1], 'validate']\n"
        "from muxlang.cli import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(project)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("x" * 100000)
    assert "No problems found in 1 file." in done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("frozen True True")
