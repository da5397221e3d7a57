"""Rules about steps that call other workflows with ``uses`` (MUX032 to MUX035)."""

from __future__ import annotations

from muxlang.rules.rule import Rule

_HEAD = 'name = "ship"\n\n[[steps]]\nname = "check"\n'

RULES = (
    Rule(
        code="MUX032",
        name="UnusableWorkflow",
        summary="`uses` names no workflow that can run",
        explanation=(
            "A `uses` step's workflow must exist (a name found as `muxlang run` finds "
            "workflows, or a file inside the project) and must itself pass `validate`; "
            'otherwise the call could never run. With "did you mean" for a misspelt name, '
            "and the first error of a called workflow that has errors."
        ),
        bad=_HEAD + 'uses = "reveiw"\n',
        fixed=_HEAD + 'uses = "review"\n',
    ),
    Rule(
        code="MUX033",
        name="MissingWorkflowArg",
        summary="an arg the called workflow needs is missing from `with`",
        explanation=(
            "The called workflow declares an arg without a default (or reads one it "
            "does not declare) and the `uses` step's `with` does not give it: the call "
            "would stop before any of its steps ran."
        ),
        bad=_HEAD + 'uses = "explain"\n',
        fixed=_HEAD + 'uses = "explain"\nwith = { target = "README.md" }\n',
    ),
    Rule(
        code="MUX034",
        name="UnknownWorkflowArg",
        summary="`with` gives an arg the called workflow does not declare",
        explanation=(
            "A `with` key that is not one of the called workflow's `[args]` would be "
            'ignored; it is most often a misspelt arg (with "did you mean").'
        ),
        bad=_HEAD + 'uses = "review"\nwith = { bsae = "main" }\n',
        fixed=_HEAD + 'uses = "review"\nwith = { base = "main" }\n',
    ),
    Rule(
        code="MUX035",
        name="WorkflowRecursion",
        summary="`uses` recursion",
        explanation=(
            "A workflow that calls itself, directly or through the workflows it calls "
            "(A uses B uses A), would never end. The message lists the chain of calls."
        ),
        bad=_HEAD + 'uses = "./example.toml"\n',
        fixed=_HEAD + 'uses = "review"\n',
    ),
)
