"""Security: the template sandbox, secrets, shell injection warnings, path escapes,
and the gateway's guards.

A canary key is put wherever a secret can be configured; everything muxlang
prints (stdout, stderr, --debug logs, JSON records, HTTP answers) is grepped
for it.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rel_support import (
    answered_apply_workflow,
    apply_canned,
    canned_apply_plan,
    outcome,
    project_and_home,
    run_muxlang,
    start_gateway,
    stop_gateway,
    subprocess_env,
    tree_hash,
)

from muxlang.template import (
    UNDEFINED,
    TemplateError,
    TemplateSyntaxError,
    evaluate,
    parse_expression,
    parse_template,
    render,
)
from tests.fakes.llm_server import FakeLLMServer, RecordedRequest, Reply

CANARY = "sk-canary-7f3a9c2e51d84b06"
HEADER_CANARY = "hdr-canary-0b1c2d3e4f5a"
CLI_CANARY = "tok-canary-a1b2c3d4e5f6"

# --------------------------------------------------------------------------- sandbox

SCOPE: dict[str, Any] = {
    "x": "text",
    "n": 3,
    "xs": ["a", "b"],
    "d": {"k": "v"},
    "steps": {"a": {"output": "out", "status": "success"}},
    "loop": {"index": 1, "index0": 0, "length": 1},
}

PROBES = [
    "''.__class__",
    "x.__class__",
    "x.__class__.__mro__",
    "steps.__class__",
    "steps.a.__class__",
    "x.mro",
    "x.upper",
    "x.format",
    "loop.__init__",
    "loop.__init__.__globals__",
    "d.items",
    "d.keys",
    "d.__dict__",
    "xs.append",
    "xs.__len__",
    "n.__add__",
    "n.real",
    "x['__class__']",
    "d['__class__']",
    "steps['__class__']",
    "(x | lines).__class__",
    "(d | json).__class__",
    "x | attr('__class__')",
    "x | map('upper')",
    "xs[0].__class__",
    "lipsum",
    "cycler",
    "range",
    "self",
    "config",
    "request",
    "__builtins__",
    "namespace",
]


@pytest.mark.parametrize("probe", PROBES)
def test_no_python_attribute_is_reachable(probe: str) -> None:
    try:
        expr = parse_expression(probe)
    except TemplateSyntaxError:
        return  # refused by the grammar: fine
    try:
        value = evaluate(expr, SCOPE)
    except TemplateError:
        value = UNDEFINED
    assert value is UNDEFINED or isinstance(value, str | int | float | bool | list | dict), (
        probe,
        value,
    )
    if isinstance(value, str):
        assert "<" not in value, (probe, value)
        assert "class" not in value, (probe, value)
    try:
        text = render(parse_template("{{ " + probe + " }}"), SCOPE)
    except (TemplateError, TemplateSyntaxError):
        return
    assert "<" not in text, (probe, text)
    assert "built-in" not in text, (probe, text)
    assert "method" not in text, (probe, text)


@pytest.mark.parametrize(
    "source",
    [
        "{{ d | join }}",
        "{{ n | upper }}",
        "{{ none | lines }}",
        "{{ xs | from_json }}",
        "{{ d | sort }}",
        "{{ d | first }}",
        "{{ n | length }}",
        "{{ x | indent(xs) }}",
        "{{ x | truncate(d) }}",
        "{{ xs | replace('a', 'b') }}",
        "{{ d | basename }}",
        "{{ x | split(n) }}",
        "{{ [d, xs] | unique }}",
        "{{ [d, 1, 'a'] | sort }}",
        "{% for c in d %}{{ c }}{% endfor %}",
        "{% for c in n %}{{ c }}{% endfor %}",
    ],
)
def test_filters_on_odd_types_give_template_errors(source: str) -> None:
    text = outcome(
        lambda: render(parse_template(source), SCOPE), errors=(TemplateError, TemplateSyntaxError)
    )
    assert "<" not in str(text)
    assert "Traceback" not in str(text)


def test_inserted_output_is_never_rendered_again() -> None:
    scope = {**SCOPE, "x": "{{ ''.__class__ }}{% for i in xs %}boom{% endfor %}"}
    assert render(parse_template("[{{ x }}]"), scope) == f"[{scope['x']}]"


# --------------------------------------------------------------------------- secrets


@pytest.fixture(scope="module")
def leaky_server() -> Iterator[FakeLLMServer]:
    """An upstream that echoes the credentials it got into its error messages,
    as real providers sometimes do ("Incorrect API key provided: sk-...")."""

    def respond(request: RecordedRequest) -> Reply:
        auth = request.headers.get("authorization", "") + " " + request.headers.get("x-api-key", "")
        extra = request.headers.get("x-extra", "")
        if "fail" in request.prompt:
            return Reply.fail(401, f"Incorrect API key provided: {auth.strip()} extra={extra}")
        return Reply.answer("fine")

    with FakeLLMServer(default=respond) as server:
        yield server


@pytest.fixture
def secret_tree(tmp_path: Path, leaky_server: FakeLLMServer) -> tuple[Path, Path, Path]:
    """(root, home, workflow): the secret project in ``tmp_path/p`` in front of the
    leaky upstream, and an empty HOME."""
    root = tmp_path / "p"
    home = tmp_path / "home"
    home.mkdir()
    return root, home, secret_project(root, leaky_server.url)


def secret_project(root: Path, url: str) -> Path:
    (root / ".git").mkdir(parents=True, exist_ok=True)
    (root / ".muxlang").mkdir(exist_ok=True)
    (root / ".muxlang" / "config.toml").write_text(
        f"""
[backends.api]
command = "{url}/v1"
api_key = "${{CANARY_API_KEY}}"
headers = {{ X-Extra = "${{EXTRA_HEADER_TOKEN}}" }}
max_retries = 0

[backends.claude_api]
command = "{url}"
protocol = "anthropic"
model = "m"
api_key = "${{CANARY_API_KEY}}"
max_retries = 0

[backends.cli]
command = "fake-llm"
args = ["--mode", "fail"]
env = {{ FAKE_LLM_STDERR = "auth failed for ${{CLI_TOKEN}}", SOME_TOKEN = "${{CLI_TOKEN}}" }}
max_retries = 0

[backends.urlkey]
command = "http://127.0.0.1:9/v1beta?key=${{CANARY_API_KEY}}"
protocol = "gemini"
model = "m"
max_retries = 0

[backends.userinfo]
command = "http://me:${{CANARY_API_KEY}}@127.0.0.1:9/v1"
max_retries = 0

[roles.all]
backends = ["api", "claude_api", "cli", "urlkey", "userinfo"]
execution = "parallel"
"""
    )
    wf = root / "leak.toml"
    wf.write_text(
        """
[[steps]]
name = "ok"
type = "query"
backend = "api"
prompt = "hello"

[[steps]]
name = "bad"
type = "query"
role = "all"
prompt = "please fail"
depends_on = ["ok"]
"""
    )
    return wf


def assert_no_canary(where: str, *texts: bytes | str) -> None:
    for text in texts:
        data = text.encode() if isinstance(text, str) else text
        for canary in (CANARY, HEADER_CANARY, CLI_CANARY):
            assert canary.encode() not in data, f"{canary} leaked in {where}:\n{data[-2000:]!r}"


def canary_env(home: Path) -> dict[str, str]:
    return subprocess_env(
        home,
        CANARY_API_KEY=CANARY,
        EXTRA_HEADER_TOKEN=HEADER_CANARY,
        CLI_TOKEN=CLI_CANARY,
    )


def test_secrets_never_printed_by_any_command(
    secret_tree: tuple[Path, Path, Path], leaky_server: FakeLLMServer
) -> None:
    root, home, wf = secret_tree
    env = canary_env(home)
    commands = [
        ["run", str(wf), "--debug", "--output", "json"],
        ["run", str(wf), "--debug", "--output", "jsonl"],
        ["run", str(wf), "--debug"],
        ["run", str(wf), "--dry-run", "--debug"],
        ["validate", "--format", "json", str(wf)],
        ["validate", "--format", "sarif"],
        ["doctor", "--debug"],
        ["doctor", "--output", "json"],
        ["backends", "--output", "json"],
        ["backends"],
        ["roles", "--output", "json"],
        ["graph", str(wf), "--format", "json"],
    ]
    seen_failure = False
    for command in commands:
        done = run_muxlang(root, *command, env=env, cwd=root)
        assert_no_canary(" ".join(command), done.stdout, done.stderr)
        assert b"Traceback" not in done.stderr, done.stderr.decode()
        if command[:2] == ["run", str(wf)] and b"Incorrect API key" in done.stdout + done.stderr:
            seen_failure = True
    # the upstream really did get (and echo) the keys: the redaction did the work
    assert any(CANARY in r.headers.get("authorization", "") for r in leaky_server.requests)
    assert any(r.headers.get("x-extra") == HEADER_CANARY for r in leaky_server.requests)
    assert seen_failure


def test_gateway_never_shows_secrets(secret_tree: tuple[Path, Path, Path]) -> None:
    root, home, _wf = secret_tree
    proc, url = start_gateway(root, canary_env(home), "--debug")
    bodies: list[bytes] = []
    try:
        with httpx.Client(timeout=30) as client:
            for model in ("api", "claude_api", "cli", "all"):
                for stream in (False, True):
                    payload = {
                        "model": model,
                        "stream": stream,
                        "messages": [{"role": "user", "content": "please fail"}],
                    }
                    r = client.post(url + "/v1/chat/completions", json=payload)
                    bodies.append(r.content)
                    r = client.post(url + "/v1/messages", json={**payload, "max_tokens": 10})
                    bodies.append(r.content)
            bodies.append(client.get(url + "/v1/models").content)
    finally:
        out, err = stop_gateway(proc)
    assert_no_canary("gateway answers", *bodies)
    assert_no_canary("gateway output", out, err)
    assert any(b"Incorrect API key" in b for b in bodies)


# --------------------------------------------------------------------------- MUX040


def validate_json(root: Path, body: str, home: Path) -> list[dict[str, Any]]:
    wf = root / "inj.toml"
    wf.write_text(body)
    done = run_muxlang(root, "validate", "--format", "json", str(wf), env=subprocess_env(home))
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


def test_mux040_flags_step_output_in_shell_and_env_is_the_fix(tmp_path: Path) -> None:
    root, home = project_and_home(tmp_path)
    head = '[[steps]]\nname = "a"\ntype = "shell"\nrun = "echo hi"\n\n'
    # quoted for its place, the text stays data; run as a script by `sh -c`, it is code
    unsafe = head + '[[steps]]\nname = "b"\ntype = "shell"\nrun = "sh -c {{ steps.a.output }}"\n'
    found = validate_json(root, unsafe, home)
    assert [d["code"] for d in found] == ["MUX040"]
    assert found[0]["severity"] == "warning"
    assert found[0]["line"] == 9
    assert "env" in (found[0]["hint"] or "") + found[0]["message"]
    for safe_run in (
        'run = "echo {{ steps.a.output }}"',
        'run = "echo {{ steps.a.output | shell_escape }}"',
        'run = "echo \\"$OUT\\""\nenv = { OUT = "{{ steps.a.output }}" }',
    ):
        safe = head + f'[[steps]]\nname = "b"\ntype = "shell"\n{safe_run}\n'
        assert validate_json(root, safe, home) == [], safe_run
    # an inner loop over another step's output is just as dangerous
    looped = head + (
        '[[steps]]\nname = "b"\ntype = "shell"\n'
        'run = "{% for l in steps.a.output | lines %}eval {{ l }}\\n{% endfor %}"\n'
    )
    assert [d["code"] for d in validate_json(root, looped, home)] == ["MUX040"]


def test_docs_show_the_env_pattern() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs"
    text = "".join(p.read_text() for p in docs.glob("*.md"))
    assert "MUX040" in text
    assert "env = { " in text or "env = {" in text
    assert '"$' in text  # the variable used quoted in the command


# --------------------------------------------------------------------------- path escapes


def escape_tree(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "proj"
    outside = tmp_path / "outside"
    (root / ".git").mkdir(parents=True)
    (root / "src").mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("outside\n")
    (root / "src" / "ok.txt").write_text("ok\n")
    (root / "linkfile").symlink_to(outside / "secret.txt")
    (root / "linkdir").symlink_to(outside)
    (root / "src" / "up").symlink_to("../..")
    return root, outside


ESCAPES = [
    '{"path": "../outside/secret.txt", "content": "pwned"}',
    '{"path": "src/../../outside/secret.txt", "content": "pwned"}',
    '{"path": "/tmp/pwned-by-muxlang.txt", "content": "pwned"}',
    '{"path": "~/pwned.txt", "content": "pwned"}',
    '{"path": "linkfile", "content": "pwned"}',
    '{"path": "linkdir/secret.txt", "content": "pwned"}',
    '{"path": "linkdir/new.txt", "content": "pwned"}',
    '{"path": "src/up/outside/secret.txt", "content": "pwned"}',
    '{"path": "linkfile", "old": "outside", "new": "pwned"}',
    '{"path": ".git/config", "content": "pwned"}',
    '{"path": ".muxlang/journal/journal.json", "content": "pwned"}',
    "--- a/linkdir/secret.txt\n+++ b/linkdir/secret.txt\n@@ -1 +1 @@\n-outside\n+pwned\n",
    "--- /dev/null\n+++ b/../outside/new.txt\n@@ -0,0 +1 @@\n+pwned\n",
]


@pytest.mark.parametrize("edit", ESCAPES)
def test_apply_refuses_every_path_escape(tmp_path: Path, edit: str) -> None:
    root, outside = escape_tree(tmp_path)
    # a good edit first: it must not be written either (all edits are checked first)
    edits = f'[{{"path": "src/ok.txt", "content": "changed"}}, {edit}]'
    if edit.startswith("---"):
        edits = edit
    plan = canned_apply_plan(root)
    before_in, before_out = tree_hash(root), tree_hash(outside)
    result = apply_canned(plan, edits)
    step = result.steps["write"]
    assert step["status"] == "failed", step
    assert step["error"]
    assert tree_hash(outside) == before_out
    assert tree_hash(root) == before_in
    assert not Path("/tmp/pwned-by-muxlang.txt").exists()


def test_a_symlink_planted_during_the_apply_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the first write, `src/sub` is swapped for a symlink to outside: the
    second edit (into src/sub) must not land outside; the apply rolls back."""
    from muxlang.apply import journal

    root, outside = escape_tree(tmp_path)
    (root / "src" / "sub").mkdir()
    (root / "src" / "sub" / "b.txt").write_text("b\n")
    (outside / "b.txt").write_text("outside b\n")
    before_out = tree_hash(outside)

    def plant(path: str, count: int) -> None:
        if count == 1:
            (root / "src" / "sub" / "b.txt").unlink()
            (root / "src" / "sub").rmdir()
            (root / "src" / "sub").symlink_to(outside)

    monkeypatch.setattr(journal, "AFTER_WRITE_HOOK", plant)
    edits = json.dumps(
        [
            {"path": "src/ok.txt", "content": "changed"},
            {"path": "src/sub/b.txt", "content": "pwned"},
        ]
    )
    result = apply_canned(canned_apply_plan(root), edits)
    assert result.steps["write"]["status"] == "failed"
    assert tree_hash(outside) == before_out
    assert (root / "src" / "ok.txt").read_text() == "ok\n"


# --------------------------------------------------------------------------- gateway guards


def test_serve_refuses_non_loopback_without_keys(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / ".git").mkdir()
    for host in ("0.0.0.0", "::", "192.0.2.1"):
        done = run_muxlang(
            tmp_path, "serve", "--host", host, "--port", "0", env=subprocess_env(home), timeout=30
        )
        assert done.returncode == 2, (host, done.stderr)
        assert b"api_keys" in done.stderr
        assert b"Traceback" not in done.stderr


def test_serve_rejects_oversized_bodies(secret_tree: tuple[Path, Path, Path]) -> None:
    root, home, _wf = secret_tree
    with (root / ".muxlang" / "config.toml").open("a") as f:
        f.write("\n[serve]\nmax_body_bytes = 4096\n")
    proc, url = start_gateway(root, canary_env(home))
    try:
        big = {"model": "api", "messages": [{"role": "user", "content": "x" * 10_000}]}
        with httpx.Client(timeout=30) as client:
            r = client.post(url + "/v1/chat/completions", json=big)
            assert r.status_code == 413
            assert "error" in r.json()

            def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
                data = json.dumps(big).encode()
                for i in range(0, len(data), 1000):
                    yield data[i : i + 1000]

            r = client.post(
                url + "/v1/messages",
                content=chunks(),
                headers={"content-type": "application/json"},
            )
            assert r.status_code == 413
            assert r.json()["type"] == "error"
            small = {"model": "api", "messages": [{"role": "user", "content": "hi"}]}
            assert client.post(url + "/v1/chat/completions", json=small).status_code == 200
    finally:
        stop_gateway(proc)


def test_no_environment_dump_in_debug(tmp_path: Path) -> None:
    """--debug never prints the process environment (where keys usually live)."""
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / ".git").mkdir()
    wf = tmp_path / "env.toml"
    wf.write_text('[[steps]]\nname = "a"\ntype = "shell"\nrun = "true"\n')
    env = {**canary_env(home), "OPENAI_API_KEY": CANARY}
    done = run_muxlang(tmp_path, "run", str(wf), "--debug", "--output", "jsonl", env=env)
    assert done.returncode == 0, done.stderr
    assert_no_canary("run --debug", done.stdout, done.stderr)
    assert os.environ.get("OPENAI_API_KEY") != CANARY


def test_gateway_keys_are_never_echoed(secret_tree: tuple[Path, Path, Path]) -> None:
    """`[serve] api_keys`: wrong, missing, almost-right keys get a 401 that names no key."""
    root, home, _wf = secret_tree
    with (root / ".muxlang" / "config.toml").open("a") as f:
        f.write('\n[serve]\napi_keys = ["${GATEWAY_KEY_X}"]\n')
    gateway_key = "gw-canary-5a5a5a5a5a"
    env = {**canary_env(home), "GATEWAY_KEY_X": gateway_key}
    proc, url = start_gateway(root, env, "--debug")
    seen: list[bytes] = []
    try:
        with httpx.Client(timeout=30) as client:
            for headers in (
                {},
                {"Authorization": "Bearer wrong"},
                {"x-api-key": gateway_key[:-1]},
                {"Authorization": f"Bearer {gateway_key}"},
            ):
                body = {
                    "model": "api",
                    "max_tokens": 5,
                    "messages": [{"role": "user", "content": "x"}],
                }
                for path in ("/v1/chat/completions", "/v1/messages"):
                    r = client.post(url + path, json=body, headers=headers)
                    seen.append(r.content)
                    assert (r.status_code == 401) == ("Bearer gw-" not in str(headers))
    finally:
        out, err = stop_gateway(proc)
    for data in (*seen, out, err):
        assert gateway_key[:-1].encode() not in data
    assert_no_canary("gateway with api_keys", *seen, out, err)


# --------------------------------------------------------------------------- crafted journals

CRAFTED = [
    {"files": [], "dirs": ["../victim"]},
    {"files": [], "dirs": ["/VICTIM"]},
    {"files": [], "dirs": ["."]},
    {"files": [], "dirs": [""]},
    {"files": [], "dirs": ["src"]},
    {"files": [], "dirs": ["linkdir"]},
    {"files": [{"path": "../victim/data.txt", "existed": False}], "dirs": []},
    {"files": [{"path": "/VICTIM/data.txt", "existed": False}], "dirs": []},
    {"files": [{"path": "linkdir/data.txt", "existed": False}], "dirs": []},
    {"files": [{"path": "../victim/data.txt", "existed": True, "backup": "0.orig"}], "dirs": []},
    {"files": [{"path": ".git/config", "existed": True, "backup": "0.orig"}], "dirs": []},
    {
        "files": [{"path": "src/new/a.txt", "existed": False}, {"path": "../x", "existed": False}],
        "dirs": ["src/new"],
    },
]


@pytest.mark.parametrize("crafted", CRAFTED)
def test_a_crafted_journal_never_touches_anything(tmp_path: Path, crafted: dict[str, Any]) -> None:
    """`.muxlang/` can be committed to a repository, so a journal is untrusted data:
    one naming paths outside the tree (or a directory no apply created) is refused
    as damaged by `muxlang recover` and by every `muxlang run`, touching nothing.
    (It used to `rmtree` any directory it named, e.g. `../victim`.)"""
    root = tmp_path / "proj"
    victim = tmp_path / "victim"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "config").write_text("[core]\n")
    (root / "src").mkdir()
    (root / "src" / "keep.txt").write_text("mine\n")
    victim.mkdir()
    (victim / "data.txt").write_text("precious\n")
    (root / "linkdir").symlink_to(victim)
    files = root / ".muxlang" / "journal" / "files"
    files.mkdir(parents=True)
    (files / "0.orig").write_text("overwritten!\n")
    document: dict[str, Any] = {
        "version": 1,
        "pid": 999_999_999,
        "step": "write",
        "files": [{"mode": None, "backup": None, **f} for f in crafted["files"]],
        "dirs": [d.replace("/VICTIM", str(victim)) for d in crafted["dirs"]],
        "state_dir_created": False,
    }
    for f in document["files"]:
        f["path"] = f["path"].replace("/VICTIM", str(victim))
    (root / ".muxlang" / "journal" / "journal.json").write_text(json.dumps(document))
    before_root = tree_hash(root, skip=(".muxlang",))
    before_victim = tree_hash(victim)
    home = tmp_path / "home"
    home.mkdir()
    rec = run_muxlang(root, "recover", env=subprocess_env(home))
    assert rec.returncode == 1, rec.stderr.decode()
    assert b"damaged" in rec.stdout + rec.stderr
    wf = root / "noop.toml"
    wf.write_text('[[steps]]\nname = "a"\ntype = "shell"\nrun = "true"\n')
    run = run_muxlang(root, "run", str(wf), env=subprocess_env(home))
    wf.unlink()
    assert run.returncode == 2, run.stderr.decode()
    assert b"Traceback" not in rec.stderr + run.stderr
    assert tree_hash(victim) == before_victim
    assert tree_hash(root, skip=(".muxlang",)) == before_root


@pytest.mark.parametrize("layout", ["state_dir", "journal_dir", "lock_file"])
def test_a_symlinked_state_directory_is_never_followed(tmp_path: Path, layout: str) -> None:
    """A repository can commit `.muxlang` (or `.muxlang/journal`, `.muxlang/apply.lock`)
    as a symlink. Following it let the start-up recovery of *any* run remove a
    directory named `journal` next to the project. Now: runs work, recovery
    touches nothing, and an apply refuses with a clear message."""
    outside = tmp_path / "outside"
    (outside / "journal").mkdir(parents=True)
    (outside / "journal" / "day1.txt").write_text("my diary\n")
    (outside / "lockfile").write_text("not a lock\n")
    root = tmp_path / "outside" / "proj"
    (root / ".git").mkdir(parents=True)
    (root / "a.txt").write_text("old\n")
    if layout == "state_dir":
        (root / ".muxlang").symlink_to("..")
    elif layout == "journal_dir":
        (root / ".muxlang").mkdir()
        (root / ".muxlang" / "journal").symlink_to(outside / "journal")
    else:
        (root / ".muxlang").mkdir()
        (root / ".muxlang" / "apply.lock").symlink_to(outside / "lockfile")
    before = tree_hash(outside, skip=())
    home = tmp_path / "home"
    home.mkdir()
    env = subprocess_env(home)

    def muxlang(*args: str) -> subprocess.CompletedProcess[bytes]:
        return run_muxlang(root, *args, env=env)

    assert b"Traceback" not in muxlang("recover").stderr
    assert tree_hash(outside, skip=()) == before
    (root / "noop.toml").write_text('[[steps]]\nname = "a"\ntype = "shell"\nrun = "true"\n')
    # --no-record: the project's run records are not what this test watches
    # (tests/records/test_records_faults.py: a symlinked .muxlang is never followed by them)
    noop = muxlang("run", str(root / "noop.toml"), "--no-record")
    assert noop.returncode == 0, noop.stderr.decode()
    edits = json.dumps({"path": "a.txt", "content": "new\n"})
    answered_apply_workflow(root / "fix.toml", tmp_path / "edits.json", edits)
    fix = muxlang("run", str(root / "fix.toml"), "--output", "json", "--no-record")
    report = json.loads(fix.stdout)
    assert report["steps"]["write"]["status"] == "failed"
    assert "symbolic link" in report["steps"]["write"]["error"]
    assert (root / "a.txt").read_text() == "old\n"
    after = tree_hash(outside, skip=())
    for key in ("proj/noop.toml", "proj/fix.toml"):
        after.pop(key, None)
    assert after == before


def test_inspection_commands_execute_nothing(tmp_path: Path) -> None:
    """validate, graph, schema and the listings never run a configured program
    (docs/reliability.md says so; `doctor` and `run` do, by design)."""
    root = tmp_path / "p"
    (root / ".git").mkdir(parents=True)
    (root / ".muxlang").mkdir()
    trap = root / "trap.sh"
    ran = tmp_path / "ran"
    trap.write_text(f"#!/bin/sh\ntouch {ran}\necho trapped\n")
    trap.chmod(0o755)
    (root / ".muxlang" / "config.toml").write_text(
        f'[backends.t]\ncommand = "{trap}"\n\n[roles.r]\nbackends = ["t"]\n\n'
        '[teams.x]\ndetect = ["*.sh"]\nverify = "touch ' + str(ran) + '"\n'
    )
    wf = root / "wf.toml"
    wf.write_text(
        '[[steps]]\nname = "a"\ntype = "query"\nrole = "r"\nprompt = "hi"\n\n'
        f'[[steps]]\nname = "b"\ntype = "shell"\nrun = "touch {ran}"\n'
    )
    home = tmp_path / "home"
    home.mkdir()
    for command in (
        ["validate"],
        ["validate", str(wf), "--format", "sarif"],
        ["graph", str(wf)],
        ["schema"],
        ["backends"],
        ["roles", "--output", "json"],
        ["teams"],
        ["workflows"],
        ["run", str(wf), "--dry-run"],
    ):
        done = run_muxlang(root, *command, env=subprocess_env(home))
        assert b"Traceback" not in done.stderr, command
        assert not ran.exists(), f"{command} executed a configured program"
