"""Issue 14 item 13, the gateway's side: an upstream that floods a non-streaming
pass-through answer is never held in memory past ``[defaults] max_output``; the
client gets an error in its own shape that names the limit (and no upstream URL)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.fakes.llm_server import Reply, fake_llm_server
from tests.serve.test_serve_live import USER, clean_env, running_gateway

pytestmark = pytest.mark.slow


def test_a_flooding_passthrough_answer_is_cut_at_the_output_limit(tmp_path: Path) -> None:
    with fake_llm_server() as server:
        server.default = Reply(text="y" * 3_000_000)
        root = tmp_path / "project"
        (root / ".muxlang").mkdir(parents=True)
        (root / ".muxlang" / "config.toml").write_text(
            '[defaults]\nmax_output = "1MB"\n'
            f'[backends.big]\ncommand = "{server.url}/v1"\nmax_retries = 0\n'
        )
        with running_gateway(root, clean_env(tmp_path)) as url:
            body = {"model": "big", "messages": USER}
            answer = httpx.post(url + "/v1/chat/completions", json=body, timeout=30)
    assert answer.status_code >= 500
    message = answer.json()["error"]["message"]
    assert "larger than 1 MB, the output limit ([defaults] max_output)" in message
    assert server.url not in message
    assert answer.headers["x-muxlang-backend"] == "big"
