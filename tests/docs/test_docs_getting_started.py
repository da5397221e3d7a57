"""docs/getting-started.md works word for word: every command of its sections 2-5
runs, in a fresh git repository holding this checkout's examples, with the
outcome the page describes (section 1, install and hello, is what
tests/examples runs; pip is not run here)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "getting-started.md"


def commands(section: str) -> list[str]:
    """The command lines of the ```bash blocks of the section whose heading starts
    with ``section`` (comments dropped)."""
    text = PAGE.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(section)}.*?(?=^## |\Z)", text, re.M | re.S)
    assert match, f"no section {section}"
    lines = []
    for block in re.findall(r"^```bash\n(.*?)^```", match.group(0), re.M | re.S):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("source "):
                lines.append(line)
    return lines


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gs") / "muxlang"
    shutil.copytree(REPO / "examples", root / "examples")
    for name in ("README.md", "pyproject.toml", "muxlang/cli/__init__.py"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, root / name)
    env = environ(root)
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "one"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True)
    (root / "README.md").write_text((root / "README.md").read_text() + "\nprint('debug')\n")
    subprocess.run(["git", "commit", "-qam", "two"], cwd=root, env=env, check=True)
    return root


def environ(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MUXLANG_", "GIT_"))}
    env.pop("OPENAI_API_KEY", None)
    bin_dir = str(Path(sys.executable).parent)  # the venv's `muxlang`, as after `source`
    env.update(
        PATH=os.pathsep.join([bin_dir, "/usr/bin", "/bin"]),
        HOME=str(root.parent / "home"),
        XDG_CONFIG_HOME=str(root.parent / "home" / ".config"),
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
    )
    return env


def sh(root: Path, line: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        line, shell=True, cwd=root, env=environ(root), capture_output=True, text=True, timeout=120
    )


def test_the_page_shows_the_commands_this_test_runs() -> None:
    assert commands("2.") == [
        "muxlang validate examples/hello.toml",
        "muxlang run examples/hello.toml --dry-run",
        "muxlang graph examples/roles.toml --format mermaid",
    ]
    assert len(commands("3.")) == 2
    assert commands("4.") == ["muxlang init", "muxlang doctor"]
    assert commands("5.")[0] == "muxlang workflows"


def test_sections_2_to_5_word_for_word(checkout: Path) -> None:
    for line in commands("2."):
        done = sh(checkout, line)
        assert done.returncode == 0, (line, done.stderr)

    explain, review = (sh(checkout, line) for line in commands("3."))
    assert explain.returncode == 0, explain.stderr
    assert explain.stdout == (
        "[stand-in] The `muxlang` command line. It defines `LazyGroup`, "
        "`unknown_command_message`, `cli`, `main`.\n"
    )
    assert review.returncode == 0, review.stderr
    assert review.stdout.startswith("[stand-in review] 1 file(s), +2 -0 lines.")
    assert "debug print left in" in review.stdout

    init, doctor = (sh(checkout, line) for line in commands("4."))
    assert init.returncode == 0, init.stderr
    assert (checkout / ".muxlang" / "config.toml").is_file()
    assert doctor.returncode == 1  # no real backend on this machine
    assert "backend `openai`: environment variable OPENAI_API_KEY is not set" in doctor.stderr

    results = {line: sh(checkout, line) for line in commands("5.")}
    workflows = results["muxlang workflows"]
    assert workflows.returncode == 0
    for name in ("check", "review", "fix", "explain", "commit-message", "test-gen"):
        assert re.search(rf"^{name}\s", workflows.stdout, re.M), name
    assert results["muxlang run review"].returncode == 0  # nothing uncommitted: no one asked
    explain_real = results["muxlang run explain muxlang/cli/__init__.py"]
    assert explain_real.returncode == 1
    assert "role `analyzer` (fallback): every backend failed" in explain_real.stderr
    assert "openai: environment variable OPENAI_API_KEY is not set" in explain_real.stderr
