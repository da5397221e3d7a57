"""MUX040 (SPEC 11): where an argument or another step's output stays dangerous
once every insertion is quoted — inserted with `raw`, or as code that a shell or
an interpreter runs. Read from the command's literal text, as `validate` does."""

from __future__ import annotations

from pathlib import Path

import pytest

from muxlang.compiler.project import validate_workflow

HEAD = '[args.a]\ndescription = "anything"\n\n'

#: (the run command, what MUX040 says it is inserted as, or None for no warning)
CASES = [
    ("echo {{ args.a }}", None),
    ('grep -F "{{ args.a }}" file', None),
    ("X={{ args.a }} make", None),
    ("export X={{ args.a }}", None),
    ("cat > {{ args.a }}", None),
    ("cat <<EOF\n{{ args.a }}\nEOF", None),
    ("sh -c 'echo \"$1\"' sh {{ args.a }}", None),
    ("awk -f prog.awk {{ args.a }}", None),
    ("echo {{ args.a | length }}", None),
    ("{{ args.a }} --help", "the command to run"),
    ("if {{ args.a }}; then echo yes; fi", "the command to run"),
    ("sh -c {{ args.a }}", "`sh -c`"),
    ("bash -lc {{ args.a }}", "`bash -c`"),
    ('bash -c "echo {{ args.a | shell_escape }}"', "`bash -c`"),
    ("sudo -u me sh -c {{ args.a }}", "`sh -c`"),
    ("timeout 5 bash -c {{ args.a }}", "`bash -c`"),
    ("eval {{ args.a }}", "`eval`"),
    ("echo $(eval {{ args.a }})", "`eval`"),
    ('python3 -c "print({{ args.a }})"', "`python3 -c`"),
    ("node -e {{ args.a }}", "`node -e`"),
    ("awk {{ args.a }} file", "the program of `awk`"),
    ("ssh host {{ args.a }}", "the remote command of `ssh`"),
    ("printf %s {{ args.a | raw }}", "`raw`"),
]


@pytest.mark.parametrize(("run", "expected"), CASES, ids=[c[0] for c in CASES])
def test_mux040_reads_where_the_insertion_stands(
    run: str, expected: str | None, tmp_path: Path
) -> None:
    path = tmp_path / "wf.toml"
    body = run.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    path.write_text(HEAD + f'[[steps]]\nname = "s"\ntype = "shell"\nrun = "{body}"\n')
    found = [d for d in validate_workflow(path, tmp_path, environ={}) if d.code == "MUX040"]
    if expected is None:
        assert found == []
        return
    [diag] = found
    assert expected in diag.message
    assert diag.severity == "warning"
    assert "the argument `a`" in diag.message


def test_a_literal_or_a_number_is_never_flagged(tmp_path: Path) -> None:
    path = tmp_path / "wf.toml"
    path.write_text(
        '[[steps]]\nname = "s"\ntype = "shell"\n'
        "run = \"eval {{ 'echo hi' }}; sh -c {{ steps.s.exit_code }}\"\n"
    )
    assert [d for d in validate_workflow(path, tmp_path, environ={}) if d.code == "MUX040"] == []
