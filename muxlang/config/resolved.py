"""The configuration a workflow runs with: every layer merged (:class:`ResolvedConfig`).

Built by :func:`muxlang.config.load_config`; the compiler checks against it and
the plan carries it to the runtime (``muxlang.compiler.plan`` re-exports it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from pathlib import Path

from muxlang._frozen import frozen
from muxlang.config.models import (
    BackendConfig,
    DefaultsConfig,
    RoleConfig,
    ServeConfig,
    TeamConfig,
    ValidateConfig,
)
from muxlang.source import Span


@frozen(slots=True)
class ResolvedConfig:
    """All layers merged, team overrides applied to roles. ``${VAR}`` references in
    backend strings are still unexpanded: they expand when a backend is used."""

    project_root: Path
    defaults: DefaultsConfig = field(default_factory=DefaultsConfig)  # type: ignore[arg-type]
    backends: Mapping[str, BackendConfig] = field(default_factory=dict)
    roles: Mapping[str, RoleConfig] = field(default_factory=dict)
    teams: Mapping[str, TeamConfig] = field(default_factory=dict)
    team: str | None = None
    #: config files that were read, lowest layer first
    sources: tuple[Path, ...] = ()
    #: the ``[serve]`` table (gateway); ``${VAR}`` in api_keys still unexpanded
    serve: ServeConfig = field(default_factory=ServeConfig)  # type: ignore[arg-type]
    #: where each value of each config file was read: file -> key path -> span
    #: (:func:`muxlang.config.files.node_spans`)
    positions: Mapping[str, Mapping[tuple[str | int, ...], Span]] = field(default_factory=dict)
    #: the ``[validate]`` table: codes ignored project-wide
    validate_: ValidateConfig = field(default_factory=ValidateConfig)

    @property
    def team_verify(self) -> str | None:
        team = self.teams.get(self.team) if self.team else None
        return team.verify if team else None
