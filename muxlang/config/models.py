"""The shapes of ``config.toml`` and workflow files (SPEC sections 2 and 3).

These pydantic models are the single source of the keys muxlang accepts: the
loader validates TOML against them (mapping pydantic's errors back to file
positions as MUX002/MUX003/MUX004), ``muxlang schema`` prints their JSON Schema,
and the runtime reads resolved backends and roles through them. Strings that
hold templates stay plain strings here; the loader parses them into template
ASTs with positions.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    Tag,
)

from muxlang.config.plugins_off import plugins_off

# no pydantic plugin observes muxlang's own schemas: none is looked for while they
# are built (undone at the end of this module)
_plugins_on = plugins_off()

STEP_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*$"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def _seconds(value: float | str) -> float:
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(value)
    if not match:
        raise ValueError(
            f'invalid duration {value!r}: use seconds (30) or a string such as "500ms", '
            '"30s", "2m", "1h"'
        )
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_duration(value: float | str) -> float:
    """Seconds from a number of seconds or a string such as ``"500ms"``, ``"2m"``."""
    seconds = _seconds(value)
    if seconds <= 0:
        raise ValueError("a timeout must be greater than zero")
    return seconds


def parse_duration_ms(value: int | str) -> int:
    """Milliseconds from a number of milliseconds or a duration string (``"2s"``)."""
    millis = value if isinstance(value, int) else round(_seconds(value) * 1000)
    if millis < 0:
        raise ValueError("a delay cannot be negative")
    return millis


_DURATION_TEXT = Annotated[str, Field(pattern=r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$")]

if TYPE_CHECKING:  # what a model's attribute holds once validated
    Duration = float
    DurationMs = int
    DurationOrZero = float
else:
    #: seconds: a number, or a string with a unit ("500ms", "30s", "2m", "1h"); the same
    #: form is accepted by every key that is a time (step, workflow and backend timeouts,
    #: [serve] cooldown)
    Duration = Annotated[
        float | _DURATION_TEXT,
        AfterValidator(parse_duration),
        PlainSerializer(lambda value: _seconds(value), return_type=float),
    ]

    #: milliseconds: a whole number of ms, or a string with a unit ("250ms", "2s")
    DurationMs = Annotated[
        int | _DURATION_TEXT,
        AfterValidator(parse_duration_ms),
        PlainSerializer(lambda value: parse_duration_ms(value), return_type=int),
    ]

    #: seconds, zero allowed (a cooldown of 0 turns cooldowns off)
    DurationOrZero = Annotated[
        float | _DURATION_TEXT,
        AfterValidator(_seconds),
        PlainSerializer(lambda value: _seconds(value), return_type=float),
    ]


_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9}
_SIZE_UNITS |= {"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}


def _no_items() -> list[Any]:
    """The ``default_factory`` of list fields. Pydantic reads a factory's signature:
    ``list``'s is parsed from its text with :mod:`tokenize` (1.3 ms to compile its
    pattern the first time, then ~40 µs each); a Python function's costs nothing."""
    return []


def parse_size(value: int | str) -> int:
    """Bytes from a number of bytes or a string such as ``"10MB"`` or ``"64MiB"``
    (kB, MB, GB are powers of 1000; KiB, MiB, GiB of 1024)."""
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(value)
        if not match:
            raise ValueError(
                f'invalid size {value!r}: use bytes (1048576) or a string such as "10MB" or "64MiB"'
            )
        size = int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]
    if size < 1:
        raise ValueError("a size must be at least 1 byte")
    return size


#: bytes: a whole number, or a string with a unit ("500kB", "10MB", "64MiB", "1GiB")
ByteSize = Annotated[
    # no inline (?i): JSON Schema patterns (editors, SchemaStore) are ECMA-262
    int | Annotated[str, Field(pattern=r"^\s*\d+\s*([kKmMgG][iI]?[bB]|[bB])?\s*$")],
    AfterValidator(parse_size),
    PlainSerializer(lambda value: parse_size(value), return_type=int),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# --------------------------------------------------------------------------- config


#: how long a cached answer is good for: ``true`` (forever) or an age such as ``"7d"``
CacheSetting = bool | Annotated[str, Field(pattern=r"^\s*\d+(\.\d+)?\s*(s|m|h|d|w)\s*$")]


class DefaultsConfig(_Model):
    max_concurrent: int = Field(8, ge=1, description="Steps and backend calls in flight at once.")
    max_output: ByteSize = Field(
        64 * 1024 * 1024,
        description="The most a command may print on stdout (shell steps, CLI backends, verify): "
        'bytes, or "10MB", "64MiB". Over it, the command is stopped and the step fails.',
    )
    cache: CacheSetting | None = Field(
        None,
        description='Cache every query step\'s answers: true, or a maximum age such as "7d" '
        "(docs/history.md).",
    )


class Price(_Model):
    """A backend's price in USD per million tokens."""

    input: float = Field(ge=0, description="USD per million input (prompt) tokens.")
    output: float = Field(ge=0, description="USD per million output (completion) tokens.")


class BackendConfig(_Model):
    """A CLI backend (``command`` is a program) or an HTTP backend (``command`` is a URL)."""

    command: str = Field(description="A program to run with the prompt, or an http(s) base URL.")
    args: list[str] = Field(default_factory=_no_items, description="Arguments for CLI backends.")
    prompt_via: Literal["arg", "stdin"] = Field(
        "arg", description="CLI only: pass the prompt as the last argument, or on stdin."
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="Extra environment for CLI backends."
    )
    protocol: Literal["openai", "anthropic", "gemini", "ollama"] = Field(
        "openai", description="HTTP only: the wire protocol."
    )
    model: str | None = Field(None, description="Model name for HTTP backends.")
    api_key: str | None = Field(None, description='API key, usually "${ENV_VAR}".')
    headers: dict[str, str] = Field(default_factory=dict, description="Extra HTTP headers.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Merged into the request body (temperature, ...)."
    )
    system: str | None = Field(None, description="System prompt sent with every request.")
    enabled: bool = Field(True, description="Disabled backends are never used.")
    timeout: Duration = Field(
        300.0, description='Seconds before a call times out, or "500ms", "30s", "2m", ...'
    )
    max_retries: int = Field(3, ge=0, description="Retry attempts after the first call.")
    retry_delay: DurationMs = Field(
        1000, description='Base of the exponential backoff: milliseconds, or "250ms", "2s", ...'
    )
    retry_rate_limit: bool = Field(True, description="Retry when rate limited (HTTP 429).")
    retry_timeout: bool = Field(False, description="Retry when a call times out.")
    price: Price | None = Field(
        None,
        description="USD per million tokens, { input = 3.0, output = 15.0 }: the cost "
        "counted for usage and [serve.keys.*] max_cost.",
    )

    @property
    def is_http(self) -> bool:
        return self.command.startswith(("http://", "https://"))


Execution = Literal["first", "fallback", "parallel", "race"]


class RoleConfig(_Model):
    description: str | None = Field(
        None, description="What the role is for (shown by `muxlang roles`)."
    )
    backends: list[str] = Field(description="Backend or role names, in order.")
    execution: Execution = Field(
        "first",
        description="first: the first available backend; fallback: each in turn until one "
        "succeeds; parallel: all at once; race: all at once, first success wins.",
    )
    min_success: int = Field(1, ge=1, description="parallel only: answers needed to succeed.")


class RoleOverride(_Model):
    """A team's change to a role: only the fields given replace the role's."""

    description: str | None = Field(None, description="Replaces the role's description.")
    backends: list[str] | None = Field(None, description="Replaces the role's backends.")
    execution: Execution | None = Field(None, description="Replaces the role's execution.")
    min_success: int | None = Field(None, ge=1, description="Replaces the role's min_success.")


class TeamConfig(_Model):
    description: str | None = Field(None, description="What kind of project the team is for.")
    detect: list[str] = Field(
        default_factory=_no_items, description="Glob patterns relative to the project root."
    )
    verify: str | None = Field(None, description="Default verify command for apply steps.")
    roles: dict[str, RoleOverride] = Field(
        default_factory=dict, description="Changes to roles while this team is active."
    )


class ServeKey(_Model):
    """``[serve.keys.NAME]``: a client key and its limits (none given: unlimited)."""

    key: str = Field(description='The key clients send, usually "${VAR}".')
    models: list[str] | None = Field(
        None, description="Model names (roles, backends) this key may use; default: all."
    )
    rpm: int | None = Field(None, ge=1, description="Requests per minute.")
    tpm: int | None = Field(None, ge=1, description="Tokens (input + output) per minute.")
    max_cost: float | None = Field(
        None, ge=0, description="USD per calendar month (UTC), from the backends' price."
    )


class ServeConfig(_Model):
    """``[serve]``: the gateway (``muxlang serve``)."""

    api_keys: list[str] = Field(
        default_factory=_no_items,
        description="Keys clients must send (Authorization: Bearer or x-api-key), usually "
        '"${VAR}". Required to listen on anything but loopback.',
    )
    max_body_bytes: int = Field(
        10 * 1024 * 1024, ge=1, description="Largest request body accepted (413 beyond)."
    )
    max_connections: int = Field(
        4096, ge=1, description="Connections held at once; one over it is closed at once."
    )
    max_connections_per_client: int = Field(
        1024,
        ge=1,
        description="Connections held at once from one client address, so that one client "
        "opening many slow connections cannot starve the others.",
    )
    cooldown: DurationOrZero = Field(
        30.0,
        description="Seconds a backend is skipped after a rate limit or server error "
        '(or "90s", "2m", ...; 0 turns cooldowns off).',
    )
    state: str | None = Field(
        None,
        pattern=r"^(memory|(redis|rediss|unix)://\S+)$",
        description='Where cooldowns, rate limits and usage live: "memory" (the default: '
        'this process) or "redis://HOST:PORT/DB", shared by every replica naming it.',
    )
    keys: dict[str, ServeKey] = Field(
        default_factory=dict,
        description="Named client keys, each with its own limits ([serve.keys.NAME]).",
    )


#: a diagnostic code or a prefix of codes (``MUX040``, ``MUX04``)
CodePattern = Annotated[str, Field(pattern=r"^MUX[0-9]{0,3}$")]


class ValidateConfig(_Model):
    """``[validate]``: what ``muxlang validate`` (and the language server) reports."""

    ignore: list[CodePattern] = Field(
        default_factory=_no_items,
        description='Codes or code prefixes never reported here, e.g. ["MUX040"].',
    )


class ConfigFile(_Model):
    """``config.toml``: user and project layers, and the same tables in a workflow."""

    defaults: DefaultsConfig = Field(
        default_factory=DefaultsConfig,  # type: ignore[arg-type]
        description="Defaults for every run.",
    )
    serve: ServeConfig = Field(
        default_factory=ServeConfig,  # type: ignore[arg-type]
        description="The gateway (`muxlang serve`).",
    )
    backends: dict[str, BackendConfig] = Field(
        default_factory=dict, description="The LLMs muxlang can call, by name."
    )
    roles: dict[str, RoleConfig] = Field(
        default_factory=dict, description="Named groups of backends with an execution mode."
    )
    teams: dict[str, TeamConfig] = Field(
        default_factory=dict, description="Kinds of project, detected by files; they adjust roles."
    )
    validate_: ValidateConfig = Field(
        default_factory=ValidateConfig,
        alias="validate",
        description="How `muxlang validate` reports: codes to ignore project-wide.",
    )


# --------------------------------------------------------------------------- workflows

StepName = Annotated[str, Field(pattern=STEP_NAME_PATTERN)]


class ArgSpec(_Model):
    description: str | None = Field(None, description="What the argument is for.")
    default: str | int | float | bool | None = Field(
        None, description="An arg with no default is required."
    )
    required: bool | None = Field(
        None,
        description="As in llm-mux: true needs a value; false with no default makes the "
        'arg optional (it inserts ""). Unset: required unless it has a default.',
    )


class RepeatSpec(_Model):
    """``repeat``: run the step again until ``until`` is true after an iteration."""

    until: str = Field(
        description="Expression checked after each iteration; it sees `steps.X` of that "
        "iteration and `loop.index` (the iteration, from 1)."
    )
    max_iterations: int = Field(
        ge=1, le=1000, description="At most this many iterations (1 to 1000); required."
    )


class _StepBase(_Model):
    name: StepName = Field(description='Step name: letters, digits, "_", inner hyphens.')
    depends_on: list[StepName] = Field(
        default_factory=_no_items,
        description="Steps that must finish first (besides those its templates mention).",
    )
    if_: str | None = Field(None, alias="if", description="Expression; the step runs when true.")
    for_each: str | None = Field(None, description="Expression giving a list to iterate over.")
    max_parallel: int | None = Field(None, ge=1, description="for_each items at once.")
    fail_fast: bool = Field(True, description="for_each: the first failing item cancels the rest.")
    continue_on_error: bool = Field(
        False, description="A failure of this step does not fail the run or skip dependents."
    )
    timeout: Duration | None = Field(None, description='Seconds, or "500ms", "2m", ...')
    retries: int = Field(
        0, ge=0, le=100, description="Run a failed step again, up to this many times (llm-mux)."
    )
    retry_delay: DurationMs = Field(
        1000, description='Milliseconds between a failure and the next try, or "2s", ...'
    )
    env: dict[str, str] = Field(default_factory=dict, description="Templates, given to commands.")
    repeat: RepeatSpec | None = Field(
        None,
        description="Run again until `until` is true, at most `max_iterations` times "
        "(docs/language.md#repeat).",
    )

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


class ShellStepSpec(_StepBase):
    type: Literal["shell"] = Field(description="shell: run a command with sh -c.")
    run: str = Field(description="Shell command (template), run with sh -c.")
    cwd: str | None = Field(None, description="Working directory (template), inside the project.")


class QueryStepSpec(_StepBase):
    type: Literal["query"] = Field(description="query: ask a role or a backend.")
    prompt: str = Field(description="Prompt (template).")
    role: str | None = Field(None, description="The role to ask (give a role or a backend).")
    backend: str | None = Field(
        None, description="The backend to ask directly (give a role or a backend)."
    )
    system: str | None = Field(None, description="System prompt (template).")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Merged into the request body (temperature, ...)."
    )
    cache: CacheSetting | None = Field(
        None,
        description="Reuse an earlier identical answer: true, false, or a maximum age such as "
        '"7d".',
    )
    output_schema: dict[str, Any] | None = Field(
        None,
        description="A JSON Schema the answer must match: it is parsed as JSON (also from a "
        "fenced ```json block) into `steps.NAME.data`; a mismatch asks again up to `retries`.",
    )


class ApplyStepSpec(_StepBase):
    type: Literal["apply"] = Field(description="apply: apply the edits a query step proposed.")
    source: str = Field(description='The query step whose edits to apply: "fix" or "steps.fix".')
    verify: str | None = Field(None, description="Command run after the edits (template).")
    verify_retries: int = Field(
        0, ge=0, description="Times to re-ask the source step when verify fails."
    )
    verify_retry_prompt: str | None = Field(
        None, description="Template for the re-ask; sees `original` and `error`."
    )
    rollback_on_failure: bool = Field(
        True, description="Restore the files when verify still fails after the retries."
    )


class UsesStepSpec(_StepBase):
    """A step that calls another workflow (it has no ``type``)."""

    #: the tag of this member of the step union (it has no ``type`` key)
    step_tag: ClassVar[str] = "uses"

    uses: str = Field(
        description='The workflow to call: a name ("review") or a path inside the project '
        '("workflows/check.toml"), found as `muxlang run` finds workflows.'
    )
    with_: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        alias="with",
        description="The called workflow's args; strings are templates.",
    )


def _step_tag(value: Any) -> str | None:
    """A step table's member of the step union: its ``type``, or ``uses``."""
    if isinstance(value, dict):
        kind = value.get("type")
        if kind is None and "uses" in value:
            return "uses"
        if kind is None:
            return None
        return kind if isinstance(kind, str) else repr(kind)  # not a tag: MUX003
    return getattr(value, "type", None) or getattr(value, "step_tag", None)


StepSpec = Annotated[
    Annotated[ShellStepSpec, Tag("shell")]
    | Annotated[QueryStepSpec, Tag("query")]
    | Annotated[ApplyStepSpec, Tag("apply")]
    | Annotated[UsesStepSpec, Tag("uses")],
    Discriminator(_step_tag),
]


class WorkflowFile(ConfigFile):
    name: str | None = Field(None, description="Defaults to the file's stem.")
    description: str | None = Field(None, description="Shown by `muxlang workflows`.")
    timeout: Duration | None = Field(None, description="Seconds for the whole run.")
    max_concurrent: int | None = Field(
        None, ge=1, description="Steps and backend calls in flight at once."
    )
    continue_on_error: bool = Field(
        False, description="As if every step had continue_on_error = true."
    )
    max_tokens: int | None = Field(
        None, ge=0, description="Token budget of a run: once spent, no backend call starts."
    )
    max_cost: float | None = Field(
        None,
        ge=0,
        description="USD budget of a run (from backends' price): once spent, no "
        "backend call starts.",
    )
    args: dict[str, ArgSpec] = Field(
        default_factory=dict, description="The arguments `muxlang run` takes ([args.NAME])."
    )
    steps: list[StepSpec] = Field(
        default_factory=_no_items, description="The steps ([[steps]]); each has a `type`."
    )


_plugins_on()
