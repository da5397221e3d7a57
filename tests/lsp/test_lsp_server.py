"""`muxlang lsp` through a real LSP client over stdio: diagnostics as you type
(the same as `validate`, UTF-16 positions), completion, hover, definition,
document symbols and quick fixes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lsp_support import Client, at, language_server, project, run, with_open_file, within
from lsprotocol import types as lsp

WORKFLOW = """\
name = "review"

[args.base]
description = "The branch to diff against"
default = "main"

[backends.claude]
command = "claude"

[roles.reviewer]
backends = ["claude"]
execution = "fallback"

[[steps]]
name = "diff"
type = "shell"
run = "git diff {{ args.base }}"

[[steps]]
name = "ask"
type = "query"
role = "reviewer"
prompt = "Review: {{ steps.diff.output | trim }}"
depends_on = ["diff"]
"""


def write(root: Path, name: str, text: str) -> Path:
    path = root / ".muxlang" / "workflows" / name
    path.write_text(text, encoding="utf-8")
    return path


def test_diagnostics_match_validate_and_follow_the_typing(tmp_path: Path) -> None:
    root = project(tmp_path)
    broken = WORKFLOW.replace("steps.diff.output", "steps.dif.output").replace(
        'type = "query"', 'type = "query"\npromt = "x"'
    )
    path = write(root, "review.toml", broken)
    cli = subprocess.run(
        [sys.executable, "-m", "muxlang", "validate", "--format", "json", str(path)],
        cwd=root,
        capture_output=True,
        text=True,
        env={"HOME": str(root), "PATH": "/usr/bin:/bin"},
    )
    expected = [(d["code"], d["line"] - 1, d["column"] - 1) for d in json.loads(cli.stdout)]
    assert [c for c, _, _ in expected] == ["MUX002", "MUX021"]

    async def check(client: Client, uri: str) -> None:
        first = await client.diagnostics(uri)
        got = [(d.code, d.range.start.line, d.range.start.character) for d in first]
        assert got == expected
        by_code = {d.code: d for d in first}
        assert by_code["MUX021"].message.startswith("unknown step `dif` in `prompt`")
        assert "hint: did you mean `diff`?" in by_code["MUX021"].message
        assert by_code["MUX021"].severity == lsp.DiagnosticSeverity.Error
        assert by_code["MUX021"].source == "muxlang"
        description = by_code["MUX002"].code_description
        assert description is not None
        assert description.href.endswith("validation.md#mux002")

        # typing fixes one problem and makes another: the next notification says so
        client.replace(uri, broken.replace("steps.dif.", "steps.diff.").replace("trim", "trm"), 2)
        second = await client.diagnostics(uri, 2)
        assert sorted(d.code for d in second) == ["MUX002", "MUX011"]
        client.replace(uri, WORKFLOW, 3)
        assert await client.diagnostics(uri, 3) == []

    with_open_file(root, path, check)


def test_positions_are_utf16_with_non_ascii_and_astral_text(tmp_path: Path) -> None:
    root = project(tmp_path)
    # é is one UTF-16 unit, 😀 (outside the BMP) two: the caret moves by three
    text = WORKFLOW.replace("Review: {{", "Révise 😀: {{").replace(
        "steps.diff.output", "steps.dif.output"
    )
    path = write(root, "review.toml", text)

    async def check(client: Client, uri: str) -> None:
        [d] = await client.diagnostics(uri)
        assert d.code == "MUX021"
        start = at(text, "dif.output")
        assert d.range.start == start
        assert d.range.end == lsp.Position(start.line, start.character + 3)
        line = text.splitlines()[start.line]
        code_points = line.index("dif.output")
        assert start.character == code_points + 1  # the astral character counts twice
        # an incremental edit, as editors send them: insert `f` after `dif`
        end = lsp.Position(start.line, start.character + 3)
        client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
                content_changes=[
                    lsp.TextDocumentContentChangePartial(range=lsp.Range(end, end), text="f")
                ],
            )
        )
        assert await client.diagnostics(uri, 2) == []

    with_open_file(root, path, check)


def completion_labels(result: lsp.CompletionList | list[lsp.CompletionItem] | None) -> list[str]:
    assert result is not None
    items = result.items if isinstance(result, lsp.CompletionList) else result
    return [item.label for item in items]


def test_completion_knows_steps_fields_filters_args_keys_and_names(tmp_path: Path) -> None:
    root = project(tmp_path)
    write(
        root,
        "other.toml",
        '[args.level]\ndescription = "how strict"\n\n'
        '[[steps]]\nname = "x"\ntype = "shell"\nrun = "true"\n',
    )
    text = WORKFLOW + (
        '\n[[steps]]\nname = "more"\ntype = "query"\n'
        'prompt = "{{ steps.ask.ou }} {{ steps. }} {{ args. }} {{ steps.diff.output | }}"\n'
        'backend = "c"\nrole = "r"\ndepends_on = ["d"]\n'
        '\n[[steps]]\nname = "pick"\nuses = "o"\n'
        '\n[[steps]]\nname = "call"\nuses = "other"\nwith = { '
    )
    path = write(root, "review.toml", text)

    async def check(client: Client, uri: str) -> None:
        doc = lsp.TextDocumentIdentifier(uri=uri)

        async def labels(position: lsp.Position) -> list[str]:
            result = await within(
                client.text_document_completion_async(
                    lsp.CompletionParams(text_document=doc, position=position)
                )
            )
            return completion_labels(result)

        fields = await labels(at(text, "ou }}", 2))
        assert {"output", "outputs", "backend", "usage", "status", "duration_ms"} <= set(fields)
        assert "exit_code" not in fields  # a query step has none
        assert set(await labels(at(text, "steps. }}", 6))) >= {"diff", "ask", "more"}
        assert await labels(at(text, "args. }}", 5)) == ["base"]
        filters = await labels(at(text, "| }}", 2))
        assert {"trim", "join", "shell_escape", "default"} <= set(filters)
        assert "c" not in filters
        backends = await labels(at(text, 'backend = "c"', 11))
        assert {"claude", "ollama"} <= set(backends)  # the workflow's and the built-in
        assert "reviewer" not in backends
        assert "reviewer" in await labels(at(text, 'role = "r"', 8))
        assert set(await labels(at(text, 'depends_on = ["d"]', 15))) >= {"diff", "ask"}
        assert "other" in await labels(at(text, 'uses = "o"', 8))
        assert await labels(
            lsp.Position(len(text.splitlines()) - 1, len(text.splitlines()[-1]))
        ) == ["level"]

    with_open_file(root, path, check)


def test_completion_of_keys_by_file_kind_and_step_type(tmp_path: Path) -> None:
    root = project(tmp_path)
    text = '[[steps]]\nname = "a"\ntype = "shell"\n\n\n[roles.r]\nbackends = ["x"]\nexecution = "'
    path = write(root, "keys.toml", text)
    config = root / ".muxlang" / "config.toml"
    config.write_text('\n[backends.claude]\ncommand = "claude"\n', encoding="utf-8")

    async def check(client: Client, uri: str) -> None:

        async def items(uri: str, position: lsp.Position) -> dict[str, lsp.CompletionItem]:
            result = await within(
                client.text_document_completion_async(
                    lsp.CompletionParams(lsp.TextDocumentIdentifier(uri=uri), position)
                )
            )
            assert isinstance(result, lsp.CompletionList)
            return {item.label: item for item in result.items}

        shell = await items(uri, lsp.Position(3, 0))
        assert {"run", "cwd", "env", "if", "timeout"} <= set(shell)
        assert "prompt" not in shell  # a key of query steps
        assert "name" not in shell  # written already
        assert "type" not in shell
        doc = shell["run"].documentation
        assert isinstance(doc, lsp.MarkupContent)
        assert "sh -c" in doc.value
        assert list(await items(uri, lsp.Position(7, 13))) == [
            "first",
            "fallback",
            "parallel",
            "race",
        ]
        config_uri = client.open(config)
        top = await items(config_uri, lsp.Position(0, 0))
        assert {"defaults", "backends", "roles", "teams", "serve", "validate"} <= set(top)
        assert "steps" not in top  # config files have no steps
        backend = await items(config_uri, lsp.Position(3, 0))
        assert {"args", "protocol", "timeout"} <= set(backend)
        assert "command" not in backend  # written already

    with_open_file(root, path, check)


def test_hover_shows_key_docs_filter_docs_and_step_dependencies(tmp_path: Path) -> None:
    root = project(tmp_path)
    path = write(root, "review.toml", WORKFLOW)

    async def check(client: Client, uri: str) -> None:
        doc = lsp.TextDocumentIdentifier(uri=uri)

        async def hover(position: lsp.Position) -> str:
            result = await within(client.text_document_hover_async(lsp.HoverParams(doc, position)))
            assert result is not None
            assert isinstance(result.contents, lsp.MarkupContent)
            return result.contents.value

        assert "sh -c" in await hover(at(WORKFLOW, "run = ", 1))
        trim = await hover(at(WORKFLOW, "trim }}", 1))
        assert trim.startswith("`trim")
        from muxlang.template.filters import FILTERS

        assert FILTERS["trim"].doc.strip().splitlines()[0] in trim
        step = await hover(at(WORKFLOW, "diff.output", 1))
        assert "**diff**: shell step" in step
        ask = await hover(at(WORKFLOW, 'name = "ask"', 9))
        assert ask is not None
        role = await hover(at(WORKFLOW, 'role = "reviewer"', 9))
        assert "role, fallback of claude" in role

    with_open_file(root, path, check)


def test_definition_of_steps_roles_and_backends_in_any_config_file(tmp_path: Path) -> None:
    root = project(tmp_path)
    config = root / ".muxlang" / "config.toml"
    config.write_text(
        '[backends.ollama]\ncommand = "ollama"\n\n[roles.local]\nbackends = ["ollama"]\n'
    )
    text = WORKFLOW + '\n[[steps]]\nname = "third"\ntype = "query"\nrole = "local"\nprompt = "x"\n'
    path = write(root, "review.toml", text)

    async def check(client: Client, uri: str) -> None:
        doc = lsp.TextDocumentIdentifier(uri=uri)

        async def where(position: lsp.Position) -> lsp.Location:
            result = await within(
                client.text_document_definition_async(lsp.DefinitionParams(doc, position))
            )
            assert isinstance(result, lsp.Location)
            return result

        step = await where(at(text, "diff.output", 2))
        assert step.uri == uri
        assert step.range.start == at(text, '"diff"', 0)
        from_depends = await where(at(text, '["diff"]', 3))
        assert from_depends.range == step.range
        role = await where(at(text, 'role = "reviewer"', 10))
        assert (role.uri, role.range.start) == (uri, at(text, "[roles.reviewer]"))
        local = await where(at(text, 'role = "local"', 9))
        assert local.uri == config.as_uri()
        assert local.range.start == lsp.Position(3, 0)
        backend = await where(at(text, 'backends = ["claude"]', 14))
        assert (backend.uri, backend.range.start) == (uri, at(text, "[backends.claude]"))

    with_open_file(root, path, check)


def test_document_symbols_one_per_step(tmp_path: Path) -> None:
    root = project(tmp_path)
    path = write(root, "review.toml", WORKFLOW)

    async def check(client: Client, uri: str) -> None:
        symbols = await within(
            client.text_document_document_symbol_async(
                lsp.DocumentSymbolParams(lsp.TextDocumentIdentifier(uri=uri))
            )
        )
        assert symbols is not None
        found = [(s.name, s.detail, s.range.start.line, s.range.end.line) for s in symbols]  # type: ignore[union-attr]
        lines = WORKFLOW.splitlines()
        assert found == [
            (
                "diff",
                "shell step",
                lines.index("[[steps]]"),
                lines.index('run = "git diff {{ args.base }}"'),
            ),
            ("ask", "query step", len(lines) - 6, len(lines) - 1),
        ]

    with_open_file(root, path, check)


def test_quick_fix_applies_the_did_you_mean(tmp_path: Path) -> None:
    root = project(tmp_path)
    text = WORKFLOW.replace('"fallback"', '"falback"').replace(
        "steps.diff.output", "steps.dif.output"
    )
    path = write(root, "review.toml", text)

    async def check(client: Client, uri: str) -> None:
        diagnostics = await client.diagnostics(uri)
        assert sorted(d.code for d in diagnostics) == ["MUX005", "MUX021"]
        actions = await within(
            client.text_document_code_action_async(
                lsp.CodeActionParams(
                    text_document=lsp.TextDocumentIdentifier(uri=uri),
                    range=lsp.Range(lsp.Position(0, 0), lsp.Position(len(text.splitlines()), 0)),
                    context=lsp.CodeActionContext(diagnostics=diagnostics),
                )
            )
        )
        assert actions is not None
        edits = {}
        for action in actions:
            assert isinstance(action, lsp.CodeAction)
            assert action.kind == lsp.CodeActionKind.QuickFix
            assert action.edit is not None
            assert action.edit.changes is not None
            [edit] = action.edit.changes[uri]
            edits[action.title] = edit
        fixed = apply(text, list(edits.values()))
        assert fixed == WORKFLOW
        assert "Replace with `diff` (MUX021)" in edits

    with_open_file(root, path, check)


def apply(text: str, edits: list[lsp.TextEdit]) -> str:
    """Apply single-line edits (UTF-16 = code points here: ASCII) from the end."""
    lines = text.split("\n")
    for edit in sorted(
        edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True
    ):
        start, end = edit.range.start, edit.range.end
        assert start.line == end.line
        line = lines[start.line]
        lines[start.line] = line[: start.character] + edit.new_text + line[end.character :]
    return "\n".join(lines)


def test_a_config_file_gets_its_diagnostics_too(tmp_path: Path) -> None:
    root = project(tmp_path)
    config = root / ".muxlang" / "config.toml"
    text = (
        '[roles.r]\nbackends = ["claude"]\nexecution = "paralel"\n\n'
        '[validate]\nignore = ["MUX040"]\n'
    )
    config.write_text(text, encoding="utf-8")

    async def scenario() -> None:
        async with language_server(root) as client:
            uri = client.open(config)
            [d] = await client.diagnostics(uri)
            assert (d.code, d.range.start) == ("MUX005", at(text, '"paralel"'))

    run(scenario)


def test_hover_on_an_arg_and_definition_of_a_called_workflow(tmp_path: Path) -> None:
    root = project(tmp_path)
    other = write(root, "other.toml", '[[steps]]\nname = "x"\ntype = "shell"\nrun = "true"\n')
    text = WORKFLOW + '\n[[steps]]\nname = "call"\nuses = "other"\n'
    path = write(root, "review.toml", text)

    async def check(client: Client, uri: str) -> None:
        doc = lsp.TextDocumentIdentifier(uri=uri)
        hover = await within(
            client.text_document_hover_async(lsp.HoverParams(doc, at(text, "base }}", 1)))
        )
        assert hover is not None
        assert isinstance(hover.contents, lsp.MarkupContent)
        assert hover.contents.value == (
            "**args.base** (default `main`)\n\nThe branch to diff against"
        )
        where = await within(
            client.text_document_definition_async(
                lsp.DefinitionParams(doc, at(text, 'uses = "other"', 9))
            )
        )
        assert isinstance(where, lsp.Location)
        assert where.uri == other.as_uri()

    with_open_file(root, path, check)


def test_a_file_that_is_not_toml_gets_mux001_and_the_server_carries_on(tmp_path: Path) -> None:
    root = project(tmp_path)
    text = WORKFLOW + '\n[[steps]\nname = "half'
    path = write(root, "review.toml", text)

    async def check(client: Client, uri: str) -> None:
        [d] = await client.diagnostics(uri)
        assert d.code == "MUX001"
        assert d.range.start.line == len(WORKFLOW.splitlines()) + 1  # the `[[steps]` line
        # the rest of the file still feeds completion
        result = await within(
            client.text_document_completion_async(
                lsp.CompletionParams(
                    lsp.TextDocumentIdentifier(uri=uri), at(text, "steps.diff.output", 6)
                )
            )
        )
        assert {"diff", "ask"} <= set(completion_labels(result))
        client.replace(uri, WORKFLOW, 2)
        assert await client.diagnostics(uri, 2) == []

    with_open_file(root, path, check)


def test_a_client_that_offers_utf8_first_gets_byte_columns(tmp_path: Path) -> None:
    root = project(tmp_path)
    text = WORKFLOW.replace("Review: {{", "Révise 😀: {{").replace(
        "steps.diff.output", "steps.dif.output"
    )
    path = write(root, "review.toml", text)
    offers = lsp.ClientCapabilities(
        general=lsp.GeneralClientCapabilities(
            position_encodings=[lsp.PositionEncodingKind.Utf8, lsp.PositionEncodingKind.Utf16]
        )
    )

    async def scenario() -> None:
        async with language_server(root, offers) as client:
            assert client.server_capabilities is not None
            assert client.server_capabilities.position_encoding == lsp.PositionEncodingKind.Utf8
            uri = client.open(path)
            [d] = await client.diagnostics(uri)
            line = text.splitlines()[d.range.start.line]
            start = len(line[: line.index("dif.output")].encode("utf-8"))
            assert (d.range.start.character, d.range.end.character) == (start, start + 3)
            hover = await within(
                client.text_document_hover_async(
                    lsp.HoverParams(
                        lsp.TextDocumentIdentifier(uri=uri),
                        lsp.Position(d.range.start.line, start + 1),
                    )
                )
            )
            assert hover is None  # `dif` is no step: nothing to say, but no error either
            trim = await within(
                client.text_document_hover_async(
                    lsp.HoverParams(
                        lsp.TextDocumentIdentifier(uri=uri),
                        lsp.Position(
                            d.range.start.line,
                            len(line[: line.index("trim")].encode("utf-8")) + 1,
                        ),
                    )
                )
            )
            assert trim is not None
            assert isinstance(trim.contents, lsp.MarkupContent)
            assert trim.contents.value.startswith("`trim")

    run(scenario)


def test_fast_typing_ends_with_the_diagnostics_of_the_last_version(tmp_path: Path) -> None:
    root = project(tmp_path)
    path = write(root, "review.toml", WORKFLOW)

    async def check(client: Client, uri: str) -> None:
        assert await client.diagnostics(uri) == []
        # type `dif` then `f`, `x`, a backspace, ... without waiting
        texts = [
            WORKFLOW.replace("steps.diff.output", f"steps.{name}.output")
            for name in ("d", "di", "dif", "diff", "diffx", "diff")
        ]
        texts.append(WORKFLOW.replace("trim }}", "trimm }}"))
        for version, text in enumerate(texts, start=2):
            client.replace(uri, text, version)

        async def last() -> lsp.PublishDiagnosticsParams:
            while True:
                latest = client.published[uri][-1]
                if latest.version == len(texts) + 1:
                    return latest
                client.changed.clear()
                await client.changed.wait()

        final = await within(last())
        assert [d.code for d in final.diagnostics] == ["MUX011"]
        versions = [p.version for p in client.published[uri]]
        assert versions == sorted(versions)  # never an older version after a newer

    with_open_file(root, path, check)


def test_saving_the_config_rechecks_the_open_workflows(tmp_path: Path) -> None:
    root = project(tmp_path)
    config = root / ".muxlang" / "config.toml"
    config.write_text('[backends.ollama]\ncommand = "ollama"\n', encoding="utf-8")
    text = WORKFLOW.replace('role = "reviewer"', 'role = "local"')
    path = write(root, "review.toml", text)

    async def check(client: Client, uri: str) -> None:
        [d] = await client.diagnostics(uri)
        assert d.code == "MUX030"
        assert d.message.startswith("unknown role `local`")
        config_uri = client.open(config)
        assert await client.diagnostics(config_uri) == []
        saved = '[backends.ollama]\ncommand = "ollama"\n\n[roles.local]\nbackends = ["ollama"]\n'
        config.write_text(saved, encoding="utf-8")
        client.replace(config_uri, saved, 2)
        client.text_document_did_save(
            lsp.DidSaveTextDocumentParams(lsp.TextDocumentIdentifier(uri=config_uri))
        )

        async def cleared() -> None:
            while client.published[uri][-1].diagnostics:
                client.changed.clear()
                await client.changed.wait()

        await within(cleared())

    with_open_file(root, path, check)
