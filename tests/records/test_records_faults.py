"""Records under faults: secrets, a killed run, two runs at once, a broken database.

Every test drives the real CLI in its own process; the database is read back
through the CLI, and for secrets as raw bytes (the database, its WAL and its
shared-memory file).
"""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path

from records_support import (
    FAKE_LLM,
    PYTHON,
    clean_env,
    mux,
    mux_json,
    run_to_kill,
    start_run,
    wait_for_pid,
    write,
)

TOKEN = "tok-very-secret-1234567"
PART = "endpoint-part-98765"
LEAK = "echo token=$DEPLOY_TOKEN part=$MYAPP_PART arg={{ args.key }}; echo $DEPLOY_TOKEN >&2"


def _db_bytes(project: Path) -> bytes:
    data = b""
    for suffix in ("", "-wal", "-shm"):
        path = project / ".muxlang" / f"runs.db{suffix}"
        if path.exists():
            data += path.read_bytes()
    return data


def test_secrets_never_reach_the_database(project: Path) -> None:
    write(
        project,
        f"""\
        name = "leaky"

        [args.key]
        default = "none"

        [backends.echo]
        command = "{FAKE_LLM}"
        args = ["--mode", "echo", "--text", "${{MYAPP_PART}}"]

        [[steps]]
        name = "leak"
        type = "shell"
        run = "{LEAK}"

        [[steps]]
        name = "ask"
        type = "query"
        backend = "echo"
        prompt = "say {{{{ env.MYAPP_PART }}}} and {{{{ env.DEPLOY_TOKEN }}}}"

        [[steps]]
        name = "fail"
        type = "shell"
        run = "echo $DEPLOY_TOKEN; exit 1"
        depends_on = ["leak", "ask"]
        """,
    )
    env = clean_env(DEPLOY_TOKEN=TOKEN, MYAPP_PART=PART)
    done = mux(project, "run", "wf.toml", f"key={TOKEN}", env=env)
    assert done.returncode == 1, done.stderr
    raw = _db_bytes(project)
    assert raw
    assert TOKEN.encode() not in raw
    assert PART.encode() not in raw
    leak = mux_json(project, "show", "last", "leak", env=env)
    assert leak["output"] == "token=*** part=*** arg=***"
    assert leak["stderr"] == "***"
    ask = mux_json(project, "show", "last", "ask", env=env)
    assert ask["prompt"] == "say *** and ***"
    run = mux_json(project, "runs", env=env)[0]
    assert run["args"] == {"key": "***"}
    # the failed step's output in the error too
    assert TOKEN not in mux(project, "show", env=env).stdout


def test_a_killed_run_is_interrupted_with_its_finished_steps_kept(project: Path) -> None:
    write(
        project,
        """\
        name = "killme"

        [[steps]]
        name = "first"
        type = "shell"
        run = "echo first-output"

        [[steps]]
        name = "slow"
        type = "shell"
        run = "echo $$ > slow.pid; exec sleep 60"
        depends_on = ["first"]
        """,
    )
    with run_to_kill(project, project / "slow.pid") as proc:
        wait_for_pid(project / "slow.pid", proc)
        running = mux_json(project, "runs")[0]
        assert running["status"] == "running"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    run = mux_json(project, "runs")[0]
    assert run["status"] == "interrupted"
    first = mux_json(project, "show", "last", "first")
    assert first["status"] == "success"
    assert first["output"] == "first-output"
    assert "interrupted" in mux(project, "runs").stdout


def test_two_runs_at_once_both_record(project: Path) -> None:
    steps = "".join(
        f'[[steps]]\nname = "s{i}"\ntype = "shell"\nrun = "echo {i}"\n\n' for i in range(40)
    )
    write(project, 'name = "many"\n\n' + steps)
    procs = [start_run(project, capture=True) for _ in range(3)]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert "not being recorded" not in err
    runs = mux_json(project, "runs")
    assert len(runs) == 3
    assert all(r["status"] == "success" for r in runs)
    assert all(r["steps"] == {"success": 40, "failed": 0, "skipped": 0} for r in runs)


def test_a_corrupt_database_never_fails_a_run(project: Path) -> None:
    (project / ".muxlang").mkdir()
    (project / ".muxlang" / "runs.db").write_bytes(b"this is not a database at all\n" * 200)
    write(
        project,
        'name = "ok"\n[[steps]]\nname = "a"\ntype = "shell"\nrun = "echo a"\n'
        '[[steps]]\nname = "b"\ntype = "shell"\nrun = "echo b"\n',
    )
    done = mux(project, "run", "wf.toml")
    assert done.returncode == 0
    assert done.stdout == "b\n"
    assert done.stderr.count("not being recorded") == 1
    assert "Traceback" not in done.stderr
    write(
        project, 'name = "bad"\n[[steps]]\nname = "a"\ntype = "shell"\nrun = "exit 4"\n', "bad.toml"
    )
    failed = mux(project, "run", "bad.toml")
    assert failed.returncode == 1
    assert failed.stderr.count("not being recorded") == 1
    listing = mux(project, "runs")
    assert listing.returncode == 1
    assert "not a database" in listing.stderr
    assert "Traceback" not in listing.stderr


LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_locked_database_never_fails_a_run(project: Path) -> None:
    write(project, 'name = "ok"\n[[steps]]\nname = "a"\ntype = "shell"\nrun = "echo a"\n')
    assert mux(project, "run", "wf.toml").returncode == 0
    db = project / ".muxlang" / "runs.db"
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout is not None
        assert locker.stdout.readline().strip() == "locked"
        done = mux(project, "run", "wf.toml")
    finally:
        assert locker.stdin is not None
        locker.stdin.close()
        locker.wait(timeout=30)
    assert done.returncode == 0
    assert done.stdout == "a\n"
    assert done.stderr.count("not being recorded") == 1
    assert "locked" in done.stderr
    # once the lock is gone, recording works again
    assert mux(project, "run", "wf.toml").returncode == 0
    assert len(mux_json(project, "runs")) == 2


def test_a_full_disk_never_fails_a_run(project: Path) -> None:
    """A file size limit (RLIMIT_FSIZE) stands in for a full disk: writes past it
    fail with EFBIG, as they fail with ENOSPC on a full one."""
    write(
        project,
        """\
        name = "big"
        [[steps]]
        name = "noise"
        type = "shell"
        run = "head -c 3000000 /dev/urandom | base64"
        [[steps]]
        name = "after"
        type = "shell"
        run = "echo still-running"
        depends_on = ["noise"]
        """,
    )
    write(
        project, 'name = "ok"\n[[steps]]\nname = "a"\ntype = "shell"\nrun = "echo a"\n', "ok.toml"
    )
    assert mux(project, "run", "ok.toml").returncode == 0
    limit = sum(p.stat().st_size for p in (project / ".muxlang").glob("runs.db*")) + 200_000

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run(
        [PYTHON, "-m", "muxlang", "-C", str(project), "run", "wf.toml"],
        cwd=project,
        env=clean_env(PYTHONDONTWRITEBYTECODE="1"),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=small_disk,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "still-running\n"
    assert done.stderr.count("not being recorded") == 1
    assert "Traceback" not in done.stderr


def test_a_symlinked_state_directory_or_database_is_never_followed(
    project: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (project / ".muxlang").symlink_to(outside)
    write(project, 'name = "ok"\n[[steps]]\nname = "a"\ntype = "shell"\nrun = "echo a"\n')
    done = mux(project, "run", "wf.toml")
    assert done.returncode == 0
    assert done.stderr.count("not being recorded") == 1
    assert "symbolic link" in done.stderr
    assert list(outside.iterdir()) == []
    (project / ".muxlang").unlink()
    (project / ".muxlang").mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (project / ".muxlang" / "runs.db").symlink_to(victim)
    done = mux(project, "run", "wf.toml")
    assert done.returncode == 0
    assert "not being recorded" in done.stderr
    assert victim.read_text() == "precious\n"
