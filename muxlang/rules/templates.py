"""Rules about templates and expressions: syntax, filters, types and names
(MUX010 to MUX013, MUX026)."""

from __future__ import annotations

from muxlang.rules.rule import Rule

_HEAD = 'name = "hello"\n\n[[steps]]\nname = "greet"\ntype = "shell"\n'

RULES = (
    Rule(
        code="MUX010",
        name="TemplateSyntaxError",
        summary="template or expression syntax error",
        explanation=(
            "A template (`run`, `cwd`, `prompt`, `system`, `verify`, `env` values ...) "
            "or an expression (`if`, `for_each`) that does not parse: an unclosed "
            "`{{`, a `|` with no filter after it, a `{% if %}` without `{% endif %}`. "
            "Reported at the exact place inside the TOML string."
        ),
        bad=_HEAD + 'run = "echo {{ args.who | }}"\n',
        fixed=_HEAD + 'run = "echo {{ args.who | shell_escape }}"\n',
    ),
    Rule(
        code="MUX011",
        name="UnknownFilter",
        summary="unknown filter",
        explanation=(
            "A filter (or, in `if`, a function) the standard library does not have, "
            'usually a typo; with a "did you mean". It would fail the run at that step.'
        ),
        bad=_HEAD + 'run = "echo {{ args.who | shell_escap }}"\n',
        fixed=_HEAD + 'run = "echo {{ args.who | shell_escape }}"\n',
    ),
    Rule(
        code="MUX012",
        name="WrongFilterArguments",
        summary="wrong arguments to a filter",
        explanation=(
            "Too many arguments, a missing required one, an unknown or repeated "
            "keyword, or an argument whose kind is known and wrong (`truncate('2000')`). "
            "The hint shows the filter's usage."
        ),
        bad=_HEAD + "run = \"echo {{ args.who | replace('a') | shell_escape }}\"\n",
        fixed=_HEAD + "run = \"echo {{ args.who | replace('a', 'b') | shell_escape }}\"\n",
    ),
    Rule(
        code="MUX013",
        name="TypeMismatch",
        summary="type error known before running",
        explanation=(
            "A small static type inference knows the kind of most values "
            "(`steps.X.output` is a string, `.exit_code` a number, `lines` gives a "
            "list ...). `for_each` over a string, `join` on a string, a field of a "
            "string, or `==` between a number and a string (always false: values are "
            "never converted) are caught before anything runs."
        ),
        bad=(
            'name = "hello"\n\n[[steps]]\nname = "test"\ntype = "shell"\nrun = "true"\n\n'
            '[[steps]]\nname = "after"\ntype = "shell"\nrun = "echo failed"\n'
            "if = \"steps.test.exit_code != '0'\"\n"
        ),
        fixed=(
            'name = "hello"\n\n[[steps]]\nname = "test"\ntype = "shell"\nrun = "true"\n\n'
            '[[steps]]\nname = "after"\ntype = "shell"\nrun = "echo failed"\n'
            'if = "steps.test.exit_code != 0"\n'
        ),
    ),
    Rule(
        code="MUX026",
        name="UnknownName",
        summary="a name no template scope has",
        explanation=(
            "A variable no template knows (`stpes.diff.output`). Templates know "
            "`steps`, `args`, `env`, `team` and `workflow`; for_each steps also `item` "
            "and `loop`; `{% for x in ... %}` binds `x` in its body. Before wave 2 this "
            "was MUX013."
        ),
        bad=_HEAD + 'run = "echo {{ workflw.name }}"\n',
        fixed=_HEAD + 'run = "echo {{ workflow.name }}"\n',
    ),
)
