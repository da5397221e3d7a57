"""The shipped VS Code problem matcher (editors/vscode-problem-matcher.json)
matches every diagnostic line real `muxlang validate` prints, and nothing else,
with the right file, line, column, severity, code and message."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from muxlang.rules import RULES

MATCHER = Path(__file__).parents[2] / "editors" / "vscode-problem-matcher.json"


def python_regex(js: str) -> re.Pattern[str]:
    """The matcher's JavaScript regex as Python's: this one uses only the syntax
    both share (groups, classes, escapes, lazy `+?`, `{3}`); refuse anything else."""
    assert not re.search(r"\(\?<|\(\?[=!]|\\[pPk]", js), "JS-only syntax"
    return re.compile(js)


def test_matcher_matches_every_diagnostic_line_of_real_output(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    flows = tmp_path / ".muxlang" / "workflows"
    flows.mkdir(parents=True)
    # every rule's bad example (errors and warnings), as the rule tests write it
    # (example.toml), in a directory with a non-ASCII name
    files = []
    for code, rule in RULES.items():
        path = flows / "exemplés" / code / "example.toml"
        path.parent.mkdir(parents=True)
        path.write_text(rule.bad, encoding="utf-8")
        files.append(str(path.relative_to(tmp_path)))
    env = {**os.environ, "HOME": str(tmp_path), "NO_COLOR": "1"}
    env.pop("MUXLANG_CONFIG", None)
    run = [sys.executable, "-m", "muxlang", "validate", *files]
    text = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    as_json = subprocess.run(
        [*run, "--format", "json"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert text.returncode == as_json.returncode == 1
    expected = [
        (d["file"], d["line"], d["column"], d["severity"], d["code"], d["message"])
        for d in json.loads(as_json.stdout)
    ]
    assert {e[4] for e in expected} >= set(RULES)

    spec = json.loads(MATCHER.read_text(encoding="utf-8"))["problemMatcher"]
    pattern = spec["pattern"]
    regex = python_regex(pattern["regexp"])
    found = []
    for line in text.stdout.splitlines():
        match = regex.match(line)
        if match is None:
            continue
        group = match.group
        found.append(
            (
                group(pattern["file"]),
                int(group(pattern["line"])),
                int(group(pattern["column"])),
                group(pattern["severity"]),
                group(pattern["code"]),
                group(pattern["message"]),
            )
        )
    assert found == expected
    assert spec["fileLocation"] == ["relative", "${workspaceFolder}"]


def test_docs_show_the_shipped_matcher() -> None:
    docs = (MATCHER.parents[1] / "docs" / "validation.md").read_text(encoding="utf-8")
    regexp = json.loads(MATCHER.read_text(encoding="utf-8"))["problemMatcher"]["pattern"]["regexp"]
    assert f'"regexp": {json.dumps(regexp)},' in docs
    assert "`$gcc` does **not** match" in docs
