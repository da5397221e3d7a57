"""The one translation of an httpx exception into a :class:`~muxlang.llm.BackendError`
(HTTP backends and the gateway's pass-through)."""

from __future__ import annotations

from typing import Literal

import httpx

from muxlang.llm import BackendError, ErrorKind

Phase = Literal["send", "read", "stream"]
_BROKEN = {"send": "failed", "read": "dropped mid-answer", "stream": "dropped mid-stream"}
_BODY = {"send": "answer", "read": "answer", "stream": "stream"}


def transport_error(
    name: str, exc: httpx.HTTPError, where: str, timeout: float, phase: Phase
) -> BackendError:
    """The one translation of an httpx exception into a :class:`BackendError` (HTTP
    backends and the gateway's pass-through): ``where`` names the upstream, ``phase``
    says whether the request was being sent or its answer / stream read."""
    if isinstance(exc, httpx.ConnectTimeout):
        return BackendError(name, ErrorKind.CONNECTION, f"cannot connect to {where}: timed out")
    if isinstance(exc, httpx.TimeoutException):
        return BackendError(name, ErrorKind.TIMEOUT, f"no answer from {where} within {timeout:g} s")
    if isinstance(exc, httpx.ConnectError):
        return BackendError(name, ErrorKind.CONNECTION, f"cannot connect to {where}: {reason(exc)}")
    if isinstance(exc, httpx.DecodingError):  # e.g. a Content-Encoding the body does not match
        return BackendError(
            name, ErrorKind.SERVER, f"undecodable {_BODY[phase]} from {where}: {reason(exc)}"
        )
    return BackendError(
        name, ErrorKind.CONNECTION, f"connection to {where} {_BROKEN[phase]}: {reason(exc)}"
    )


def reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__
