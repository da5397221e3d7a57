"""``muxlang validate`` on a config whose gateway key lists models that do not exist."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.serve.replica_support import MUXLANG, clean_env, write_project

CONFIG = """\
[backends.claude]
command = "https://api.anthropic.com"
protocol = "anthropic"

[roles.review]
backends = ["claude"]

[serve.keys.ci]
key = "${CI_KEY}"
models = ["review", "reveiw", "gone"]
"""


def validate(root: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MUXLANG, "-C", str(root), "validate", str(root / ".muxlang" / "config.toml")],
        env=clean_env(tmp),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_unknown_names_in_a_key_s_models_are_mux030_at_their_position(tmp_path: Path) -> None:
    root = write_project(tmp_path / "project", CONFIG)
    done = validate(root, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout + done.stderr
    assert (
        "config.toml:10:21: error[MUX030]: `models` of key `ci` names `reveiw`, which is "
        "neither a role nor a backend"
    ) in out
    assert "did you mean `review`?" in out
    assert "config.toml:10:31: error[MUX030]: `models` of key `ci` names `gone`" in out
    assert "names `review`" not in out
    assert "Traceback" not in out


def test_known_names_in_a_key_s_models_pass(tmp_path: Path) -> None:
    root = write_project(tmp_path / "project", CONFIG.replace(', "reveiw", "gone"', ""))
    done = validate(root, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
