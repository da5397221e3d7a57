"""Each static check on hand-built ASTs: what it reports, where, and what it lets pass."""

from __future__ import annotations

import dataclasses

from mux_compiler_support import (
    apply,
    attr,
    config,
    ex,
    filt,
    lit,
    local_config,
    name,
    path,
    query,
    ref,
    shell,
    tpl,
    workflow,
)

from muxlang.compiler import checks
from muxlang.compiler.build import compile_workflow
from muxlang.compiler.checks import CheckContext
from muxlang.config.models import RoleConfig
from muxlang.diagnostics import Severity
from muxlang.source import Span
from muxlang.steps.apply import check_apply_source
from muxlang.template import ast as t
from muxlang.template import parse_expression
from muxlang.workflow import Arg, Ref


def run(check, wf, cfg=None):
    return list(check(CheckContext(wf, cfg or config())))


def codes(diags):
    return [d.code for d in diags]


# --------------------------------------------------------------------------- MUX020


def test_duplicate_step_is_reported_at_the_second_naming_the_first_line():
    first, second = shell("diff"), shell("diff")
    [d] = run(checks.check_duplicate_steps, workflow(first, second))
    assert d.code == "MUX020"
    assert d.span == second.name_span
    assert f"line {first.name_span.line}" in d.message


def test_distinct_names_are_not_duplicates():
    assert run(checks.check_duplicate_steps, workflow(shell("a"), shell("b"))) == []


# --------------------------------------------------------------------------- MUX021


def test_unknown_step_in_template_points_at_the_name_with_did_you_mean():
    expr = path("steps.dif.output")
    wf = workflow(shell("diff"), query("analyze", tpl("x ", expr)))
    [d] = run(checks.check_unknown_steps, wf)
    assert d.code == "MUX021"
    assert d.span == expr.obj.name_span
    assert d.hint == "did you mean `diff`?"


def test_unknown_step_in_depends_on_and_source():
    dep = ref("fech")
    wf = workflow(shell("fetch"), shell("b", depends_on=(dep,)), apply("c", "fixx"))
    diags = run(checks.check_unknown_steps, wf)
    assert codes(diags) == ["MUX021", "MUX021"]
    assert diags[0].span == dep.span
    assert "fetch" in (diags[0].hint or "")


def test_known_steps_pass():
    wf = workflow(shell("a"), shell("b", tpl(path("steps.a.exit_code")), depends_on=(ref("a"),)))
    assert run(checks.check_unknown_steps, wf) == []


# --------------------------------------------------------------------------- MUX022


def test_cycle_lists_every_step_in_order():
    wf = workflow(
        shell("a", tpl(path("steps.c.output"))),
        shell("b", depends_on=(ref("a"),)),
        shell("c", depends_on=(ref("b"),)),
    )
    plan, diags = compile_workflow(wf, config())
    assert plan is None
    cycle = [d for d in diags if d.code == "MUX022"]
    assert len(cycle) == 1
    assert "a → c → b → a" in cycle[0].message


def test_self_reference_is_a_cycle():
    wf = workflow(query("a", tpl(path("steps.a.output"))))
    _, diags = compile_workflow(wf, config())
    assert codes(diags) == ["MUX022"]
    assert "`a` depends on itself" in diags[0].message


# --------------------------------------------------------------------------- MUX023


def test_unknown_field_points_at_the_field():
    expr = path("steps.diff.outptu")
    wf = workflow(shell("diff"), query("q", tpl(expr)))
    [d] = run(checks.check_step_fields, wf)
    assert d.code == "MUX023"
    assert d.span == expr.name_span
    assert d.hint == "did you mean `output`?"


def test_fields_depend_on_step_type_and_for_each():
    wf = workflow(
        shell("s"),
        query("q"),
        shell("each", tpl(name("item")), for_each=ex(t.ListExpr((lit("a"),), lit(1).span))),
        query(
            "uses",
            tpl(
                path("steps.s.exit_code"),
                path("steps.s.stderr"),
                path("steps.q.outputs"),
                path("steps.q.backend"),
                path("steps.each.results"),
                path("steps.s.duration_ms"),
            ),
        ),
        query(
            "bad", tpl(path("steps.s.outputs"), path("steps.q.exit_code"), path("steps.s.results"))
        ),
    )
    diags = run(checks.check_step_fields, wf)
    assert codes(diags) == ["MUX023"] * 3
    assert "query steps" in (diags[0].hint or "")
    assert "shell steps" in (diags[1].hint or "")
    assert "for_each" in (diags[2].hint or "")


# --------------------------------------------------------------------------- MUX024


def test_item_outside_for_each_step():
    item = name("item")
    wf = workflow(shell("a", tpl("wc -l ", item)))
    [d] = run(checks.check_item_scope, wf)
    assert d.code == "MUX024"
    assert d.span == item.span


def test_item_inside_for_each_and_template_for_are_fine():
    loop_body = (
        t.Output(attr(name("loop"), "index"), lit(0).span),
        t.Output(name("x"), lit(0).span),
    )
    for_tag = t.For("x", path("steps.a.results"), loop_body, lit(0).span, lit(0).span)
    wf = workflow(
        shell("a", tpl(name("item")), for_each=ex(t.ListExpr((), lit(0).span))),
        shell("b", tpl(for_tag)),
    )
    assert run(checks.check_item_scope, wf) == []


def test_item_in_for_each_itself_is_an_error():
    wf = workflow(shell("a", for_each=ex(name("item"))))
    [d] = run(checks.check_item_scope, wf)
    assert "for_each" in d.message


# --------------------------------------------------------------------------- MUX025


def test_undeclared_arg_only_when_args_are_declared():
    expr = path("args.fiel")
    wf = workflow(query("a", tpl(expr)), args=("file",))
    [d] = run(checks.check_undeclared_args, wf)
    assert d.code == "MUX025"
    assert d.span == expr.name_span
    assert d.hint == "did you mean `file`?"
    assert run(checks.check_undeclared_args, workflow(query("a", tpl(path("args.x"))))) == []


# --------------------------------------------------------------------------- MUX030


def test_unknown_role_and_backend():
    role, backend = Ref("analyser", lit(0).span), Ref("claud", lit(0).span)
    wf = workflow(query("a", role=role), query("b", role=None, backend=backend))
    diags = run(checks.check_roles_and_backends, wf)
    assert codes(diags) == ["MUX030", "MUX030"]
    assert diags[0].span == role.span
    assert diags[0].hint == "did you mean `analyzer`?"
    assert diags[1].hint == "did you mean `claude`?"


def test_workflow_local_roles_resolve_and_nest():
    local = local_config(roles={"multi": {"backends": ["claude", "analyzer"]}})
    wf = workflow(query("a", role=Ref("multi", lit(0).span)), config=local)
    assert run(checks.check_roles_and_backends, wf) == []


def test_role_naming_nothing_and_role_cycles():
    cfg = config(
        roles={
            "a": RoleConfig(backends=["b"]),
            "b": RoleConfig(backends=["a", "ghost"]),
        }
    )
    wf = workflow(query("q", role=Ref("a", lit(0).span)))
    diags = run(checks.check_roles_and_backends, wf, cfg)
    messages = sorted(d.message for d in diags)
    assert messages == [
        "role `b` uses `ghost`, which is neither a backend nor a role",
        "role cycle: a → b → a",
    ]


def test_role_given_as_backend_gets_a_hint():
    wf = workflow(query("a", role=None, backend=Ref("analyzer", lit(0).span)))
    [d] = run(checks.check_roles_and_backends, wf)
    assert d.hint == '`analyzer` is a role: write `role = "analyzer"`'


# --------------------------------------------------------------------------- MUX031


def test_apply_source_must_be_a_query_step():
    wf = workflow(shell("diff"), query("fix"), apply("ok", "fix"), apply("bad", "diff"))
    [d] = run(check_apply_source, wf)
    assert d.code == "MUX031"
    assert "shell step" in d.message


# --------------------------------------------------------------------------- MUX013


def test_for_each_over_a_string_suggests_lines():
    expr = path("steps.list.output")
    wf = workflow(shell("list"), shell("each", tpl(name("item")), for_each=ex(expr)))
    [d] = run(checks.check_iterables, wf)
    assert d.code == "MUX013"
    assert d.span == expr.span
    assert "`| lines` or `| from_json`" in (d.hint or "")


def test_access_on_a_string():
    expr = attr(path("steps.a.output"), "text")
    wf = workflow(shell("a"), query("b", tpl(expr)))
    [d] = run(checks.check_access_types, wf)
    assert d.code == "MUX013"
    assert d.span == expr.name_span


def test_ordering_a_number_with_a_string():
    cmp = t.Compare(">", path("steps.a.exit_code"), lit("3"), lit(0).span)
    wf = workflow(shell("a"), shell("b", if_=ex(cmp)))
    [d] = run(checks.check_comparison_types, wf)
    assert "cannot compare a number with a string" in d.message


def test_unknown_root_name_has_did_you_mean():
    expr = path("stpes.a.output")
    wf = workflow(shell("a"), query("b", tpl(expr)))
    [d] = run(checks.check_unknown_names, wf)
    assert d.code == "MUX026"
    assert d.hint == "did you mean `steps`?"


def test_status_functions_only_in_if():
    call = t.Call("success", (), lit(0).span)
    bad = t.Call("sucess", (), lit(0).span)
    wf = workflow(shell("a", tpl(call), if_=ex(t.BoolOp("or", bad, call, lit(0).span))))
    diags = run(checks.check_status_functions, wf)
    assert sorted(codes(diags)) == ["MUX011", "MUX013"]


# --------------------------------------------------------------------------- MUX040


def test_step_output_with_raw_warns():
    expr = filt(path("steps.fetch.output"), "raw")
    wf = workflow(shell("fetch"), shell("use", tpl("echo ", expr)))
    [d] = run(checks.check_shell_injection, wf)
    assert d.code == "MUX040"
    assert d.severity is Severity.WARNING
    assert d.span == expr.span
    assert "`raw`" in d.message


def test_step_output_quoted_for_its_place_does_not_warn():
    # since SPEC 11 every insertion is quoted: plain, escaped, numbers, env, prompts
    wf = workflow(
        shell("fetch"),
        shell(
            "use",
            tpl(
                "echo ",
                path("steps.fetch.output"),
                ' "',
                filt(filt(path("steps.fetch.output"), "trim"), "shell_escape"),
                '" ',
                filt(path("steps.fetch.exit_code"), "raw"),
                t.Compare("==", path("steps.fetch.output"), lit("x"), lit(0).span),
            ),
            env=(("OUT", tpl(path("steps.fetch.output"))),),
        ),
        query("q", tpl(path("steps.fetch.output"))),
    )
    assert run(checks.check_shell_injection, wf) == []


def test_output_run_as_code_warns_escaped_or_not():
    expr = filt(path("steps.fetch.output"), "shell_escape")
    wf = workflow(shell("fetch"), shell("use", tpl("bash -c ", expr)))
    [d] = run(checks.check_shell_injection, wf)
    assert "`bash -c`" in d.message
    assert "env" in (d.hint or "")


def test_argument_run_as_code_warns():
    wf = workflow(shell("use", tpl("eval ", path("args.cmd"))), args=("cmd",))
    [d] = run(checks.check_shell_injection, wf)
    assert "the argument `cmd`" in d.message


def test_item_from_step_output_is_tainted():
    each = shell(
        "each",
        tpl("python3 -c ", name("item")),
        for_each=ex(filt(path("steps.list.output"), "lines")),
    )
    wf = workflow(shell("list"), each)
    [d] = run(checks.check_shell_injection, wf)
    assert "`item`" in d.message


# --------------------------------------------------------------------------- lowering


def test_plan_edges_order_and_status_functions():
    wf = workflow(
        shell("late", tpl(path("steps.first.exit_code"))),
        shell("first"),
        shell(
            "cleanup",
            if_=ex(t.Call("always", (), lit(0).span)),
            depends_on=(ref("late"),),
        ),
        shell("other"),
    )
    plan, diags = compile_workflow(wf, config())
    assert plan is not None, diags
    assert plan.order == ("first", "late", "cleanup", "other")
    assert set(plan.graph.edges) == {("first", "late"), ("late", "cleanup")}
    assert plan.step("cleanup").status_functions == frozenset({"always"})
    assert plan.step("late").dependencies == ("first",)
    assert plan.final_steps() == ("cleanup", "other")


def test_if_per_item():
    cond = t.Compare("!=", name("item"), lit(""), lit(0).span)
    wf = workflow(
        shell("a", tpl(name("item")), for_each=ex(t.ListExpr((), lit(0).span)), if_=ex(cond))
    )
    plan, _ = compile_workflow(wf, config())
    assert plan is not None
    assert plan.step("a").if_per_item


# --------------------------------------------------------------------------- MUX011 / MUX012


def test_unknown_filter_points_at_its_name_with_did_you_mean():
    node = filt(path("steps.a.output"), "trimm")
    wf = workflow(shell("a"), query("b", tpl(node)))
    [d] = run(checks.check_unknown_filters, wf)
    assert d.code == "MUX011"
    assert d.span == node.name_span
    assert d.hint == "did you mean `trim`?"


def test_known_filters_pass():
    node = filt(filt(filt(path("steps.a.output"), "lines"), "nonblank"), "join", lit("; "))
    wf = workflow(shell("a"), query("b", tpl(node)))
    assert run(checks.check_unknown_filters, wf) == []
    assert run(checks.check_filter_arguments, wf) == []
    assert run(checks.check_filter_input_types, wf) == []


def test_filter_argument_count_and_keywords():
    too_many = filt(lit("x"), "trim", lit(1))
    missing = filt(lit("x"), "replace", lit("a"))
    unknown = filt(lit([]), "join", separator=lit(","))
    twice = filt(lit([]), "join", lit(","), sep=lit(";"))
    ok = filt(lit("x"), "replace", lit("a"), new=lit("b"))
    wf = workflow(query("q", tpl(too_many, missing, unknown, twice, ok)))
    diags = run(checks.check_filter_arguments, wf)
    assert [d.message for d in diags] == [
        "`trim` takes no arguments, but 1 was given",
        "`replace` is missing `new`",
        "`join` has no argument `separator`",
        "`join` got argument `sep` twice",
    ]
    assert diags[0].span == too_many.args[0].span
    assert diags[2].span == unknown.kwargs[0][1].span
    assert diags[1].hint == "usage: `replace(old, new, count=none)`"


def test_unknown_or_repeated_keyword_points_at_its_name_not_its_value():
    # a parsed node records where each keyword's NAME is: MUX012 underlines it
    node = parse_expression("xs | join(separator=',') | replace('a', 'b', old='c')")
    assert isinstance(node, t.Filter)
    inner = node.operand
    assert isinstance(inner, t.Filter)
    assert inner.kwarg_spans == (Span(1, 11, 1, 20),)  # `separator`
    assert node.kwarg_spans == (Span(1, 46, 1, 49),)  # `old`
    wf = workflow(query("q", tpl(node)))
    diags = sorted(run(checks.check_filter_arguments, wf), key=lambda d: d.span.column)
    assert [d.message for d in diags] == [
        "`join` has no argument `separator`",
        "`replace` got argument `old` twice",
    ]
    assert [d.span for d in diags] == [inner.kwarg_spans[0], node.kwarg_spans[0]]


def test_filter_input_kind_mismatch():
    join = filt(path("steps.a.output"), "join")
    upper = filt(path("steps.a.exit_code"), "upper")
    fine = filt(filt(path("steps.a.output"), "lines"), "join")
    wf = workflow(shell("a"), query("b", tpl(join, upper, fine)))
    diags = run(checks.check_filter_input_types, wf)
    assert [d.span for d in diags] == [join.name_span, upper.name_span]
    assert diags[0].message == "`join` takes a list, but `steps.a.output` is a string"
    assert "`| lines`" in (diags[0].hint or "")
    assert diags[1].message == "`upper` takes a string, but `steps.a.exit_code` is a number"


def test_filter_argument_kinds():
    bad_sep = lit(1)
    bad_len = path("steps.a.output")
    node = filt(filt(path("steps.a.output"), "lines"), "join", bad_sep)
    cut = filt(path("steps.a.output"), "truncate", length=bad_len)
    fine = filt(path("steps.a.output"), "indent", lit("> "), first=lit(True))
    wf = workflow(shell("a"), query("b", tpl(node, cut, fine)))
    diags = run(checks.check_filter_argument_types, wf)
    assert [d.span for d in diags] == [bad_sep.span, bad_len.span]
    assert diags[0].message == "`sep` of `join` must be a string, but `1` is a number"
    assert diags[1].message == (
        "`length` of `truncate` must be a number, but `steps.a.output` is a string"
    )


def test_equality_between_a_number_and_a_string_is_always_false():
    cmp = t.Compare("==", path("steps.a.exit_code"), lit("0"), lit(0).span)
    fine = t.Compare("==", path("steps.a.exit_code"), lit(0), lit(0).span)
    also_fine = t.Compare("!=", path("steps.a.output"), lit(""), lit(0).span)
    wf = workflow(shell("a"), shell("b", if_=ex(t.BoolOp("and", cmp, fine, lit(0).span))))
    wf2 = workflow(shell("a"), shell("b", if_=ex(also_fine)))
    [d] = run(checks.check_comparison_types, wf)
    assert d.message == "`==` compares a number with a string: always false"
    assert d.hint == "compare with the number: `0` instead of `'0'`"
    assert run(checks.check_comparison_types, wf2) == []


def test_args_with_a_non_string_default_have_no_static_kind():
    cmp = t.Compare("==", path("args.n"), lit(3), lit(0).span)
    wf = workflow(shell("a", if_=ex(cmp)), args=("n",))
    # a required arg comes from the command line: always a string
    assert codes(run(checks.check_comparison_types, wf)) == ["MUX013"]
    with_default = dataclasses.replace(wf, args=(Arg("n", None, 3, False, lit(0).span),))
    assert run(checks.check_comparison_types, with_default) == []


def test_ordering_and_membership_kinds_follow_the_evaluator():
    bool_order = t.Compare("<", lit(True), lit(1), lit(0).span)
    num_in_text = t.Compare("in", lit(3), path("steps.a.output"), lit(0).span)
    fine = t.Compare("in", lit("x"), path("steps.a.output"), lit(0).span)
    wf = workflow(
        shell("a"), shell("b", if_=ex(t.BoolOp("or", bool_order, num_in_text, lit(0).span)))
    )
    diags = run(checks.check_comparison_types, wf)
    assert [d.message for d in diags] == [
        "`<` cannot compare a boolean with a number",
        "`in` a string needs a string on its left, but `3` is a number",
    ]
    assert run(checks.check_comparison_types, workflow(shell("a"), shell("b", if_=ex(fine)))) == []


def test_familiar_field_names_point_at_the_real_field():
    stdout = path("steps.a.stdout")
    code = path("steps.a.returncode")
    wf = workflow(shell("a"), query("b", tpl(stdout, code)))
    hints = [d.hint for d in run(checks.check_step_fields, wf)]
    assert hints == [
        "use `output`: a shell step's stdout (trailing newlines removed) is its `output`",
        "use `exit_code`: that is the field",
    ]
