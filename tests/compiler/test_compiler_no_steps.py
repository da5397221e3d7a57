"""A workflow with no steps: `validate` warns (MUX008, a warning), once and only
when the file really has no steps (not when its steps are broken)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from muxlang.cli import cli
from muxlang.compiler.project import validate_workflow
from muxlang.diagnostics import Severity

SEED = Path(__file__).parent / "seed"


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return {"MUXLANG_CONFIG": str(SEED / "config.toml"), "HOME": str(tmp_path)}


def check(tmp_path: Path, environ: dict[str, str], text: str):
    path = tmp_path / "wf.toml"
    path.write_text(text, encoding="utf-8")
    return validate_workflow(path, tmp_path, environ=environ)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('name = "empty"\ndescription = "nothing yet"\n', (1, 8)),
        ("steps = []\n", (1, 9)),
        ('description = "d"\n', (1, 1)),
    ],
)
def test_no_steps_is_a_warning(tmp_path: Path, environ, text: str, where) -> None:
    [d] = check(tmp_path, environ, text)
    assert d.code == "MUX008"
    assert d.severity is Severity.WARNING
    name = "empty" if "empty" in text else "wf"
    assert d.message == f"workflow `{name}` has no steps"
    assert (d.span.line, d.span.column) == where
    assert "[[steps]]" in (d.hint or "")


@pytest.mark.parametrize(
    "text",
    [
        '[[steps]]\nname = "a"\ntype = "bogus"\n',  # a step that could not be built
        'steps = "x"\n',  # steps of the wrong type: MUX003 says it
    ],
)
def test_broken_steps_are_not_called_missing(tmp_path: Path, environ, text: str) -> None:
    found = check(tmp_path, environ, text)
    assert found
    assert all(d.code != "MUX008" for d in found)


def test_validate_exits_0_but_strict_fails(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "wf.toml").write_text('name = "empty"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("MUXLANG_CONFIG", str(SEED / "config.toml"))
    runner = CliRunner()
    plain = runner.invoke(cli, ["validate", "wf.toml"], catch_exceptions=False)
    assert plain.exit_code == 0
    assert "warning[MUX008]: workflow `empty` has no steps" in plain.stdout
    strict = runner.invoke(cli, ["validate", "--strict", "wf.toml"], catch_exceptions=False)
    assert strict.exit_code == 1
