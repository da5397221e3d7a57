"""A failed step stops the run: no step that had not started yet starts after it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from muxlang.cli import cli

WORKFLOW = """
max_concurrent = {limit}

[[steps]]
name = "bad"
type = "shell"
run = "sleep 0.2; exit 1"

{others}
"""

OTHER = """
[[steps]]
name = "s{i}"
type = "shell"
run = "echo s{i} >> ran.log; sleep 0.5"
"""


@pytest.mark.parametrize("limit", [1, 2])
def test_no_independent_step_starts_after_a_failure(tmp_path: Path, limit: int) -> None:
    (tmp_path / ".muxlang").mkdir()
    # With max_concurrent=1 the file order is bad, s1, s2...: `bad` runs first alone.
    # With 2, `bad` and s1 run together; s2.. wait for a slot that `bad` frees.
    others = "".join(OTHER.format(i=i) for i in range(1, 5))
    (tmp_path / "wf.toml").write_text(textwrap.dedent(WORKFLOW.format(limit=limit, others=others)))

    result = CliRunner().invoke(cli, ["-C", str(tmp_path), "run", "wf.toml", "--output", "json"])

    assert result.exit_code == 1, result.output
    steps = json.loads(result.stdout)["steps"]
    assert steps["bad"]["status"] == "failed"
    ran = (tmp_path / "ran.log").read_text().split() if (tmp_path / "ran.log").exists() else []
    # only a step that was already running beside `bad` may have run
    assert ran == ([] if limit == 1 else ["s1"])
    for name in ("s2", "s3", "s4"):
        assert steps[name]["status"] == "skipped", (name, steps[name])
