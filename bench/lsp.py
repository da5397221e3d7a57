"""`muxlang lsp`: how soon diagnostics arrive after a change (SPEC 14, issue 19).

A warm server (the document opened and checked once) gets a change to a
200-step workflow; the figure is the time from sending ``didChange`` to
receiving its ``publishDiagnostics``, over the real stdio transport with
pygls's client. Changes alternate between a clean text and one with an
unknown step, so every one is checked in full. Target: within 150 ms. The
server's CPU time per change is reported too: on a busy machine (the load
average is in bench/results.json) wall time waits for a core, CPU time does not.

Run: ``.venv/bin/python bench/lsp.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PYTHON, clean_env, emit, process_cpu_seconds
from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient
from validate import CONFIG, workflow

TARGET_MS = 150.0


async def measure(root: Path, steps: int, changes: int) -> dict[str, Any]:
    path = root / ".muxlang" / "workflows" / "big.toml"
    clean = workflow("big", steps)
    broken = clean.replace("steps.s1.output", "steps.s1x.output", 1)
    assert broken != clean
    path.write_text(clean, encoding="utf-8")
    uri = path.as_uri()
    client = LanguageClient("bench", "1")
    arrived: asyncio.Queue[float] = asyncio.Queue()

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
        arrived.put_nowait(time.perf_counter())

    await client.start_io(PYTHON, "-m", "muxlang", "lsp", cwd=str(root), env=clean_env())
    await client.initialize_async(
        lsp.InitializeParams(capabilities=lsp.ClientCapabilities(), root_uri=root.as_uri())
    )
    client.initialized(lsp.InitializedParams())
    opened = time.perf_counter()
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "toml", 1, clean))
    )
    first_ms = (await arrived.get() - opened) * 1000
    server = client._server  # the `muxlang lsp` process pygls started
    assert server is not None
    times: list[float] = []
    cpus: list[float] = []
    for version in range(2, changes + 2):
        text = broken if version % 2 == 0 else clean  # each change differs from the last
        cpu = process_cpu_seconds(server.pid)
        sent = time.perf_counter()
        client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
                [lsp.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )
        times.append((await arrived.get() - sent) * 1000)
        cpus.append((process_cpu_seconds(server.pid) - cpu) * 1000)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    times.sort()
    cpus.sort()
    return {
        "steps": steps,
        "changes": changes,
        "open_ms": first_ms,
        "best_ms": times[0],
        "median_ms": statistics.median(times),
        "p90_ms": times[int(len(times) * 0.9) - 1],
        # the server's own CPU per change: what a busy machine does not inflate
        "cpu_median_ms": statistics.median(cpus),
        "target_ms": TARGET_MS,
        "met": statistics.median(times) <= TARGET_MS,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / ".git").mkdir()
        (root / ".muxlang" / "workflows").mkdir(parents=True)
        (root / ".muxlang" / "config.toml").write_text(CONFIG, encoding="utf-8")
        result = asyncio.run(measure(root, 200, 10 if args.quick else 40))
    emit({"diagnostics_200_steps": result, "met": result["met"]})


if __name__ == "__main__":
    main()
