"""Reading an upstream's answer without holding more than ``[defaults] max_output``
of it (issue 14 item 13): the HTTP backends and the gateway's pass-through read
every whole body through :func:`read_bounded`."""

from __future__ import annotations

import httpx

from muxlang.runtime import process


async def read_bounded(response: httpx.Response) -> bytes | None:
    """A streamed response's whole (decoded) body, or None as soon as it grows past
    ``[defaults] max_output``: an upstream that floods is never held in memory."""
    limit = process.output_limit()
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body.extend(chunk)
        if len(body) > limit:
            return None
    return bytes(body)


def over_limit() -> str:
    """How an answer over the output limit is described in errors."""
    limit = process.format_size(process.output_limit())
    return f"larger than {limit}, the output limit ([defaults] max_output)"
