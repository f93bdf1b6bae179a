"""The offline sweep report: one self-contained HTML file (plotly, its JS inline) and PNGs.

    python code/sweep.py report SWEEP_ID [--out DIR]

Figures are pure functions of the plain sweep data of ``report_data`` (``read_sweep`` builds
it from a store). The HTML loads nothing from the network: plotly's JS is embedded once.
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any, Callable

import plotly.graph_objects as go
import plotly.offline

from . import report_data as rd
from .files import write_text_whole

REPORT_DIR = "report"  # inside the sweep's folder, unless --out
HTML_NAME = "report.html"
FIGURES = ("parallel_coordinates", "importance", "curves", "wall_time")
# The steps ``write_sweep_report`` names: the importance model, each plotly figure, the
# HTML page, each PNG.
STEPS = 1 + 2 * len(FIGURES) + 1


def _quiet(step: str) -> None:
    pass


def default_dir(sweep_folder: str | Path) -> Path:
    return Path(sweep_folder) / REPORT_DIR


def _label(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


# ----------------------------------------------------------------------------- plotly figures


def parallel_figure(sweep: dict) -> go.Figure:
    runs = [r for r in sweep["runs"] if rd.finite(r.get("value"))]
    names = sweep["searched"]
    dims = []
    for name in names:
        vals = [r["params"].get(name) for r in runs]
        if all(rd.finite(v) for v in vals):
            dims.append({"label": name, "values": vals})
        else:
            cats = sorted({str(v) for v in vals})
            dims.append({"label": name, "values": [cats.index(str(v)) for v in vals],
                         "tickvals": list(range(len(cats))), "ticktext": cats})
    values = [r["value"] for r in runs]
    dims.append({"label": sweep["metric"], "values": values})
    fig = go.Figure(go.Parcoords(line={"color": values, "colorscale": "Viridis",
                                       "showscale": True}, dimensions=dims))
    fig.update_layout(title=f"runs over the searched parameters, coloured by {sweep['metric']}")
    return fig


def importance_figure(sweep: dict, rows: list[dict]) -> go.Figure:
    names = [d["param"] for d in rows]
    fig = go.Figure([
        go.Bar(name="importance (random forest)", x=[d["importance"] for d in rows], y=names,
               orientation="h"),
        go.Bar(name=f"correlation with {sweep['metric']}", x=[d["correlation"] for d in rows],
               y=names, orientation="h")])
    caveat = rd.importance_caveat(sweep["runs"])
    fig.update_layout(barmode="group", yaxis={"autorange": "reversed"},
                      title="parameter importance" + (f"<br><sub>caveat: {caveat}</sub>"
                                                      if caveat else ""))
    return fig


def curves_figure(sweep: dict, thresholds: dict[int, float]) -> go.Figure:
    fig = go.Figure()
    for r in sweep["runs"]:
        pts = [h for h in r["history"] if rd.finite(h.get("value"))]
        fig.add_trace(go.Scatter(x=[h["step"] for h in pts], y=[h["value"] for h in pts],
                                 mode="lines+markers", name=f"{r['id']} ({r['state']})"))
        stop = rd.stop_point(r, thresholds)
        if stop and pts:
            band, thr = stop
            fig.add_trace(go.Scatter(
                x=[pts[-1]["step"]], y=[pts[-1]["value"]], mode="markers", showlegend=False,
                marker={"symbol": "x", "size": 12, "color": "red"},
                hovertext=f"{r['id']} stopped at epoch-{band} band"
                          + (f", threshold {thr:.4g}" if thr is not None else "")))
    if thresholds:
        fig.add_trace(go.Scatter(x=list(thresholds), y=list(thresholds.values()),
                                 mode="markers", name="hyperband band threshold",
                                 marker={"symbol": "line-ew-open", "size": 24, "color": "red"}))
    fig.update_layout(title=f"{sweep['metric']} per step (x: stopped by hyperband)",
                      xaxis_title=rd.STEP_AXIS, yaxis_title=sweep["metric"])
    return fig


def wall_time_figure(sweep: dict) -> go.Figure:
    best = rd.best_so_far(sweep["runs"], sweep["goal"])
    starts = [r["started_at"] for r in sweep["runs"] if r.get("started_at")]
    t0 = min(starts) if starts else 0.0
    done = [r for r in sweep["runs"] if rd.finite(r.get("value")) and r.get("ended_at")]
    fig = go.Figure([
        go.Scatter(x=[(r["ended_at"] - t0) / 60 for r in done], y=[r["value"] for r in done],
                   mode="markers", name="run", text=[r["id"] for r in done]),
        go.Scatter(x=[t / 60 for t, _ in best], y=[b for _, b in best], mode="lines",
                   line_shape="hv", name="best so far")])
    fig.update_layout(title=f"{sweep['metric']} against wall time", xaxis_title="minutes",
                      yaxis_title=sweep["metric"])
    return fig


# ----------------------------------------------------------------------------- leaderboard


def leaderboard_rows(sweep: dict) -> tuple[list[str], list[list[str]]]:
    header = ["run", "state", sweep["metric"] or "metric", "steps", "minutes", *sweep["searched"]]
    body = []
    for r in rd.leaderboard(sweep["runs"], sweep["goal"]):
        secs = (r["ended_at"] - r["started_at"]) if r.get("ended_at") and r.get("started_at") else None
        body.append([r["id"], r["state"],
                     _label(r["value"]) if rd.finite(r.get("value")) else "",
                     str(len(r["history"])), f"{secs / 60:.1f}" if secs is not None else "",
                     *(_label(r["params"].get(n, "")) for n in sweep["searched"])])
    return header, body


def leaderboard_html(sweep: dict) -> str:
    header, body = leaderboard_rows(sweep)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in body)
    return f'<table id="leaderboard"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


# ----------------------------------------------------------------------------- output


def build_figures(sweep: dict, step: Callable[[str], None] = _quiet) -> dict[str, Any]:
    """Everything the report draws, computed once: the plotly figures and their inputs;
    ``step`` hears each part begin (``progress.Progress.step``)."""
    curves = [rd.metric_values(r) for r in sweep["runs"]]
    bands, eta = rd.hyperband_bands(sweep.get("early_terminate"),
                                    max((len(c) for c in curves), default=0))
    thresholds = rd.band_thresholds(curves, bands, eta, sweep["goal"]) if bands else {}
    step("computing parameter importance")
    rows = rd.importance(sweep["runs"], sweep["searched"])
    draw = {"parallel_coordinates": lambda: parallel_figure(sweep),
            "importance": lambda: importance_figure(sweep, rows),
            "curves": lambda: curves_figure(sweep, thresholds),
            "wall_time": lambda: wall_time_figure(sweep)}
    figures = {}
    for name in FIGURES:
        step(f"plotting {name}")
        figures[name] = draw[name]()
    return {"thresholds": thresholds, "importance": rows, "plotly": figures}


def render_html(sweep: dict, figs: dict[str, Any]) -> str:
    parts = [f'<div class="figure" id="fig-{name}">'
             + fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"plot-{name}")
             + "</div>" for name, fig in figs["plotly"].items()]
    title = html.escape(f"sweep {sweep['id']}")
    made = time.strftime("%Y-%m-%d %H:%M")
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title>"
            "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px}</style>"
            f"<script type=\"text/javascript\">{plotly.offline.get_plotlyjs()}</script></head>"
            f"<body><h1>{title}</h1><p>{html.escape(sweep['metric'] or '')} "
            f"({html.escape(sweep['goal'])}), {len(sweep['runs'])} runs; made {made}</p>"
            + "".join(parts) + "<h2>leaderboard</h2>" + leaderboard_html(sweep)
            + "</body></html>")


def write_sweep_report(sweep: dict, out_dir: str | Path,
                       step: Callable[[str], None] = _quiet) -> Path:
    """Write report.html and one PNG per figure into ``out_dir``; return the HTML's path.
    Each file is replaced whole (``files.replaced_whole``): runners finishing one shared sweep
    at once each write the report, and a reader never sees half a file. ``step`` hears each
    of the ``STEPS`` parts begin."""
    from . import report_png

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figs = build_figures(sweep, step)
    page = out / HTML_NAME
    step(f"writing {HTML_NAME}")
    write_text_whole(page, render_html(sweep, figs))
    report_png.write_pngs(sweep, figs, out, step)
    return page
