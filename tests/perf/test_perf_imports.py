"""What `muxlang validate` loads, and the template grammar's soundness.

Timings are never asserted here (they belong to bench/); these are the
behaviour-level facts the figures in docs/performance.md rest on.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from importlib import resources
from pathlib import Path

import lark

HEAVY = (
    *("trio", "httpx", "httpcore", "anyio", "rich", "networkx", "jinja2", "hypercorn"),
    *("pygls", "lsprotocol", "cattrs"),  # the language server's, loaded by `muxlang lsp` only
)

WORKFLOW = """\
name = "small"

[[steps]]
name = "diff"
type = "shell"
run = "git diff"

[[steps]]
name = "review"
type = "query"
backend = "b"
prompt = "Review {{ steps.diff.output | trim }}{% if steps.diff.status == 'success' %}!{% endif %}"

[backends.b]
command = "echo"
"""


def _modules_after_validate(
    tmp_path: Path, text: str, wanted: tuple[str, ...] = HEAVY
) -> tuple[int, list[str], str]:
    path = tmp_path / "wf.toml"
    path.write_text(text)
    script = textwrap.dedent(
        f"""
        import sys
        from muxlang.cli import main
        try:
            main(["-C", {str(tmp_path)!r}, "validate", {str(path)!r}])
        except SystemExit as exc:
            code = exc.code
        print(repr([code, sorted(sys.modules)]), file=sys.stderr)  # repr: json is a finding
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    code, modules = ast.literal_eval(done.stderr.strip().splitlines()[-1])
    return code, [m for m in modules if m.split(".")[0] in wanted or m in wanted], done.stdout


def test_validate_loads_no_runtime_or_graph_library(tmp_path: Path) -> None:
    code, heavy, _ = _modules_after_validate(tmp_path, WORKFLOW)
    assert code == 0
    assert heavy == []


def test_validate_never_looks_for_pydantic_plugins(tmp_path: Path) -> None:
    # importlib.metadata (and the email package under it) is what pydantic's plugin
    # loader imports to scan entry points: ~8 ms of a cold validate
    code, loaded, _ = _modules_after_validate(
        tmp_path, WORKFLOW, ("importlib.metadata", "email", "pydantic.plugin._loader")
    )
    assert code == 0
    assert loaded == []


def test_a_clean_validate_imports_nothing_only_errors_and_other_outputs_need(
    tmp_path: Path,
) -> None:
    # json (--output json, the filters that read or write it), tomllib (the rule
    # table), importlib.resources: ~5 ms of a cold start. (Not difflib: click imports
    # it for its own hint whenever a short option such as -C is given.)
    wanted = ("json", "tomllib", "importlib.resources")
    code, loaded, _ = _modules_after_validate(tmp_path, WORKFLOW, wanted)
    assert code == 0
    assert loaded == []


def test_a_model_built_after_muxlang_s_own_still_gets_the_installed_pydantic_plugins(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    (site / "spy_plugin-1.0.dist-info").mkdir(parents=True)
    (site / "spy_plugin-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: spy-plugin\nVersion: 1.0\n"
    )
    (site / "spy_plugin-1.0.dist-info" / "entry_points.txt").write_text(
        "[pydantic]\nspy = spy_plugin:plugin\n"
    )
    (site / "spy_plugin.py").write_text(
        textwrap.dedent(
            """
            SEEN = []

            class _Plugin:
                def new_schema_validator(self, schema, schema_type, path, kind, config, settings):
                    SEEN.append(path.name)
                    return None, None, None

            plugin = _Plugin()
            """
        )
    )
    script = textwrap.dedent(
        """
        import os, sys
        import muxlang.config.models
        import pydantic, spy_plugin

        class Mine(pydantic.BaseModel):
            x: int = 0

        print(spy_plugin.SEEN, os.environ.get("PYDANTIC_DISABLE_PLUGINS"))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(site)},
    )
    # muxlang's own models were built without it; the user's model sees it
    assert done.stdout.split() == ["['Mine']", "None"]


def test_validate_still_reports_a_cycle_without_preloading_networkx(tmp_path: Path) -> None:
    cyclic = WORKFLOW.replace('run = "git diff"', 'run = "echo {{ steps.review.output }}"')
    code, _, out = _modules_after_validate(tmp_path, cyclic)
    assert code == 1
    assert "MUX022" in out
    assert "diff → review → diff" in out


def test_template_grammar_has_no_conflicts_or_colliding_terminals() -> None:
    # the runtime builds the grammar with strict=False (see muxlang/template/parser.py)
    text = resources.files("muxlang").joinpath("grammar.lark").read_text(encoding="utf-8")
    lark.Lark(
        text,
        start=["template", "expression"],
        parser="lalr",
        lexer="contextual",
        strict=True,
        maybe_placeholders=False,
    )
