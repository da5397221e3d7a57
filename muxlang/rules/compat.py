"""Rules about files written for llm-mux (MUX050, MUX051)."""

from __future__ import annotations

from muxlang.rules.rule import Rule, Severity

_SHELL = '[[steps]]\nname = "s"\ntype = "shell"\nrun = "echo hi"\n'

RULES = (
    Rule(
        code="MUX050",
        name="LlmMuxKeyNotRead",
        summary="an llm-mux key that muxlang accepts but does something else for",
        explanation=(
            "Every file llm-mux accepts validates. Most llm-mux keys mean in muxlang "
            "what they meant there; a few have no muxlang meaning (step `parallel` and "
            "`min_success`, `[defaults] timeout`/`parallel`/`command_wrapper`, "
            "`[ecosystems]`) or a different one (the `store` and `input` step types). "
            "MUX050 names the key and says what muxlang does instead "
            "(docs/migration.md). A warning."
        ),
        bad='[defaults]\ncommand_wrapper = "nix-shell --run"\n\n' + _SHELL,
        fixed=_SHELL,
        severity=Severity.WARNING,
    ),
    Rule(
        code="MUX051",
        name="AmbiguousTimeoutUnit",
        summary="a bare integer timeout of 1000 or more, which llm-mux read as milliseconds",
        explanation=(
            "llm-mux reads a step's or a workflow's bare integer `timeout` as "
            "milliseconds, muxlang as seconds: `timeout = 30000` is 30 s there and more "
            "than 8 hours here. A file under an `.llm-mux/` directory keeps llm-mux's "
            "unit; anywhere else the number is seconds. Either way a bare number of "
            "1000 or more is reported, with the unit it is read in: write a unit "
            '(`"30s"`, `"30000ms"`, `"2m"`) to say what you mean. A warning.'
        ),
        bad=_SHELL + "timeout = 30000\n",
        fixed=_SHELL + 'timeout = "30s"\n',
        severity=Severity.WARNING,
    ),
)
