"""Drive `muxlang lsp` as an editor does: a real LSP client (pygls's) talking to
the real command over stdio, in a project made for the test."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

T = TypeVar("T")
TIMEOUT = 60.0  # generous: the machine may be busy; never a timing assertion


class Client(LanguageClient):
    """A client that keeps every diagnostics notification, per document."""

    def __init__(self) -> None:
        super().__init__("muxlang-tests", "1")
        self.published: dict[str, list[lsp.PublishDiagnosticsParams]] = {}
        self.server_capabilities: lsp.ServerCapabilities | None = None
        self.changed = asyncio.Event()

        @self.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
            self.published.setdefault(params.uri, []).append(params)
            self.changed.set()

    async def diagnostics(self, uri: str, count: int = 1) -> list[lsp.Diagnostic]:
        """The diagnostics of the ``count``-th notification for ``uri``."""

        async def wait() -> None:
            while len(self.published.get(uri, [])) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), TIMEOUT)
        return list(self.published[uri][count - 1].diagnostics)

    def open(self, path: Path, text: str | None = None) -> str:
        uri = path.as_uri()
        self.text_document_did_open(
            lsp.DidOpenTextDocumentParams(
                lsp.TextDocumentItem(
                    uri=uri,
                    language_id="toml",
                    version=1,
                    text=path.read_text(encoding="utf-8") if text is None else text,
                )
            )
        )
        return uri

    def replace(self, uri: str, text: str, version: int) -> None:
        """Send the whole new text (a full-document change)."""
        self.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )


async def within(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, TIMEOUT)


@asynccontextmanager
async def language_server(
    root: Path, capabilities: lsp.ClientCapabilities | None = None
) -> AsyncIterator[Client]:
    """`muxlang lsp` started in ``root``, initialized; shut down and exited after."""
    client = Client()
    env = {**os.environ, "HOME": str(root), "XDG_CONFIG_HOME": str(root / ".xdg")}
    env.pop("MUXLANG_CONFIG", None)
    await client.start_io(sys.executable, "-m", "muxlang", "lsp", cwd=str(root), env=env)
    try:
        result = await within(
            client.initialize_async(
                lsp.InitializeParams(
                    process_id=os.getpid(),
                    root_uri=root.as_uri(),
                    capabilities=capabilities or lsp.ClientCapabilities(),
                )
            )
        )
        client.server_capabilities = result.capabilities
        assert result.server_info is not None
        assert result.server_info.name == "muxlang"
        client.initialized(lsp.InitializedParams())
        yield client
    finally:
        try:
            await within(client.shutdown_async(None))
            client.exit(None)
        finally:
            await within(client.stop())


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    """Run an asyncio scenario from a (trio-mode) synchronous test."""
    return asyncio.run(scenario())


def with_open_file(root: Path, path: Path, check: Callable[[Client, str], Awaitable[None]]) -> None:
    """`muxlang lsp` started in ``root`` with ``path`` opened: ``check(client, uri)``."""

    async def scenario() -> None:
        async with language_server(root) as client:
            await check(client, client.open(path))

    run(scenario)


def at(text: str, needle: str, offset: int = 0) -> lsp.Position:
    """The LSP position (UTF-16) of ``needle``'s first character plus ``offset``."""
    index = text.index(needle) + offset
    line = text.count("\n", 0, index)
    start = text.rfind("\n", 0, index) + 1
    units = len(text[start:index].encode("utf-16-le")) // 2
    return lsp.Position(line=line, character=units)


def project(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".muxlang" / "workflows").mkdir(parents=True)
    return tmp_path
