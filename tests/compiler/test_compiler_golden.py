"""Golden tests: every broken workflow under broken/ yields exactly the diagnostics
(position and code) its ``.expected`` file lists; the seed README's examples
validate cleanly with the seed's config.

Set ``MUXLANG_UPDATE_GOLDEN=1`` to rewrite the ``.expected`` files (then review
the diff: a golden file is only as good as the eyes that checked it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from muxlang.compiler.project import validate_config, validate_workflow
from muxlang.diagnostics import CODES

HERE = Path(__file__).parent
BROKEN = HERE / "broken"
SEED = HERE / "seed"
UPDATE = os.environ.get("MUXLANG_UPDATE_GOLDEN") == "1"

CASES = sorted(p for p in BROKEN.glob("*.toml") if p.parent.name == "broken")
CONFIG_CASES = sorted((BROKEN / "config").glob("*.toml"))


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    """The seed's config.toml as the user layer; no real home directory."""
    return {"MUXLANG_CONFIG": str(SEED / "config.toml"), "HOME": str(tmp_path)}


def _found(diagnostics) -> list[str]:
    return [f"{d.span.line}:{d.span.column} {d.code}" for d in diagnostics]


def _expected(path: Path, found: list[str]) -> list[str]:
    golden = path.with_suffix(".expected")
    if UPDATE:
        golden.write_text("".join(line + "\n" for line in found), encoding="utf-8")
    lines = golden.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_broken_workflow_matches_golden(path: Path, tmp_path: Path, environ) -> None:
    found = validate_workflow(path, tmp_path, environ=environ)
    assert all(d.file == str(path) for d in found)
    assert _found(found) == _expected(path, _found(found))


@pytest.mark.parametrize("path", CONFIG_CASES, ids=[p.stem for p in CONFIG_CASES])
def test_broken_config_matches_golden(path: Path, tmp_path: Path, environ) -> None:
    found = validate_config(path, tmp_path, environ=environ)
    assert _found(found) == _expected(path, _found(found))


def test_every_code_has_a_broken_example() -> None:
    covered: set[str] = set()
    for path in [*CASES, *CONFIG_CASES]:
        for line in path.with_suffix(".expected").read_text(encoding="utf-8").splitlines():
            if line.strip():
                covered.add(line.split()[-1])
    assert covered >= set(CODES)
    assert len(CASES) + len(CONFIG_CASES) >= 40


SEED_EXAMPLES = sorted(p for p in SEED.glob("*.toml") if p.name != "config.toml")


@pytest.mark.parametrize("path", SEED_EXAMPLES, ids=[p.stem for p in SEED_EXAMPLES])
def test_seed_examples_validate_cleanly(path: Path, tmp_path: Path, environ) -> None:
    assert validate_workflow(path, tmp_path, environ=environ) == []


def test_seed_config_validates_cleanly(tmp_path: Path, environ) -> None:
    assert validate_config(SEED / "config.toml", tmp_path, environ=environ) == []
