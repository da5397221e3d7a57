"""MUX030 for roles and backends: names that resolve to nothing (a role's, a
team's override's, a gateway key's), and roles that nest in a cycle.

Roles nest: each entry of a role's ``backends`` is a backend or another role. A
name that is a backend means the backend (backends are the leaves: a built-in role
never hijacks a user's backend); only names that are not backends refer to roles.
A bad entry is reported where it was read: the loader keeps the position of every
config value (``ResolvedConfig.positions``, ``Workflow.config_spans``), searched
in order — the workflow's own tables first, then the team's override, then the
config layers from the highest. No check reads a file again.

:func:`locate` (reading a file's positions on demand) is for the language
server's go-to-definition, which looks into files no check has loaded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from muxlang.compiler.plan import ResolvedConfig
from muxlang.config.models import BackendConfig, ConfigFile, RoleConfig
from muxlang.diagnostics import Diagnostic, did_you_mean
from muxlang.source import Span
from muxlang.workflow import Ref, Workflow

KeyPath = tuple[str | int, ...]
#: where a value is in the file being checked (None: that file did not write it)
Locate = Callable[[KeyPath], Span | None]


#: file texts that do not come from disk (``validate --stdin-filename``)
_TEXTS: dict[str, str] = {}


@contextlib.contextmanager
def source_texts(texts: Mapping[str, str]) -> Iterator[None]:
    """Within the block, ``read_document`` of one of these paths reads the given text."""
    saved = dict(_TEXTS)
    _TEXTS.update(texts)
    try:
        yield
    finally:
        _TEXTS.clear()
        _TEXTS.update(saved)


def read_document(path: str | Path) -> object | None:
    """The positioned TOML document of ``path`` (its root table), or None."""
    try:
        from muxlang.config.discovery import read_file
        from muxlang.toml import parse

        given = _TEXTS.get(str(path))
        text = given if given is not None else read_file(path).decode("utf-8")
        return parse(text, str(path)).root
    except Exception:  # unreadable or broken: the loader reports that itself
        return None


def locate_in(root: object | None, keys: KeyPath) -> Span | None:
    """The span of the value at ``keys`` under a document's root table."""
    node = root
    for key in keys:
        if node is None:
            return None
        if isinstance(key, int):
            items = getattr(node, "items", None)
            if not isinstance(items, tuple) or key >= len(items):
                return None
            node = items[key]
        else:
            if not hasattr(node, "entries"):
                return None
            node = node.get(key)  # type: ignore[attr-defined]
    span = getattr(node, "span", None)
    return span if isinstance(span, Span) else None


def locate(path: str | Path, keys: KeyPath) -> Span | None:
    """The span of the value at ``keys`` in the TOML file ``path``, if it is there."""
    return locate_in(read_document(path), keys)


@dataclass
class RoleResolver:
    """Roles and backends as the workflow sees them, and where each role was written."""

    roles: Mapping[str, RoleConfig]
    backends: Mapping[str, BackendConfig]
    #: files that may define a role's ``backends``, searched in order, with the key path
    #: prefix to look under (``("roles",)`` or ``("teams", TEAM, "roles")``)
    places: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    #: where each value of each file was read (file -> key path -> span)
    positions: Mapping[str, Mapping[KeyPath, Span]] = field(default_factory=dict)

    def _locate(self, path: str, keys: KeyPath) -> Span | None:
        return self.positions.get(path, {}).get(tuple(keys))

    @classmethod
    def for_config(cls, config: ResolvedConfig) -> RoleResolver:
        places: list[tuple[str, tuple[str, ...]]] = []
        for source in reversed(config.sources):
            if config.team:
                places.append((str(source), ("teams", config.team, "roles")))
            places.append((str(source), ("roles",)))
        return cls(dict(config.roles), dict(config.backends), places, config.positions)

    @classmethod
    def for_workflow(cls, workflow: Workflow, config: ResolvedConfig) -> RoleResolver:
        resolver = cls.for_config(config)
        # The merged config normally holds the workflow's own tables already; a caller
        # that passed only the outer layers still sees them.
        roles = dict(resolver.roles)
        for name, role in workflow.config.roles.items():
            roles.setdefault(name, role)
        backends = dict(resolver.backends)
        for name, backend in workflow.config.backends.items():
            backends.setdefault(name, backend)
        local: list[tuple[str, tuple[str, ...]]] = []
        if config.team:
            local.append((workflow.path, ("teams", config.team, "roles")))
        local.append((workflow.path, ("roles",)))
        resolver.roles, resolver.backends = roles, backends
        resolver.places = local + [p for p in resolver.places if p[0] != workflow.path]
        resolver.positions = {**resolver.positions, workflow.path: workflow.config_spans}
        return resolver

    # ------------------------------------------------------------------ messages

    def unknown(self, file: str, kind: Literal["role", "backend"], ref: Ref) -> Diagnostic:
        """MUX030 for a step's ``role`` or ``backend`` that no layer defines; when
        it is a name of the other kind, the hint says to write that key instead."""
        other: Literal["role", "backend"] = "backend" if kind == "role" else "role"
        names: dict[str, Mapping[str, object]] = {"role": self.roles, "backend": self.backends}
        if ref.name in names[other]:
            hint = f'`{ref.name}` is a {other}: write `{other} = "{ref.name}"`'
        else:
            hint = did_you_mean(ref.name, names[kind]) or self._known(f"{kind}s", names[kind])
        return Diagnostic(file, ref.span, "MUX030", f"unknown {kind} `{ref.name}`", hint=hint)

    def _neither(
        self, file: str, span: Span, says: str, entry: str, kinds: str = "a backend nor a role"
    ) -> Diagnostic:
        """MUX030 for ``entry``, a name that must be a backend or a role and is neither:
        "{says} `{entry}`, which is neither {kinds}"."""
        message = f"{says} `{entry}`, which is neither {kinds}"
        names = [*self.backends, *self.roles]
        hint = did_you_mean(entry, names)
        if hint is None and not self.backends:
            hint = self._known("backends", ())
        elif hint is None:
            hint = "the backends and roles are " + ", ".join(f"`{n}`" for n in sorted(names))
        return Diagnostic(file, span, "MUX030", message, hint=hint)

    @staticmethod
    def _known(what: str, names: Iterable[str]) -> str:
        listed = sorted(names)
        if not listed:
            return f"no {what} are configured: add a [{what}.NAME] table to config.toml"
        return f"the {what} are " + ", ".join(f"`{n}`" for n in listed)

    # ------------------------------------------------------------------ nesting

    def where(self, role: str, index: int | None = None) -> tuple[str, Span] | None:
        """The file and span of ``role``'s ``backends`` (or one entry of it)."""
        for path, prefix in self.places:
            keys: KeyPath = (*prefix, role, "backends")
            if index is not None:
                keys = (*keys, index)
            span = self._locate(path, keys)
            if span is not None:
                return path, span
        return None

    def check_roles(
        self, starts: Iterable[tuple[str, str, Span]], *, seen: set[str] | None = None
    ) -> Iterator[Diagnostic]:
        """Unknown entries and cycles among the roles reachable from ``starts``
        (each ``(role, file, span)``: where to report when the role's own file
        cannot be located)."""
        done = seen if seen is not None else set()
        cycles: set[frozenset[str]] = set()
        for start, file, span in starts:
            yield from self._visit(start, [], done, cycles, (file, span))

    def _visit(
        self,
        role: str,
        path: list[str],
        done: set[str],
        cycles: set[frozenset[str]],
        fallback: tuple[str, Span],
    ) -> Iterator[Diagnostic]:
        if role in done or role not in self.roles:
            return
        path.append(role)
        for index, entry in enumerate(self.roles[role].backends):
            if entry in self.backends:
                continue  # a backend name means the backend, even when a role shares it
            if entry in path:
                loop = path[path.index(entry) :]
                key = frozenset(loop)
                if key not in cycles:
                    cycles.add(key)
                    file, span = self.where(role, index) or fallback
                    shown = " → ".join([*loop, entry])
                    yield Diagnostic(
                        file,
                        span,
                        "MUX036",
                        f"role cycle: {shown}",
                        hint="a role's `backends` may name other roles, but never itself "
                        "through them",
                    )
            elif entry in self.roles:
                yield from self._visit(entry, path, done, cycles, fallback)
            elif entry not in self.backends:
                file, span = self.where(role, index) or fallback
                yield self._neither(file, span, f"role `{role}` uses", entry)
        path.pop()
        done.add(role)

    def check_layer_names(
        self, layer: ConfigFile, file: str, locate: Locate
    ) -> Iterator[Diagnostic]:
        """The names a config file lists that must each be a backend or a role and
        are neither, where ``file`` wrote them: ``[teams.T.roles.R] backends`` (of
        every team, active or not), and ``[serve.keys.K] models`` (such a key could
        never use the name: the gateway answers 403)."""
        for team_name, team in layer.teams.items():
            for role_name, override in team.roles.items():
                yield from self._unknown_names(
                    file,
                    locate,
                    ("teams", team_name, "roles", role_name, "backends"),
                    override.backends or (),
                    f"team `{team_name}` gives role `{role_name}`",
                )
        for key_name, key in layer.serve.keys.items():
            yield from self._unknown_names(
                file,
                locate,
                ("serve", "keys", key_name, "models"),
                key.models or (),
                f"`models` of key `{key_name}` names",
                kinds="a role nor a backend",  # a key names roles first
            )

    def _unknown_names(
        self,
        file: str,
        locate: Locate,
        keys: KeyPath,
        names: Sequence[str],
        says: str,
        kinds: str = "a backend nor a role",
    ) -> Iterator[Diagnostic]:
        """MUX030 for each name of the list at ``keys`` that is neither a backend nor
        a role; none where ``file`` did not write it (reported with the file that did)."""
        for index, name in enumerate(names):
            if name in self.backends or name in self.roles:
                continue
            span = locate((*keys, index))
            if span is not None:
                yield self._neither(file, span, says, name, kinds)
