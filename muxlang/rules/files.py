"""Rules about the files themselves: TOML syntax and the keys and values the
schema allows (MUX001 to MUX008)."""

from __future__ import annotations

from muxlang.rules.rule import Rule, Severity

RULES = (
    Rule(
        code="MUX001",
        name="TomlSyntaxError",
        summary="TOML syntax error",
        explanation=(
            "The file is not valid TOML: a string never closed, a malformed header "
            "(`[[steps]`), a duplicate key, an invalid value or text that is not UTF-8. "
            "Nothing else in the file can be checked until it parses."
        ),
        bad='name = "hello\n',
        fixed='name = "hello"\n\n[[steps]]\nname = "greet"\ntype = "shell"\nrun = "echo hi"\n',
    ),
    Rule(
        code="MUX002",
        name="UnknownKey",
        summary="unknown key",
        explanation=(
            "A key the file kind (or this step type) does not have, usually a typo. "
            'Reported at the key with a "did you mean"; a key of another step type '
            "says which type it belongs to. An unknown key would otherwise be ignored "
            "and the setting silently lost."
        ),
        bad='name = "hello"\n\n[[steps]]\nname = "greet"\ntype = "shell"\nrn = "echo hi"\n',
        fixed='name = "hello"\n\n[[steps]]\nname = "greet"\ntype = "shell"\nrun = "echo hi"\n',
    ),
    Rule(
        code="MUX003",
        name="WrongType",
        summary="wrong type for a key",
        explanation=(
            "A value of the wrong kind: a string where a list is expected "
            '(`depends_on = "a"`), a number where a string is, a `timeout` that is '
            'neither seconds nor a duration such as "2m". Reported at the value.'
        ),
        bad=(
            'name = "hello"\n\n[[steps]]\nname = "a"\ntype = "shell"\nrun = "echo a"\n\n'
            '[[steps]]\nname = "b"\ntype = "shell"\nrun = "echo b"\ndepends_on = "a"\n'
        ),
        fixed=(
            'name = "hello"\n\n[[steps]]\nname = "a"\ntype = "shell"\nrun = "echo a"\n\n'
            '[[steps]]\nname = "b"\ntype = "shell"\nrun = "echo b"\ndepends_on = ["a"]\n'
        ),
    ),
    Rule(
        code="MUX004",
        name="MissingKey",
        summary="missing required key",
        explanation=(
            "A table lacks a key it needs: a step without `name` or `type`, a shell "
            "step without `run`, a query step without `prompt` or without a `role` or "
            "`backend`, a backend without `command`. Reported at the table's header."
        ),
        bad='name = "hello"\n\n[[steps]]\nname = "greet"\ntype = "shell"\n',
        fixed='name = "hello"\n\n[[steps]]\nname = "greet"\ntype = "shell"\nrun = "echo hi"\n',
    ),
    Rule(
        code="MUX005",
        name="ValueNotAllowed",
        summary="a value outside its fixed set",
        explanation=(
            "`type`, `execution`, `protocol`, `prompt_via` and a few more keys take "
            "one of a fixed set of words. Anything else is reported at the value, with "
            'the allowed words and a "did you mean". Before wave 2 this was MUX003.'
        ),
        bad='name = "hello"\n\n[[steps]]\nname = "greet"\ntype = "shel"\nrun = "echo hi"\n',
        fixed='name = "hello"\n\n[[steps]]\nname = "greet"\ntype = "shell"\nrun = "echo hi"\n',
    ),
    Rule(
        code="MUX006",
        name="InvalidValue",
        summary="a value of the right type that the key cannot take",
        explanation=(
            "The value has the right type but can never work: a number out of range "
            "(`timeout = -1`), a step name that is not a name, a team `detect` pattern "
            "that is not a valid glob, a `min_success` above the number of the role's "
            "backends (a parallel role could never collect that many answers). "
            "Before wave 2 this was MUX003."
        ),
        bad=(
            'name = "hello"\n\n[backends.a]\ncommand = "a"\n\n[backends.b]\ncommand = "b"\n\n'
            '[roles.panel]\nbackends = ["a", "b"]\nexecution = "parallel"\nmin_success = 3\n\n'
            '[[steps]]\nname = "ask"\ntype = "query"\nrole = "panel"\nprompt = "hi"\n'
        ),
        fixed=(
            'name = "hello"\n\n[backends.a]\ncommand = "a"\n\n[backends.b]\ncommand = "b"\n\n'
            '[roles.panel]\nbackends = ["a", "b"]\nexecution = "parallel"\nmin_success = 2\n\n'
            '[[steps]]\nname = "ask"\ntype = "query"\nrole = "panel"\nprompt = "hi"\n'
        ),
    ),
    Rule(
        code="MUX007",
        name="ConflictingKeys",
        summary="two keys that exclude each other",
        explanation=(
            "A query step names both a `role` and a `backend`: a role already names "
            "its backends, so exactly one of the two is allowed. Reported at the later "
            "of the two. Before wave 2 this was MUX003."
        ),
        bad=(
            'name = "hello"\n\n[backends.a]\ncommand = "a"\n\n[roles.r]\nbackends = ["a"]\n\n'
            '[[steps]]\nname = "ask"\ntype = "query"\nrole = "r"\nbackend = "a"\nprompt = "hi"\n'
        ),
        fixed=(
            'name = "hello"\n\n[backends.a]\ncommand = "a"\n\n[roles.r]\nbackends = ["a"]\n\n'
            '[[steps]]\nname = "ask"\ntype = "query"\nrole = "r"\nprompt = "hi"\n'
        ),
    ),
    Rule(
        code="MUX008",
        name="EmptyWorkflow",
        summary="a workflow with no steps",
        explanation=(
            "No `[[steps]]` table, or `steps = []`: `muxlang run` would do nothing and "
            "succeed. A warning, not an error, since a workflow being written may be "
            "empty (`validate --strict` fails on it). A file whose steps exist but are "
            "broken gets the errors about them instead. Before wave 2 this was MUX004."
        ),
        bad='name = "hello"\n',
        fixed='name = "hello"\n\n[[steps]]\nname = "greet"\ntype = "shell"\nrun = "echo hi"\n',
        severity=Severity.WARNING,
    ),
)
