"""Rules about steps and how they refer to each other (MUX020 to MUX025)."""

from __future__ import annotations

from muxlang.rules.rule import Rule

_TWO = (
    'name = "hello"\n\n[[steps]]\nname = "diff"\ntype = "shell"\nrun = "git diff"\n\n'
    '[[steps]]\nname = "show"\ntype = "shell"\n'
)

RULES = (
    Rule(
        code="MUX020",
        name="DuplicateStepName",
        summary="duplicate step name",
        explanation=(
            "Two steps with one name: references to it would be ambiguous. Reported "
            "at the second, naming the line of the first."
        ),
        bad=_TWO.replace('"show"', '"diff"') + 'run = "git diff --stat"\n',
        fixed=_TWO + 'run = "git diff --stat"\n',
    ),
    Rule(
        code="MUX021",
        name="UnknownStepReference",
        summary="unknown step referenced",
        explanation=(
            "`depends_on`, a template or expression (`steps.X...`) or an apply "
            "step's `source` names a step the workflow does not have; with \"did you "
            'mean".'
        ),
        bad=_TWO + 'run = "echo {{ steps.dif.exit_code }}"\n',
        fixed=_TWO + 'run = "echo {{ steps.diff.exit_code }}"\n',
    ),
    Rule(
        code="MUX022",
        name="DependencyCycle",
        summary="dependency cycle",
        explanation=(
            "Steps that depend on each other in a circle can never start. Every "
            "`depends_on` entry and every `steps.X` a step mentions is a dependency; "
            "the message lists the cycle."
        ),
        bad=_TWO.replace('run = "git diff"', 'run = "git diff"\ndepends_on = ["show"]')
        + 'run = "echo {{ steps.diff.exit_code }}"\n',
        fixed=_TWO + 'run = "echo {{ steps.diff.exit_code }}"\n',
    ),
    Rule(
        code="MUX023",
        name="UnknownStepField",
        summary="unknown step field",
        explanation=(
            "`steps.X.FIELD` where a step of X's type has no such field "
            "(`steps.diff.outptu`, `stdout` for `output`). The hint names the field "
            "meant, or the step type the field belongs to."
        ),
        bad=_TWO + 'run = "echo {{ steps.diff.exitcode }}"\n',
        fixed=_TWO + 'run = "echo {{ steps.diff.exit_code }}"\n',
    ),
    Rule(
        code="MUX024",
        name="ItemOutsideForEach",
        summary="`item` or `loop` outside a for_each step",
        explanation=(
            "`item` and `loop` exist only in a step with `for_each` (or inside a "
            "template `{% for %}`); anywhere else they would fail the run."
        ),
        bad='name = "hello"\n\n[[steps]]\nname = "each"\ntype = "shell"\nrun = "echo {{ item }}"\n',
        fixed=(
            'name = "hello"\n\n[[steps]]\nname = "each"\ntype = "shell"\n'
            "for_each = \"['a', 'b']\"\n"
            'run = "echo {{ item }}"\n'
        ),
    ),
    Rule(
        code="MUX025",
        name="UndeclaredArg",
        summary="undeclared arg",
        explanation=(
            "When a workflow declares its `[args]`, every `args.X` must be one of "
            "them: a misspelt arg would be empty at run time."
        ),
        bad=(
            'name = "hello"\n\n[args.who]\ndefault = "world"\n\n[[steps]]\nname = "greet"\n'
            'type = "shell"\nrun = "echo {{ args.woh | shell_escape }}"\n'
        ),
        fixed=(
            'name = "hello"\n\n[args.who]\ndefault = "world"\n\n[[steps]]\nname = "greet"\n'
            'type = "shell"\nrun = "echo {{ args.who | shell_escape }}"\n'
        ),
    ),
)
