"""Fixtures for the apply tests: real git repositories with uncommitted user work."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.apply.apply_support import git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repo with committed files, then uncommitted user edits in some of them,
    an untracked file, an executable script and a CRLF file."""
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q")
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("def add(a, b):\n    return a - b\n\nprint(add(1, 2))\n")
    (root / "src" / "util.py").write_text("X = 1\n")
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    (root / "README.md").write_text("# demo\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    # the user's uncommitted work, which no rollback may ever lose
    (root / "src" / "app.py").write_text(
        "def add(a, b):\n    return a - b\n\n# user's uncommitted note\nprint(add(1, 2))\n"
    )
    (root / "README.md").write_text("# demo\n\nuncommitted README work\n")
    (root / "notes.txt").write_text("untracked user notes\n")
    (root / "private.key").write_text("secret\n")
    (root / "private.key").chmod(0o600)
    return root
