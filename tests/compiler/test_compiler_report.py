"""The four output formats of diagnostics, as a user (or a CI system) reads them."""

from __future__ import annotations

import json

from muxlang.compiler import report
from muxlang.diagnostics import CODES, Diagnostic, Severity
from muxlang.source import Span

SOURCE = 'name = "x"\n[[steps]]\nprompt = "Review {{ steps.dif.output }}"\n'


def reader(path: str) -> str | None:
    return SOURCE if path == "wf.toml" else None


ERR = Diagnostic(
    "wf.toml",
    Span(3, 27, 3, 30),
    "MUX021",
    "unknown step `dif` in `prompt`",
    hint="did you mean `diff`?",
)
WARN = Diagnostic(
    "other.toml", Span(1, 1, 1, 4), "MUX040", "output, unescaped", Severity.WARNING, None
)


def test_text_has_location_source_line_carets_and_hint():
    text = report.render_text([ERR], read=reader)
    lines = text.splitlines()
    assert lines[0] == "wf.toml:3:27: error[MUX021]: unknown step `dif` in `prompt`"
    assert lines[2] == '3 | prompt = "Review {{ steps.dif.output }}"'
    caret_line = lines[3]
    assert caret_line == "  |" + " " * 27 + "^^^"
    # the carets sit exactly under `dif`
    assert lines[2][caret_line.index("^") : caret_line.index("^") + 3] == "dif"
    assert lines[4] == "  = hint: did you mean `diff`?"


def test_text_without_source_still_has_location_and_hint():
    text = report.render_text([WARN, ERR], read=lambda _: None)
    assert "other.toml:1:1: warning[MUX040]: output, unescaped" in text
    assert "= hint: did you mean `diff`?" in text
    assert "\x1b[" not in text


def test_text_colour_only_when_asked():
    assert "\x1b[" in report.render_text([ERR], color=True, read=reader)


def test_multi_line_span_underlines_to_end_of_line():
    d = Diagnostic("wf.toml", Span(3, 10, 4, 2), "MUX010", "unclosed")
    carets = report.render_text([d], read=reader).splitlines()[3]
    assert carets.endswith("^" * (len('prompt = "Review {{ steps.dif.output }}"') - 9))


def test_tabs_keep_carets_aligned():
    src = "\tx = 1\n"
    d = Diagnostic("t.toml", Span(1, 2, 1, 3), "MUX002", "unknown key `x`")
    lines = report.render_text([d], read=lambda _: src).splitlines()
    assert lines[2] == "1 |     x = 1"
    assert lines[3] == "  |     ^"


def test_summary_counts_errors_warnings_files():
    assert report.summary([ERR, ERR, WARN]) == "Found 2 errors, 1 warning in 2 files."
    assert report.summary([WARN]) == "Found 1 warning in 1 file."
    assert report.summary([], files_checked=3) == "No problems found in 3 files."


def test_json_fields_are_stable():
    [obj] = json.loads(report.render_json([ERR]))
    assert obj == {
        "file": "wf.toml",
        "line": 3,
        "column": 27,
        "end_line": 3,
        "end_column": 30,
        "severity": "error",
        "code": "MUX021",
        "message": "unknown step `dif` in `prompt`",
        "hint": "did you mean `diff`?",
    }
    assert json.loads(report.render_json([])) == []


def test_github_commands_and_escaping():
    d = Diagnostic("dir,x/a:b.toml", Span(2, 3, 2, 9), "MUX010", "bad 100%\nsecond line", hint="h")
    line = report.render_github([d]).strip()
    assert line == (
        "::error file=dir%2Cx/a%3Ab.toml,line=2,col=3,endLine=2,endColumn=9,title=MUX010"
        "::bad 100%25%0Asecond line%0Ahint: h"
    )
    assert report.render_github([WARN]).startswith("::warning file=other.toml,")


def test_github_summary_mentions_the_annotation_limit():
    many = [ERR] * 11
    assert "only 10 annotations" in report.github_summary(many)
    assert "only 10" not in report.github_summary([ERR])


def test_sarif_has_rules_for_every_code_and_results():
    log = json.loads(report.render_sarif([ERR, WARN]))
    assert log["version"] == "2.1.0"
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted(CODES)
    first, second = run["results"]
    assert first["ruleId"] == "MUX021"
    assert rules[first["ruleIndex"]]["id"] == "MUX021"
    assert first["level"] == "error"
    assert second["level"] == "warning"
    region = first["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 3, "startColumn": 27, "endLine": 3, "endColumn": 30}
    artifact = first["locations"][0]["physicalLocation"]["artifactLocation"]
    assert artifact == {"uri": "wf.toml", "uriBaseId": "%SRCROOT%"}
    assert "did you mean" in first["message"]["text"]


def test_a_byte_order_mark_does_not_shift_the_carets():
    src = '\ufeffnmae = "x"\n'
    d = Diagnostic("b.toml", Span(1, 2, 1, 6), "MUX002", "unknown key `nmae`")
    lines = report.render_text([d], read=lambda _: src).splitlines()
    assert lines[2] == '1 | nmae = "x"'
    assert lines[3] == "  | ^^^^"


def test_a_problem_at_the_end_of_the_file_still_gets_a_caret():
    src = 'args = ["-p",\n'
    d = Diagnostic("c.toml", Span(2, 1, 2, 2), "MUX001", "expected a value or ']'")
    lines = report.render_text([d], read=lambda _: src).splitlines()
    assert lines[2] == "2 | "
    assert lines[3] == "  | ^"
