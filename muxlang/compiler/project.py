"""What ``muxlang validate`` checks: which files, and every diagnostic they have.

A target is a workflow file or a config file. With no names, the targets are the
project's workflows (``.muxlang/workflows/*.toml`` and ``.llm-mux/workflows/*.toml``)
and its config files; a name is looked up as ``muxlang run`` would; a path is a
config file when it is called ``config.toml`` outside a ``workflows`` directory,
else a workflow. Nothing is ever run.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict, TypeVar, Unpack

from muxlang._frozen import frozen
from muxlang._gc import paused_gc
from muxlang.diagnostics import Diagnostic
from muxlang.source import Span

if TYPE_CHECKING:
    from pydantic import BaseModel

    from muxlang.workflow import Workflow

TargetKind = Literal["workflow", "config"]
PROJECT_DIRS = (".muxlang", ".llm-mux")


class TargetError(LookupError):
    """A name or path given on the command line that names no file (a usage error)."""


@frozen(slots=True)
class Target:
    path: Path
    kind: TargetKind
    #: the file's text when it does not come from disk (``--stdin-filename``)
    text: str | None = None


def kind_of(path: Path) -> TargetKind:
    """``config`` for a ``config.toml`` that is not inside a ``workflows`` directory."""
    if path.name == "config.toml" and path.parent.name != "workflows":
        return "config"
    return "workflow"


def project_targets(root: Path) -> list[Target]:
    """The project's workflows and config files, in a stable order."""
    targets: list[Target] = []
    for name in PROJECT_DIRS:
        config = root / name / "config.toml"
        if config.is_file():
            targets.append(Target(config, "config"))
    for name in PROJECT_DIRS:
        directory = root / name / "workflows"
        try:
            files = sorted(directory.glob("*.toml"))
        except OSError:
            continue
        targets.extend(Target(path, "workflow") for path in files if path.is_file())
    return targets


def resolve_targets(
    root: Path, names: Sequence[str], environ: Mapping[str, str] = os.environ
) -> list[Target]:
    """The targets for the command line's arguments (all of the project's when none)."""
    if not names:
        return project_targets(root)
    from muxlang.config import WorkflowNotFoundError, find_workflow
    from muxlang.config.discovery import is_path_like

    targets: list[Target] = []
    for name in names:
        given = Path(name)
        if given.is_dir():
            files = sorted(p for p in given.rglob("*.toml") if p.is_file())
            targets.extend(Target(p, kind_of(p)) for p in files)
            continue
        if is_path_like(name) or given.is_file():
            if not given.is_file():
                raise TargetError(f"no such file: {name}")
            targets.append(Target(given, kind_of(given)))
            continue
        try:
            found = find_workflow(name, root, environ)
        except WorkflowNotFoundError as exc:
            raise TargetError(str(exc)) from None
        targets.append(Target(found, "workflow"))
    return list(dict.fromkeys(targets))


def display_path(file: str, cwd: Path | None = None) -> str:
    """``file`` relative to the working directory when it lies inside it."""
    path = Path(file)
    if not path.is_absolute():
        return file
    base = cwd or Path.cwd()
    try:
        return str(path.relative_to(base))
    except ValueError:
        return file


def _relative(diagnostics: Iterable[Diagnostic], cwd: Path) -> list[Diagnostic]:
    return [dataclasses.replace(d, file=display_path(d.file, cwd)) for d in diagnostics]


@dataclass
class Validation:
    """The outcome: every diagnostic (sorted, each once) and how many files were read."""

    diagnostics: list[Diagnostic]
    files: int

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.is_error)

    @property
    def warnings(self) -> int:
        return sum(1 for d in self.diagnostics if not d.is_error)

    def keep(self, wanted: Callable[[Diagnostic], bool]) -> Validation:
        """The same validation with only the diagnostics ``wanted`` accepts."""
        return Validation([d for d in self.diagnostics if wanted(d)], self.files)


class Context(TypedDict, total=False):
    """What a file is checked in, besides the project's root."""

    #: the team whose overrides apply (``--team``)
    team: str | None
    #: the environment the config's layers and ``${VAR}`` references read
    environ: Mapping[str, str]


def check_file(target: Target, root: Path, **context: Unpack[Context]) -> list[Diagnostic]:
    """Every problem of one file, checked as its kind says (:func:`validate_workflow`,
    :func:`validate_config`). ``target.text``, when given, is the file's content
    (an editor's unsaved text); no check reads the file again after the loader."""
    check = _validate_config if target.kind == "config" else _validate_workflow
    # the check builds many objects that live until it ends: the collector's
    # scans of them cost more per step the bigger the workflow (muxlang/_gc.py)
    with paused_gc():
        return check(target, root, context)


def validate_workflow(
    path: Path, root: Path, *, text: str | None = None, **context: Unpack[Context]
) -> list[Diagnostic]:
    """Every problem of one workflow: its syntax and schema, the config it sees,
    and the compiler's checks. ``text``, when given, is the file's content."""
    return check_file(Target(path, "workflow", text), root, **context)


def validate_config(
    path: Path, root: Path, *, text: str | None = None, **context: Unpack[Context]
) -> list[Diagnostic]:
    """Every problem of one config file: as a layer of the project's config when it
    is one, else on top of the other layers; and its roles' nesting (MUX030).
    ``text``, when given, is the file's content (then it is always checked on top)."""
    return check_file(Target(path, "config", text), root, **context)


def _validate_workflow(target: Target, root: Path, context: Context) -> list[Diagnostic]:
    # the loader (and pydantic's schema models) first, the checks once there is a
    # workflow to check: imported in this order, a cold `validate` measured ~10 ms
    # less CPU than with the checks' modules first (docs/performance.md section 1)
    from muxlang.compiler.loader import load_workflow_partial

    path, text = target.path, target.text
    # with schema errors the workflow is built from its valid parts, so that the
    # compiler's checks report the rest of the file in the same run
    workflow, found, unbuilt = load_workflow_partial(path, text)
    if workflow is None:
        return silenced(found, path, text)
    from muxlang.compiler.build import check_workflow
    from muxlang.config import load_config

    config, problems = load_config(root, workflow=workflow, **context)
    found.extend(problems)
    if any(d.is_error and d.code != "MUX030" for d in problems):
        # a broken layer: the checks would only repeat it
        return silenced(found, path, text, config.validate_.ignore)
    broken_steps = bool(unbuilt) or _steps_broken(workflow, found)
    found.extend(
        d
        for d in check_workflow(workflow, config)
        if not _names_unbuilt_step(d, unbuilt) and not (broken_steps and _is_no_steps(d))
    )
    return silenced(found, path, text, config.validate_.ignore)


def silenced(
    found: Sequence[Diagnostic], path: Path, text: str | None, ignore: Sequence[str] = ()
) -> list[Diagnostic]:
    """``found`` without what ``# muxlang: ignore[...]`` comments and the config's
    ``[validate] ignore`` silence (:mod:`muxlang.compiler.suppress`). ``text`` is
    ``path``'s content when an editor gave it."""
    from muxlang.compiler.report import read_source
    from muxlang.compiler.suppress import suppress

    def text_of(file: str) -> str | None:
        return text if text is not None and file == str(path) else read_source(file)

    return suppress(found, text_of=text_of, ignore=ignore)


def _is_no_steps(diagnostic: Diagnostic) -> bool:
    """The warning that a workflow has no steps (``check_has_steps``): its own code."""
    from muxlang.compiler.checks import NO_STEPS_CODE

    return diagnostic.code == NO_STEPS_CODE


def _steps_broken(workflow: Workflow, found: Sequence[Diagnostic]) -> bool:
    """Whether the loader reported an error inside the file's ``steps`` value: its
    steps are broken, not missing (no "has no steps" warning on top)."""
    span = workflow.config_spans.get(("steps",))
    if span is None:
        return False
    return any(d.is_error and span.line <= d.span.line <= span.end_line for d in found)


def _names_unbuilt_step(diagnostic: Diagnostic, unbuilt: frozenset[str]) -> bool:
    """A MUX021 about a step the loader left out for its own errors: not unknown."""
    return diagnostic.code == "MUX021" and diagnostic.subject in unbuilt


def _validate_config(target: Target, root: Path, context: Context) -> list[Diagnostic]:
    from muxlang.compiler import config_checks
    from muxlang.compiler.loader import load_config_file
    from muxlang.compiler.plan import ResolvedConfig
    from muxlang.compiler.roles import RoleResolver
    from muxlang.config import load_config

    path, text = target.path, target.text
    layer, spans, found = load_config_file(path, text)
    if layer is None:
        return silenced(found, path, text)
    config, problems = load_config(root, **context)
    resolved = path.resolve()
    if text is not None or resolved not in {Path(s).resolve() for s in config.sources}:
        # not a layer of this project: check it as if it were the top layer
        config = ResolvedConfig(
            project_root=root,
            backends=_on_top(config.backends, layer.backends, {"command": ""}),
            roles=_on_top(config.roles, layer.roles, {"backends": []}),
            teams=_on_top(config.teams, layer.teams, {}),
            sources=(*config.sources, path),
            positions={**config.positions, str(path): spans},
        )
        problems = [d for d in problems if not d.is_error]
    found.extend(problems)
    resolver = RoleResolver.for_config(config)
    starts = [(name, str(path), Span.point(1, 1)) for name in config.roles]
    found.extend(d for d in resolver.check_roles(starts) if Path(d.file).resolve() == resolved)
    locate = config_checks.locator(spans)
    found.extend(resolver.check_layer_names(layer, str(path), locate))
    found.extend(config_checks.check_min_success(config, str(path), locate))
    found.extend(config_checks.check_detect_globs(layer, str(path), locate))
    return silenced(found, path, text, (*config.validate_.ignore, *layer.validate_.ignore))


_M = TypeVar("_M", bound="BaseModel")


def _on_top(base: Mapping[str, _M], over: Mapping[str, _M], fill: dict[str, Any]) -> dict[str, _M]:
    """``over``'s tables on top of ``base``'s, key by key as config layers merge. A
    layer's table may be partial (``[roles.analyzer] execution = "parallel"``); one
    that nothing completes gets ``fill`` for its required keys, so that the checks
    see it (the layer's own problems are reported by its schema check)."""
    from pydantic import ValidationError

    from muxlang.config import merge

    out = dict(base)
    for name, entry in over.items():
        given = entry.model_dump(exclude_unset=True, by_alias=True)
        prior = out.get(name)
        data = merge(prior.model_dump(by_alias=True), given) if prior is not None else given
        model = type(entry)
        try:
            out[name] = model.model_validate(data)
        except ValidationError:
            try:
                out[name] = model.model_validate({**fill, **data})
            except ValidationError:
                out.pop(name, None)
    return out


def validate(
    targets: Sequence[Target],
    root: Path,
    *,
    team: str | None = None,
    environ: Mapping[str, str] = os.environ,
    cwd: Path | None = None,
) -> Validation:
    """Check every target; diagnostics come back sorted, each reported once."""
    base = cwd or Path.cwd()
    found: list[Diagnostic] = []
    with paused_gc():  # one pause for the whole batch (muxlang/_gc.py)
        for target in targets:
            found.extend(check_file(target, root, team=team, environ=environ))
    unique = dict.fromkeys(_relative(found, base))
    return Validation(sorted(unique, key=Diagnostic.sort_key), len(targets))
