"""Token usage, cost, budgets and the answer cache, through the real CLI against a
fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from records_support import clean_env, mux, mux_json, write

from tests.fakes.llm_server import FakeLLMServer, Reply


def _backend(server: FakeLLMServer, price: bool = True) -> str:
    text = f"""\
[backends.fake]
command = "{server.url}/v1"
protocol = "openai"
model = "m1"
max_retries = 0
"""
    if price:
        text += "price = { input = 3.0, output = 15.0 }\n"
    return text


def test_usage_and_cost_reach_templates_json_console_and_history(
    project: Path, llm: FakeLLMServer
) -> None:
    llm.script(Reply.answer("hello there", usage=(1000, 200)))
    write(
        project,
        'name = "usage"\n'
        + _backend(llm)
        + """
[[steps]]
name = "ask"
type = "query"
backend = "fake"
prompt = "hi"

[[steps]]
name = "report"
type = "shell"
run = "echo in=$IN out=$OUT cost=$COST"
env.IN = "{{ steps.ask.usage.input_tokens }}"
env.OUT = "{{ steps.ask.usage.output_tokens }}"
env.COST = "{{ steps.ask.cost }}"
""",
    )
    assert mux(project, "validate", "wf.toml").returncode == 0
    done = mux(project, "run", "wf.toml")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "in=1000 out=200 cost=0.006\n"
    assert "tokens: 1,000 in / 200 out, $0.0060" in done.stderr
    llm.script(Reply.answer("hello there", usage=(1000, 200)))
    data = json.loads(mux(project, "run", "wf.toml", "--output", "json").stdout)
    assert data["steps"]["ask"]["usage"] == {"input_tokens": 1000, "output_tokens": 200}
    assert data["steps"]["ask"]["cost"] == 0.006
    run = mux_json(project, "runs")[0]
    assert run["usage"] == {"input_tokens": 1000, "output_tokens": 200}
    assert run["cost"] == 0.006
    assert "1,200" in mux(project, "runs").stdout
    ask = mux_json(project, "show", "last", "ask")
    assert ask["usage"] == {"input_tokens": 1000, "output_tokens": 200}
    assert ask["backend"] == "fake"
    assert ask["prompt"] == "hi"


def test_no_price_means_no_cost_and_zero_usage_when_unreported(
    project: Path, llm: FakeLLMServer
) -> None:
    write(
        project,
        'name = "free"\n'
        + _backend(llm, price=False)
        + """
[[steps]]
name = "ask"
type = "shell"
run = "echo none"
""",
    )
    data = json.loads(mux(project, "run", "wf.toml", "--output", "json").stdout)
    assert "usage" not in data["steps"]["ask"]  # a shell step has no usage
    llm.script(Reply.answer("x y", usage=(4, 2)))
    write(
        project,
        'name = "free"\n'
        + _backend(llm, price=False)
        + '[[steps]]\nname = "ask"\ntype = "query"\nbackend = "fake"\nprompt = "p"\n',
    )
    data = json.loads(mux(project, "run", "wf.toml", "--output", "json").stdout)
    assert data["steps"]["ask"]["usage"] == {"input_tokens": 4, "output_tokens": 2}
    assert data["steps"]["ask"]["cost"] is None


@pytest.mark.parametrize(
    ("budget", "steps", "said"),
    [
        # 1200 tokens a call: the second call passes 1500
        ("max_tokens = 1500", 3, ["max_tokens = 1500", "no further backend call starts"]),
        # $0.006 a call: the second call passes $0.01
        ("max_cost = 0.01", 4, ["max_cost = 0.01 USD"]),
    ],
    ids=["max_tokens", "max_cost"],
)
def test_a_budget_stops_further_calls_naming_it(
    project: Path, llm: FakeLLMServer, budget: str, steps: int, said: list[str]
) -> None:
    llm.default = lambda request: Reply.answer("ok", usage=(1000, 200))
    write(
        project,
        f'name = "budget"\n{budget}\n'
        + _backend(llm)
        + "".join(
            f'[[steps]]\nname = "q{i}"\ntype = "query"\nbackend = "fake"\nprompt = "p{i}"\n'
            + (f'depends_on = ["q{i - 1}"]\n' if i else "")
            for i in range(steps)
        ),
    )
    done = mux(project, "run", "wf.toml")
    assert done.returncode == 1
    for text in said:
        assert text in done.stderr
    assert len(llm.requests) == 2


CACHED = """
[[steps]]
name = "ask"
type = "query"
backend = "fake"
prompt = "what is {{ args.x }}?"
cache = true

[args.x]
default = "one"
"""


def test_a_cached_answer_asks_no_backend(project: Path, llm: FakeLLMServer) -> None:
    write(project, 'name = "cached"\n' + _backend(llm) + CACHED)
    llm.script(Reply.answer("first answer"), Reply.answer("second answer"))
    first = mux(project, "run", "wf.toml")
    assert first.stdout == "first answer\n"
    again = mux(project, "run", "wf.toml")
    assert again.returncode == 0
    assert again.stdout == "first answer\n"
    assert "✓ ask (cached," in again.stderr
    assert len(llm.requests) == 1
    assert mux_json(project, "show", "last", "ask")["origin"] == "cache"
    # another prompt is another question
    other = mux(project, "run", "wf.toml", "x=two")
    assert other.stdout == "second answer\n"
    assert len(llm.requests) == 2


def test_a_cache_written_with_another_users_secret_is_never_used(
    project: Path, llm: FakeLLMServer, tmp_path: Path
) -> None:
    """A repository can commit its .muxlang/runs.db: answers cached under another
    secret (another machine, another user, or made up) are never found, so they
    cannot stand in for a backend's answer."""
    write(project, 'name = "cached"\n' + _backend(llm) + CACHED)
    llm.script(Reply.answer("planted"), Reply.answer("real"), Reply.answer("never"))
    theirs = clean_env(XDG_STATE_HOME=str(tmp_path / "their-state"))
    ours = clean_env(XDG_STATE_HOME=str(tmp_path / "our-state"))
    assert mux(project, "run", "wf.toml", env=theirs).stdout == "planted\n"
    mine = mux(project, "run", "wf.toml", env=ours)
    assert mine.stdout == "real\n"  # asked the backend: the planted row was not found
    assert "✓ ask (cached," not in mine.stderr
    assert len(llm.requests) == 2
    # this user's own rows hit as before
    assert mux(project, "run", "wf.toml", env=ours).stdout == "real\n"
    assert len(llm.requests) == 2
    key = tmp_path / "our-state" / "muxlang" / "records.key"
    assert key.stat().st_mode & 0o777 == 0o600


def test_a_key_file_others_can_read_is_not_trusted(
    project: Path, llm: FakeLLMServer, tmp_path: Path
) -> None:
    """A secret others can read keys nothing: each run uses one of its own."""
    key = tmp_path / "state" / "muxlang" / "records.key"
    key.parent.mkdir(parents=True)
    key.write_bytes(b"k" * 32)
    key.chmod(0o644)
    write(project, 'name = "cached"\n' + _backend(llm) + CACHED)
    llm.script(Reply.answer("one"), Reply.answer("two"))
    env = clean_env(XDG_STATE_HOME=str(tmp_path / "state"))
    assert mux(project, "run", "wf.toml", env=env).stdout == "one\n"
    assert mux(project, "run", "wf.toml", env=env).stdout == "two\n"
    assert key.read_bytes() == b"k" * 32  # left as it was


def test_no_cache_and_refresh_cache(project: Path, llm: FakeLLMServer) -> None:
    write(project, 'name = "cached"\n' + _backend(llm) + CACHED)
    llm.script(Reply.answer("a1"), Reply.answer("a2"), Reply.answer("a3"))
    assert mux(project, "run", "wf.toml").stdout == "a1\n"
    assert mux(project, "run", "wf.toml", "--no-cache").stdout == "a2\n"
    assert mux(project, "run", "wf.toml").stdout == "a1\n"  # --no-cache replaced nothing
    assert mux(project, "run", "wf.toml", "--refresh-cache").stdout == "a3\n"
    assert mux(project, "run", "wf.toml").stdout == "a3\n"
    assert len(llm.requests) == 3


def test_errors_are_never_cached(project: Path, llm: FakeLLMServer) -> None:
    write(project, 'name = "cached"\n' + _backend(llm) + CACHED)
    llm.script(Reply.fail(400, "bad request"), Reply.answer("fine"))
    assert mux(project, "run", "wf.toml").returncode == 1
    second = mux(project, "run", "wf.toml")
    assert second.returncode == 0
    assert second.stdout == "fine\n"
    assert len(llm.requests) == 2


def test_defaults_cache_with_an_age_and_a_bad_age(project: Path, llm: FakeLLMServer) -> None:
    write(
        project,
        'name = "cached"\n[defaults]\ncache = "7d"\n'
        + _backend(llm)
        + '[[steps]]\nname = "ask"\ntype = "query"\nbackend = "fake"\nprompt = "p"\n',
    )
    llm.script(Reply.answer("kept"))
    assert mux(project, "run", "wf.toml").stdout == "kept\n"
    assert mux(project, "run", "wf.toml").stdout == "kept\n"
    assert len(llm.requests) == 1
    write(
        project,
        'name = "cached"\n'
        + _backend(llm)
        + '[[steps]]\nname = "ask"\ntype = "query"\nbackend = "fake"\nprompt = "p"\n'
        'cache = "soon"\n',
        "bad.toml",
    )
    bad = mux(project, "validate", "bad.toml")
    assert bad.returncode == 1
    assert "bad.toml:" in bad.stdout + bad.stderr
