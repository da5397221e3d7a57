"""Run records through the real CLI: what a user sees in `muxlang runs` / `muxlang show`."""

from __future__ import annotations

import json
from pathlib import Path

from records_support import clean_env, mux, mux_json, write

FAILING = """\
name = "demo"

[[steps]]
name = "hello"
type = "shell"
run = "echo hello; echo to-stderr >&2"

[[steps]]
name = "tests"
type = "shell"
run = "for i in $(seq 1 30); do echo line $i; done; echo boom >&2; exit 3"
depends_on = ["hello"]

[[steps]]
name = "after"
type = "shell"
run = "echo never"
depends_on = ["tests"]
"""


def test_a_run_is_listed_and_shown(project: Path) -> None:
    write(project, FAILING)
    done = mux(project, "run", "wf.toml")
    assert done.returncode == 1
    runs = mux_json(project, "runs")
    assert len(runs) == 1
    run = runs[0]
    assert run["workflow"] == "demo"
    assert run["status"] == "failed"
    assert run["steps"] == {"success": 1, "failed": 1, "skipped": 1}
    assert run["path"].endswith("wf.toml")
    assert len(run["file_hash"]) == 64

    table = mux(project, "runs")
    assert table.returncode == 0
    header, row = table.stdout.splitlines()
    assert header.split()[:3] == ["ID", "WORKFLOW", "STATUS"]
    assert row.startswith(run["id"])
    assert "demo" in row
    assert "failed" in row
    assert "1/1/1" in row

    shown = mux(project, "show")
    assert shown.returncode == 0
    assert f"run {run['id']}: demo failed" in shown.stdout
    assert "exit code 3: boom" in shown.stdout
    assert f"muxlang show {run['id']} tests" in shown.stdout


def test_show_step_gives_the_whole_output_stderr_and_command(project: Path) -> None:
    write(project, FAILING)
    mux(project, "run", "wf.toml")
    run_id = mux_json(project, "runs")[0]["id"]
    for args in ((run_id, "tests"), ("last", "tests"), (run_id[:8], "tests"), ("tests",)):
        shown = mux(project, "show", *args)
        assert shown.returncode == 0, shown.stderr
        text = shown.stdout
        assert "for i in $(seq 1 30)" in text  # the rendered command
        assert all(f"line {i}\n" in text for i in range(1, 31))  # the whole stdout
        assert "--- stderr ---\nboom" in text
        assert "exit code 3" in text
    data = mux_json(project, "show", run_id, "tests")
    assert data["output"].splitlines() == [f"line {i}" for i in range(1, 31)]
    assert data["stderr"] == "boom"
    assert data["exit_code"] == 3
    assert data["status"] == "failed"
    assert data["run"] == run_id


def test_show_unknown_step_or_run_says_so(project: Path) -> None:
    write(project, FAILING)
    mux(project, "run", "wf.toml")
    bad = mux(project, "show", "last", "test")
    assert bad.returncode == 2
    assert "no step 'test'" in bad.stderr
    assert "tests" in bad.stderr
    none = mux(project, "show", "zzzzzz")
    assert none.returncode == 1
    assert "no run 'zzzzzz'" in none.stderr


def test_no_history_yet_is_a_clear_message(project: Path) -> None:
    done = mux(project, "runs")
    assert done.returncode == 1
    assert "no runs recorded yet" in done.stderr
    assert "Traceback" not in done.stderr


def test_console_shows_the_tail_of_a_failed_step_and_names_show(project: Path) -> None:
    write(project, FAILING)
    done = mux(project, "run", "wf.toml")
    run_id = mux_json(project, "runs")[0]["id"]
    err = done.stderr
    assert "stdout, last 20 of 30 lines:" in err
    assert "│ line 11\n" in err
    assert "│ line 30\n" in err
    assert "│ line 10\n" not in err
    assert f"the rest: muxlang show {run_id} tests" in err


def test_no_record_and_runs_db_variable(project: Path, tmp_path: Path) -> None:
    write(project, FAILING)
    mux(project, "run", "wf.toml", "--no-record")
    assert not (project / ".muxlang" / "runs.db").exists()
    elsewhere = tmp_path / "elsewhere" / "history.db"
    env = clean_env(MUXLANG_RUNS_DB=str(elsewhere))
    mux(project, "run", "wf.toml", env=env)
    assert elsewhere.exists()
    assert not (project / ".muxlang" / "runs.db").exists()
    assert len(mux_json(project, "runs", env=env)) == 1


def test_the_store_keeps_itself_out_of_git(project: Path) -> None:
    write(project, FAILING)
    mux(project, "run", "wf.toml")
    ignore = (project / ".muxlang" / ".gitignore").read_text()
    assert "runs.db" in ignore.splitlines()
    assert "runs.db-*" in ignore.splitlines()


def test_runs_filters_and_limits_newest_first(project: Path) -> None:
    write(project, FAILING)
    write(
        project, 'name = "ok"\n[[steps]]\nname = "a"\ntype = "shell"\nrun = "echo a"\n', "ok.toml"
    )
    for _ in range(3):
        mux(project, "run", "wf.toml")
        mux(project, "run", "ok.toml")
    runs = mux_json(project, "runs")
    assert [r["workflow"] for r in runs] == ["ok", "demo"] * 3
    ids = [r["id"] for r in runs]
    assert ids == sorted(ids, reverse=True)
    assert [r["status"] for r in mux_json(project, "runs", "--workflow", "ok")] == ["success"] * 3
    assert len(mux_json(project, "runs", "--limit", "2")) == 2


def test_prune_keep_and_older_than(project: Path) -> None:
    write(project, 'name = "ok"\n[[steps]]\nname = "a"\ntype = "shell"\nrun = "echo a"\n')
    for _ in range(4):
        mux(project, "run", "wf.toml")
    newest = mux_json(project, "runs")[0]["id"]
    assert mux_json(project, "runs", "prune", "--keep", "1") == {"deleted": 3, "kept": 1}
    assert [r["id"] for r in mux_json(project, "runs")] == [newest]
    assert mux_json(project, "runs", "prune", "--older-than", "30d") == {"deleted": 0, "kept": 1}
    bad = mux(project, "runs", "prune", "--older-than", "soon")
    assert bad.returncode == 2
    assert "invalid age" in bad.stderr
    nothing = mux(project, "runs", "prune")
    assert nothing.returncode == 2
    assert "--keep" in nothing.stderr


def test_for_each_items_are_recorded_one_by_one(project: Path) -> None:
    write(
        project,
        """\
        name = "loop"
        [[steps]]
        name = "each"
        type = "shell"
        for_each = "['a', 'b', 'c']"
        run = "echo item-{{ item }}"
        """,
    )
    assert mux(project, "run", "wf.toml").returncode == 0
    data = mux_json(project, "show", "last", "each")
    assert [(i["index"], i["item"], i["output"], i["command"]) for i in data["items"]] == [
        (0, "a", "item-a", "echo item-a"),
        (1, "b", "item-b", "echo item-b"),
        (2, "c", "item-c", "echo item-c"),
    ]
    text = mux(project, "show", "last", "each").stdout
    assert "each item 2 (run" in text
    assert "item-b" in text


def test_large_outputs_are_kept_whole(project: Path) -> None:
    write(
        project,
        """\
        name = "big"
        [[steps]]
        name = "big"
        type = "shell"
        run = "seq 1 200000"
        """,
    )
    assert mux(project, "run", "wf.toml", "--quiet").returncode == 0
    data = mux_json(project, "show", "last", "big")
    assert data["output"] == "\n".join(str(i) for i in range(1, 200001))
    # compressed on disk: far smaller than the 1.3 MB of text
    assert (project / ".muxlang" / "runs.db").stat().st_size < 1_000_000


def test_show_json_of_a_run_lists_steps(project: Path) -> None:
    write(project, FAILING)
    mux(project, "run", "wf.toml")
    data = mux_json(project, "show")
    assert [(s["name"], s["status"]) for s in data["steps"]] == [
        ("hello", "success"),
        ("tests", "failed"),
        ("after", "skipped"),
    ]
    assert data["steps"][2]["reason"] == "dependency 'tests' failed"
    json.dumps(data)  # plain JSON


def test_init_keeps_the_run_records_out_of_git(project: Path) -> None:
    done = mux(project, "init")
    assert done.returncode == 0, done.stderr
    ignored = (project / ".muxlang" / ".gitignore").read_text().splitlines()
    assert "runs.db" in ignored
    assert "runs.db-*" in ignored


def test_the_schema_knows_the_new_keys(project: Path) -> None:
    schema = json.loads(mux(project, "schema", "workflow").stdout)
    text = json.dumps(schema)
    for key in ('"max_tokens"', '"max_cost"', '"cache"'):
        assert key in text
