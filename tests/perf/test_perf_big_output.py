"""Big outputs are handled without extra copies, with the same text as before."""

from __future__ import annotations

import io

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st

from muxlang.cli import run as run_cli
from muxlang.steps.shell import text_of as _text_of

chunks = st.lists(
    st.sampled_from([b"x", b"\n", b"\r", b"\r\n", "é".encode(), b"\xff", b"\xe2\x82", b" "]),
    max_size=40,
)


@given(chunks)
def test_text_of_is_decode_then_rstrip(parts: list[bytes]) -> None:
    raw = b"".join(parts)
    expected = raw.decode("utf-8", "replace").rstrip("\r\n")
    assert _text_of(raw) == expected
    assert _text_of(bytearray(raw)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "short",
        "a" * 1000,  # no newline at all
        "\x1b[1m" + "b" * 1000 + "\x1b[0m",  # no newline and escapes: one piece
        "é" * 300 + "\n" + "€" * 300,
        "\n".join(f"line {i} \x1b[31mred\x1b[0m" for i in range(200)),
        "x" * 100 + "\n" + "y" * 10,
        "\n" * 300,
    ],
)
def test_large_output_is_printed_exactly_as_click_echo_would(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.StringIO()
    original = click.echo

    def echo(message: str = "", nl: bool = True) -> None:
        original(message, file=out, nl=nl)

    monkeypatch.setattr(click, "echo", echo)
    monkeypatch.setattr(run_cli, "_SLICE", 64)
    run_cli._echo_large(text)
    # not a terminal: click drops ANSI codes; slices never cut one in half
    assert out.getvalue() == click.unstyle(text) + "\n"
