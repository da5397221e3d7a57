"""Configuration: discovery, layers, merge, ``${VAR}`` expansion, teams.

Public API (imported lazily, so ``import muxlang.config.models`` stays cheap and
``muxlang.compiler`` may import this package without a cycle):

- :func:`find_project_root`, :func:`find_workflow`, :func:`list_workflows`,
  :class:`WorkflowNotFoundError` (:mod:`muxlang.config.discovery`)
- :func:`load_config`, :func:`detect_team`, :func:`config_layers`
  (:mod:`muxlang.config.resolve`)
- :func:`expand_env`, :class:`EnvVarError` (:mod:`muxlang.config.env`)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from muxlang.config.discovery import (
        WorkflowEntry,
        WorkflowNotFoundError,
        find_project_root,
        find_workflow,
        list_workflows,
        project_config_path,
        user_config_path,
    )
    from muxlang.config.env import EnvVarError, expand_env, missing_variables
    from muxlang.config.resolve import (
        BUILTIN_DEFAULTS,
        Layer,
        apply_team,
        config_layers,
        detect_team,
        load_config,
        merge,
    )

_EXPORTS = {
    "WorkflowEntry": "discovery",
    "WorkflowNotFoundError": "discovery",
    "find_project_root": "discovery",
    "find_workflow": "discovery",
    "list_workflows": "discovery",
    "project_config_path": "discovery",
    "user_config_path": "discovery",
    "EnvVarError": "env",
    "expand_env": "env",
    "missing_variables": "env",
    "BUILTIN_DEFAULTS": "resolve",
    "Layer": "resolve",
    "apply_team": "resolve",
    "config_layers": "resolve",
    "detect_team": "resolve",
    "load_config": "resolve",
    "merge": "resolve",
}

__all__ = [
    "BUILTIN_DEFAULTS",
    "EnvVarError",
    "Layer",
    "WorkflowEntry",
    "WorkflowNotFoundError",
    "apply_team",
    "config_layers",
    "detect_team",
    "expand_env",
    "find_project_root",
    "find_workflow",
    "list_workflows",
    "load_config",
    "merge",
    "missing_variables",
    "project_config_path",
    "user_config_path",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'muxlang.config' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"muxlang.config.{module}"), name)
    globals()[name] = value
    return value
