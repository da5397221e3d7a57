"""What never reaches a run record (SPEC section 10).

The values of every ``${VAR}`` that a backend's configuration refers to, and
of every environment variable whose name contains ``KEY``, ``TOKEN``,
``SECRET`` or ``PASSWORD`` (and the other secret-looking names of
:data:`muxlang.redaction.SECRET_NAME`: ``AUTH``, ``CREDENTIAL``, ...), are
replaced by ``***`` in everything recorded.
Values shorter than four characters are left alone: replacing ``1`` or ``no``
would shred every output without protecting anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from muxlang.redaction import SECRET_NAME
from muxlang.redaction import redact as _redact

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
MIN_SECRET = 4
MASK = "***"


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def secret_values(backends: Mapping[str, Any], environ: Mapping[str, str]) -> tuple[str, ...]:
    """Every value to mask, longest first.

    ``backends`` maps names to backend configurations (pydantic models or
    plain tables): every ``${VAR}`` in any of their strings counts.
    """
    found: set[str] = set()
    for config in backends.values():
        data = config.model_dump() if hasattr(config, "model_dump") else config
        for text in _strings(data):
            for name in _REFERENCE.findall(text):
                value = environ.get(name)
                if value:
                    found.add(value)
    for name, value in environ.items():
        if value and SECRET_NAME.search(name):
            found.add(value)
    return tuple(sorted((s for s in found if len(s) >= MIN_SECRET), key=len, reverse=True))


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``***`` (longest first): the one
    redaction function of :mod:`muxlang.redaction`."""
    if not secrets:
        return text
    return _redact(text, secrets)


def redact_value(value: Any, secrets: tuple[str, ...]) -> Any:
    """:func:`redact` through strings inside lists and tables (keys too)."""
    if not secrets:
        return value
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, Mapping):
        return {redact(str(k), secrets): redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v, secrets) for v in value]
    return value
