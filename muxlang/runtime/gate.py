"""The apply gate: ordinary steps share it, an apply step holds it alone."""

from __future__ import annotations

import trio


class Gate:
    """A readers-writer gate: ordinary steps share it, an apply step holds it alone.

    A waiting apply step goes first: no new ordinary step starts while one waits.
    """

    def __init__(self) -> None:
        self._shared = 0
        self._exclusive = False
        self._waiting_exclusive = 0
        self._lot = trio.lowlevel.ParkingLot()

    async def acquire_shared(self) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        while self._exclusive or self._waiting_exclusive:
            await self._lot.park()
        self._shared += 1

    def release_shared(self) -> None:
        self._shared -= 1
        self._lot.unpark_all()

    async def acquire_exclusive(self) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        self._waiting_exclusive += 1
        try:
            while self._exclusive or self._shared:
                await self._lot.park()
        finally:
            self._waiting_exclusive -= 1
            self._lot.unpark_all()
        self._exclusive = True

    def release_exclusive(self) -> None:
        self._exclusive = False
        self._lot.unpark_all()
