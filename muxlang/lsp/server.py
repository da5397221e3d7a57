"""The pygls wiring of ``muxlang lsp``: LSP 3.17 over stdio.

Each handler turns LSP positions (0-based, in the agreed encoding: UTF-16
unless the client offered another) into muxlang's (code points) and back, and
asks :mod:`muxlang.lsp.features` for the answer; nothing else here knows about
workflows.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from muxlang.diagnostics import Diagnostic, Severity
from muxlang.lsp import features as f
from muxlang.lsp.positions import UTF16, from_client, to_client
from muxlang.source import Span

logging.getLogger("pygls").setLevel(logging.WARNING)

_KINDS = {
    "key": lsp.CompletionItemKind.Property,
    "step": lsp.CompletionItemKind.Reference,
    "field": lsp.CompletionItemKind.Field,
    "filter": lsp.CompletionItemKind.Function,
    "arg": lsp.CompletionItemKind.Variable,
    "variable": lsp.CompletionItemKind.Variable,
    "role": lsp.CompletionItemKind.Class,
    "backend": lsp.CompletionItemKind.Module,
    "value": lsp.CompletionItemKind.EnumMember,
    "workflow": lsp.CompletionItemKind.File,
}


class MuxServer(LanguageServer):
    """The server and the latest snapshot of each open document."""

    def __init__(self) -> None:
        from muxlang import __version__

        super().__init__("muxlang", __version__)
        self.snapshots: dict[str, f.Snapshot] = {}

    def snapshot(self, uri: str) -> f.Snapshot | None:
        """The document's snapshot for its current text (made when it changed)."""
        document = self.workspace.get_text_document(uri)
        text = document.source
        snap = self.snapshots.get(uri)
        if snap is None or snap.text != text:
            path = Path(to_fs_path(uri) or uri)
            from muxlang.config import find_project_root

            snap = f.Snapshot(path, text, find_project_root(path.parent))
            self.snapshots[uri] = snap
        return snap


server = MuxServer()

#: how long a change waits for newer ones before it is checked
COALESCE_SECONDS = 0.005


# --------------------------------------------------------------------------- positions


def _encoding() -> str:
    """The position encoding agreed with the client: UTF-16 unless it offered
    another first (pygls chooses, and applies it to incremental changes)."""
    chosen = server.workspace.position_encoding
    if isinstance(chosen, lsp.PositionEncodingKind):
        return str(chosen.value)
    return chosen or UTF16


def _range(lines: list[str], span: Span) -> lsp.Range:
    encoding = _encoding()
    start = to_client(lines, span.line, span.column, encoding)
    end = to_client(lines, span.end_line, span.end_column, encoding)
    return lsp.Range(lsp.Position(*start), lsp.Position(*end))


def _cursor(
    ls: MuxServer, params: lsp.CompletionParams | lsp.HoverParams | lsp.DefinitionParams
) -> f.Cursor | None:
    """The document's snapshot and the line and column the request points at
    (None when muxlang does not check that document)."""
    snap = ls.snapshot(params.text_document.uri)
    if snap is None:
        return None
    position = params.position
    return (snap, *from_client(snap.lines, position.line, position.character, _encoding()))


def _lines_of(path: Path, snap: f.Snapshot) -> list[str]:
    if path == snap.path:
        return snap.lines
    from muxlang.compiler.report import read_source
    from muxlang.lsp.positions import split_lines

    return split_lines(read_source(str(path)) or "")


# --------------------------------------------------------------------------- diagnostics


def to_lsp(snap: f.Snapshot, d: Diagnostic) -> lsp.Diagnostic:
    from muxlang.rules import RULES

    rule = RULES.get(d.code)
    fix = f.suggestion(d)
    return lsp.Diagnostic(
        range=_range(snap.lines, d.span),
        message=d.message + (f"\nhint: {d.hint}" if d.hint else ""),
        severity=(
            lsp.DiagnosticSeverity.Error
            if d.severity is Severity.ERROR
            else lsp.DiagnosticSeverity.Warning
        ),
        code=d.code,
        code_description=lsp.CodeDescription(href=rule.help_uri) if rule else None,
        source="muxlang",
        data={"fix": fix} if fix else None,
    )


def publish(ls: MuxServer, uri: str) -> None:
    snap = ls.snapshot(uri)
    if snap is None:
        return
    diagnostics = [to_lsp(snap, d) for d in snap.diagnostics]
    version = ls.workspace.get_text_document(uri).version
    ls.text_document_publish_diagnostics(
        lsp.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=version)
    )


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: MuxServer, params: lsp.DidOpenTextDocumentParams) -> None:
    publish(ls, params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
async def did_change(ls: MuxServer, params: lsp.DidChangeTextDocumentParams) -> None:
    # a few milliseconds for changes already sent (fast typing) to be read: only
    # the newest version is checked, so diagnostics never fall behind the keyboard
    await asyncio.sleep(COALESCE_SECONDS)
    document = ls.workspace.get_text_document(params.text_document.uri)
    if document.version is not None and params.text_document.version < document.version:
        return
    publish(ls, params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: MuxServer, params: lsp.DidSaveTextDocumentParams) -> None:
    saved = params.text_document.uri
    snap = ls.snapshot(saved)
    if snap is not None and snap.kind == "config":
        # every open workflow sees the config as saved: check them all again
        ls.snapshots.clear()
        for uri in list(ls.workspace.text_documents):
            publish(ls, uri)
        return
    publish(ls, saved)


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: MuxServer, params: lsp.DidCloseTextDocumentParams) -> None:
    ls.snapshots.pop(params.text_document.uri, None)
    ls.text_document_publish_diagnostics(
        lsp.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[])
    )


# --------------------------------------------------------------------------- features


@server.feature(
    lsp.TEXT_DOCUMENT_COMPLETION,
    lsp.CompletionOptions(trigger_characters=[".", "|", '"', " "]),
)
def completion(ls: MuxServer, params: lsp.CompletionParams) -> lsp.CompletionList | None:
    at = _cursor(ls, params)
    if at is None:
        return None
    items = [
        lsp.CompletionItem(
            label=item.label,
            kind=_KINDS.get(item.kind, lsp.CompletionItemKind.Text),
            detail=item.detail or None,
            documentation=(
                lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=item.doc)
                if item.doc
                else None
            ),
            insert_text=item.insert,
        )
        for item in f.complete(*at)
    ]
    return lsp.CompletionList(is_incomplete=False, items=items)


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
def hover(ls: MuxServer, params: lsp.HoverParams) -> lsp.Hover | None:
    at = _cursor(ls, params)
    text = f.hover(*at) if at else None
    if text is None:
        return None
    return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text))


@server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
def definition(ls: MuxServer, params: lsp.DefinitionParams) -> lsp.Location | None:
    at = _cursor(ls, params)
    if at is None or (target := f.definition(*at)) is None:
        return None
    snap = at[0]
    uri = params.text_document.uri if target.path == snap.path else target.path.as_uri()
    return lsp.Location(uri=uri, range=_range(_lines_of(target.path, snap), target.span))


@server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def document_symbol(
    ls: MuxServer, params: lsp.DocumentSymbolParams
) -> list[lsp.DocumentSymbol] | None:
    snap = ls.snapshot(params.text_document.uri)
    if snap is None:
        return None
    found = []
    for symbol in f.symbols(snap):
        last = snap.lines[symbol.last] if symbol.last < len(snap.lines) else ""
        block = Span(symbol.first + 1, 1, symbol.last + 1, len(last) + 1)
        found.append(
            lsp.DocumentSymbol(
                name=symbol.name,
                detail=symbol.detail,
                kind=lsp.SymbolKind.Function,
                range=_range(snap.lines, block),
                selection_range=_range(snap.lines, symbol.name_span),
            )
        )
    return found


@server.feature(
    lsp.TEXT_DOCUMENT_CODE_ACTION,
    lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]),
)
def code_action(ls: MuxServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction] | None:
    document = ls.workspace.get_text_document(params.text_document.uri)
    actions = []
    for diagnostic in params.context.diagnostics:
        data: Any = diagnostic.data
        fix = data.get("fix") if isinstance(data, dict) else None
        if diagnostic.source != "muxlang" or not isinstance(fix, str):
            continue
        original = document.text_in_client_range(diagnostic.range)
        edit = lsp.TextEdit(range=diagnostic.range, new_text=f.quick_fix(original, fix))
        actions.append(
            lsp.CodeAction(
                title=f"Replace with `{fix}` ({diagnostic.code})",
                kind=lsp.CodeActionKind.QuickFix,
                diagnostics=[diagnostic],
                is_preferred=True,
                edit=lsp.WorkspaceEdit(changes={params.text_document.uri: [edit]}),
            )
        )
    return actions


def main() -> None:
    """Serve LSP over stdin/stdout until the client says exit."""
    server.start_io()
