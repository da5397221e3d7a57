"""``${VAR}`` and ``${VAR:-fallback}`` in backend strings (SPEC section 2).

Expansion happens when a backend is used, never at load time, so that a
missing variable only matters for the backends a run needs. The error names
the backend and the variable, never any value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from muxlang.config.models import BackendConfig

#: ``${NAME}`` or ``${NAME:-fallback}``; ``$${`` writes a literal ``${``.
_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}")


class EnvVarError(ValueError):
    """A backend string names an environment variable that is not set."""

    def __init__(self, backend: str, variable: str, key: str) -> None:
        self.backend = backend
        self.variable = variable
        self.key = key
        super().__init__(
            f"backend `{backend}`: environment variable {variable} is not set (used in `{key}`)"
        )


def expand(text: str, environ: Mapping[str, str], *, backend: str = "?", key: str = "?") -> str:
    """Expand the references in one string.

    ``${VAR:-x}`` uses ``x`` when VAR is unset or empty, ``${VAR-x}`` only when
    unset (as in POSIX sh); ``${VAR}`` unset raises :class:`EnvVarError`.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "${"
        op, fallback = match.group(2), match.group(3)
        value = environ.get(name)
        if op == ":-" and not value:
            return fallback or ""
        if op == "-" and value is None:
            return fallback or ""
        if value is None:
            raise EnvVarError(backend, name, key)
        return value

    if "$" not in text:
        return text
    return _REFERENCE.sub(replace, text)


def _expand_value(value: Any, environ: Mapping[str, str], backend: str, key: str) -> Any:
    if isinstance(value, str):
        return expand(value, environ, backend=backend, key=key)
    if isinstance(value, list):
        return [_expand_value(v, environ, backend, key) for v in value]
    if isinstance(value, dict):
        return {k: _expand_value(v, environ, backend, f"{key}.{k}") for k, v in value.items()}
    return value


def expand_env(
    backend_name: str, backend: BackendConfig, environ: Mapping[str, str] = os.environ
) -> BackendConfig:
    """The backend with ``${VAR}`` expanded in every string it holds (command, args,
    env, model, api_key, headers, options, system). Raises :class:`EnvVarError`
    naming the backend and the first unset variable."""
    update: dict[str, Any] = {}
    for name in type(backend).model_fields:
        if not hasattr(backend, name):
            continue
        value = getattr(backend, name)
        expanded = _expand_value(value, environ, backend_name, name)
        if expanded != value:
            update[name] = expanded
    return backend.model_copy(update=update) if update else backend


def missing_variables(backend: BackendConfig, environ: Mapping[str, str] = os.environ) -> list[str]:
    """Every variable the backend needs that is unset (for ``doctor``)."""
    missing: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            for match in _REFERENCE.finditer(value):
                name, op = match.group(1), match.group(2)
                if name and op is None and name not in environ and name not in missing:
                    missing.append(name)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    for name in type(backend).model_fields:
        if hasattr(backend, name):
            walk(getattr(backend, name))
    return missing
