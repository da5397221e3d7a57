"""Every insertion in a shell template reaches the command as exactly its text
(SPEC section 11): rendered by muxlang, run by a real `sh -c` (and bash), the
printed text equals the payload and no payload ever ran a command."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from muxlang.template import TemplateError, parse_template
from muxlang.template.shell import quote_word, render_shell

#: the shells a rendered command is checked with (`sh` is what muxlang runs)
SHELLS = ["sh", "bash"]

PAYLOADS = [
    "$(touch pwned)",
    "`touch pwned`",
    "'",
    '"',
    "\\",
    "'$(touch pwned)'",
    '"$(touch pwned)"',
    "\\$(touch pwned)",
    "a\nb",
    "line one\n$(touch pwned)\nline three\n",
    "*",
    "?",
    "[a-z]*",
    "~",
    "~root/x",
    "root",
    "a,b",
    "!",
    "!!",
    "#",
    "# not a comment",
    "",
    " ",
    "\t",
    "-n",
    "if",
    "A=b",
    "$HOME",
    "${HOME}",
    "$((1+1))",
    "; touch pwned ;",
    "&& touch pwned",
    "| touch pwned",
    "> pwned",
    "' ; touch pwned ; '",
    '" ; touch pwned ; "',
    "EOF",
    "x\nEOF\ntouch pwned\n",
    "EOF\n",
    "héllo wörld ✓ 日本語 🚀",
    "long "
    + "mixed $(touch pwned) `touch pwned` 'q' \"d\" \\ * ? [x] ~ ! # \n\t ; & | < > ( ) { } é "
    * 40,
]

#: (template, what it prints for payload p); the payload stands for {{ x }}
CONTEXTS: dict[str, tuple[str, object]] = {
    "unquoted": ("printf '%s' {{ x }}", lambda p: p),
    "in a word": ("printf '%s' foo{{ x }}bar", lambda p: f"foo{p}bar"),
    "double quotes": ("printf '%s' \"<{{ x }}>\"", lambda p: f"<{p}>"),
    "single quotes": ("printf '%s' '<{{ x }}>'", lambda p: f"<{p}>"),
    "heredoc": ("cat <<EOF\n<{{ x }}>\nEOF", lambda p: f"<{p}>\n"),
    "heredoc, value on its own line": ("cat <<EOF\n{{ x }}\nEOF", lambda p: f"{p}\n"),
    "heredoc, quoted delimiter": ("cat <<'END'\n<{{ x }}>\nEND", lambda p: f"<{p}>\n"),
    "heredoc with <<-": ("cat <<-EOF\n\t<{{ x }}>\n\tEOF", lambda p: f"<{p}>\n"),
    "heredoc with $": ("cat <<EOF\n$HOME_IS_NOT_SET{{ x }}\nEOF", lambda p: f"{p}\n"),
    "comment": ("printf '%s' ok # {{ x }}", lambda p: "ok"),
    "command substitution": (
        "printf '%s' \"$(printf '%s' {{ x }})\"",
        lambda p: p.rstrip("\n"),
    ),
    "in double quotes in $(...)": (
        "printf '%s' \"$(printf '%s' \"<{{ x }}>\")\"",
        lambda p: f"<{p}>",
    ),
    "after a backslash": ("printf '%s' \\{{ x }}", lambda p: p),
    "if block": (
        "{% if x %}printf '%s' \"{{ x }}\"{% else %}printf '%s' ''{% endif %}",
        lambda p: p,
    ),
    "for block": ("{% for c in [x, x] %}printf '%s' {{ c }};{% endfor %}", lambda p: p + p),
    "two insertions in one word": ("printf '%s' \"{{ x }}\"'{{ x }}'{{ x }}", lambda p: p * 3),
    "after a tilde": ("printf '%s' ~{{ x }}", lambda p: "~" + p),
    "in braces (bash's {a,b})": ("printf '%s' {pre{{ x }}}", lambda p: "{pre" + p + "}"),
    "case in $(...) in quotes": (
        "printf '%s' \"$(case a in a) printf '%s' {{ x }};; esac)\"",
        lambda p: p.rstrip("\n"),
    ),
}


def run_sh(shell: str, command: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [shell, "-c", command], cwd=cwd, capture_output=True, timeout=30, check=False
    )


def render(template: str, value: str) -> str:
    return render_shell(parse_template(template), {"x": value})


@pytest.fixture(scope="module", autouse=True)
def shells_exist() -> None:
    for shell in SHELLS:
        assert shutil.which(shell), f"{shell} is needed for these tests"


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("context", list(CONTEXTS))
def test_every_payload_prints_as_itself(shell: str, context: str, tmp_path: Path) -> None:
    template, expected = CONTEXTS[context]
    for payload in PAYLOADS:
        if context == "heredoc with <<-" and "\n\t" in payload:
            continue  # `<<-` removes leading tabs from every line: the shell's own rule
        command = render(template, payload)
        result = run_sh(shell, command, tmp_path)
        assert result.returncode == 0, (payload, command, result.stderr)
        assert result.stdout.decode() == expected(payload), (payload, command)  # type: ignore[operator]
        assert not (tmp_path / "pwned").exists(), (payload, command)


@pytest.mark.parametrize("shell", SHELLS)
def test_a_tab_indented_delimiter_line_cannot_end_a_strip_tabs_heredoc(
    shell: str, tmp_path: Path
) -> None:
    command = render("cat <<-EOF\n{{ x }}\nEOF\necho after", "a\n\tEOF\ntouch pwned")
    result = run_sh(shell, command, tmp_path)
    assert result.stdout == b"a\nEOF\ntouch pwned\nafter\n"  # `<<-` strips the tab
    assert not (tmp_path / "pwned").exists()


def test_a_comment_never_ends_at_a_newline_of_the_value(tmp_path: Path) -> None:
    command = render("echo ok # {{ x }}\necho after", "a\ntouch pwned")
    result = run_sh("sh", command, tmp_path)
    assert result.stdout == b"ok\nafter\n"
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("value", ["it's $(touch pwned)", "plain"])
def test_shell_escape_is_never_applied_twice(tmp_path: Path, value: str) -> None:
    for template in (
        "printf '%s' {{ x | shell_escape }}",
        "printf '%s' \"{{ x | shell_escape }}\"",
        "printf '%s' '{{ x | shell_escape }}'",
        "cat <<EOF\n{{ x | shell_escape }}\nEOF",
        "printf '%s' $NOT_SET_X{{ x | shell_escape }}",
        "printf '%s' \\{{ x | shell_escape }}",
    ):
        out = run_sh("sh", render(template, value), tmp_path).stdout.decode()
        assert out.rstrip("\n") == value, template
    assert not (tmp_path / "pwned").exists()


def test_shell_escape_of_a_list_still_gives_separate_words(tmp_path: Path) -> None:
    template = "printf '<%s>' {{ x | shell_escape }}"
    command = render_shell(parse_template(template), {"x": ["a b", "$(touch pwned)"]})
    assert run_sh("sh", command, tmp_path).stdout == b"<a b><$(touch pwned)>"


def test_raw_inserts_shell_code_on_purpose(tmp_path: Path) -> None:
    command = render("printf '<%s>' {{ x | raw }}", "one 'two three'")
    assert run_sh("sh", command, tmp_path).stdout == b"<one><two three>"


def test_after_raw_the_quoting_follows_what_the_raw_text_opened(tmp_path: Path) -> None:
    # the raw text opens a double quote: the next insertion is quoted for it
    command = render_shell(
        parse_template("printf '%s' {{ q | raw }}{{ x }}\""), {"q": '"', "x": "$(touch pwned)"}
    )
    assert run_sh("sh", command, tmp_path).stdout == b"$(touch pwned)"
    assert not (tmp_path / "pwned").exists()


def test_plain_words_stay_readable() -> None:
    assert render("git diff {{ x }}", "main") == "git diff main"
    assert render("git diff {{ x }}", "HEAD~1") == "git diff 'HEAD~1'"
    assert render('echo "{{ x }}"', "hello world") == 'echo "hello world"'
    assert render("echo {{ x }}", "") == "echo ''"


@pytest.mark.parametrize(
    ("template", "value", "message"),
    [
        ("echo `echo {{ x }}`", "a", "backticks"),
        ("echo ${X:-{{ x }}}", "a", "${"),
        ("echo $(( {{ x }} + 1 ))", "1; touch pwned", "arithmetic"),
        ("cat <<'EOF'\n{{ x }}\nEOF", "a\nEOF\ntouch pwned", "here-document"),
        ("cat <<{{ x }}\nEOF", "EOF", "delimiter"),
        ("echo $'a{{ x }}'", "b", "$'"),
    ],
)
def test_places_no_quoting_can_make_inert_are_refused(
    template: str, value: str, message: str
) -> None:
    with pytest.raises(TemplateError) as caught:
        render(template, value)
    assert message in str(caught.value)


def test_an_integer_may_go_into_arithmetic(tmp_path: Path) -> None:
    command = render("echo $(( {{ x }} + 1 ))", "41")
    assert run_sh("sh", command, tmp_path).stdout == b"42\n"


TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=60)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(TEXT)
def test_quote_word_property(tmp_path: Path, text: str) -> None:
    result = run_sh("sh", f"printf '%s' {quote_word(text)}", tmp_path)
    assert result.stdout.decode() == text


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.sampled_from(sorted(CONTEXTS)), TEXT)
def test_every_context_property(tmp_path: Path, context: str, text: str) -> None:
    template, expected = CONTEXTS[context]
    if context == "heredoc with <<-" and "\n\t" in text:
        return
    try:
        command = render(template, text)
    except TemplateError:
        # only a quoted here-document can refuse, for a line equal to its delimiter
        assert context == "heredoc, quoted delimiter"
        assert "END" in text
        return
    result = run_sh("sh", command, tmp_path)
    assert result.returncode == 0, (command, result.stderr)
    assert result.stdout.decode() == expected(text)  # type: ignore[operator]
