"""``muxlang show RUN --html FILE``: one self-contained HTML page of a run.

The page holds everything inline — styles, one small script, the SVG graph —
and a Content-Security-Policy that forbids every request, so opening it never
reaches the network. Every recorded text (outputs are untrusted: an LLM's
answer, a command's stdout) is HTML-escaped; nothing recorded ever lands
inside the script.

The graph is laid out here: steps in layers by topological generation
(a step sits one layer below the deepest step it depends on), in plan order
inside a layer; edges are drawn from a dependency to its dependent.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from muxlang.records.facts import duration as _duration
from muxlang.records.facts import measured
from muxlang.records.facts import money as _money

if TYPE_CHECKING:
    from muxlang.records.store import RunRow, StepRow

NODE_W = 150
NODE_H = 34
GAP_X = 30
GAP_Y = 46
PAD = 16

COLORS = {
    "success": "#2e7d32",
    "failed": "#c62828",
    "skipped": "#9e9e9e",
    "cached": "#1565c0",
    "reused": "#6a1b9a",
    "running": "#ef6c00",
    "pending": "#9e9e9e",
}


def _color(status: str) -> str:
    """The color a status is drawn in (grey for any other: interrupted, ...)."""
    return COLORS.get(status, COLORS["pending"])


_CSS = """
:root { --fg:#1d1d1f; --muted:#6b6b70; --line:#d9d9de; --bg:#fbfbfd; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); margin: 0; padding: 24px 32px 64px; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 15px; margin: 28px 0 10px; text-transform: uppercase;
  letter-spacing: .05em; color: var(--muted); }
.meta { color: var(--muted); margin: 0 0 8px; }
.meta b { color: var(--fg); font-weight: 600; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff;
  font-size: 12px; font-weight: 600; vertical-align: 2px; }
.panel { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px;
  overflow-x: auto; }
svg text { font: 12px system-ui, sans-serif; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 10px 4px 0; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; }
th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; }
details.step { background: #fff; border: 1px solid var(--line); border-radius: 8px;
  margin: 0 0 10px; }
details.step > summary { cursor: pointer; padding: 8px 12px; list-style: none; }
details.step > summary::-webkit-details-marker { display: none; }
details.step[open] > summary { border-bottom: 1px solid var(--line); }
.body { padding: 8px 12px 12px; }
.facts { color: var(--muted); margin: 4px 0 8px; }
.label { font-size: 12px; font-weight: 600; color: var(--muted); margin: 10px 0 2px; }
pre { margin: 0; padding: 8px 10px; background: #f4f4f6; border-radius: 6px;
  white-space: pre-wrap; word-break: break-word; max-height: 420px; overflow: auto;
  font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre.err { background: #fdf0f0; }
.dot { display: inline-block; width: 9px; height: 9px; border-radius: 50%;
  margin-right: 6px; vertical-align: 0; }
.bar-row { display: flex; align-items: center; height: 20px; }
.bar-name { width: 180px; flex: none; overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; font-size: 12px; }
.bar-track { position: relative; flex: 1; height: 12px; background: #f0f0f3;
  border-radius: 3px; }
.bar { position: absolute; top: 0; height: 12px; border-radius: 3px; min-width: 2px; }
.bar-time { width: 80px; flex: none; text-align: right; font-size: 12px; color: var(--muted); }
.item .bar-name { padding-left: 16px; color: var(--muted); }
.node { cursor: pointer; }
"""

# only reads the DOM: no recorded text is ever part of the script
_JS = """
document.querySelectorAll('[data-step]').forEach(function (node) {
  node.addEventListener('click', function () {
    var target = document.getElementById('step-' + node.getAttribute('data-step'));
    if (target) { target.open = true; target.scrollIntoView({behavior: 'smooth'}); }
  });
});
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _status(row: StepRow) -> str:
    if row.status == "success" and row.origin == "cache":
        return "cached"
    if row.status == "success" and row.origin == "reused":
        return "reused"
    return row.status


def _anchor(name: str) -> str:
    """A step name as an id (names are [A-Za-z0-9_-]; anything else is dropped)."""
    return "".join(c for c in name if c.isalnum() or c in "_-")


# --------------------------------------------------------------------------- graph


def layers(order: Sequence[str], edges: Sequence[Sequence[str]]) -> list[list[str]]:
    """Steps by topological generation, in plan order inside each layer."""
    depth: dict[str, int] = {}
    parents: dict[str, list[str]] = {name: [] for name in order}
    for a, b in edges:
        if a in parents and b in parents:
            parents[b].append(a)
    for name in order:  # plan order is topological: parents come first
        depth[name] = 1 + max((depth.get(p, 0) for p in parents[name]), default=-1)
    out: list[list[str]] = []
    for name in order:
        while len(out) <= depth[name]:
            out.append([])
        out[depth[name]].append(name)
    return out


def graph_svg(order: Sequence[str], edges: Sequence[Sequence[str]], status: dict[str, str]) -> str:
    rows = layers(order, edges)
    widest = max((len(r) for r in rows), default=1)
    width = PAD * 2 + widest * NODE_W + (widest - 1) * GAP_X
    height = PAD * 2 + len(rows) * NODE_H + max(0, len(rows) - 1) * GAP_Y
    where: dict[str, tuple[float, float]] = {}
    for depth, row in enumerate(rows):
        row_w = len(row) * NODE_W + (len(row) - 1) * GAP_X
        x0 = (width - row_w) / 2
        for i, name in enumerate(row):
            where[name] = (x0 + i * (NODE_W + GAP_X), PAD + depth * (NODE_H + GAP_Y))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="step graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#8a8a90"/></marker></defs>',
    ]
    for a, b in edges:
        if a not in where or b not in where:
            continue
        ax, ay = where[a]
        bx, by = where[b]
        x1, y1 = ax + NODE_W / 2, ay + NODE_H
        x2, y2 = bx + NODE_W / 2, by
        mid = (y1 + y2) / 2
        parts.append(
            f'<path d="M {x1:.1f} {y1:.1f} C {x1:.1f} {mid:.1f}, {x2:.1f} {mid:.1f}, '
            f'{x2:.1f} {y2 - 2:.1f}" fill="none" stroke="#8a8a90" stroke-width="1.3" '
            'marker-end="url(#arrow)"/>'
        )
    for name in order:
        x, y = where[name]
        state = status.get(name, "pending")
        color = _color(state)
        label = name if len(name) <= 18 else name[:17] + "…"
        parts.append(
            f'<g class="node" data-step="{_e(_anchor(name))}">'
            f"<title>{_e(name)}: {_e(state)}</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{NODE_W}" height="{NODE_H}" rx="7" '
            f'fill="#fff" stroke="{color}" stroke-width="2"/>'
            f'<circle cx="{x + 14:.1f}" cy="{y + NODE_H / 2:.1f}" r="5" fill="{color}"/>'
            f'<text x="{x + 26:.1f}" y="{y + NODE_H / 2 + 4:.1f}">{_e(label)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------- timeline


def timeline(run: RunRow, rows: Sequence[StepRow]) -> str:
    start = run.started
    spans: list[tuple[StepRow, float, float]] = []
    for row in rows:
        if row.status == "skipped" or row.started is None:
            continue
        end = row.ended if row.ended is not None else row.started + row.duration_ms / 1000
        spans.append((row, row.started - start, max(end - row.started, 0.0)))
    if not spans:
        return '<p class="meta">No step ran.</p>'
    total = max((offset + length for _, offset, length in spans), default=0.0)
    if run.ended is not None:
        total = max(total, run.ended - start)
    total = total or 1e-3
    out = ['<div class="panel">']
    for row, offset, length in spans:
        left = 100 * offset / total
        width = max(100 * length / total, 0.3)
        name = row.name if row.item < 0 else f"item {row.item + 1}"
        color = _color(_status(row))
        css = "bar-row item" if row.item >= 0 else "bar-row"
        out.append(
            f'<div class="{css}"><div class="bar-name" title="{_e(row.name)}">{_e(name)}</div>'
            f'<div class="bar-track"><div class="bar" style="left:{left:.2f}%;'
            f'width:{width:.2f}%;background:{color}"></div></div>'
            f'<div class="bar-time">{_e(_duration(row.duration_ms))}</div></div>'
        )
    out.append("</div>")
    return "".join(out)


# --------------------------------------------------------------------------- steps


def _block(label: str, text: str | None, css: str = "") -> str:
    if text is None:
        return ""
    klass = f' class="{css}"' if css else ""
    return f'<div class="label">{_e(label)}</div><pre{klass}>{_e(text) or "(empty)"}</pre>'


def _facts(row: StepRow) -> str:
    facts = [row.kind or "step", _status(row), *measured(row)]
    if row.reason:
        facts.append(row.reason)
    return " · ".join(_e(f) for f in facts)


def _step_body(row: StepRow) -> str:
    parts = [f'<div class="facts">{_facts(row)}</div>']
    if row.item >= 0:
        parts.append(_block("item", json.dumps(row.item_value, ensure_ascii=False)))
    if row.error:
        parts.append(_block("error", row.error, "err"))
    parts.append(_block("command", row.command))
    parts.append(_block("system", row.system))
    parts.append(_block("prompt", row.prompt))
    if row.status != "skipped":
        parts.append(_block("output", row.output or ""))
    if row.stderr:
        parts.append(_block("stderr", row.stderr, "err"))
    return "".join(parts)


def steps_html(rows: Sequence[StepRow]) -> str:
    items: dict[str, list[StepRow]] = {}
    for row in rows:
        if row.item >= 0:
            items.setdefault(row.name, []).append(row)
    out: list[str] = []
    for row in rows:
        if row.item >= 0:
            continue
        state = _status(row)
        color = _color(state)
        opened = " open" if row.status == "failed" else ""
        out.append(
            f'<details class="step" id="step-{_e(_anchor(row.name))}"{opened}><summary>'
            f'<span class="dot" style="background:{color}"></span><b>{_e(row.name)}</b> '
            f'<span class="meta">{_e(state)} · {_e(_duration(row.duration_ms))}</span></summary>'
            f'<div class="body">{_step_body(row)}'
        )
        for item in items.get(row.name, ()):
            out.append(
                f'<details class="step"><summary><span class="dot" style="background:'
                f'{_color(_status(item))}"></span>item {item.item + 1}</summary>'
                f'<div class="body">{_step_body(item)}</div></details>'
            )
        out.append("</div></details>")
    return "".join(out)


def _table(rows: Sequence[StepRow]) -> str:
    out = [
        "<table><tr><th>step</th><th>status</th><th>duration</th><th>backend</th>"
        '<th class="num">tokens in</th><th class="num">tokens out</th>'
        '<th class="num">cost</th></tr>'
    ]
    for row in rows:
        if row.item >= 0:
            continue
        color = _color(_status(row))
        out.append(
            f'<tr><td><span class="dot" style="background:{color}"></span>{_e(row.name)}</td>'
            f"<td>{_e(_status(row))}</td><td>{_e(_duration(row.duration_ms))}</td>"
            f"<td>{_e(row.backend or '-')}</td>"
            f'<td class="num">{row.input_tokens:,}</td><td class="num">{row.output_tokens:,}</td>'
            f'<td class="num">{_e(_money(row.cost))}</td></tr>'
        )
    out.append("</table>")
    return "".join(out)


def render_report(run: RunRow, rows: Sequence[StepRow]) -> str:
    """The whole page, as text."""
    order = list(run.plan.get("order") or [r.name for r in rows if r.item < 0])
    edges = [tuple(e) for e in run.plan.get("edges") or [] if isinstance(e, list) and len(e) == 2]
    status = {r.name: _status(r) for r in rows if r.item < 0}
    started = datetime.fromtimestamp(run.started).strftime("%Y-%m-%d %H:%M:%S")
    color = _color(run.status)
    usage = f"{run.input_tokens:,} in / {run.output_tokens:,} out tokens"
    if run.cost is not None:
        usage += f" · {_money(run.cost)}"
    args = ", ".join(f"{k}={v}" for k, v in run.args.items()) or "none"
    error = f'<p class="meta">error: <b>{_e(run.error)}</b></p>' if run.error else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(run.workflow)} · run {_e(run.id)}</title>"
        f"<style>{_CSS}</style></head><body>"
        f'<h1>{_e(run.workflow)} <span class="badge" style="background:{color}">'
        f"{_e(run.status)}</span></h1>"
        f'<p class="meta">run <b>{_e(run.id)}</b> · started {_e(started)} · '
        f"{_e(_duration(run.duration_ms))} · {_e(usage)}</p>"
        f'<p class="meta">file {_e(run.path)} · args {_e(args)} · team {_e(run.team or "none")}'
        f" · muxlang {_e(run.version)}</p>{error}"
        f'<h2>Graph</h2><div class="panel">{graph_svg(order, edges, status)}</div>'
        f"<h2>Timeline</h2>{timeline(run, rows)}"
        f'<h2>Summary</h2><div class="panel">{_table(rows)}</div>'
        f"<h2>Steps</h2>{steps_html(rows)}"
        f"<script>{_JS}</script></body></html>\n"
    )
