"""``muxlang rule [CODE]``: what a diagnostic code means, as ``ruff rule`` does.

With a code: its name, what it catches and why, a bad and a fixed example.
Without: every rule, one a line. ``--output json`` gives the same as JSON.
"""

from __future__ import annotations

import json
import re
import textwrap
from typing import Any

import click

from muxlang.cli.options import global_options, settings


def _as_json(rule: Any) -> dict[str, Any]:
    return {
        "code": rule.code,
        "name": rule.name,
        "severity": str(rule.severity),
        "summary": rule.summary,
        "explanation": rule.explanation,
        "bad": rule.bad,
        "fixed": rule.fixed,
        "url": rule.help_uri,
    }


def _example(text: str) -> str:
    return textwrap.indent(text.rstrip("\n"), "    ")


def render_rule(rule: Any) -> str:
    """One rule as ``muxlang rule CODE`` prints it."""
    # wrapped at spaces, but never inside `code`
    kept = re.sub(r"`[^`]*`", lambda m: m.group().replace(" ", "\0"), rule.explanation)
    explanation = textwrap.fill(kept, width=79).replace("\0", " ")
    return (
        f"{rule.code} {rule.name} ({rule.severity})\n\n"
        f"{rule.summary[0].upper()}{rule.summary[1:]}.\n\n"
        f"{explanation}\n\n"
        f"Bad:\n\n{_example(rule.bad)}\n\n"
        f"Fixed:\n\n{_example(rule.fixed)}\n\n"
        f"Silence it on one line with `# muxlang: ignore[{rule.code}]`.\n"
        f"More: {rule.help_uri}\n"
    )


@click.command("rule")
@click.argument("code", required=False)
@global_options
@click.pass_context
def rule_command(ctx: click.Context, /, code: str | None, **given: Any) -> None:
    """Explain a diagnostic code (MUX021), or list every code.

    \b
    muxlang rule            every code, its name and severity
    muxlang rule MUX021     what it catches, why, a bad and a fixed example
    """
    from muxlang.diagnostics import did_you_mean
    from muxlang.rules import RULES

    options = settings(ctx, **given)
    as_json = options.output == "json"
    if code is None:
        if as_json:
            click.echo(json.dumps([_as_json(r) for r in RULES.values()], indent=2))
            return
        width = max(len(r.name) for r in RULES.values())
        for rule in RULES.values():
            click.echo(f"{rule.code}  {rule.name:<{width}}  {rule.severity:<7}  {rule.summary}")
        return
    by_name = {r.name.lower(): r for r in RULES.values()}
    found = RULES.get(code.strip().upper()) or by_name.get(code.strip().lower())
    if found is None:
        hint = did_you_mean(code.upper(), RULES) or did_you_mean(
            code, [r.name for r in RULES.values()]
        )
        message = f"no rule `{code}`" + (f": {hint}" if hint else "")
        raise click.UsageError(message + " (`muxlang rule` lists them all)")
    click.echo(json.dumps(_as_json(found), indent=2) if as_json else render_rule(found), nl=False)
    if as_json:
        click.echo()
