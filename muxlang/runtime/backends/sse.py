"""Server-sent events: the one encoder and decoder (backends read them, the gateway writes them).

Decoding follows the WHATWG EventSource rules: a line is ``field: value``
where exactly one space after the colon is dropped (``data:  x`` is `` x``),
``data`` lines of one event are joined by ``\\n``, a line starting with ``:``
is a comment, a blank line ends the event (an event without data is dropped),
and CRLF, LF and CR all end a line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: (event name or None, data)
Event = tuple[str | None, str]


def encode(data: Any, event: str | None = None) -> bytes:
    """One event: an ``event:`` line (optional), a ``data:`` line, a blank line. ``data``
    is sent as is when it is a string, else as compact JSON."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    if "\n" in payload or "\r" in payload:
        lines = payload.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        return (head + "".join(f"data: {line}\n" for line in lines) + "\n").encode()
    return f"{head}data: {payload}\n\n".encode()


@dataclass
class Decoder:
    """Feed it lines (without their line ending); it hands back each complete event."""

    _event: str | None = None
    _data: list[str] = field(default_factory=list)

    def line(self, line: str) -> Event | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None

    def close(self) -> Event | None:
        """The stream ended: an event still being read counts (servers that omit the
        final blank line)."""
        return self._dispatch()

    def _dispatch(self) -> Event | None:
        event, data = self._event, self._data
        self._event, self._data = None, []
        if not data:
            return None
        return (event, "\n".join(data))


def decode(raw: bytes | str) -> list[Event]:
    """Every event of a whole SSE body."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    decoder = Decoder()
    out: list[Event] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        found = decoder.line(line)
        if found is not None:
            out.append(found)
    last = decoder.close()
    if last is not None:
        out.append(last)
    return out


def complete_length(data: bytes) -> int:
    """Length of the complete events at the start of ``data`` (0 when none is complete)."""
    lf, crlf = data.rfind(b"\n\n"), data.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)
