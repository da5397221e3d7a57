"""The grammar is built once and cached in the user's own cache directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from muxlang._cache import cache_dir, load_lark
from muxlang.toml import parser


def test_parser_is_a_singleton() -> None:
    assert parser.get_parser() is parser.get_parser()


def test_cache_lives_in_xdg_cache_home(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    assert cache_dir(env) == str(tmp_path / "muxlang")
    load_lark("probe", 'start: "a"', env, parser="lalr")
    assert (tmp_path / "muxlang").stat().st_mode & 0o077 == 0
    [stored] = (tmp_path / "muxlang").iterdir()
    assert stored.stat().st_mode & 0o777 == 0o600


def test_no_cache_when_the_directory_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    env = {"XDG_CACHE_HOME": str(blocker)}
    grammar = load_lark("probe", 'start: "a"', env, parser="lalr")
    assert grammar.parse("a") is not None


def test_a_fresh_process_writes_then_reuses_the_cache(tmp_path: Path) -> None:
    code = "import muxlang.toml as t; print(t.loads('a = [1, {b = 2}]'))"
    env = {"XDG_CACHE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "{'a': [1, {'b': 2}]}"
        assert result.stderr == ""
    assert len(list((tmp_path / "muxlang").iterdir())) == 1
