"""The repository's examples run as their comments promise (from a copy of examples/)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from muxlang.cli import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    (tmp_path / ".muxlang").mkdir()
    (tmp_path / "README.md").write_text("# demo\n\nA small project.\n")
    return tmp_path


def run_example(project: Path, name: str, *args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(
        cli,
        ["-C", str(project), "run", f"examples/{name}.toml", "--output", "json", *args],
        env={"HOME": str(project), "XDG_CONFIG_HOME": str(project / ".config")},
        catch_exceptions=False,
    )
    return result.exit_code, json.loads(result.stdout)


def test_hello(project: Path) -> None:
    code, doc = run_example(project, "hello")
    assert code == 0, doc
    assert doc["steps"]["read"]["output"].startswith("# demo")
    assert doc["steps"]["summary"]["output"].startswith("[stand-in]")
    assert doc["steps"]["summary"]["backend"] == "standin"


def test_status_functions(project: Path) -> None:
    code, doc = run_example(project, "status-functions")
    assert code == 0
    steps = doc["steps"]
    assert steps["on-failure"]["output"] == "check failed with exit code 3"
    assert steps["on-success"]["status"] == "skipped"
    assert steps["cleanup"]["output"] == "cleanup ran"


def test_for_each(project: Path) -> None:
    code, doc = run_example(project, "for-each")
    assert code == 0, doc
    results = doc["steps"]["count"]["results"]
    hello = [r for r in results if r["item"] == "examples/hello.toml"]
    assert hello[0]["status"] == "skipped"
    assert doc["steps"]["total"]["output"].endswith(f"lines in {len(results) - 1} files")


def test_fix_and_verify(project: Path) -> None:
    code, doc = run_example(project, "fix-and-verify")
    assert code == 0, doc
    apply = doc["steps"]["apply"]
    assert apply["attempts"] == 2
    assert apply["files"] == ["build/demo/calc.py"]
    assert (project / "examples/demo/calc.py").read_text() != (
        project / "build/demo/calc.py"
    ).read_text()
