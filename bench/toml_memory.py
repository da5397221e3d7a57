"""Peak memory of the TOML reader per byte of input (tracemalloc).

One document holding a single 10 MB string value, in each of TOML's four string
forms, plus a 1 MB string that is one escape in four characters (the densest
case for the position map a string keeps; 1 MB because tracemalloc makes its
many small allocations slow to trace). All five are held to the target. Each
is parsed with ``muxlang.toml.parse`` (what ``muxlang validate`` does) with
tracemalloc on; the figure is the peak of traced allocations divided by the
document's length.
The grammar is built before measuring, so Lark's own tables are not counted.

Target (issue 20): at most 20 bytes per byte of input for a 10 MB string.

Run: ``.venv/bin/python bench/toml_memory.py [--quick]`` (quick: 2 MB).
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import emit

MB = 1024 * 1024
TARGET_BYTES_PER_BYTE = 20.0


def documents(size: int) -> dict[str, str]:
    """name -> a TOML document of about ``size`` characters with one string value."""
    line = "x" * 79 + "\n"
    return {
        "basic": 'a = "' + "x" * size + '"\n',
        "literal": "a = '" + "x" * size + "'\n",
        "multiline_basic": 'a = """\n' + line * (size // len(line)) + '"""\n',
        "multiline_literal": "a = '''\n" + line * (size // len(line)) + "'''\n",
        "escape_dense": 'a = "' + "ab\\n" * (min(size, MB) // 4) + '"\n',
    }


def peak_per_byte(text: str) -> tuple[float, float]:
    """(peak traced bytes per byte of ``text``, seconds) for one parse."""
    from muxlang.toml import parse

    tracemalloc.start()
    began = time.perf_counter()
    parse(text)
    seconds = time.perf_counter() - began
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / len(text), seconds


def measure(quick: bool) -> dict[str, Any]:
    from muxlang.toml.parser import get_parser

    get_parser()  # the grammar's tables are not what is measured
    size = 2 * MB if quick else 10 * MB
    out: dict[str, Any] = {"string_mb": size / MB, "target_bytes_per_byte": TARGET_BYTES_PER_BYTE}
    shapes: dict[str, Any] = {}
    for name, text in documents(size).items():
        per_byte, seconds = peak_per_byte(text)
        shapes[name] = {"peak_bytes_per_byte": round(per_byte, 1), "seconds": round(seconds, 2)}
    out["shapes"] = shapes
    out["worst_plain"] = max(
        shapes[name]["peak_bytes_per_byte"] for name in shapes if name != "escape_dense"
    )
    worst = max(shape["peak_bytes_per_byte"] for shape in shapes.values())
    out["met"] = worst <= TARGET_BYTES_PER_BYTE
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    emit(measure(parser.parse_args().quick))


if __name__ == "__main__":
    main()
