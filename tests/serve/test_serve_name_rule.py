"""The gateway follows the name rule of the router and the compiler: a name that
is a backend means the backend (as a model and inside roles); only names that are
not backends refer to roles."""

from __future__ import annotations

from serve_support import call, make_gateway

CHAT = "/v1/chat/completions"


def chat(model: str) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}]}


ROLES = {
    "quick": (["other"], "first"),  # like the built-in role `quick`
    "fastest": (["quick"], "race"),
    "panel": (["other", "quick"], "parallel"),
}


async def test_a_backend_named_like_a_role_is_the_backend() -> None:
    app, fakes = make_gateway(["quick", "other"], ROLES)

    direct = await call(app, "POST", CHAT, chat("quick"))
    race = await call(app, "POST", CHAT, chat("fastest"))
    panel = await call(app, "POST", CHAT, chat("panel"))

    assert direct.headers["x-muxlang-backend"] == "quick"
    assert direct.json["choices"][0]["message"]["content"] == "quick: hi"
    assert race.headers["x-muxlang-backend"] == "quick"
    text = panel.json["choices"][0]["message"]["content"]
    assert text == "=== other ===\nother: hi\n\n=== quick ===\nquick: hi"
    assert len(fakes["quick"].requests) == 3


async def test_models_list_a_shared_name_once_as_the_backend() -> None:
    app, _ = make_gateway(["quick", "other"], ROLES)

    listing = await call(app, "GET", "/v1/models")

    ids = [m["id"] for m in listing.json["data"]]
    assert ids == ["fastest", "panel", "quick", "other"]
    assert [m.get("muxlang_kind") for m in listing.json["data"]][2] == "backend"
