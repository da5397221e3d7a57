"""A tiny module with a bug, for examples/fix-and-verify.toml (which works on a copy)."""


def add(a: int, b: int) -> int:
    return a - b


if __name__ == "__main__":
    assert add(2, 3) == 5, f"add(2, 3) returned {add(2, 3)}, expected 5"
    print("calc.py: all checks passed")
