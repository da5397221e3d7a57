"""Config layers, their merge, teams: everything that makes a ResolvedConfig.

Layers, later wins (SPEC section 2): built-in defaults < user config < project
config < the workflow's own ``[defaults]``/``[backends]``/``[roles]``/``[teams]``
tables < command-line flags. They merge field by field: tables merge, arrays
and scalars replace. Each layer is checked on its own (unknown keys, types:
positions in that layer's file); required keys are checked after the merge and
reported in the last layer that wrote the incomplete table.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import glob
import os
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from muxlang._frozen import frozen
from muxlang.config.discovery import project_config_path, user_config_path
from muxlang.config.models import ConfigFile, RoleConfig, TeamConfig
from muxlang.config.resolved import ResolvedConfig
from muxlang.diagnostics import Diagnostic, did_you_mean
from muxlang.source import Span
from muxlang.workflow import Workflow

#: CLI tools the built-in layer knows, in the order the built-in roles try them.
_BUILTIN_CLIS: tuple[tuple[str, list[str]], ...] = (
    ("claude", ["-p"]),
    ("codex", ["exec"]),
    ("gemini", ["-p"]),
    ("ollama", ["run", "llama3"]),
)

#: The built-in layer: what an empty project sees. The bundled workflows use the
#: roles ``analyzer``, ``coder`` and ``quick``; they go to the LLM command-line
#: tools found on PATH (``first`` and ``fallback`` skip the ones that are absent).
BUILTIN_DEFAULTS: dict[str, Any] = {
    "defaults": {"max_concurrent": 8},
    "backends": {name: {"command": name, "args": list(args)} for name, args in _BUILTIN_CLIS},
    "roles": {
        "analyzer": {
            "description": "Code analysis and review",
            "backends": [name for name, _ in _BUILTIN_CLIS],
            "execution": "fallback",
        },
        "coder": {
            "description": "Writes code and edits",
            "backends": [name for name, _ in _BUILTIN_CLIS],
            "execution": "fallback",
        },
        "quick": {
            "description": "Fast, short answers",
            "backends": [name for name, _ in reversed(_BUILTIN_CLIS)],
            "execution": "first",
        },
    },
}

COMMAND_LINE = "<command line>"


@frozen(slots=True)
class Layer:
    """One config layer: what it wrote (only the keys it gave) and where."""

    name: str  # built-in | user | project | workflow | command line
    path: Path | None
    data: Mapping[str, Any]
    spans: Mapping[tuple[str | int, ...], Span] = field(default_factory=dict)

    @property
    def file(self) -> str:
        return str(self.path) if self.path is not None else f"<{self.name}>"


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: tables merge key by key, everything else replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _file_layer(name: str, path: Path | None) -> tuple[Layer | None, list[Diagnostic]]:
    if path is None:
        return None, []
    from muxlang.config.files import load_config_file

    config, spans, problems = load_config_file(path)
    if config is None:
        return None, problems
    return Layer(name, path, config.model_dump(exclude_unset=True, by_alias=True), spans), []


def config_layers(
    root: Path,
    *,
    workflow: Workflow | None = None,
    environ: Mapping[str, str] = os.environ,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[list[Layer], list[Diagnostic]]:
    """Every layer that applies, lowest first, and the problems of each file."""
    layers = [Layer("built-in", None, BUILTIN_DEFAULTS)]
    problems: list[Diagnostic] = []
    for name, path in (("user", user_config_path(environ)), ("project", project_config_path(root))):
        layer, found = _file_layer(name, path)
        problems.extend(found)
        if layer is not None:
            layers.append(layer)
    if workflow is not None:
        data = workflow.config.model_dump(exclude_unset=True, by_alias=True)
        if data:
            layers.append(Layer("workflow", Path(workflow.path), data, workflow.config_spans))
    if overrides:
        layers.append(Layer("command line", None, overrides))
    return layers, problems


def detect_team(teams: Mapping[str, TeamConfig], root: Path) -> str | None:
    """The first team (in file order) with a ``detect`` glob matching under ``root``."""
    for name, team in teams.items():
        if any(_matches(root, pattern) for pattern in team.detect):
            return name
    return None


#: how many directory entries one ``detect`` glob may look at; past it the glob
#: counts as not matching (a huge or hostile tree cannot stall validate or run)
DETECT_ENTRY_LIMIT = 50_000


def _matches(root: Path, pattern: str, limit: int = DETECT_ENTRY_LIMIT) -> bool:
    """Whether ``pattern`` (a glob relative to ``root``; ``**`` is any number of
    directories) matches anything. Symlinked directories are never entered (a
    repository's symlink loop would make the walk endless), names starting with
    ``.`` match only a pattern part starting with ``.`` (as in ``glob``), and the
    walk looks at no more than ``limit`` directory entries."""
    if not pattern or Path(pattern).is_absolute() or ".." in Path(pattern).parts:
        return False
    if not glob.has_magic(pattern):
        return (root / pattern).exists()
    parts = [part for part in pattern.split("/") if part not in ("", ".")]
    budget = limit
    todo: list[tuple[str, int]] = [(str(root), 0)]
    seen: set[tuple[str, int]] = set()
    while todo:
        directory, index = todo.pop()
        if index == len(parts):
            return True
        if (directory, index) in seen:
            continue
        seen.add((directory, index))
        part = parts[index]
        last = index == len(parts) - 1
        if not glob.has_magic(part):
            path = os.path.join(directory, part)
            if last:
                if os.path.lexists(path):
                    return True
            elif os.path.isdir(path) and not os.path.islink(path):
                todo.append((path, index + 1))
            continue
        if part == "**":
            todo.append((directory, index + 1))  # zero directories
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        budget -= len(entries)
        if budget < 0:
            return False
        for entry in entries:
            if entry.name.startswith(".") and not part.startswith("."):
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if part == "**":
                if is_dir:
                    todo.append((entry.path, index))
                continue
            if fnmatch.fnmatchcase(entry.name, part):
                if last:
                    return True
                if is_dir:
                    todo.append((entry.path, index + 1))
    return False


def apply_team(roles: Mapping[str, RoleConfig], team: TeamConfig) -> dict[str, RoleConfig]:
    """The roles with a team's overrides: each replaces only the fields it gives."""
    out = dict(roles)
    for name, override in team.roles.items():
        given = override.model_dump(exclude_unset=True)
        base = out.get(name)
        try:
            if base is not None:
                out[name] = RoleConfig.model_validate({**base.model_dump(), **given})
            elif "backends" in given:
                out[name] = RoleConfig.model_validate(given)
        except ValidationError:  # an override the layer checks reported already
            continue
    return out


def _required_problems(
    merged: dict[str, Any], layers: list[Layer]
) -> tuple[ConfigFile, list[Diagnostic]]:
    """Validate the merged tables; a table missing a required key is reported in the
    last layer that wrote it, and left out of the result."""
    problems: list[Diagnostic] = []
    data = merged
    for _ in range(100):
        try:
            return ConfigFile.model_validate(data), problems
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
        data = {k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}
        for error in errors:
            loc = tuple(str(p) for p in error["loc"])
            table_path = loc[:2] if len(loc) >= 2 else loc[:1]
            problems.append(_missing_diagnostic(error, loc, table_path, layers, merged))
            container = data.get(table_path[0]) if table_path else None
            if len(table_path) == 2 and isinstance(container, dict):
                container.pop(table_path[1], None)
            elif table_path:
                data.pop(table_path[0], None)
    return ConfigFile(), problems  # pragma: no cover - each pass removes a table


_SINGULAR = {"backends": "backend", "roles": "role", "teams": "team"}


def _missing_diagnostic(
    error: Mapping[str, Any],
    loc: tuple[str, ...],
    table_path: tuple[str, ...],
    layers: list[Layer],
    merged: Mapping[str, Any],
) -> Diagnostic:
    layer = next((lay for lay in reversed(layers) if table_path in lay.spans), None)
    if layer is None:
        layer = next((lay for lay in reversed(layers) if _has(lay.data, table_path)), layers[-1])
    span = layer.spans.get(table_path, Span.point(1, 1))
    if len(table_path) == 2 and table_path[0] in _SINGULAR:
        place = f"{_SINGULAR[table_path[0]]} `{table_path[1]}`"
    else:
        place = "`[" + ".".join(table_path) + "]`"
    if error["type"] == "missing":
        message = f"{place} has no `{loc[-1]}`"
        others = [
            name
            for name, value in (merged.get(table_path[0]) or {}).items()
            if name != table_path[-1] and isinstance(value, Mapping) and loc[-1] in value
        ]
        hint = did_you_mean(table_path[-1], others) if len(table_path) == 2 else None
        if hint is None and len(table_path) == 2:
            hint = f"no other config layer defines {place} completely"
        return Diagnostic(layer.file, span, "MUX004", message, hint=hint)
    return Diagnostic(layer.file, span, "MUX003", f"{place}: {error['msg']}")


def _has(data: Mapping[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = data
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def load_config(
    root: Path,
    *,
    workflow: Workflow | None = None,
    team: str | None = None,
    environ: Mapping[str, str] = os.environ,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[ResolvedConfig, list[Diagnostic]]:
    """All layers merged for a project (and a workflow), with the team applied.

    ``team`` is ``--team`` (it overrides detection; an unknown name is a MUX030
    diagnostic on ``<command line>``). ``overrides`` is the command-line layer, a
    partial config table such as ``{"defaults": {"max_concurrent": 2}}``.
    ``${VAR}`` references stay unexpanded: see :func:`muxlang.config.expand_env`.
    """
    layers, problems = config_layers(root, workflow=workflow, environ=environ, overrides=overrides)
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = merge(merged, layer.data)
    config, missing = _required_problems(merged, layers)
    problems.extend(missing)
    chosen: str | None
    if team is not None:
        chosen = team if team in config.teams else None
        if chosen is None:
            known = list(config.teams)
            problems.append(
                Diagnostic(
                    COMMAND_LINE,
                    Span.point(1, 1),
                    "MUX030",
                    f"unknown team `{team}` (--team)"
                    + (f"; teams: {', '.join(known)}" if known else "; no team is configured"),
                    hint=did_you_mean(team, known),
                )
            )
    else:
        chosen = detect_team(config.teams, root)
    roles: Mapping[str, RoleConfig] = config.roles
    if chosen is not None:
        roles = apply_team(config.roles, config.teams[chosen])
    values: dict[str, Any] = {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(ResolvedConfig)
        if f.name in ConfigFile.model_fields
    }
    values["roles"] = roles
    resolved = ResolvedConfig(
        project_root=root,
        team=chosen,
        sources=tuple(
            layer.path for layer in layers if layer.path is not None and layer.name != "workflow"
        ),
        positions={layer.file: layer.spans for layer in layers if layer.path is not None},
        **values,
    )
    return resolved, problems
