"""The package a maintainer would publish: build the wheel, install it into a
fresh virtual environment (no checkout on its path), and use it as a user would
- run a bundled workflow from it, validate the bundled workflows, read its
metadata."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import muxlang

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

FAKE_LLM = """#!/bin/sh
# a stand-in CLI backend: answers with the first line of its prompt
printf 'explained: %s\\n' "$(printf '%s' "$1" | head -n 1)"
"""


def sh(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{argv}: {done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ directory of a fresh venv with only the built wheel installed."""
    base = tmp_path_factory.mktemp("wheel")
    dist = base / "dist"
    sh(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, REPO, cwd=base)
    (wheel,) = dist.glob("muxlang-*.whl")
    assert wheel.name == f"muxlang-{muxlang.__version__}-py3-none-any.whl"
    sh(sys.executable, "-m", "venv", base / "venv", cwd=base)
    sh(base / "venv" / "bin" / "pip", "install", "-q", wheel, cwd=base)
    return base / "venv" / "bin"


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MUXLANG_", "PYTHON"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), **extra)
    return env


def test_the_wheel_runs_a_bundled_workflow(installed: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    sh("git", "init", "-q", cwd=project)
    (project / "greet.py").write_text("def greet():\n    return 'hi'\n")
    fake = tmp_path / "fake-llm"
    fake.write_text(FAKE_LLM)
    fake.chmod(0o755)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[backends.fake]\ncommand = "{fake}"\n'
        '[roles.analyzer]\nbackends = ["fake"]\n'
        '[roles.coder]\nbackends = ["fake"]\n'
        '[roles.quick]\nbackends = ["fake"]\n'
    )
    env = clean_env(tmp_path / "home", MUXLANG_CONFIG=str(config))

    out = sh(installed / "muxlang", "run", "explain", "greet.py", cwd=project, env=env)

    assert out == "explained: Explain what `greet.py` does, for a developer new to this code:\n"


def test_the_wheel_bundles_every_stdlib_workflow_clean(installed: Path, tmp_path: Path) -> None:
    env = clean_env(tmp_path / "home")
    listing = json.loads(
        sh(installed / "muxlang", "workflows", "--output", "json", cwd=tmp_path, env=env)
    )
    names = sorted(entry["name"] for entry in listing if entry["source"] == "stdlib")
    shipped = sorted(path.stem for path in (REPO / "stdlib").glob("*.toml"))
    assert names == shipped
    sh(installed / "muxlang", "validate", "--strict", *names, cwd=tmp_path, env=env)


def test_the_wheel_carries_its_metadata(installed: Path, tmp_path: Path) -> None:
    script = (
        "import importlib.metadata as m, importlib.resources as r, json;"
        "d = m.metadata('muxlang');"
        "print(json.dumps({'version': d['Version'], 'license': d['License-Expression'],"
        " 'classifiers': d.get_all('Classifier'), 'urls': d.get_all('Project-URL'),"
        " 'licenses': [f.name for f in m.files('muxlang') if 'licenses' in str(f)],"
        " 'typed': r.files('muxlang').joinpath('py.typed').is_file()}))"
    )
    meta = json.loads(sh(installed / "python", "-c", script, cwd=tmp_path))
    assert meta["version"] == muxlang.__version__
    assert meta["license"] == "MIT"
    assert meta["licenses"] == ["LICENSE"]
    assert meta["typed"] is True
    assert "Typing :: Typed" in meta["classifiers"]
    assert any(url.startswith("Changelog, ") for url in meta["urls"])


def test_the_release_tag_users_are_told_matches_the_version() -> None:
    """docs tell pre-commit users a `rev:`; CHANGELOG has that version's entry."""
    tag = f"v{muxlang.__version__}"
    revs = re.findall(r"rev: (\S+)", (REPO / "docs" / "validation.md").read_text())
    assert revs == [tag]
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[?{re.escape(muxlang.__version__)}\]? ", changelog, re.M)
