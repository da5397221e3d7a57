"""The docs cover the language: every diagnostic code (with a broken and a fixed
example), every filter (with an example), every key of workflow and config files
(docs/reference.md, kept in step with muxlang/config/models.py), and the pages a
user looks for."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from muxlang.config import models
from muxlang.diagnostics import CODES
from muxlang.template import FILTERS

DOCS = Path(__file__).resolve().parents[2] / "docs"


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def section(text: str, heading: re.Pattern[str]) -> str:
    """The text under the first heading matching ``heading``, up to the next heading
    of the same or a higher level (lines inside fenced code are never headings)."""
    lines = text.splitlines(keepends=True)
    fenced = False
    start: int | None = None
    level = 0
    for index, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced or not line.startswith("#"):
            continue
        depth = len(line) - len(line.lstrip("#"))
        if start is None:
            if heading.match(line.rstrip("\n")):
                start, level = index + 1, depth
        elif depth <= level:
            return "".join(lines[start:index])
    assert start is not None, f"no heading {heading.pattern}"
    return "".join(lines[start:])


# --------------------------------------------------------------------------- codes


@pytest.mark.parametrize("code", sorted(CODES))
def test_every_code_has_a_broken_and_a_fixed_example(code: str) -> None:
    body = section(page("validation.md"), re.compile(rf"^### {code}\b.*$", re.M))
    blocks = re.findall(r"^```toml\n(.*?)^```", body, re.M | re.S)
    assert len(blocks) >= 2, f"{code}: needs a broken and a fixed ```toml example"
    assert all(block.strip() for block in blocks)


def test_validation_md_lists_no_code_that_does_not_exist() -> None:
    documented = set(re.findall(r"^### (MUX\d{3})\b", page("validation.md"), re.M))
    assert documented == set(CODES)


# --------------------------------------------------------------------------- filters


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_every_filter_has_an_example_in_language_md(name: str) -> None:
    text = page("language.md")
    body = section(text, re.compile(rf"^### .*`{name}[`(].*$", re.M))
    assert re.search(rf"\{{\{{[^}}]*\|\s*{name}\b[^}}]*\}}\}}", body), f"no example of `{name}`"


# --------------------------------------------------------------------------- keys


def model_keys(model: type[BaseModel]) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()}


def documented_tables() -> dict[str, set[str]]:
    """``<!-- keys: Model -->`` markers of reference.md and the keys of the table after each."""
    text = page("reference.md")
    found: dict[str, set[str]] = {}
    for match in re.finditer(r"<!-- keys: (\w+) -->\n((?:\|.*\n)+)", text):
        rows = match.group(2).splitlines()[2:]  # header and separator
        keys = {m.group(1) for row in rows if (m := re.match(r"\|\s*`([^`]+)`", row))}
        found[match.group(1)] = keys
    return found


STEP_BASE = model_keys(models._StepBase) | {"type"}
EXPECTED = {
    "WorkflowFile": model_keys(models.WorkflowFile),
    "ArgSpec": model_keys(models.ArgSpec),
    "_StepBase": STEP_BASE,
    **{
        spec.__name__: model_keys(spec) - STEP_BASE
        for spec in (
            models.ShellStepSpec,
            models.QueryStepSpec,
            models.ApplyStepSpec,
            models.UsesStepSpec,
        )
    },
    **{
        model.__name__: model_keys(model)
        for model in (
            models.ConfigFile,
            models.DefaultsConfig,
            models.BackendConfig,
            models.RoleConfig,
            models.RoleOverride,
            models.TeamConfig,
            models.ServeConfig,
            models.ServeKey,
            models.Price,
            models.ValidateConfig,
            models.RepeatSpec,
        )
    },
}


def test_every_model_of_the_config_files_has_a_table() -> None:
    defined = {
        obj.__name__
        for obj in vars(models).values()
        if isinstance(obj, type)
        and issubclass(obj, BaseModel)
        and obj.__module__ == models.__name__
    }
    assert defined - {"_Model"} == set(EXPECTED)
    assert set(documented_tables()) == set(EXPECTED)


@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_reference_table_lists_exactly_the_keys_of_the_model(model: str) -> None:
    assert documented_tables()[model] == EXPECTED[model]


# --------------------------------------------------------------------------- pages


@pytest.mark.parametrize(
    ("name", "headings"),
    [
        ("language.md", ["Templates", "Expressions", "Filters"]),
        ("reference.md", ["Workflow file", "Config files"]),
        ("execution.md", ["Scheduling", "When a step runs: skip rules", "for_each", "Timeouts"]),
        ("backends.md", ["Roles and execution modes", "Names: backends win", "Retries"]),
        ("config.md", ["Layers", "Teams"]),
        ("gateway.md", ["Endpoints", "Model names"]),
        ("validation.md", ["The codes", "pre-commit", "Editors"]),
        ("apply.md", ["Edit formats", "The verify loop"]),
        ("migration.md", []),
        ("getting-started.md", []),
    ],
)
def test_the_pages_a_user_looks_for_exist(name: str, headings: list[str]) -> None:
    text = page(name)
    for heading in headings:
        assert re.search(rf"^#+ {re.escape(heading)}$", text, re.M), f"{name}: {heading}"


def test_pre_commit_hook_named_in_the_docs_is_shipped() -> None:
    hooks = (DOCS.parent / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    assert "- id: muxlang-validate" in hooks
    assert "id: muxlang-validate" in page("validation.md")


def test_relative_links_between_pages_resolve() -> None:
    # the README is the first page users read: its links into docs/ must work too
    for path in [*DOCS.glob("*.md"), DOCS.parent / "README.md"]:
        for target, anchor in re.findall(r"\]\(([\w./-]+\.md)(?:#([\w-]+))?\)", path.read_text()):
            linked = (path.parent / target).resolve()
            assert linked.is_file(), f"{path.name} links to missing {target}"
            if anchor:
                slugs = {
                    re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                    for h in re.findall(r"^#+ (.*)$", linked.read_text(), re.M)
                }
                assert anchor in slugs, f"{path.name} links to missing {target}#{anchor}"


#: codes whose broken example is a whole file (the others show the key that matters)
WHOLE_EXAMPLES = (
    *("MUX001", "MUX002", "MUX003", "MUX004", "MUX008"),
    *("MUX020", "MUX022", "MUX024", "MUX030"),
)
#: codes whose fixed example is a whole file too
WHOLE_FIXES = ("MUX004", "MUX008", "MUX022", "MUX024")


def example_blocks(code: str) -> list[str]:
    body = section(page("validation.md"), re.compile(rf"^### {code}\b.*$", re.M))
    return re.findall(r"^```toml\n(.*?)^```", body, re.M | re.S)


def codes_of(text: str, tmp_path: Path) -> set[str]:
    from muxlang.compiler.project import validate_workflow

    path = tmp_path / "example.toml"
    path.write_text(text, encoding="utf-8")
    found = validate_workflow(path, tmp_path, environ={"HOME": str(tmp_path)})
    return {d.code for d in found}


@pytest.mark.parametrize("code", WHOLE_EXAMPLES)
def test_broken_example_gives_its_code(code: str, tmp_path: Path) -> None:
    assert code in codes_of(example_blocks(code)[0], tmp_path)


@pytest.mark.parametrize("code", WHOLE_FIXES)
def test_fixed_example_is_clean_of_its_code(code: str, tmp_path: Path) -> None:
    assert code not in codes_of(example_blocks(code)[1], tmp_path)
