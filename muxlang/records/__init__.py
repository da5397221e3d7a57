"""Run records (SPEC section 10): history, failure detail, resume, cache, usage.

- :mod:`muxlang.records.store` — the SQLite store (``.muxlang/runs.db``).
- :mod:`muxlang.records.recorder` — a reporter that writes a run into the store
  as it goes; a store that fails never fails the run.
- :mod:`muxlang.records.secrets` — what must never be stored, and ``redact``.
- :mod:`muxlang.records.report_html` — ``muxlang show RUN --html FILE``.

Nothing here is imported by ``validate``: the run and the history commands load
it when they need it.
"""
