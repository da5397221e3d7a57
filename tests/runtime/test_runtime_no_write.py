"""`muxlang run --no-write`: every step runs, apply steps show their diff and write nothing."""

from __future__ import annotations

import hashlib
import json
import sys
import textwrap
from pathlib import Path

from click.testing import CliRunner

from muxlang.cli import cli

EDIT = {"path": "app.py", "old": "return 1", "new": "return 2"}


def project(tmp_path: Path) -> Path:
    (tmp_path / ".muxlang").mkdir()
    (tmp_path / "app.py").write_text("def f():\n    return 1\n")
    llm = tmp_path / "edit-llm"
    llm.write_text(f"#!{sys.executable}\nprint({json.dumps(json.dumps(EDIT))})\n")
    llm.chmod(0o755)
    (tmp_path / "wf.toml").write_text(
        textwrap.dedent(
            f"""
            [backends.coder]
            command = "{llm}"

            [[steps]]
            name = "propose"
            type = "query"
            backend = "coder"
            prompt = "fix app.py"

            [[steps]]
            name = "apply"
            type = "apply"
            source = "propose"
            verify = "touch verified"
            """
        )
    )
    return tmp_path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_no_write_shows_the_diff_and_leaves_the_tree_alone(tmp_path: Path) -> None:
    root = project(tmp_path)
    before = digest(root / "app.py")

    result = CliRunner().invoke(cli, ["-C", str(root), "run", "wf.toml", "--no-write"])

    assert result.exit_code == 0, result.output
    assert "would be modified: app.py" in result.stdout
    assert "-    return 1\n+    return 2" in result.stdout
    assert digest(root / "app.py") == before
    assert not (root / "verified").exists(), "verify must not run when nothing was written"
    assert not (root / ".muxlang" / "journal").exists() or not any(
        (root / ".muxlang" / "journal").iterdir()
    )


def test_without_no_write_the_same_workflow_writes(tmp_path: Path) -> None:
    root = project(tmp_path)

    result = CliRunner().invoke(cli, ["-C", str(root), "run", "wf.toml"])

    assert result.exit_code == 0, result.output
    assert "return 2" in (root / "app.py").read_text()
    assert (root / "verified").exists()


def test_an_apply_without_any_verify_says_it_was_unchecked(tmp_path: Path) -> None:
    root = project(tmp_path)
    workflow = root / "wf.toml"
    workflow.write_text(workflow.read_text().replace('verify = "touch verified"\n', ""))

    result = CliRunner().invoke(cli, ["-C", str(root), "run", "wf.toml"])

    assert result.exit_code == 0, result.output
    assert "return 2" in (root / "app.py").read_text()
    assert "no verify command: the edits were applied unchecked" in result.stdout


def test_an_apply_with_verify_does_not_warn(tmp_path: Path) -> None:
    root = project(tmp_path)

    result = CliRunner().invoke(cli, ["-C", str(root), "run", "wf.toml"])

    assert result.exit_code == 0, result.output
    assert "unchecked" not in result.stdout
