"""The run store: ``.muxlang/runs.db`` (SQLite through the standard library).

One database per project, in WAL mode with a busy timeout, so that two runs at
once both record and ``muxlang runs`` reads while a run writes. A run is one
row of ``runs``; each step (and each for_each item, ``item >= 0``) is one row
of ``steps``, committed when it ends. Texts of any size are kept whole: short
ones as TEXT, long ones zlib-compressed as BLOB (read back transparently).

Every method may raise :class:`StoreError` (a locked, corrupt or unwritable
database); callers that run workflows catch it and go on unrecorded.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from muxlang.records.liveness import process_alive, process_token
from muxlang.records.rows import RunRow, StepRow, pack, step_row, unpack
from muxlang.records.schema import (
    LIST_COLUMNS,
    MARKS,
    RUN_COLUMNS,
    RUN_NAMES,
    SCHEMA,
    SCHEMA_VERSION,
    STEP_COLUMNS,
    TOTALS,
    TOTALS_NAMES,
    TOTALS_QUERY,
)
from muxlang.records.userkey import keyed, signature, signed

__all__ = [
    "RunRow",
    "StepRow",
    "Store",
    "StoreError",
    "default_path",
    "new_id",
    "pack",
    "process_alive",
    "process_token",
    "unpack",
]

BUSY_TIMEOUT_MS = 2000
DB_NAME = "runs.db"
ENV_VAR = "MUXLANG_RUNS_DB"

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


class StoreError(Exception):
    """The store cannot be used (locked, corrupt, unwritable, from a newer muxlang)."""


# --------------------------------------------------------------------------- helpers


def default_path(project_root: Path, environ: Mapping[str, str] | None = None) -> Path:
    """``$MUXLANG_RUNS_DB``, else ``ROOT/.muxlang/runs.db``."""
    env = os.environ if environ is None else environ
    given = env.get(ENV_VAR)
    if given:
        return Path(given).expanduser()
    return project_root / ".muxlang" / DB_NAME


def new_id(now: float | None = None) -> str:
    """12 characters: milliseconds since 1970 in Crockford base32 (so ids sort by
    start time), then 3 random characters (so two runs in one millisecond differ)."""
    ms = int((time.time() if now is None else now) * 1000)
    digits = []
    for _ in range(9):
        ms, rest = divmod(ms, 32)
        digits.append(_CROCKFORD[rest])
    tail = "".join(secrets.choice(_CROCKFORD) for _ in range(3))
    return "".join(reversed(digits)) + tail


# --------------------------------------------------------------------------- the store


class Store:
    """An open run database. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        # a repository can commit `.muxlang` or `runs.db` as a symbolic link: following it
        # would write the records (and SQLite's -wal/-shm files) wherever it points
        for part in (
            path.parent,
            path,
            path.with_name(path.name + "-wal"),
            path.with_name(path.name + "-shm"),
        ):
            if part.is_symlink():
                raise StoreError(f"{part} is a symbolic link: muxlang does not follow it")
        try:
            if create and not path.parent.is_dir():
                path.parent.mkdir(parents=True, exist_ok=True)
            ignore = path.parent / ".gitignore"
            if create and path.parent.name == ".muxlang" and not ignore.exists():
                # keep the records out of git in a project that never ran `muxlang init`
                from muxlang.records.files import GITIGNORE, write_atomic

                write_atomic(ignore, GITIGNORE.encode())
            if not create and not path.exists():
                raise StoreError(f"no run records at {path}")
            # one thread at a time uses it: the recorder hands it to its writer thread
            self.db = sqlite3.connect(
                str(path),
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open {path}: {exc}") from exc
        try:
            with self._errors():
                self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                version = self.db.execute("PRAGMA user_version").fetchone()[0]
                _check_version(path, version)
                if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    self.db.execute("PRAGMA journal_mode = WAL")
                self.db.execute("PRAGMA synchronous = NORMAL")
                self.db.execute("PRAGMA foreign_keys = ON")
                if version < SCHEMA_VERSION:
                    self.db.executescript(
                        "BEGIN IMMEDIATE;"
                        + SCHEMA
                        + f"PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                    )
        except BaseException:
            self.db.close()
            raise

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with suppress(sqlite3.Error):
            self.db.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except StoreError:
            raise
        except (sqlite3.Error, OSError, zlib.error, ValueError) as exc:
            if self.db.in_transaction:
                with suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
            raise StoreError(f"{self.path}: {exc}") from exc

    # ------------------------------------------------------------------ writing

    def start_run(
        self,
        *,
        workflow: str,
        path: str = "",
        file_hash: str = "",
        args: Mapping[str, Any] | None = None,
        team: str | None = None,
        version: str = "",
        plan: Mapping[str, Any] | None = None,
        resumed_from: str | None = None,
        started: float | None = None,
        run_id: str | None = None,
        pid: int | None = None,
    ) -> str:
        """Insert a ``running`` run owned by process ``pid`` (default: this one); returns
        its id (``run_id`` when given, else a new one)."""
        started = time.time() if started is None else started
        pid = os.getpid() if pid is None else pid
        with self._errors():
            for _ in range(1 if run_id is not None else 5):
                candidate = new_id(started) if run_id is None else run_id
                try:
                    self.db.execute(
                        "INSERT INTO runs (id, workflow, path, file_hash, args, team, version, "
                        "started, status, pid, pid_token, plan, resumed_from) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)",
                        (
                            candidate,
                            workflow,
                            path,
                            file_hash,
                            _dumps(dict(args or {})),
                            team,
                            version,
                            started,
                            pid,
                            process_token(pid),
                            _dumps(dict(plan or {})),
                            resumed_from,
                        ),
                    )
                except sqlite3.IntegrityError:
                    continue
                self.db.execute(
                    "INSERT OR REPLACE INTO signatures (run_id, mac) VALUES (?, ?)",
                    (candidate, signature(candidate)),
                )
                return candidate
        raise StoreError("could not make a unique run id")

    def recorded_here(self, run_id: str) -> bool:
        """Whether this user's muxlang recorded run ``run_id`` (its signature holds under
        this user's secret): a run in a database a repository committed was not."""
        with self._errors():
            row = self.db.execute(
                "SELECT mac FROM signatures WHERE run_id = ?", (run_id,)
            ).fetchone()
        return row is not None and signed(run_id, row[0])

    def save_steps(self, run_id: str, rows: Sequence[StepRow]) -> None:
        """Write steps and their items in one transaction (replacing earlier rows).

        One table is touched, so a commit writes few pages: the run's counters and
        totals are summed by :meth:`finish_run` (and on reading a run that never
        finished)."""
        values = [
            (
                run_id,
                row.name,
                row.item,
                row.seq,
                row.kind,
                row.status,
                row.started,
                row.ended,
                row.duration_ms,
                pack(row.command),
                pack(row.prompt),
                pack(row.system),
                pack(row.output),
                pack(row.stderr),
                row.exit_code,
                row.backend,
                row.attempts,
                row.input_tokens,
                row.output_tokens,
                row.cost,
                row.error,
                row.origin,
                row.reason,
                row.fingerprint,
                None if row.item < 0 else _dumps(row.item_value),
                pack(_dumps(row.fields)) if row.fields else None,
            )
            for row in rows
        ]
        with self._errors():
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(
                f"INSERT OR REPLACE INTO steps (run_id, {STEP_COLUMNS}) VALUES ({MARKS})",
                values,
            )
            self.db.execute("COMMIT")

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        error: str | None = None,
        final_step: str | None = None,
        ended: float | None = None,
    ) -> None:
        with self._errors():
            self.db.execute(
                f"UPDATE runs SET status = ?, error = ?, final_step = ?, ended = ?, {TOTALS} "
                "WHERE id = ?",
                (status, error, final_step, time.time() if ended is None else ended, run_id),
            )

    def _totals(self, run_id: str) -> tuple[int, int, int, int, int, float | None]:
        """Counters and totals of a run that never finished, from its step rows."""
        row = self.db.execute(TOTALS_QUERY, (run_id,)).fetchone()
        ok, failed, skipped, inputs, outputs, cost = row
        return ok or 0, failed or 0, skipped or 0, inputs or 0, outputs or 0, cost

    # ------------------------------------------------------------------ reading

    def _run_row(self, row: Sequence[Any]) -> RunRow:
        """A run row as read with RUN_COLUMNS (or LIST_COLUMNS, without its plan)."""
        values = dict(zip(RUN_NAMES, row, strict=True))
        pid, pid_token = values.pop("pid"), values.pop("pid_token")
        if values["status"] == "running" and not process_alive(pid, pid_token):
            values["status"] = "interrupted"
        if values["ended"] is None:  # running, or killed: its totals were never summed
            values.update(zip(TOTALS_NAMES, self._totals(values["id"]), strict=True))
        values["args"] = json.loads(values["args"] or "{}")
        values["plan"] = json.loads(values["plan"] or "{}")
        return RunRow(**values)

    def runs(self, *, workflow: str | None = None, limit: int | None = None) -> list[RunRow]:
        """Runs, newest first (without their plans)."""
        query = f"SELECT {LIST_COLUMNS} FROM runs"
        params: list[Any] = []
        if workflow is not None:
            query += " WHERE workflow = ?"
            params.append(workflow)
        query += " ORDER BY started DESC, id DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        with self._errors():
            return [self._run_row(r) for r in self.db.execute(query, params)]

    def run(self, ref: str = "last") -> RunRow | None:
        """The run named ``ref``: ``last``, an id, or an unambiguous id prefix.

        Raises :class:`LookupError` when a prefix matches several runs."""
        with self._errors():
            if ref == "last":
                rows = self.db.execute(
                    f"SELECT {RUN_COLUMNS} FROM runs ORDER BY started DESC, id DESC LIMIT 1"
                ).fetchall()
            else:
                rows = self.db.execute(
                    f"SELECT {RUN_COLUMNS} FROM runs WHERE id >= ? AND id < ? ORDER BY id LIMIT 2",
                    (ref.lower(), ref.lower() + "\U0010ffff"),
                ).fetchall()
            if len(rows) > 1 and rows[0][0] != ref.lower():
                ids = ", ".join(r[0] for r in rows)
                raise LookupError(f"run id {ref!r} is ambiguous: {ids}, ...")
            return self._run_row(rows[0]) if rows else None

    def count(self) -> int:
        """How many runs are recorded."""
        with self._errors():
            return int(self.db.execute("SELECT count(*) FROM runs").fetchone()[0])

    def latest(self, workflow: str, statuses: Sequence[str]) -> RunRow | None:
        """The newest run of ``workflow`` whose status (as read now) is in ``statuses``."""
        for row in self.runs(workflow=workflow, limit=200):
            if row.status in statuses:
                return self.run(row.id)
        return None

    def steps(self, run_id: str, *, items: bool = True) -> list[StepRow]:
        """A run's step rows in the order they were recorded (items after their step)."""
        query = f"SELECT {STEP_COLUMNS} FROM steps WHERE run_id = ?"
        if not items:
            query += " AND item = -1"
        query += " ORDER BY seq, name, item"
        with self._errors():
            return [step_row(r) for r in self.db.execute(query, (run_id,))]

    # ------------------------------------------------------------------ pruning

    def prune(self, *, keep: int | None = None, older_than: float | None = None) -> int:
        """Delete runs beyond the newest ``keep`` and/or started more than
        ``older_than`` seconds ago (never one still running); returns how many."""
        doomed: set[str] = set()
        with self._errors():
            if keep is not None:
                doomed.update(
                    r[0]
                    for r in self.db.execute(
                        "SELECT id FROM runs ORDER BY started DESC, id DESC LIMIT -1 OFFSET ?",
                        (keep,),
                    )
                )
            if older_than is not None:
                cutoff = time.time() - older_than
                doomed.update(
                    r[0]
                    for r in self.db.execute("SELECT id FROM runs WHERE started < ?", (cutoff,))
                )
            running = {
                r[0]
                for r in self.db.execute(
                    "SELECT id, pid, pid_token FROM runs WHERE status = 'running'"
                )
                if process_alive(r[1], r[2])
            }
            doomed -= running
            if not doomed:
                return 0
            self.db.execute("BEGIN IMMEDIATE")
            ids = sorted(doomed)
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                self.db.execute(f"DELETE FROM steps WHERE run_id IN ({marks})", chunk)
                self.db.execute(f"DELETE FROM runs WHERE id IN ({marks})", chunk)
            self.db.execute("COMMIT")
            # deleted rows (and any secret they held) must not linger in free pages or the WAL
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.db.execute("VACUUM")
            return len(ids)

    # ------------------------------------------------------------------ cache

    def cache_get(
        self, key: str, max_age: float | None
    ) -> tuple[str, str | None, dict[str, Any]] | None:
        """A cached answer (output, backend, other fields), or None when absent or older
        than ``max_age`` seconds (None: no age limit). Rows are found by the key's HMAC
        under this user's secret (:mod:`.userkey`): a committed database's are not."""
        with self._errors():
            row = self.db.execute(
                "SELECT created, backend, output, fields FROM cache WHERE key = ?", (keyed(key),)
            ).fetchone()
        if row is None:
            return None
        created, backend, output, fields = row
        if max_age is not None and time.time() - created > max_age:
            return None
        with self._errors():
            return unpack(output) or "", backend, json.loads(unpack(fields) or "{}")

    def cache_put(
        self, key: str, output: str, backend: str | None, fields: Mapping[str, Any]
    ) -> None:
        with self._errors():
            self.db.execute(
                "INSERT OR REPLACE INTO cache (key, created, backend, output, fields) "
                "VALUES (?, ?, ?, ?, ?)",
                (keyed(key), time.time(), backend, pack(output), pack(_dumps(dict(fields)))),
            )


def _check_version(path: Path, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} was written by a newer muxlang (schema {version}); upgrade muxlang to read it"
        )


def _dumps(value: Any) -> str:
    return _ENCODER.encode(value)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return None


_ENCODER = json.JSONEncoder(ensure_ascii=False, default=_plain)
