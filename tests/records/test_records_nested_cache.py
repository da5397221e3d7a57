"""Follow-ups of issues 21/16, through the real CLI: the nested steps of a ``uses``
call stopped half-way are kept and reused by ``--resume``; a repeating for_each
step resumes at its unfinished iteration; a nested query step honours its own
``cache``; and the exit-2 JSON carries ``run_id``."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import mux, write


def test_the_exit_2_json_has_a_null_run_id(project: Path) -> None:
    write(project, 'name = "bad"\n[[steps]]\nname = "a"\ntype = "shell"\nrun = "{{ nope }"\n')
    for output in ("json", "jsonl"):
        done = mux(project, "run", "wf.toml", "--output", output)
        assert done.returncode == 2, done.stderr
        doc = json.loads(done.stdout.splitlines()[-1])
        assert doc["success"] is False
        assert "run_id" in doc
        assert doc["run_id"] is None
    assert "no runs recorded yet" in mux(project, "runs").stderr  # nothing was recorded
