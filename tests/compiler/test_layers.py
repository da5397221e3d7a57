"""The packages form layers and every import points down (issue 15).

Layers, bottom up: source/diagnostics/rules/llm → toml, template → config (and
the workflow AST) → compiler (and the step types) → runtime → apply, serve,
records → cli, lsp (a new package must be given its layer here). An import of
a module of a higher layer — at the top of a file, inside a function, or under
``TYPE_CHECKING`` — is a violation. The test reads
the source with :mod:`ast`, so it sees lazy imports too.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "muxlang"

LAYERS: tuple[frozenset[str], ...] = (
    frozenset(
        {
            "muxlang.source",
            "muxlang._private",
            "muxlang._frozen",
            "muxlang.diagnostics",
            "muxlang.rules",
            "muxlang.llm",
            "muxlang.redaction",
        }
    ),
    frozenset({"muxlang._cache", "muxlang._gc", "muxlang.toml", "muxlang.template"}),
    frozenset({"muxlang.config", "muxlang.workflow"}),
    frozenset({"muxlang.compiler", "muxlang.steps"}),
    frozenset({"muxlang.runtime"}),
    frozenset({"muxlang.apply", "muxlang.serve", "muxlang.records"}),
    frozenset({"muxlang.cli", "muxlang.lsp", "muxlang.__main__"}),
)

#: upward imports that exist today, each to be removed (and then from this list);
#: none left: the runtime no longer imports muxlang.apply (the apply service is
#: passed in, muxlang.runtime.apply_service)
KNOWN: frozenset[tuple[str, str]] = frozenset()


def layer(module: str) -> int | None:
    if module == "muxlang":
        return 0  # the package itself: its version, nothing else
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        for index, members in enumerate(LAYERS):
            if prefix in members:
                return index
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "muxlang":  # `from muxlang import template`
                found.update(f"muxlang.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
    return {name for name in found if name == "muxlang" or name.startswith("muxlang.")}


def upward_imports() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = module_name(path)
        mine = layer(importer)
        assert mine is not None, f"{importer} is in no layer: add its package to LAYERS"
        for imported in imports(path):
            theirs = layer(imported)
            if imported == "muxlang.__version__":
                continue
            if theirs is not None and theirs > mine:
                found.add((importer, _package_of(imported)))
    return found


def _package_of(imported: str) -> str:
    """``muxlang.apply.runner`` → ``muxlang.apply`` for a package outside the importer's."""
    parts = imported.split(".")
    return ".".join(parts[:3]) if parts[1] in ("compiler",) else ".".join(parts[:2])


def test_no_module_imports_a_higher_layer() -> None:
    found = upward_imports()
    assert sorted(found - KNOWN) == []


def test_every_known_exception_still_exists() -> None:
    """When one is fixed, this fails until it leaves KNOWN (the list only shrinks)."""
    assert sorted(KNOWN - upward_imports()) == []


def test_the_checker_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from muxlang.runtime import execute\n"
        "def f():\n    from muxlang import template\n    import muxlang.cli.run\n",
        encoding="utf-8",
    )
    assert imports(source) == {"muxlang.runtime", "muxlang.template", "muxlang.cli.run"}
