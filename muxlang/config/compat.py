"""llm-mux files keep working (SPEC section 12).

Before a workflow or a config file is checked against muxlang's models, this
module reads the keys llm-mux accepts and muxlang does not spell the same way,
on the positioned TOML tree (so every position stays the file's own), and
either translates each to its muxlang meaning or drops it with a MUX050
warning that says what muxlang does instead. No llm-mux key is an error.

Translated (llm-mux meaning kept, nothing reported):

- backend ``api_key_env = "NAME"`` → ``api_key = "${NAME}"``; ``type =
  "claude"`` → the Anthropic API (``protocol = "anthropic"``, its URL, key from
  ``ANTHROPIC_API_KEY`` unless ``api_key_env`` names another, a default model);
  ``env`` written as ``[["K", "V"], ...]`` pairs → a table;
  ``input_cost_per_million``/``output_cost_per_million`` → ``price``;
- a blank ``if`` → no condition (the step runs, as in llm-mux);
- top-level ``version`` → dropped (it is metadata there too);
- in a file under an ``.llm-mux/`` directory, a bare integer step or workflow
  ``timeout`` is milliseconds, as llm-mux reads it.

Kept by the models: ``[args.X] required``, step ``retries``/``retry_delay``,
``output_schema`` (see :mod:`muxlang.config.models`). Under ``.llm-mux/`` an arg
with neither ``required`` nor ``default`` is optional, as llm-mux's ``required``
defaults to false.

Reported with MUX050 and dropped: step ``parallel``/``min_success`` (the role
decides), an ``options`` list, ``[defaults] timeout``/``parallel``/
``command_wrapper``, ``[ecosystems]``. The ``store`` and ``input`` step types
become shell steps (MUX050 says what each does). MUX051 warns where a bare
integer timeout of 1000 or more in muxlang's own files reads as seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from muxlang.diagnostics import Diagnostic, Severity
from muxlang.source import LineIndex, Span
from muxlang.toml.nodes import Array, Entry, Key, Node, Scalar, String, Table

__all__ = ["is_llm_mux_file", "translate_config", "translate_workflow"]

COMPAT = "MUX050"
UNITS = "MUX051"

#: where llm-mux's Anthropic backend (`type = "claude"`) sends requests, and its defaults
_CLAUDE_URL = "https://api.anthropic.com"
_CLAUDE_KEY_ENV = "ANTHROPIC_API_KEY"
_CLAUDE_MODEL = "claude-sonnet-4-20250514"


def is_llm_mux_file(path: str | Path) -> bool:
    """Whether ``path`` lies under an ``.llm-mux/`` directory (llm-mux's units apply)."""
    return ".llm-mux" in Path(path).parts


class _Translator:
    def __init__(self, path: str, lines: LineIndex) -> None:
        self.path = path
        self.lines = lines
        self.llm_mux = is_llm_mux_file(path)
        self.found: list[Diagnostic] = []

    # ---------------------------------------------------------------- helpers

    def warn(self, span: Span, code: str, message: str, hint: str | None = None) -> None:
        self.found.append(Diagnostic(self.path, span, code, message, Severity.WARNING, hint))

    def string(self, value: str, like: Node) -> String:
        """A string node holding ``value``, placed where ``like`` is."""
        offset = like.file_offset(0) if isinstance(like, String) else self._offset(like.span)
        return String(value, like.span, ((0, offset),), self.lines)

    def _offset(self, span: Span) -> int:
        """The file offset where ``span`` starts."""
        text = self.lines.text
        index = 0
        for _ in range(span.line - 1):
            found = text.find("\n", index)
            if found == -1:
                break
            index = found + 1
        return index + span.column - 1

    @staticmethod
    def with_entries(table: Table, entries: dict[str, Entry]) -> Table:
        return Table(entries, table.span)

    @staticmethod
    def entry(name: str, value: Node, like: Entry) -> Entry:
        return Entry(Key(name, like.key.span), value)

    # ---------------------------------------------------------------- config

    def config(self, root: Table) -> Table:
        entries = dict(root.entries)
        defaults = entries.get("defaults")
        if defaults is not None and isinstance(defaults.value, Table):
            entries["defaults"] = Entry(defaults.key, self.defaults(defaults.value))
        backends = entries.get("backends")
        if backends is not None and isinstance(backends.value, Table):
            translated = {
                name: Entry(entry.key, self.backend(entry.value))
                if isinstance(entry.value, Table)
                else entry
                for name, entry in backends.value.entries.items()
            }
            entries["backends"] = Entry(backends.key, Table(translated, backends.value.span))
        ecosystems = entries.pop("ecosystems", None)
        if ecosystems is not None:
            self.warn(
                ecosystems.key.span,
                COMPAT,
                "llm-mux's `[ecosystems]` are not read: muxlang has no ecosystems",
                "teams detect a project (`[teams.X] detect = [...]`) and give it roles and "
                "a verify command",
            )
        return Table(entries, root.span)

    def defaults(self, table: Table) -> Table:
        entries = dict(table.entries)
        dropped = {
            "timeout": "each backend has its own `timeout` (300 s unless set): muxlang does "
            "not read a default for all of them",
            "parallel": "a role's `execution` decides how its backends run: set "
            '`execution = "parallel"` on the role',
            "command_wrapper": "muxlang runs each command as written: put the wrapper into "
            "the commands (`nix-shell --run ...`)",
        }
        for key, what in dropped.items():
            entry = entries.pop(key, None)
            if entry is not None:
                self.warn(
                    entry.key.span,
                    COMPAT,
                    f"llm-mux's `[defaults] {key}` is not read: {what}",
                )
        return Table(entries, table.span)

    def backend(self, table: Table) -> Table:
        entries = dict(table.entries)
        key_env = entries.pop("api_key_env", None)
        kind = entries.pop("type", None)
        claude = (
            kind is not None and isinstance(kind.value, String) and kind.value.value == "claude"
        )
        if kind is not None and not claude:
            value = kind.value.value if isinstance(kind.value, String | Scalar) else None
            if value not in ("cli", "http", "openai"):
                self.warn(
                    kind.key.span,
                    COMPAT,
                    f"backend `type = {value!r}` is not known to muxlang and is ignored: "
                    "a URL `command` makes an HTTP backend, anything else a CLI",
                    'set `protocol` ("openai", "anthropic", "gemini", "ollama") for HTTP',
                )
        if key_env is not None and isinstance(key_env.value, String):
            if "api_key" in entries:
                self.warn(
                    key_env.key.span,
                    COMPAT,
                    "`api_key_env` is ignored: `api_key` is set as well",
                )
            else:
                entries["api_key"] = self.entry(
                    "api_key", self.string(f"${{{key_env.value.value}}}", key_env.value), key_env
                )
        if claude and kind is not None:
            for key, value in (
                ("protocol", "anthropic"),
                ("command", _CLAUDE_URL),
                ("api_key", f"${{{_CLAUDE_KEY_ENV}}}"),
                ("model", _CLAUDE_MODEL),
            ):
                entries.setdefault(key, self.entry(key, self.string(value, kind.value), kind))
        env = entries.get("env")
        if env is not None and isinstance(env.value, Array):
            pairs: dict[str, Entry] = {}
            for item in env.value.items:
                if (
                    isinstance(item, Array)
                    and len(item.items) == 2
                    and all(isinstance(part, String) for part in item.items)
                ):
                    name, value = item.items
                    assert isinstance(name, String)
                    pairs[name.value] = Entry(Key(name.value, name.span), value)
                else:
                    pairs = {}
                    break
            else:
                entries["env"] = Entry(env.key, Table(pairs, env.value.span))
        cost_in = entries.pop("input_cost_per_million", None)
        cost_out = entries.pop("output_cost_per_million", None)
        if (cost_in or cost_out) and "price" not in entries:
            first = cost_in or cost_out
            assert first is not None
            price = {
                "input": Entry(Key("input", first.key.span), cost_in.value)
                if cost_in
                else Entry(Key("input", first.key.span), Scalar(0.0, first.key.span)),
                "output": Entry(Key("output", first.key.span), cost_out.value)
                if cost_out
                else Entry(Key("output", first.key.span), Scalar(0.0, first.key.span)),
            }
            entries["price"] = Entry(Key("price", first.key.span), Table(price, first.key.span))
        return Table(entries, table.span)

    # ---------------------------------------------------------------- workflow

    def workflow(self, root: Table) -> Table:
        root = self.config(root)
        entries = dict(root.entries)
        entries.pop("version", None)  # metadata in llm-mux as well
        args = entries.get("args")
        if self.llm_mux and args is not None and isinstance(args.value, Table):
            entries["args"] = Entry(args.key, self.llm_mux_args(args.value))
        timeout = entries.get("timeout")
        if timeout is not None:
            entries["timeout"] = Entry(timeout.key, self.timeout(timeout, "workflow"))
        steps = entries.get("steps")
        if steps is not None and isinstance(steps.value, Array):
            items = tuple(
                self.step(item) if isinstance(item, Table) else item for item in steps.value.items
            )
            entries["steps"] = Entry(steps.key, Array(items, steps.value.span))
        return Table(entries, root.span)

    def llm_mux_args(self, table: Table) -> Table:
        """llm-mux's ``required`` defaults to false: under ``.llm-mux/`` an arg with
        neither ``required`` nor ``default`` is optional (it inserts ``""``)."""
        args = dict(table.entries)
        for name, entry in table.entries.items():
            arg = entry.value
            if (
                isinstance(arg, Table)
                and "required" not in arg.entries
                and ("default" not in arg.entries)
            ):
                optional = {
                    **arg.entries,
                    "required": self.entry("required", Scalar(False, arg.span), entry),
                }
                args[name] = Entry(entry.key, Table(optional, arg.span))
        return Table(args, table.span)

    def timeout(self, entry: Entry, what: str) -> Node:
        value = entry.value
        if not isinstance(value, Scalar) or type(value.value) is not int:
            return value
        millis: int = value.value
        if self.llm_mux:
            if millis >= 1000:
                self.warn(
                    value.span,
                    UNITS,
                    f"{what} `timeout = {millis}` is read as milliseconds "
                    f"({_human(millis / 1000)}) because this file is under `.llm-mux/`, "
                    "as llm-mux reads it",
                    f'write "{_suggest(millis / 1000)}" to say it in any file',
                )
            return Scalar(millis / 1000.0, value.span)
        if millis >= 1000:
            self.warn(
                value.span,
                UNITS,
                f"{what} `timeout = {millis}` is seconds here ({_human(float(millis))}); "
                f"llm-mux read a bare number as milliseconds ({_human(millis / 1000)})",
                f'write "{millis}ms" or "{_suggest(millis / 1000)}" if milliseconds were meant, '
                f'or "{_suggest(float(millis))}" to keep {_human(float(millis))}',
            )
        return value

    def step(self, table: Table) -> Table:
        entries = dict(table.entries)
        kind = entries.get("type")
        kind_name = (
            kind.value.value if kind is not None and isinstance(kind.value, String) else None
        )
        timeout = entries.get("timeout")
        if timeout is not None:
            entries["timeout"] = Entry(timeout.key, self.timeout(timeout, "step"))
        condition = entries.get("if")
        if (
            condition is not None
            and isinstance(condition.value, String)
            and not condition.value.value.strip()
        ):
            del entries["if"]  # an empty `if` is true, as in llm-mux
        for key in ("parallel", "min_success"):
            entry = entries.pop(key, None)
            if entry is not None:
                self.warn(
                    entry.key.span,
                    COMPAT,
                    f"step `{key}` is not read: a query step runs its role as the role's "
                    "`execution` says",
                    'give the role `execution = "parallel"` and `min_success`, or name a role '
                    "that has them",
                )
        options = entries.get("options")
        choices: list[str] = []
        if options is not None and isinstance(options.value, Array):
            del entries["options"]
            choices = [item.value for item in options.value.items if isinstance(item, String)]
            if kind_name != "input":
                self.warn(
                    options.key.span,
                    COMPAT,
                    "an `options` list is llm-mux's choices for an input step; muxlang's "
                    "`options` is a table of request options, so the list is ignored",
                )
        if kind_name == "store" and kind is not None:
            return self.store(table, entries, kind)
        if kind_name == "input" and kind is not None:
            return self.input(table, entries, kind, choices)
        return Table(entries, table.span)

    def _as_shell(self, entries: dict[str, Entry], kind: Entry, run: String) -> dict[str, Entry]:
        kept = {
            key: entry
            for key, entry in entries.items()
            if key
            in (
                "name",
                "depends_on",
                "if",
                "for_each",
                "max_parallel",
                "fail_fast",
                "continue_on_error",
                "timeout",
                "retries",
                "retry_delay",
            )
        }
        kept["type"] = Entry(kind.key, self.string("shell", kind.value))
        kept["run"] = Entry(Key("run", kind.key.span), run)
        return kept

    def store(self, table: Table, entries: dict[str, Entry], kind: Entry) -> Table:
        self.warn(
            kind.value.span,
            COMPAT,
            "muxlang keeps no memory database: a `store` step runs as a shell step whose "
            "output is its rendered `prompt` (later steps read it as `steps.NAME.output`)",
            "write the data where you want it with a shell step (`sqlite3`, a file)",
        )
        prompt = entries.get("prompt")
        delimiter = "MUXLANG_STORE_END"
        if prompt is not None and isinstance(prompt.value, String):
            run = _wrap(prompt.value, f"cat <<'{delimiter}'\n", f"\n{delimiter}\n", self.lines)
        else:
            run = self.string("true", kind.value)
        return Table(self._as_shell(entries, kind, run), table.span)

    def input(
        self, table: Table, entries: dict[str, Entry], kind: Entry, choices: list[str]
    ) -> Table:
        self.warn(
            kind.value.span,
            COMPAT,
            "muxlang does not stop a run for typed input: an `input` step fails with a "
            "message naming it (llm-mux refuses input steps as not implemented)",
            "take the answer as a workflow argument instead: `[args.answer]`, then "
            "`muxlang run WORKFLOW answer=...`",
        )
        listed = ", ".join(choices)
        message = "input steps are not supported: pass the answer as a workflow argument"
        if listed:
            message += f" (one of: {listed})"
        run = self.string("echo " + _sh_quote(message) + " >&2; exit 1", kind.value)
        return Table(self._as_shell(entries, kind, run), table.span)


def _sh_quote(text: str) -> str:
    """``text`` as one shell word inside a template (no tag can start in it)."""
    return "{% raw %}'" + text.replace("'", "'\\''") + "'{% endraw %}"


def _wrap(node: String, prefix: str, suffix: str, lines: LineIndex) -> String:
    """``prefix + node.value + suffix``, the value's characters still mapped to the file."""
    shift = len(prefix)
    start = node.file_offset(0)
    end = len(prefix) + len(node.value)
    runs = (
        (0, start),
        *((d + shift, f) for d, f in node.runs),
        (end, node.file_offset(end - shift)),
    )
    escapes = tuple((d + shift, f) for d, f in node.escapes)
    return String(prefix + node.value + suffix, node.span, runs, lines, escapes)


def _human(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:g} ms"
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 7200:
        return f"{seconds / 60:g} min"
    return f"{seconds / 3600:.3g} h"


def _suggest(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    if seconds >= 1:
        return f"{seconds:g}s"
    return f"{seconds * 1000:g}ms"


Translate = Callable[[Table, str, LineIndex], tuple[Table, list[Diagnostic]]]


def translate_workflow(root: Table, path: str, lines: LineIndex) -> tuple[Table, list[Diagnostic]]:
    """The workflow document with llm-mux's keys translated, and the warnings said."""
    translator = _Translator(path, lines)
    return translator.workflow(root), translator.found


def translate_config(root: Table, path: str, lines: LineIndex) -> tuple[Table, list[Diagnostic]]:
    """A ``config.toml`` with llm-mux's keys translated, and the warnings said."""
    translator = _Translator(path, lines)
    return translator.config(root), translator.found
