"""MUX030 follows the router's rule: inside a role, a name that is a backend means
the backend; only names that are not backends refer to roles."""

from __future__ import annotations

from mux_compiler_support import config, lit, query, workflow

from muxlang.compiler import checks
from muxlang.compiler.checks import CheckContext
from muxlang.config.models import BackendConfig, RoleConfig
from muxlang.workflow import Ref


def diagnostics(roles: dict[str, list[str]], backends: tuple[str, ...], start: str) -> list[str]:
    cfg = config(
        backends={name: BackendConfig(command=name) for name in backends},
        roles={name: RoleConfig(backends=entries) for name, entries in roles.items()},
    )
    wf = workflow(query("q", role=Ref(start, lit(0).span)))
    return sorted(d.message for d in checks.check_roles_and_backends(CheckContext(wf, cfg)))


def test_a_role_listing_a_backend_of_its_own_name_is_no_cycle() -> None:
    assert diagnostics({"quick": ["quick"]}, ("quick",), "quick") == []


def test_a_backend_shared_with_a_role_name_is_a_leaf_in_other_roles() -> None:
    # the built-in role `quick` nests nothing here: `quick` is the user's backend
    roles = {"quick": ["fastest"], "fastest": ["slow", "quick"]}
    assert diagnostics(roles, ("slow", "quick"), "fastest") == []


def test_names_that_are_not_backends_still_nest_and_cycle() -> None:
    roles = {"a": ["b"], "b": ["a", "claude"]}
    assert diagnostics(roles, ("claude",), "a") == ["role cycle: a → b → a"]
