"""Rules about roles, backends and what steps take from each other (MUX030, MUX031)."""

from __future__ import annotations

from muxlang.rules.rule import Rule

_BACKEND = 'name = "hello"\n\n[backends.claude]\ncommand = "claude"\n\n'

RULES = (
    Rule(
        code="MUX030",
        name="UnknownRoleOrBackend",
        summary="unknown role or backend",
        explanation=(
            "A step's `role` or `backend`, or an entry of a role's `backends`, that no "
            "config layer (built-in, user, project, the workflow's own tables) defines; "
            "also roles nesting in a cycle."
        ),
        bad=_BACKEND
        + '[[steps]]\nname = "ask"\ntype = "query"\nbackend = "claud"\nprompt = "hi"\n',
        fixed=_BACKEND
        + '[[steps]]\nname = "ask"\ntype = "query"\nbackend = "claude"\nprompt = "hi"\n',
    ),
    Rule(
        code="MUX036",
        name="RoleCycle",
        summary="roles that name each other in a circle",
        explanation=(
            "A role's `backends` may name other roles, but never the role itself "
            "through them: resolving it would never end. The message lists the cycle. "
            "Before wave 2 this was MUX030."
        ),
        bad=(
            _BACKEND + '[roles.first]\nbackends = ["second"]\n\n'
            '[roles.second]\nbackends = ["claude", "first"]\n\n'
            '[[steps]]\nname = "ask"\ntype = "query"\nrole = "first"\nprompt = "hi"\n'
        ),
        fixed=(
            _BACKEND + '[roles.first]\nbackends = ["second"]\n\n'
            '[roles.second]\nbackends = ["claude"]\n\n'
            '[[steps]]\nname = "ask"\ntype = "query"\nrole = "first"\nprompt = "hi"\n'
        ),
    ),
    Rule(
        code="MUX031",
        name="ApplySourceNotQuery",
        summary="apply `source` is not a query step",
        explanation=(
            "An apply step applies the edits an LLM proposed: its `source` must name "
            "a query step, not a shell or apply step."
        ),
        bad=(
            _BACKEND + '[[steps]]\nname = "diff"\ntype = "shell"\nrun = "git diff"\n\n'
            '[[steps]]\nname = "fix"\ntype = "apply"\nsource = "steps.diff"\n'
        ),
        fixed=(
            _BACKEND + '[[steps]]\nname = "ask"\ntype = "query"\nbackend = "claude"\n'
            'prompt = "fix it"\n\n'
            '[[steps]]\nname = "fix"\ntype = "apply"\nsource = "steps.ask"\n'
        ),
    ),
)
