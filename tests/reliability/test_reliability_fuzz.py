"""Fuzzing: every parser muxlang has, fed generated and mutated input.

Valid generated workflows must compile; mutated ones (truncated, junk inserted,
quotes swapped, unicode) must give diagnostics — never another exception, never
a hang (each input runs under a time bound). The same for templates, the apply
edit parser and the HTTP answer parsers of the four protocols.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rel_support import outcome, time_bound

from muxlang import toml
from muxlang.apply.edits import parse_edits
from muxlang.apply.errors import EditParseError
from muxlang.cli import cli
from muxlang.compiler import compile_workflow
from muxlang.compiler.loader import load_workflow
from muxlang.compiler.plan import ResolvedConfig
from muxlang.config import load_config
from muxlang.config.models import BackendConfig
from muxlang.llm import BackendError, ChatRequest, Message
from muxlang.runtime.backends.protocols import adapter_for
from muxlang.runtime.backends.protocols.common import MalformedResponse, StreamError
from muxlang.runtime.backends.router import open_router
from muxlang.template import FILTERS, TemplateError, TemplateSyntaxError, parse_template, render

FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=False,
)
BOUND = 5.0  # seconds any single input may take

# --------------------------------------------------------------------------- generators

NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,6}(-[a-z0-9]{1,4})?", fullmatch=True)
WORDS = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=12)


def toml_string(text: str) -> str:
    """A TOML basic string holding ``text``."""
    return json.dumps(text, ensure_ascii=False)


@st.composite
def workflows(draw: st.DrawFn) -> str:
    """A valid workflow file: shell, query and apply steps, references, for_each."""
    count = draw(st.integers(1, 6))
    names = draw(st.lists(NAMES, min_size=count, max_size=count, unique=True))
    lines = [f"name = {toml_string(draw(NAMES))}", f"description = {toml_string(draw(WORDS))}"]
    if draw(st.booleans()):
        lines.append(f"timeout = {draw(st.integers(1, 3600))}")
    lines += ["", "[args.who]", f"default = {toml_string(draw(WORDS))}", ""]
    lines += ["[backends.fake]", 'command = "fake-llm"', ""]
    kinds: dict[str, str] = {}
    for i, name in enumerate(names):
        earlier = names[:i]
        queries = [n for n in earlier if kinds[n] == "query"]
        kind = draw(st.sampled_from(["shell", "query", "apply"] if queries else ["shell", "query"]))
        kinds[name] = kind
        lines += ["[[steps]]", f"name = {toml_string(name)}", f'type = "{kind}"']
        ref = draw(st.sampled_from(earlier)) if earlier else None
        if kind == "shell":
            text = draw(WORDS).replace("{", "(").replace("}", ")").replace("%", "")
            run = f"echo {{{{ args.who | shell_escape }}}} {text!s}"
            if ref is not None:
                run += f" {{{{ steps.{ref}.output | shell_escape }}}}"
            lines.append(f"run = {toml_string(run)}")
        elif kind == "query":
            prompt = "Say {{ args.who }}"
            if ref is not None:
                prompt += f"\n{{{{ steps.{ref}.output | trim }}}}"
            if draw(st.booleans()):
                prompt = "{% for l in args.who | lines %}{{ loop.index }}: {{ l }}\n{% endfor %}"
            lines += ['backend = "fake"', f"prompt = {toml_string(prompt)}"]
        else:
            lines.append(f"source = {toml_string(draw(st.sampled_from(queries)))}")
        if ref is not None and draw(st.booleans()):
            lines.append(f"depends_on = [{toml_string(ref)}]")
        if kind != "apply" and draw(st.booleans()):
            lines.append('for_each = "[1, 2, 3]"')
            lines.append(f"max_parallel = {draw(st.integers(1, 4))}")
        if draw(st.booleans()):
            lines.append(f"continue_on_error = {str(draw(st.booleans())).lower()}")
        lines.append("")
    return "\n".join(lines)


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[str]) -> str:
    """``base`` text, hurt in one to three ways."""
    text = draw(base)
    junk = st.sampled_from(
        [
            '"',
            "'",
            "[",
            "]]",
            "{{",
            "}}",
            "{%",
            "%}",
            "=",
            "\n",
            "\\",
            "\ufeff",
            "é",
            "🙂",
            "\x00",
            "'''",
            '"""',
            "[[steps]]",
            "{{ steps.",
            "| nope(",
            "\r",
        ]
    )
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.integers(0, 4))
        at = draw(st.integers(0, len(text)))
        if how == 0:
            text = text[:at]  # truncation
        elif how == 1:
            text = text[:at] + draw(junk) + text[at:]
        elif how == 2:
            text = text.replace('"', "'") if draw(st.booleans()) else text.replace("'", '"')
        elif how == 3:
            text = text[:at] + draw(st.text(max_size=8)) + text[at:]
        else:
            end = draw(st.integers(at, len(text)))
            text = text[:at] + text[end:]  # a cut-out
    return text


TEMPLATE_PIECES = st.sampled_from(
    [
        "text ",
        "{{ x }}",
        "{{ x | upper }}",
        "{{- x -}}",
        "{% if x %}",
        "{% elif y %}",
        "{% else %}",
        "{% endif %}",
        "{% for i in xs %}",
        "{% endfor %}",
        "{{ i }}",
        "{# c #}",
        "{% raw %}",
        "{% endraw %}",
        "{{ xs | join(', ') }}",
        "{{ loop.index }}",
        "{{ d['k'] }}",
        "{{ xs[0] }}",
        "{{ n ~ 's' }}",
        "{{ x is defined }}",
        "{{",
        "}}",
        "{%",
        "%}",
        "{{ (x }}",
        "{{ x | nope }}",
        "{{ xs | from_json }}",
        "{{ 1 < 'a' }}",
        "{{ none }}",
        "{{ d | default(1) }}",
        "{{ x | truncate(-3) }}",
        "{{ xs | sort }}",
        "{{ x | indent(n) }}",
        "é",
        "🙂",
        "\n",
        "{{ n | replace('a', 'b') }}",
    ]
)


@st.composite
def templates(draw: st.DrawFn) -> str:
    return "".join(draw(st.lists(TEMPLATE_PIECES, max_size=12)))


SCOPE: dict[str, Any] = {
    "x": "hello",
    "y": "",
    "n": 3,
    "xs": ["b", "a", 3, None, ["n"], {"k": 1}],
    "d": {"k": [1, 2]},
}


# --------------------------------------------------------------------------- TOML and templates


@FUZZ
@given(st.one_of(workflows(), mutated(workflows()), st.text(max_size=200)))
def test_toml_reader_raises_only_its_decode_error(text: str) -> None:
    with time_bound(BOUND, "toml.loads"):
        value = outcome(toml.loads, text, errors=(toml.TOMLDecodeError,))
    if isinstance(value, toml.TOMLDecodeError):
        assert value.line >= 1
        assert value.column >= 1
    else:
        assert isinstance(value, dict)


@FUZZ
@given(st.one_of(templates(), mutated(templates()), st.text(max_size=80)))
def test_template_parse_and_render_raise_only_template_errors(source: str) -> None:
    with time_bound(BOUND, "template"):
        template = outcome(parse_template, source, errors=(TemplateSyntaxError,))
        if isinstance(template, TemplateSyntaxError):
            assert template.span.line >= 1
            return
        out = outcome(render, template, SCOPE, errors=(TemplateError,))
    assert isinstance(out, str | TemplateError)


# --------------------------------------------------------------------------- loader / compiler


def _compile(path: Path) -> tuple[Any, list[Any]]:
    workflow, diagnostics = load_workflow(path)
    if workflow is None or any(d.is_error for d in diagnostics):
        return None, diagnostics
    config, more = load_config(path.parent, workflow=workflow, environ={"HOME": str(path.parent)})
    diagnostics = [*diagnostics, *more]
    if any(d.is_error for d in more):
        return None, diagnostics
    plan, more = compile_workflow(workflow, config)
    return plan, [*diagnostics, *more]


@FUZZ
@given(text=workflows())
def test_valid_generated_workflows_compile(tmp_path: Path, text: str) -> None:
    path = tmp_path / "gen.toml"
    path.write_text(text)
    with time_bound(BOUND, "compile"):
        plan, diagnostics = _compile(path)
    errors = [d for d in diagnostics if d.is_error]
    assert not errors, (text, errors)
    assert plan is not None
    assert len(plan.order) == text.count("[[steps]]")


@FUZZ
@given(text=mutated(workflows()))
def test_mutated_workflows_give_positioned_diagnostics(tmp_path: Path, text: str) -> None:
    path = tmp_path / "gen.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    with time_bound(BOUND, "load+compile"):
        plan, diagnostics = _compile(path)
    for d in diagnostics:
        assert d.span.line >= 1, d
        assert d.span.column >= 1, d
        assert d.code.startswith("MUX"), d
    if plan is None:
        assert any(d.is_error for d in diagnostics)


@settings(FUZZ, max_examples=40)
@given(text=mutated(workflows()), fmt=st.sampled_from(["text", "json", "github", "sarif"]))
def test_validate_command_never_tracebacks(tmp_path: Path, text: str, fmt: str) -> None:
    path = tmp_path / "gen.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    with time_bound(BOUND * 2, "validate"):
        result = CliRunner().invoke(
            cli, ["-C", str(tmp_path), "validate", "--format", fmt, str(path)]
        )
    assert result.exit_code in (0, 1), (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    if fmt == "json":
        assert isinstance(json.loads(result.stdout), list)


def test_invalid_utf8_and_binary_files_are_diagnostics(tmp_path: Path) -> None:
    for i, data in enumerate([b'name = "\xff\xfe"\n', b"\x00\x01\x02" * 100, b"\xef\xbb\xbf" * 3]):
        path = tmp_path / f"bin{i}.toml"
        path.write_bytes(data)
        plan, diagnostics = _compile(path)
        assert plan is None
        assert [d.code for d in diagnostics if d.is_error][:1] == ["MUX001"], diagnostics


def test_deeply_nested_input_is_an_error_not_a_recursion_error(tmp_path: Path) -> None:
    for text in ["a = " + "[" * 50_000, "a = " + "{b = " * 20_000, "x.y" * 30_000 + " = 1"]:
        with time_bound(BOUND * 2, "deep toml"), pytest.raises(toml.TOMLDecodeError):
            toml.loads(text)
    for source in [
        "{{ " + "(" * 50_000 + "x }}",
        "{% if x %}" * 5_000,
        "{{ x" + " | upper" * 20_000 + " }}",
    ]:
        with (
            time_bound(BOUND * 2, "deep template"),
            contextlib.suppress(TemplateSyntaxError, TemplateError),
        ):
            render(parse_template(source), SCOPE)


# --------------------------------------------------------------------------- apply edit parser

EDIT_PIECES = st.sampled_from(
    [
        '{"path": "a.txt", "old": "x", "new": "y"}',
        '{"edits": [',
        "]}",
        "[",
        "]",
        ",",
        '{"path": "a.txt", "content": "hi"}',
        "```json\n",
        "```diff\n",
        "```\n",
        "--- a/a.txt\n",
        "+++ b/a.txt\n",
        "@@ -1,2 +1,2 @@\n",
        "@@ -0,0 +1 @@\n",
        "@@ -1 +1,3 @@\n",
        " ctx\n",
        "-old\n",
        "+new\n",
        "\\ No newline at end of file\n",
        '{"path": 3}',
        '{"path": "../x"}',
        "prose ",
        "\n",
        '"',
        "{",
        "}",
        "null",
        '{"path": "", "old": "", "new": ""}',
        "--- /dev/null\n",
        "+++ /dev/null\n",
        "@@ -999999999999999999999,1 +1 @@\n",
    ]
)


@FUZZ
@given(st.one_of(st.lists(EDIT_PIECES, max_size=14).map("".join), st.text(max_size=200)))
def test_edit_parser_raises_only_edit_parse_error(text: str) -> None:
    with time_bound(BOUND, "parse_edits"):
        edits = outcome(parse_edits, text, errors=(EditParseError,))
    if isinstance(edits, EditParseError):
        assert str(edits)
    else:
        assert edits, "no error must mean at least one edit"


# --------------------------------------------------------------------------- protocol parsers

PROTOCOLS = ["openai", "anthropic", "gemini", "ollama"]
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "choices",
                    "message",
                    "content",
                    "text",
                    "parts",
                    "candidates",
                    "delta",
                    "type",
                    "tool_calls",
                    "function",
                    "arguments",
                    "name",
                    "index",
                    "error",
                    "usage",
                    "done",
                    "role",
                    "finish_reason",
                    "stop_reason",
                    "content_block",
                    "id",
                    "model",
                    "x",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)


#: well-formed answers and stream chunks of each protocol, to be corrupted at one spot
GOOD: dict[str, list[Any]] = {
    "openai": [
        {
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": {
                        "role": "assistant",
                        "content": "hi",
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{}"},
                            }
                        ],
                    },
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 2},
        },
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "content": "x",
                        "tool_calls": [
                            {"index": 0, "id": "c", "function": {"name": "f", "arguments": "{"}}
                        ],
                    },
                    "finish_reason": None,
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 2},
        },
    ],
    "anthropic": [
        {
            "type": "message",
            "model": "m",
            "stop_reason": "end_turn",
            "content": [
                {"type": "text", "text": "hi"},
                {"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}},
            ],
            "usage": {"input_tokens": 1, "output_tokens": 2},
        },
        {"type": "message_start", "message": {"usage": {"input_tokens": 1, "output_tokens": 0}}},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "t", "name": "f"},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": "{"},
        },
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 3},
        },
    ],
    "gemini": [
        {
            "candidates": [
                {
                    "finishReason": "STOP",
                    "content": {
                        "role": "model",
                        "parts": [
                            {"text": "hi"},
                            {"functionCall": {"name": "f", "args": {"a": 1}}},
                        ],
                    },
                }
            ],
            "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 2},
        },
    ],
    "ollama": [
        {
            "model": "m",
            "done": True,
            "done_reason": "stop",
            "message": {
                "role": "assistant",
                "content": "hi",
                "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}],
            },
            "prompt_eval_count": 1,
            "eval_count": 2,
        },
    ],
}


@st.composite
def corrupted(draw: st.DrawFn, protocol: str) -> Any:
    """A good answer of ``protocol`` with one value (at any depth) replaced."""
    import copy

    doc = copy.deepcopy(draw(st.sampled_from(GOOD[protocol])))
    node = doc
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return doc
        key = draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, dict | list) and child and draw(st.integers(0, 2)):
            node = child
            continue
        node[key] = draw(JSONISH | st.sampled_from([1, "x", -1, 10**30, [], {}, None, "nan"]))
        return doc


@FUZZ
@given(st.data())
def test_corrupted_answers_are_malformed_never_a_crash(data: st.DataObject) -> None:
    protocol = data.draw(st.sampled_from(PROTOCOLS))
    doc = data.draw(corrupted(protocol))
    adapter = adapter_for(protocol)
    with time_bound(BOUND, "parse corrupted"):
        outcome(adapter.parse, doc, errors=(MalformedResponse,))
        decoder = adapter.decoder()
        outcome(decoder.feed, None, json.dumps(doc), errors=(MalformedResponse, StreamError))
        outcome(decoder.close, errors=(MalformedResponse, StreamError))


@FUZZ
@given(protocol=st.sampled_from(PROTOCOLS), data=JSONISH)
def test_answer_parsers_raise_only_malformed_response(protocol: str, data: Any) -> None:
    adapter = adapter_for(protocol)
    with time_bound(BOUND, "parse"):
        outcome(adapter.parse, data, errors=(MalformedResponse,))
        message = adapter.error_message(data)
    assert message is None or isinstance(message, str)


@FUZZ
@given(
    protocol=st.sampled_from(PROTOCOLS),
    events=st.lists(
        st.tuples(
            st.sampled_from([None, "message_start", "content_block_delta", "error", "ping", "x"]),
            st.one_of(JSONISH.map(json.dumps), st.text(max_size=20), st.just("[DONE]")),
        ),
        max_size=6,
    ),
)
def test_stream_decoders_raise_only_their_errors(
    protocol: str, events: list[tuple[str | None, str]]
) -> None:
    decoder = adapter_for(protocol).decoder()
    with time_bound(BOUND, "decoder"):
        try:
            for event, data in events:
                decoder.feed(event, data)
            decoder.close()
        except (MalformedResponse, StreamError):
            pass


BODIES = st.one_of(
    st.binary(max_size=200),
    JSONISH.map(lambda v: json.dumps(v).encode()),
    st.sampled_from(
        [
            b"",
            b"{",
            b"null",
            b"[]",
            b'{"choices": []}',
            b'{"choices": [{"message": null}]}',
            b"data: {}\n\n",
            b"data: [DONE]\n\n",
            b"event: error\ndata: {}\n\n",
            b"\xff\xfe",
        ]
    ),
)
CTYPES = st.sampled_from(
    ["application/json", "text/event-stream", "application/x-ndjson", "text/html", ""]
)


@settings(FUZZ, max_examples=80)
@given(
    protocol=st.sampled_from(PROTOCOLS),
    status=st.sampled_from([200, 200, 200, 400, 404, 429, 500, 503]),
    ctype=CTYPES,
    body=BODIES,
    stream=st.booleans(),
)
def test_http_backend_turns_any_answer_into_a_response_or_backend_error(
    tmp_path: Path, protocol: str, status: int, ctype: str, body: bytes, stream: bool
) -> None:
    """The whole HTTP path (status, headers, body, streaming) over a mock transport."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, content=body, headers={"content-type": ctype} if ctype else {}
        )

    config = ResolvedConfig(
        project_root=tmp_path,
        backends={
            "b": BackendConfig.model_validate(
                {
                    "command": "http://127.0.0.1:9",
                    "protocol": protocol,
                    "model": "m",
                    "max_retries": 0,
                    "timeout": 5,
                }
            )
        },
    )
    request = ChatRequest(messages=(Message("user", "hi"),))

    async def main() -> None:
        async with open_router(
            config, environ={}, transport=httpx.MockTransport(handler)
        ) as router:
            try:
                if stream:
                    async for _event in router.stream("b", request, kind="backend"):
                        pass
                else:
                    await router.complete("b", request, kind="backend")
            except BackendError as exc:
                assert exc.backend == "b"  # noqa: PT017

    with time_bound(BOUND, "http backend"):
        trio.run(main)


# --------------------------------------------------------------------------- gateway requests

MESSAGE_KEYS = st.sampled_from(
    ["role", "content", "name", "tool_calls", "tool_call_id", "type", "text", "source", "x"]
)
BODY_KEYS = st.sampled_from(
    [
        "model",
        "messages",
        "stream",
        "max_tokens",
        "temperature",
        "stop",
        "tools",
        "tool_choice",
        "system",
        "n",
        "stream_options",
        "top_p",
        "metadata",
        "response_format",
        "x",
    ]
)
MODELS = st.sampled_from(["b", "r", "nope", "", 3, None, ["b"]])


@st.composite
def gateway_bodies(draw: st.DrawFn) -> Any:
    """Mostly well-formed requests with one wrong piece, sometimes anything at all."""
    if draw(st.integers(0, 5)) == 0:
        return draw(JSONISH)
    message = {
        "role": draw(st.sampled_from(["user", "assistant", "system", "tool", "x", 1])),
        "content": draw(st.one_of(st.text(max_size=10), JSONISH)),
    }
    if draw(st.booleans()):
        message[draw(MESSAGE_KEYS)] = draw(JSONISH)
    body: dict[str, Any] = {
        "model": draw(MODELS),
        "messages": draw(st.one_of(st.just([message]), st.lists(JSONISH, max_size=3), JSONISH)),
        "max_tokens": draw(st.one_of(st.integers(-5, 100), JSONISH)),
    }
    for _ in range(draw(st.integers(0, 3))):
        body[draw(BODY_KEYS)] = draw(JSONISH)
    if draw(st.booleans()):
        body["stream"] = draw(st.sampled_from([True, False, "yes", 1, None]))
    return body


@settings(FUZZ, max_examples=150)
@given(
    path=st.sampled_from(["/v1/chat/completions", "/v1/messages"]),
    body=gateway_bodies(),
    raw=st.one_of(st.none(), st.binary(max_size=40), st.sampled_from([b"{", b"[]", b"\xff"])),
)
def test_gateway_answers_any_request_in_the_client_shape(
    path: str, body: Any, raw: bytes | None
) -> None:
    """Whatever a client sends, the gateway answers a status in its format: never a
    500, never a traceback, never a half-sent response."""
    from tests.serve import serve_support  # the in-process ASGI driver, scripted backends

    app, _fakes = serve_support.make_gateway(["b"], {"r": (["b"], "fallback")})

    async def main() -> Any:
        data = raw if raw is not None else json.dumps(body).encode()
        return await serve_support.call(app, "POST", path, raw=data)

    with time_bound(BOUND, "gateway request"):
        result = trio.run(main)
    assert result.status < 500, (result.status, result.body[:300])
    if result.status >= 400:
        error = result.json
        if path == "/v1/messages":
            assert error["type"] == "error"
            assert isinstance(error["error"]["message"], str)
        else:
            assert isinstance(error["error"]["message"], str)
    elif result.headers.get("content-type", "").startswith("text/event-stream"):
        assert result.events, "an empty stream"
    else:
        assert isinstance(result.json, dict)


# ------------------------------------------------------------------ every filter, any value

LITERALS = st.sampled_from(
    [
        "none",
        "true",
        "0",
        "-1",
        "2",
        "1.5",
        "''",
        "'a'",
        "', '",
        "[]",
        "[1, 'a']",
        "'\\n'",
        "100000",
        "x",
        "xs",
        "d",
    ]
)
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)


@FUZZ
@given(
    name=st.sampled_from(sorted(FILTERS)),
    value=VALUES,
    args=st.lists(LITERALS, max_size=3),
    keyword=st.booleans(),
)
def test_every_filter_on_any_value_gives_text_or_a_template_error(
    name: str, value: Any, args: list[str], keyword: bool
) -> None:
    params = FILTERS[name].params
    if keyword and params and args:
        call = ", ".join(f"{p}={a}" for p, a in zip(params, args, strict=False))
    else:
        call = ", ".join(args)
    source = f"{{{{ v | {name}({call}) }}}}" if call else f"{{{{ v | {name} }}}}"
    scope = {"v": value, "x": "text", "xs": ["b", "a"], "d": {"k": 1}}
    with time_bound(BOUND, "filter"):
        out = outcome(
            lambda: render(parse_template(source), scope),
            errors=(TemplateError, TemplateSyntaxError),
        )
    if isinstance(out, str):
        assert "object at 0x" not in out


# ------------------------------------------------------------------ the runtime, any answer

RUNTIME_WORKFLOW = """
[backends.llm]
command = "llm"

[[steps]]
name = "q"
type = "query"
backend = "llm"
prompt = "anything"

[[steps]]
name = "each"
type = "shell"
for_each = "steps.q.output | lines | nonblank"
max_parallel = 4
fail_fast = false
run = "printf '%s' {{ item | shell_escape }}"
continue_on_error = true

[[steps]]
name = "parsed"
type = "query"
backend = "llm"
prompt = "{{ steps.q.output | from_json | json }}"
continue_on_error = true

[[steps]]
name = "via_env"
type = "shell"
run = 'printf "%s" "$ANSWER"'
env = { ANSWER = "{{ steps.q.output }}" }
continue_on_error = true

[[steps]]
name = "cond"
type = "shell"
if = "steps.q.output | trim == '' or 'x' in steps.q.output"
run = "echo {{ steps.q.output | length }}"
continue_on_error = true

[[steps]]
name = "edit"
type = "apply"
source = "q"
continue_on_error = true
"""

ANSWERS = st.one_of(
    st.text(max_size=60),
    st.lists(st.text(alphabet="ab x\n\t'\"$`\\", max_size=8), max_size=5).map("\n".join),
    JSONISH.map(json.dumps),
    st.sampled_from(
        [
            '{"path": "new.txt", "content": "hi"}',
            "```json\n[1, 2]\n```",
            "\0",
            "a\0b",
            "x" * 5000,
            '{"path": "../x", "content": "no"}',
            "\r\n\r\n",
            "1e400",
            "NaN",
        ]
    ),
)


@settings(FUZZ, max_examples=80)
@given(answer=ANSWERS)
def test_runtime_reports_any_answer_truly(tmp_path_factory: Any, answer: str) -> None:
    """Whatever the backend answers, every step ends in a true state with a clear
    reason — never 'internal error' — and a value passed through env arrives intact."""
    from rel_support import plan_from_toml

    from muxlang.runtime import execute
    from tests.fakes.scripted import ScriptedQueryService

    root = tmp_path_factory.mktemp("rt")
    plan = plan_from_toml(root, RUNTIME_WORKFLOW)
    service = ScriptedQueryService(
        default=lambda request: answer if request.prompt_text == "anything" else "ok"
    )
    with time_bound(30, "run"):
        result = trio.run(lambda: execute(plan, args={}, query=service))
    for name, record in result.steps.items():
        assert record["status"] in ("success", "failed", "skipped"), (name, record)
        error = record["error"] or ""
        assert "internal error" not in error, (name, error)
        if record["status"] == "failed":
            assert error, name
    env_step = result.steps["via_env"]
    if "\0" not in answer:
        assert env_step["status"] == "success", env_step["error"]
        assert env_step["output"] == answer.rstrip("\r\n")  # trailing newlines (LF, CRLF) go


# ------------------------------------------------------------------ config files, every command

CONFIG_TEXT = """
[defaults]
max_concurrent = 4

[serve]
api_keys = ["${GATEWAY_KEY:-k}"]
max_body_bytes = 1000

[backends.cli]
command = "fake-llm"
args = ["-p"]
prompt_via = "stdin"
env = { NO_COLOR = "1" }
timeout = 30

[backends.api]
command = "http://127.0.0.1:9/v1"
protocol = "anthropic"
model = "m"
api_key = "${SOME_API_KEY}"
options = { temperature = 0.2 }
retry_delay = 10

[roles.analyzer]
description = "analysis"
backends = ["cli", "api"]
execution = "parallel"
min_success = 1

[roles.nested]
backends = ["analyzer", "cli"]

[teams.py]
detect = ["*.py", "pyproject.toml"]
verify = "true"
[teams.py.roles.analyzer]
backends = ["cli"]
"""


@settings(FUZZ, max_examples=40)
@given(
    text=mutated(st.just(CONFIG_TEXT)),
    command=st.sampled_from(
        [
            ["validate"],
            ["backends", "--output", "json"],
            ["roles"],
            ["teams", "--output", "json"],
            ["workflows"],
            ["schema", "config"],
            ["doctor", "--output", "json"],
        ]
    ),
)
def test_mutated_config_never_tracebacks_any_command(
    tmp_path_factory: Any, text: str, command: list[str]
) -> None:
    root = tmp_path_factory.mktemp("cfg")
    (root / ".muxlang").mkdir()
    (root / ".muxlang" / "config.toml").write_bytes(text.encode("utf-8", "surrogatepass"))
    (root / "x.py").write_text("")
    with time_bound(BOUND * 2, " ".join(command)):
        result = CliRunner().invoke(cli, ["-C", str(root), *command])
    assert result.exit_code in (0, 1, 2), (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output


def test_the_unmutated_config_is_accepted_by_every_command(tmp_path: Path) -> None:
    """The fuzzed config's starting point is valid: the fuzz starts from real input."""
    (tmp_path / ".muxlang").mkdir()
    (tmp_path / ".muxlang" / "config.toml").write_text(CONFIG_TEXT)
    for command in (["validate"], ["backends", "--output", "json"], ["roles"], ["teams"]):
        result = CliRunner().invoke(cli, ["-C", str(tmp_path), *command])
        assert result.exit_code == 0, (command, result.output)
    result = CliRunner().invoke(cli, ["-C", str(tmp_path), "roles", "--output", "json"])
    assert "analyzer" in result.output


@settings(FUZZ, max_examples=40)
@given(
    text=workflows(),
    command=st.sampled_from(
        [
            ["run", "--dry-run"],
            ["run", "--dry-run", "--output", "json"],
            ["graph", "--format", "mermaid"],
            ["graph", "--format", "dot"],
            ["graph", "--format", "json"],
        ]
    ),
)
def test_dry_run_and_graph_of_valid_workflows_succeed(
    tmp_path_factory: Any, text: str, command: list[str]
) -> None:
    root = tmp_path_factory.mktemp("dry")
    (root / ".git").mkdir()
    path = root / "gen.toml"
    path.write_text(text)
    with time_bound(BOUND * 2, " ".join(command)):
        result = CliRunner().invoke(cli, ["-C", str(root), command[0], str(path), *command[1:]])
    assert result.exit_code == 0, (text, result.output, result.exception)
    if "json" in command:
        json.loads(result.stdout)


# ------------------------------------------------------------------ edits against a real tree

FILE_LINES = st.lists(st.sampled_from(["a", "b", "c", "", "  x", "é", "a b", "\t"]), max_size=8)


@st.composite
def diffs_for(draw: st.DrawFn, lines: list[str]) -> str:
    """A unified diff for ``lines`` (of file a.txt): often right, often slightly wrong."""
    start = draw(st.integers(0, max(0, len(lines))))
    count = draw(st.integers(0, len(lines) - start)) if lines else 0
    old = lines[start : start + count]
    new = draw(st.lists(st.sampled_from(["a", "new", "", "b"]), max_size=3))
    body = [" " + line if draw(st.booleans()) else "-" + line for line in old]
    body += ["+" + line for line in new]
    minus = sum(1 for b in body if not b.startswith("+"))
    plus = sum(1 for b in body if not b.startswith("-"))
    a_start = start + 1 + draw(st.sampled_from([0, 0, 0, 1, -1, 5]))
    a_count = minus + draw(st.sampled_from([0, 0, 0, 1, -1]))
    header = draw(
        st.sampled_from(["--- a/a.txt\n+++ b/a.txt\n", "--- a.txt\n+++ a.txt\n", "+++ b/a.txt\n"])
    )
    hunk = f"@@ -{a_start},{a_count} +{a_start},{plus} @@\n"
    if draw(st.booleans()):
        body.append(draw(st.sampled_from(["\\ No newline at end of file", " zzz", "-zzz", ""])))
    return header + hunk + "\n".join(body) + "\n"


@FUZZ
@given(data=st.data(), lines=FILE_LINES, newline=st.booleans())
def test_diffs_against_a_real_file_check_cleanly(
    tmp_path_factory: Any, data: st.DataObject, lines: list[str], newline: bool
) -> None:
    """Any diff for a real file: changes to write, or an apply error naming the edit."""
    from muxlang.apply.changes import plan_changes
    from muxlang.apply.errors import ApplyError

    root = tmp_path_factory.mktemp("diff")
    content = "\n".join(lines) + ("\n" if newline and lines else "")
    (root / "a.txt").write_text(content)
    diff = data.draw(diffs_for(lines))
    with time_bound(BOUND, "diff check"):
        result = outcome(lambda: plan_changes(root, parse_edits(diff)), errors=(ApplyError,))
    if isinstance(result, ApplyError):
        assert str(result)
    else:
        for change in result:
            assert change.path == "a.txt"
            assert isinstance(change.after, bytes | None)
    assert (root / "a.txt").read_text() == content  # checking never writes
