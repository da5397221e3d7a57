"""The run database's tables (``runs``, ``steps``, ``cache``) and the column lists
the store reads and writes them with; ``SCHEMA_VERSION`` is its ``user_version``."""

from __future__ import annotations

#: 2: ``signatures`` (which runs this user's muxlang recorded: :mod:`.userkey`)
SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    path TEXT NOT NULL DEFAULT '',
    file_hash TEXT NOT NULL DEFAULT '',
    args TEXT NOT NULL DEFAULT '{}',
    team TEXT,
    version TEXT NOT NULL DEFAULT '',
    started REAL NOT NULL,
    ended REAL,
    status TEXT NOT NULL,
    pid INTEGER,
    pid_token TEXT,
    error TEXT,
    final_step TEXT,
    plan TEXT NOT NULL DEFAULT '{}',
    resumed_from TEXT,
    steps_ok INTEGER NOT NULL DEFAULT 0,
    steps_failed INTEGER NOT NULL DEFAULT 0,
    steps_skipped INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cost REAL
);
CREATE INDEX IF NOT EXISTS runs_by_start ON runs (started);
CREATE INDEX IF NOT EXISTS runs_by_workflow ON runs (workflow, started);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    item INTEGER NOT NULL DEFAULT -1,
    seq INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    started REAL,
    ended REAL,
    duration_ms INTEGER NOT NULL DEFAULT 0,
    command TEXT,
    prompt TEXT,
    system TEXT,
    output,
    stderr,
    exit_code INTEGER,
    backend TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cost REAL,
    error TEXT,
    origin TEXT NOT NULL DEFAULT 'run',
    reason TEXT,
    fingerprint TEXT,
    item_value TEXT,
    fields,
    PRIMARY KEY (run_id, name, item)
);
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY,
    created REAL NOT NULL,
    backend TEXT,
    output,
    fields
);
CREATE TABLE IF NOT EXISTS signatures (
    run_id TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    mac TEXT NOT NULL
);
"""

RUN_COLUMNS = (
    "id, workflow, path, file_hash, args, team, version, started, ended, status, pid, "
    "pid_token, error, final_step, plan, resumed_from, steps_ok, steps_failed, steps_skipped, "
    "input_tokens, output_tokens, cost"
)
#: the names of RUN_COLUMNS, in order: a row read with them fills a RunRow by name
RUN_NAMES = tuple(RUN_COLUMNS.split(", "))
LIST_COLUMNS = RUN_COLUMNS.replace("plan,", "'{}',")
#: a run's counters and totals, from its step rows (``item = -1``)
_SUMS = (
    "sum(status = 'success'), sum(status = 'failed'), "
    "sum(status NOT IN ('success', 'failed')), sum(input_tokens), sum(output_tokens), "
    "sum(cost)"
)
#: what TOTALS_QUERY gives, by RunRow's names
TOTALS_NAMES = (
    *("steps_ok", "steps_failed", "steps_skipped"),
    *("input_tokens", "output_tokens", "cost"),
)
TOTALS_QUERY = f"SELECT {_SUMS} FROM steps WHERE run_id = ? AND item = -1"
TOTALS = (
    "(steps_ok, steps_failed, steps_skipped, input_tokens, output_tokens, cost) = "
    "(SELECT coalesce(sum(status = 'success'), 0), coalesce(sum(status = 'failed'), 0), "
    "coalesce(sum(status NOT IN ('success', 'failed')), 0), coalesce(sum(input_tokens), 0), "
    "coalesce(sum(output_tokens), 0), sum(cost) FROM steps WHERE steps.run_id = runs.id "
    "AND item = -1)"
)
STEP_COLUMNS = (
    "name, item, seq, kind, status, started, ended, duration_ms, command, prompt, system, "
    "output, stderr, exit_code, backend, attempts, input_tokens, output_tokens, cost, error, "
    "origin, reason, fingerprint, item_value, fields"
)
#: the names of STEP_COLUMNS, in order: StepRow's fields
STEP_NAMES = tuple(STEP_COLUMNS.split(", "))
MARKS = ", ".join(["?"] * (len(STEP_NAMES) + 1))
