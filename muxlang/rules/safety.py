"""Rules about running what other steps produced (MUX040)."""

from __future__ import annotations

from muxlang.rules.rule import Rule, Severity

_DIFF = 'name = "hello"\n\n[[steps]]\nname = "diff"\ntype = "shell"\nrun = "git diff"\n\n'

RULES = (
    Rule(
        code="MUX040",
        name="UntrustedShellCode",
        summary="another step's output or an arg runs as shell code",
        explanation=(
            "Every insertion into `run` or `verify` is quoted for its place, so a value "
            "cannot break out of the command. What stays dangerous is text someone "
            "else controls (another step's output, an LLM's answer, `args`) inserted "
            "with `| raw`, or into code a shell or interpreter runs (`eval`, "
            "`sh -c`): that is code injection. Pass it as data instead. A warning."
        ),
        bad=_DIFF
        + '[[steps]]\nname = "show"\ntype = "shell"\nrun = "cat {{ steps.diff.output | raw }}"\n',
        fixed=_DIFF
        + '[[steps]]\nname = "show"\ntype = "shell"\nrun = "cat {{ steps.diff.output }}"\n',
        severity=Severity.WARNING,
    ),
)
