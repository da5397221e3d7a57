"""CLI backends: any program that takes a prompt and prints an answer.

argv is ``command + args + [prompt]`` (or the prompt on stdin with
``prompt_via = "stdin"``; a prompt beginning with ``-`` is passed with a leading
space, so that it is never read as an option); the environment is the caller's
plus the backend's ``env``; the answer is stdout with trailing newlines removed. Every process runs
through :func:`muxlang.runtime.process.run`, so cancelling a call (a race lost, a
timeout, Ctrl-C) stops the program's whole process group.
"""

from __future__ import annotations

import codecs
import errno
import logging
import os
import re
import shlex
import shutil
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import trio

from muxlang.config.models import BackendConfig
from muxlang.llm import (
    Availability,
    BackendError,
    ChatRequest,
    ChatResponse,
    ErrorKind,
    Finish,
    StreamEvent,
    TextDelta,
)
from muxlang.redaction import redact
from muxlang.runtime import process
from muxlang.runtime.backends.base import Prepared, PreparedBackend, Probe, channel_stream

log = logging.getLogger("muxlang.backends")

#: stderr wording that means "rate limited" (→ ErrorKind.RATE_LIMIT)
RATE_LIMIT_WORDING = re.compile(
    r"\b429\b|rate[ _-]?limit|too many requests|quota|resource[ _]exhausted|overloaded",
    re.IGNORECASE,
)
_TAIL_LINES = 12
_TAIL_CHARS = 800


def stderr_tail(stderr: bytes, secrets: Iterable[str] = ()) -> str:
    """The last lines of stderr, for error messages: ``secrets`` are redacted from
    the whole text *before* it is cut, so no part of a key survives the cut."""
    text = redact(stderr.decode("utf-8", "replace"), secrets).strip()
    lines = text.splitlines()[-_TAIL_LINES:]
    tail = "\n".join(lines)
    return tail[-_TAIL_CHARS:]


def prompt_argument(prompt: str) -> str:
    """The prompt as the last argv item, in a form no option parser reads as an
    option: one that begins with ``-`` (``--dangerously-skip-permissions`` sent by
    a gateway client) gets a leading space. Option parsers (getopt, argparse,
    commander, clap, yargs, cobra) take only arguments whose first character is
    ``-`` as options, and a model reads the space as nothing. (``--`` before the
    prompt is not used: a program that does not know it would see it as text.)"""
    return " " + prompt if prompt.startswith("-") else prompt


class CliBackend(PreparedBackend):
    """One command-line backend."""

    def __init__(
        self,
        prepared: Prepared,
        *,
        nursery: trio.Nursery,
        environ: Mapping[str, str],
        cwd: Path | None = None,
        grace: float | None = None,  # None: process.kill_grace()
    ) -> None:
        super().__init__(prepared, nursery)
        self._environ = environ
        self._cwd = cwd
        self._grace = grace

    def __repr__(self) -> str:
        return f"CliBackend(name={self.name!r}, command={self._prepared.raw.command!r})"

    # ------------------------------------------------------------------ setup

    def _env(self, config: BackendConfig) -> dict[str, str]:
        return {**self._environ, **config.env}

    def resolve_program(self, config: BackendConfig) -> str | None:
        """The program's path, or None when it cannot be found / run."""
        command = config.command
        path = self._env(config).get("PATH", os.defpath)
        if os.sep in command:
            candidate = Path(command)
            if not candidate.is_absolute() and self._cwd is not None:
                candidate = self._cwd / candidate
            return str(candidate) if os.access(candidate, os.X_OK) and candidate.is_file() else None
        return shutil.which(command, path=path)

    def availability(self) -> Availability:
        """As every backend's, and its program must be found."""
        found = super().availability()
        config = self._prepared.config
        if found.ok and config is not None and self.resolve_program(config) is None:
            return Availability(False, f"backend `{self.name}`: {self._not_found(config)}")
        return found

    def _not_found(self, config: BackendConfig) -> str:
        if os.sep in config.command:
            return f"command {config.command} does not exist or is not executable"
        return f"command `{config.command}` not found on PATH"

    def command_line(self, request: ChatRequest) -> tuple[list[str], bytes | None]:
        """argv and stdin for a request (the system prompt goes before the prompt)."""
        config = self._prepared.usable()
        prompt = request.prompt_text
        system = request.system if request.system is not None else config.system
        if system:
            prompt = f"{system}\n\n{prompt}"
        program = self.resolve_program(config)
        if program is None:
            raise BackendError(self.name, ErrorKind.CONFIG, self._not_found(config))
        argv = [program, *config.args]
        if config.prompt_via == "stdin":
            return argv, prompt.encode()
        return [*argv, prompt_argument(prompt)], None

    async def probe(self, timeout: float = 5.0) -> Probe:
        """A real check for ``doctor``: the program is found and runs ``--version``."""
        found = self.availability()
        if not found.ok:
            return Probe(False, problems=(found.reason,))
        config = self._prepared.config
        assert config is not None
        program = self.resolve_program(config)
        assert program is not None
        try:
            with trio.move_on_after(timeout) as scope:
                result = await process.run(
                    [program, "--version"], cwd=self._cwd, env=self._env(config), grace=1.0
                )
        except process.SpawnError as exc:
            return Probe(False, problems=(f"backend `{self.name}`: {exc}",))
        if scope.cancelled_caught:
            problem = (
                f"backend `{self.name}`: `{config.command} --version` did not finish "
                f"within {timeout:g} s"
            )
            return Probe(False, problems=(problem,))
        first = (result.stdout or result.stderr).decode("utf-8", "replace").strip()
        first = first.splitlines()[0][:80] if first else ""
        if result.returncode != 0:
            return Probe(True, detail=f"{program} (--version exited {result.returncode})")
        return Probe(True, detail=f"{program}" + (f" ({first})" if first else ""))

    # ------------------------------------------------------------------ calls

    async def _run(
        self, request: ChatRequest, on_stdout: Callable[[bytes | bytearray], Any] | None = None
    ) -> process.ProcessResult:
        config = self._prepared.usable()
        argv, stdin = self.command_line(request)
        if log.isEnabledFor(logging.DEBUG):  # --debug: what runs, secrets masked, no prompt
            shown = argv if stdin is not None else argv[:-1]
            size = len(stdin) if stdin is not None else len(argv[-1].encode())
            where = "on stdin" if stdin is not None else "as the last argument"
            log.debug(
                "backend %s: run %s (prompt of %d bytes %s)",
                self.name,
                self._prepared.redact(shlex.join(shown)),
                size,
                where,
            )
        try:
            with trio.move_on_after(self.timeout) as scope:
                result = await process.run(
                    argv,
                    cwd=self._cwd,
                    env=self._env(config),
                    stdin=stdin,
                    grace=self._grace,
                    on_stdout=on_stdout,
                    keep_stdout=on_stdout is None,
                )
        except process.SpawnError as exc:
            message = str(exc)
            if config.prompt_via == "arg" and exc.errno == errno.E2BIG:
                size = len(argv[-1].encode())
                message += (
                    f" (the prompt is {size} bytes, too long for one argument;"
                    ' set prompt_via = "stdin" if the program reads stdin)'
                )
            raise self._error(ErrorKind.CONFIG, message) from exc
        if scope.cancelled_caught:
            raise self._error(
                ErrorKind.TIMEOUT, f"`{config.command}` gave no answer within {self.timeout:g} s"
            )
        if result.returncode != 0:
            tail = stderr_tail(result.stderr, self._prepared.secrets)
            how = (
                f"was killed by signal {-result.returncode}"
                if result.returncode < 0
                else f"exited with status {result.returncode}"
            )
            message = f"`{config.command}` {how}" + (f": {tail}" if tail else " (no stderr)")
            kind = ErrorKind.RATE_LIMIT if RATE_LIMIT_WORDING.search(tail) else ErrorKind.SERVER
            raise self._error(kind, message)
        return result

    def _error(self, kind: ErrorKind, message: str) -> BackendError:
        return BackendError(self.name, kind, self._prepared.redact(message))

    async def complete(self, request: ChatRequest) -> ChatResponse:
        result = await self._run(request)
        text = result.stdout.decode("utf-8", "replace").rstrip("\r\n")
        return ChatResponse(text=text, backend=self.name)

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        self._prepared.usable()  # configuration errors surface before the first event

        async def produce(emit: Callable[[StreamEvent], Any]) -> None:
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            held = ""  # trailing newlines: sent only if more text follows

            async def on_stdout(chunk: bytes | bytearray) -> None:
                nonlocal held
                text = held + decoder.decode(bytes(chunk))
                body = text.rstrip("\r\n")
                held = text[len(body) :]
                if body:
                    await emit(TextDelta(body))

            await self._run(request, on_stdout)
            rest = (held + decoder.decode(b"", final=True)).rstrip("\r\n")
            if rest:
                await emit(TextDelta(rest))
            await emit(Finish("stop"))

        return channel_stream(self._nursery, self.name, produce)
