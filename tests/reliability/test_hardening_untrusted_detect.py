"""Team ``detect`` globs on a hostile tree finish promptly (issue 14 item 8).

A repository can commit symlink loops; a ``**`` glob that follows directory
links never ends on them. ``validate``, ``graph`` and ``run`` all detect the team.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rel_support import run_muxlang, subprocess_env

from muxlang.config.resolve import _matches

WORKFLOW = """
[[steps]]
name = "show"
type = "shell"
run = "echo team={{ team }}"
"""


def _loopy_tree(root: Path) -> None:
    """Several symlink loops at several depths: following them branches without end."""
    (root / "src" / "deep" / "er").mkdir(parents=True)
    (root / "src" / "deep" / "er" / "main.rs").write_text("fn main() {}\n")
    for directory in (root, root / "src", root / "src" / "deep", root / "src" / "deep" / "er"):
        (directory / "self").symlink_to(".")
        (directory / "up").symlink_to("..")
        (directory / "top").symlink_to(root)
    (root / "outside").symlink_to("/")


@pytest.mark.parametrize("command", ["validate", "graph", "run"])
def test_detect_globs_finish_on_symlink_loops(tmp_path: Path, command: str) -> None:
    root = tmp_path / "p"
    (root / ".git").mkdir(parents=True)
    _loopy_tree(root)
    (root / ".muxlang").mkdir()
    (root / ".muxlang" / "config.toml").write_text(
        '[teams.never]\ndetect = ["**/*.nomatch", "**/self/**/x"]\n\n'
        '[teams.rust]\ndetect = ["**/main.rs"]\n'
    )
    (root / "wf.toml").write_text(WORKFLOW)
    home = tmp_path / "home"
    home.mkdir()
    done = run_muxlang(root, command, "wf.toml", env=subprocess_env(home), cwd=root, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    if command == "run":
        # the real file deep in the tree is still found, through no link
        assert b"team=rust" in done.stdout, done.stdout + done.stderr


def test_globs_keep_their_meaning(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c.py").write_text("")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.py").write_text("")
    (tmp_path / "linked").symlink_to(tmp_path / "a")
    assert _matches(tmp_path, "**/c.py")
    assert _matches(tmp_path, "a/*/c.py")
    assert _matches(tmp_path, "a/**/*.py")
    assert _matches(tmp_path, "*/b")
    assert not _matches(tmp_path, "**/x.py")  # hidden directories: as glob does
    assert _matches(tmp_path, ".hidden/*.py")
    assert not _matches(tmp_path, "linked/**/d.py")
    assert not _matches(tmp_path, "../**")
    assert not _matches(tmp_path, "/etc/**")


def test_a_huge_tree_stops_at_the_documented_bound(tmp_path: Path) -> None:
    for i in range(300):
        (tmp_path / f"f{i:03d}.txt").write_text("")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "target.rs").write_text("")
    assert _matches(tmp_path, "**/target.rs", limit=10_000)
    # past the bound the glob gives up: no match rather than an endless walk
    assert not _matches(tmp_path, "**/target.rs", limit=100)
