"""Where things are: the project root, config files, workflows (SPEC section 1).

- Project root: ``-C DIR`` if given, else the nearest ancestor of the working
  directory holding ``.muxlang/``, ``.llm-mux/`` or ``.git``, else the working
  directory.
- User config: ``$MUXLANG_CONFIG`` if set, else ``$XDG_CONFIG_HOME/muxlang/config.toml``
  (``~/.config`` when unset), else the ``llm-mux`` file of the same directory.
- Project config: ``.muxlang/config.toml``, else ``.llm-mux/config.toml``.
- Workflows by name: project ``.muxlang/workflows``, ``.llm-mux/workflows``, the
  user's ``muxlang/workflows``, ``llm-mux/workflows``, then the bundled stdlib.

Every workflow and config file is read through :func:`read_file`: a file inside
a project (the nearest ancestor holding ``.muxlang/``, ``.llm-mux/`` or
``.git``) that resolves outside that project (a committed symlink to
``/proc/self/environ`` or ``~/.aws/credentials``) is refused, never read. The
user's own files (``$XDG_CONFIG_HOME``, ``$MUXLANG_CONFIG``) and the bundled
stdlib are the user's, and a file outside every project is read as named.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from muxlang._frozen import frozen
from muxlang.diagnostics import did_you_mean

PROJECT_DIRS = (".muxlang", ".llm-mux")

WorkflowSource = Literal["project", "user", "stdlib"]


class WorkflowNotFoundError(LookupError):
    """No workflow of that name or path; the message lists where muxlang looked."""


def find_project_root(start: Path | None = None, directory: Path | None = None) -> Path:
    """The project root: ``directory`` (``-C``) if given, else the nearest ancestor of
    ``start`` (default: the working directory) holding a project marker, else ``start``."""
    if directory is not None:
        return Path(directory).resolve()
    here = Path(start if start is not None else Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if any((candidate / name).is_dir() for name in PROJECT_DIRS):
            return candidate
        if (candidate / ".git").exists():
            return candidate
    return here


class RefusedFileError(OSError):
    """A file muxlang will not read: it resolves outside its project, or is not a
    regular file. The message names the file and says why."""


def _project_of(path: str) -> str | None:
    """The nearest ancestor directory of ``path`` (absolute, lexical) holding a
    project marker, or None."""
    here = os.path.dirname(path)
    while True:
        if any(os.path.isdir(os.path.join(here, name)) for name in PROJECT_DIRS) or (
            os.path.lexists(os.path.join(here, ".git"))
        ):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def _users_own(path: str, environ: Mapping[str, str]) -> bool:
    """The user's own config and workflows, and the bundled stdlib: never refused."""
    override = environ.get("MUXLANG_CONFIG", "")
    if override and path == os.path.abspath(os.path.expanduser(override)):
        return True
    own = (str(config_home(environ)), str(stdlib_dir()))
    return any(_inside(path, os.path.abspath(d)) for d in own)


def refusal(path: Path | str, environ: Mapping[str, str] = os.environ) -> str | None:
    """Why ``path`` must not be read (it lies in a project but resolves outside
    it), or None when it may be."""
    absolute = os.path.abspath(path)
    if _users_own(absolute, environ):
        return None
    root = _project_of(absolute)
    if root is None:
        return None
    real, real_root = os.path.realpath(absolute), os.path.realpath(root)
    if _inside(real, real_root):
        return None
    return (
        f"refused to read {path}: it resolves to {real}, outside the project root {root} "
        "(muxlang never reads a file a repository links to outside itself)"
    )


def read_file(path: Path | str, environ: Mapping[str, str] = os.environ) -> bytes:
    """The bytes of a workflow or config file, read only when :func:`refusal` allows
    it and it is a regular file. Raises :class:`RefusedFileError` (or another
    ``OSError`` when it cannot be read)."""
    reason = refusal(path, environ)
    if reason is not None:
        raise RefusedFileError(reason)
    real = os.path.realpath(path)
    # O_NONBLOCK: a FIFO must not hang the open; O_NOFOLLOW: no link swapped in since
    fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(21, "Is a directory", str(path))
        if not stat.S_ISREG(info.st_mode):
            raise RefusedFileError(f"refused to read {path}: not a regular file")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def config_home(environ: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_CONFIG_HOME``, else ``$HOME/.config`` (relative XDG values are ignored,
    as the XDG spec says)."""
    xdg = environ.get("XDG_CONFIG_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg)
    home = environ.get("HOME")
    return (Path(home) if home else Path.home()) / ".config"


def user_config_candidates(environ: Mapping[str, str] = os.environ) -> tuple[Path, ...]:
    """The user layer's files in the order tried; the first that exists is read."""
    override = environ.get("MUXLANG_CONFIG", "")
    if override:
        return (Path(override).expanduser(),)
    home = config_home(environ)
    return (home / "muxlang" / "config.toml", home / "llm-mux" / "config.toml")


def project_config_candidates(root: Path) -> tuple[Path, ...]:
    """The project layer's files in the order tried; the first that exists is read."""
    return tuple(root / name / "config.toml" for name in PROJECT_DIRS)


def user_config_path(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The user config file that will be read, or None. ``$MUXLANG_CONFIG`` is
    returned even when it names no file, so that reading it reports the mistake."""
    if environ.get("MUXLANG_CONFIG"):
        return user_config_candidates(environ)[0]
    return next((p for p in user_config_candidates(environ) if p.is_file()), None)


def project_config_path(root: Path) -> Path | None:
    """The project config file that will be read, or None."""
    return next((p for p in project_config_candidates(root) if p.is_file()), None)


@frozen(slots=True)
class ConfigFileStatus:
    """One config file muxlang looked for: whether it is read, and why not."""

    layer: Literal["user", "project"]
    path: Path
    read: bool
    #: why the file is not read (None when it is)
    why: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"layer": self.layer, "path": str(self.path), "read": self.read, "why": self.why}


def config_files_status(
    root: Path, environ: Mapping[str, str] = os.environ
) -> list[ConfigFileStatus]:
    """Every config file that exists (or is named by ``$MUXLANG_CONFIG``), read or
    ignored, with the reason: one file per layer is read, muxlang's own before the
    llm-mux one, and ``$MUXLANG_CONFIG`` replaces the user layer."""
    found: list[ConfigFileStatus] = []
    layers: tuple[tuple[Literal["user", "project"], tuple[Path, ...]], ...] = (
        ("user", user_config_candidates(environ)),
        ("project", project_config_candidates(root)),
    )
    for layer, candidates in layers:
        chosen = user_config_path(environ) if layer == "user" else project_config_path(root)
        for path in candidates:
            if path == chosen:
                found.append(ConfigFileStatus(layer, path, True))
            elif path.is_file() and chosen is not None:
                why = (
                    f"{chosen} is read instead: one {layer} config file is read, muxlang's "
                    "own before llm-mux's; copy what you still need into it"
                )
                found.append(ConfigFileStatus(layer, path, False, why))
        if layer == "user" and environ.get("MUXLANG_CONFIG"):
            home = config_home(environ)
            for path in (home / "muxlang" / "config.toml", home / "llm-mux" / "config.toml"):
                if path.is_file() and path != chosen:
                    why = "MUXLANG_CONFIG replaces the user config layer"
                    found.append(ConfigFileStatus("user", path, False, why))
    return found


def stdlib_dir() -> Path:
    """The bundled workflows: ``muxlang/_stdlib`` in a wheel, the repository's
    ``stdlib/`` beside the package in a source checkout."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "_stdlib"
    if installed.is_dir():
        return installed
    return package.parent / "stdlib"


def workflow_dirs(
    root: Path, environ: Mapping[str, str] = os.environ
) -> tuple[tuple[WorkflowSource, Path], ...]:
    """Every directory searched for workflows by name, first hit wins."""
    home = config_home(environ)
    return (
        *(("project", root / name / "workflows") for name in PROJECT_DIRS),
        ("user", home / "muxlang" / "workflows"),
        ("user", home / "llm-mux" / "workflows"),
        ("stdlib", stdlib_dir()),
    )


def is_path_like(name_or_path: str) -> bool:
    """A workflow argument names a file when it contains ``/`` or ends in ``.toml``."""
    return "/" in name_or_path or os.sep in name_or_path or name_or_path.endswith(".toml")


def find_workflow(name_or_path: str, root: Path, environ: Mapping[str, str] = os.environ) -> Path:
    """The workflow file for a ``muxlang run`` argument (SPEC section 1).

    A path is taken relative to the working directory, else to the project root.
    A name is looked up in :func:`workflow_dirs` order.
    """
    if is_path_like(name_or_path):
        given = Path(name_or_path).expanduser()
        candidates = [given] if given.is_absolute() else [Path.cwd() / given, root / given]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        looked = ", ".join(dict.fromkeys(str(c) for c in candidates))
        raise WorkflowNotFoundError(
            f"workflow file `{name_or_path}` not found (looked at {looked})"
        )
    searched = []
    for _, directory in workflow_dirs(root, environ):
        candidate = directory / f"{name_or_path}.toml"
        searched.append(str(candidate))
        if candidate.is_file():
            return candidate
    known = [entry.name for entry in list_workflows(root, environ)]
    hint = did_you_mean(name_or_path, known)
    message = f"workflow `{name_or_path}` not found; looked in:\n  " + "\n  ".join(searched)
    if hint:
        message += f"\n{hint}"
    elif known:
        message += "\nknown workflows: " + ", ".join(known)
    raise WorkflowNotFoundError(message)


@frozen(slots=True)
class WorkflowEntry:
    name: str
    source: WorkflowSource
    path: Path

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "source": self.source, "path": str(self.path)}


def list_workflows(root: Path, environ: Mapping[str, str] = os.environ) -> list[WorkflowEntry]:
    """Every workflow runnable by name, sorted by name; for a name found in several
    places, the one ``muxlang run NAME`` would use. A file that :func:`refusal`
    refuses (a project's link to outside the project) is not listed: it cannot run."""
    found: dict[str, WorkflowEntry | None] = {}
    for source, directory in workflow_dirs(root, environ):
        try:
            files = sorted(directory.glob("*.toml"))
        except OSError:
            continue
        for path in files:
            if path.stem in found or not path.is_file():
                continue
            # a refused file still takes its name: `run NAME` finds it and refuses
            refused = refusal(path, environ) is not None
            found[path.stem] = None if refused else WorkflowEntry(path.stem, source, path)
    return [entry for name in sorted(found) if (entry := found[name]) is not None]
