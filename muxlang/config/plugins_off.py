"""Build muxlang's own pydantic models without pydantic's plugin discovery.

No pydantic plugin observes muxlang's schemas, and looking for one costs a cold
``muxlang validate`` ~12 ms: scanning every installed distribution's entry points
(~4 ms), and before that importing :mod:`importlib.metadata` (~8 ms, with the
``email`` package it reads metadata with), which pydantic's plugin loader does
when it is first imported. While our models are built, the loader's documented
switch is on (``PYDANTIC_DISABLE_PLUGINS=__all__``) and, if nothing imported the
loader yet, a stand-in that finds no plugins takes its place. Both are undone
afterwards: a model anyone else builds in the process finds its plugins as usual
(the real loader is imported then). docs/performance.md section 1.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Callable

_VARIABLE = "PYDANTIC_DISABLE_PLUGINS"
_LOADER = "pydantic.plugin._loader"


def plugins_off() -> Callable[[], None]:
    """Turn plugin discovery off; the function returned turns it back on."""
    before = os.environ.get(_VARIABLE)
    os.environ[_VARIABLE] = "__all__"
    stand_in: types.ModuleType | None = None
    if _LOADER not in sys.modules:
        stand_in = types.ModuleType(_LOADER)
        stand_in.get_plugins = lambda: ()  # type: ignore[attr-defined]
        sys.modules[_LOADER] = stand_in

    def restore() -> None:
        if before is None:
            os.environ.pop(_VARIABLE, None)
        else:
            os.environ[_VARIABLE] = before
        if stand_in is not None and sys.modules.get(_LOADER) is stand_in:
            del sys.modules[_LOADER]

    return restore
