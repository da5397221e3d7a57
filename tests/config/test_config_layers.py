"""Config layers, merge order, llm-mux fallback paths, teams, ${VAR} expansion."""

from __future__ import annotations

from pathlib import Path

import pytest

from muxlang.compiler.loader import load_workflow
from muxlang.config import (
    EnvVarError,
    apply_team,
    detect_team,
    expand_env,
    load_config,
    merge,
    missing_variables,
)
from muxlang.config.models import BackendConfig, RoleConfig, TeamConfig


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def env(home: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(home), **extra}


def test_builtin_layer_gives_the_roles_the_bundled_workflows_use(project: Path, home: Path) -> None:
    config, problems = load_config(project, environ=env(home))
    assert problems == []
    assert {"analyzer", "coder", "quick"} <= set(config.roles)
    assert config.defaults.max_concurrent == 8
    assert config.team is None
    assert config.sources == ()


def test_later_layers_win_field_by_field(project: Path, home: Path) -> None:
    user = write(
        home / ".config/muxlang/config.toml",
        "[defaults]\nmax_concurrent = 3\n"
        '[backends.api]\ncommand = "https://api.example/v1"\nmodel = "m1"\n'
        'args = ["a", "b"]\noptions = { temperature = 0.2 }\n'
        '[roles.analyzer]\nbackends = ["api"]\nexecution = "parallel"\n',
    )
    proj = write(
        project / ".muxlang/config.toml",
        '[backends.api]\ntimeout = 10\nargs = ["c"]\noptions = { top_p = 1 }\n',
    )
    workflow, found = load_workflow(
        project / "wf.toml",
        '[backends.api]\nmodel = "m2"\n[defaults]\nmax_concurrent = 5\n'
        '[[steps]]\nname = "a"\ntype = "shell"\nrun = "true"\n',
    )
    assert found == []
    config, problems = load_config(
        project,
        workflow=workflow,
        environ=env(home),
        overrides={"defaults": {"max_concurrent": 2}},
    )
    assert problems == []
    api = config.backends["api"]
    assert api.command == "https://api.example/v1"  # user
    assert api.timeout == 10  # project
    assert api.args == ["c"]  # arrays replace
    assert api.options == {"temperature": 0.2, "top_p": 1}  # tables merge
    assert api.model == "m2"  # workflow
    assert config.defaults.max_concurrent == 2  # command line
    assert config.roles["analyzer"].execution == "parallel"
    assert config.roles["analyzer"].backends == ["api"]
    assert config.sources == (user, proj)


def test_muxlang_config_env_replaces_the_user_layer(project: Path, home: Path) -> None:
    write(home / ".config/muxlang/config.toml", "[defaults]\nmax_concurrent = 3\n")
    other = write(home / "elsewhere.toml", "[defaults]\nmax_concurrent = 4\n")
    config, _ = load_config(project, environ=env(home, MUXLANG_CONFIG=str(other)))
    assert config.defaults.max_concurrent == 4
    assert config.sources == (other,)


def test_xdg_config_home_is_honoured(project: Path, home: Path, tmp_path: Path) -> None:
    write(home / ".config/muxlang/config.toml", "[defaults]\nmax_concurrent = 3\n")
    xdg = tmp_path / "xdg"
    write(xdg / "muxlang/config.toml", "[defaults]\nmax_concurrent = 6\n")
    config, _ = load_config(project, environ=env(home, XDG_CONFIG_HOME=str(xdg)))
    assert config.defaults.max_concurrent == 6


def test_llm_mux_paths_are_read_when_the_muxlang_ones_are_absent(project: Path, home: Path) -> None:
    user = write(
        home / ".config/llm-mux/config.toml",
        '[backends.claude]\ncommand = "my-claude"\n[defaults]\nmax_concurrent = 2\n',
    )
    proj = write(project / ".llm-mux/config.toml", "[backends.claude]\ntimeout = 7\n")
    config, problems = load_config(project, environ=env(home))
    assert problems == []
    assert config.backends["claude"].command == "my-claude"
    assert config.backends["claude"].timeout == 7
    assert config.sources == (user, proj)


def test_muxlang_file_wins_over_llm_mux_file_of_the_same_layer(project: Path, home: Path) -> None:
    write(home / ".config/llm-mux/config.toml", "[defaults]\nmax_concurrent = 2\n")
    mux = write(home / ".config/muxlang/config.toml", "[defaults]\nmax_concurrent = 3\n")
    write(project / ".llm-mux/config.toml", '[backends.x]\ncommand = "llm-mux-x"\n')
    proj = write(project / ".muxlang/config.toml", '[backends.x]\ncommand = "muxlang-x"\n')
    config, _ = load_config(project, environ=env(home))
    assert config.defaults.max_concurrent == 3
    assert config.backends["x"].command == "muxlang-x"
    assert config.sources == (mux, proj)


def test_required_key_missing_after_merge_is_reported_in_the_layer_that_wrote_it(
    project: Path, home: Path
) -> None:
    path = write(
        project / ".muxlang/config.toml",
        "[defaults]\nmax_concurrent = 2\n\n[backends.claud]\ntimeout = 5\n",
    )
    config, problems = load_config(project, environ=env(home))
    [d] = problems
    assert (d.file, d.code, d.span.line, d.span.column) == (str(path), "MUX004", 4, 1)
    assert d.message == "backend `claud` has no `command`"
    assert d.hint == "did you mean `claude`?"
    assert "claud" not in config.backends  # the rest of the config is still usable
    assert config.defaults.max_concurrent == 2


def test_workflow_partial_table_missing_required_key_points_into_the_workflow(
    project: Path, home: Path
) -> None:
    wf_path = project / "wf.toml"
    workflow, _ = load_workflow(
        wf_path,
        'name = "w"\n[roles.helper]\nexecution = "race"\n'
        '[[steps]]\nname = "a"\ntype = "shell"\nrun = "true"\n',
    )
    assert workflow is not None
    _, [d] = load_config(project, workflow=workflow, environ=env(home))
    assert (d.file, d.code, d.span.line) == (str(wf_path), "MUX004", 2)
    assert d.message == "role `helper` has no `backends`"


def test_config_layer_type_errors_are_positioned_in_that_file(project: Path, home: Path) -> None:
    user = write(
        home / ".config/muxlang/config.toml", '[backends.a]\ncommand = "a"\ntimeout = "soon"\n'
    )
    _, [d] = load_config(project, environ=env(home))
    assert (d.file, d.code, d.span.line, d.span.column) == (str(user), "MUX003", 3, 11)
    assert "`timeout` must be a number" in d.message


def test_merge_tables_merge_arrays_and_scalars_replace() -> None:
    base = {"a": {"x": 1, "l": [1, 2]}, "s": "old"}
    over = {"a": {"y": 2, "l": [3]}, "s": "new"}
    assert merge(base, over) == {"a": {"x": 1, "y": 2, "l": [3]}, "s": "new"}
    assert base == {"a": {"x": 1, "l": [1, 2]}, "s": "old"}  # inputs untouched


# --------------------------------------------------------------------------- teams


TEAMS = (
    '[teams.rust]\ndetect = ["Cargo.toml"]\nverify = "cargo test"\n'
    '[teams.rust.roles.analyzer]\nbackends = ["claude"]\n'
    '[teams.python]\ndetect = ["pyproject.toml", "src/**/*.py"]\nverify = "pytest"\n'
)


def test_first_matching_team_in_file_order_wins(project: Path, home: Path) -> None:
    write(project / ".muxlang/config.toml", TEAMS)
    (project / "pyproject.toml").touch()
    config, _ = load_config(project, environ=env(home))
    assert config.team == "python"
    assert config.team_verify == "pytest"
    (project / "Cargo.toml").touch()
    config, _ = load_config(project, environ=env(home))
    assert config.team == "rust"  # both match: rust comes first in the file


def test_detect_globs_are_relative_to_the_project_root(project: Path) -> None:
    teams = {
        "py": TeamConfig.model_validate({"detect": ["src/**/*.py"]}),
        "none": TeamConfig.model_validate({"detect": ["../*"]}),
    }
    assert detect_team(teams, project) is None
    write(project / "src/pkg/deep/mod.py", "")
    assert detect_team(teams, project) == "py"


def test_no_match_means_no_team(project: Path, home: Path) -> None:
    write(project / ".muxlang/config.toml", TEAMS)
    config, problems = load_config(project, environ=env(home))
    assert (config.team, problems) == (None, [])
    assert config.roles["analyzer"].backends == ["claude", "codex", "gemini", "ollama"]


def test_team_flag_overrides_detection_and_applies_role_overrides(
    project: Path, home: Path
) -> None:
    write(project / ".muxlang/config.toml", TEAMS)
    (project / "pyproject.toml").touch()
    config, problems = load_config(project, team="rust", environ=env(home))
    assert problems == []
    assert config.team == "rust"
    analyzer = config.roles["analyzer"]
    assert analyzer.backends == ["claude"]  # given by the team
    assert analyzer.execution == "fallback"  # kept from the role
    assert analyzer.description == "Code analysis and review"


def test_unknown_team_flag_is_a_clear_error(project: Path, home: Path) -> None:
    write(project / ".muxlang/config.toml", TEAMS)
    config, [d] = load_config(project, team="rsut", environ=env(home))
    assert config.team is None
    assert d.is_error
    assert "unknown team `rsut`" in d.message
    assert "rust, python" in d.message
    assert d.hint == "did you mean `rust`?"


def test_team_override_replaces_only_the_fields_it_gives() -> None:
    roles = {"r": RoleConfig(backends=["a", "b"], execution="parallel", min_success=2)}
    team = TeamConfig.model_validate({"roles": {"r": {"execution": "race"}}})
    assert apply_team(roles, team)["r"] == RoleConfig(
        backends=["a", "b"], execution="race", min_success=2
    )


# --------------------------------------------------------------------------- ${VAR}


def backend(**values: object) -> BackendConfig:
    return BackendConfig.model_validate({"command": "https://api.example/v1", **values})


def test_expand_env_expands_every_string_of_a_backend() -> None:
    b = backend(
        command="${BASE:-https://default/v1}",
        api_key="${KEY}",
        model="${MODEL:-gpt}",
        headers={"X-Org": "${ORG}"},
        options={"user": "${ORG}", "nested": ["${ORG}"], "temperature": 0.5},
        args=["--key=${KEY}"],
        env={"TOKEN": "${KEY}"},
        system="for ${ORG}",
    )
    out = expand_env("api", b, {"KEY": "sekret", "ORG": "acme", "MODEL": ""})
    assert out.command == "https://default/v1"
    assert out.api_key == "sekret"
    assert out.model == "gpt"  # `:-` also replaces an empty value
    assert out.headers == {"X-Org": "acme"}
    assert out.options == {"user": "acme", "nested": ["acme"], "temperature": 0.5}
    assert out.args == ["--key=sekret"]
    assert out.env == {"TOKEN": "sekret"}
    assert out.system == "for acme"
    assert b.api_key == "${KEY}"  # the configured value is untouched


def test_missing_variable_names_backend_and_variable_never_a_value() -> None:
    b = backend(api_key="${OPENAI_API_KEY}", headers={"X": "${SECRET_ONE}"})
    with pytest.raises(EnvVarError) as caught:
        expand_env("openai", b, {"SECRET_ONE": "hunter2-value"})
    message = str(caught.value)
    assert "backend `openai`" in message
    assert "OPENAI_API_KEY" in message
    assert "hunter2-value" not in message
    assert caught.value.backend == "openai"
    assert caught.value.variable == "OPENAI_API_KEY"


def test_unused_backend_with_missing_variable_is_not_an_error_at_load(
    project: Path, home: Path
) -> None:
    write(
        project / ".muxlang/config.toml",
        '[backends.openai]\ncommand = "https://x/v1"\napi_key = "${NOT_SET_ANYWHERE}"\n',
    )
    config, problems = load_config(project, environ=env(home))
    assert problems == []
    assert config.backends["openai"].api_key == "${NOT_SET_ANYWHERE}"  # still unexpanded
    assert missing_variables(config.backends["openai"], {}) == ["NOT_SET_ANYWHERE"]


def test_dollar_escape_and_plain_dollars_are_kept() -> None:
    out = expand_env("b", backend(system="cost $5, literal $${HOME}"), {"HOME": "/h"})
    assert out.system == "cost $5, literal ${HOME}"


def test_muxlang_config_naming_no_file_is_reported(project: Path, home: Path) -> None:
    missing = home / "nope.toml"
    _, [d] = load_config(project, environ=env(home, MUXLANG_CONFIG=str(missing)))
    assert d.file == str(missing)
    assert "cannot read file" in d.message


def test_dash_without_colon_falls_back_only_when_unset() -> None:
    b = backend(model="${M-unset}", system="${S:-empty}")
    assert expand_env("b", b, {"M": "", "S": ""}).model == ""
    assert expand_env("b", b, {"M": "", "S": ""}).system == "empty"
    assert expand_env("b", b, {}).model == "unset"


def test_team_override_of_an_undefined_role_creates_it() -> None:
    team = TeamConfig.model_validate({"roles": {"new": {"backends": ["x"]}, "ghost": {}}})
    roles = apply_team({}, team)
    assert roles == {"new": RoleConfig(backends=["x"])}
