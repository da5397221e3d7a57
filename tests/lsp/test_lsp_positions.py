"""UTF-16 at the edge: muxlang's code-point columns and LSP's UTF-16 units."""

from __future__ import annotations

from muxlang.lsp.positions import from_utf16, split_lines, to_utf16

LINES = split_lines('a = "é😀x"\r\nb = 1\n')


def test_code_points_to_utf16_count_astral_characters_twice() -> None:
    # columns are 1-based code points: `x` is the 8th character of line 1
    assert to_utf16(LINES, 1, 8) == (0, 8)  # a, ' ', =, ' ', ", é, 😀(2 units) → 8
    assert to_utf16(LINES, 1, 7) == (0, 6)
    assert to_utf16(LINES, 2, 1) == (1, 0)


def test_utf16_to_code_points_and_back() -> None:
    for column in range(1, len(LINES[0]) + 2):
        line, units = to_utf16(LINES, 1, column)
        assert from_utf16(LINES, line, units) == (0, column - 1)


def test_a_position_inside_a_surrogate_pair_goes_to_the_character_after_it() -> None:
    assert from_utf16(LINES, 0, 7) == (0, 7)  # between the two halves of 😀


def test_crlf_is_one_line_break() -> None:
    assert LINES[:2] == ['a = "é😀x"', "b = 1"]


def test_utf8_and_utf32_encodings() -> None:
    from muxlang.lsp.positions import from_client, to_client

    # é is 2 bytes, 😀 4: `x` starts at byte 11; in code points at 7
    assert to_client(LINES, 1, 8, "utf-8") == (0, 11)
    assert to_client(LINES, 1, 8, "utf-32") == (0, 7)
    assert from_client(LINES, 0, 11, "utf-8") == (0, 7)
    assert from_client(LINES, 0, 7, "utf-32") == (0, 7)
