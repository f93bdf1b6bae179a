"""The sweep report's figures as PNG (matplotlib), from the same data as the HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from . import report_data as rd  # noqa: E402
from .files import replaced_whole  # noqa: E402


def parallel_png(sweep: dict, ax: Any) -> None:
    runs = [r for r in sweep["runs"] if rd.finite(r.get("value"))]
    names = list(sweep["searched"])
    x, categories = rd.feature_matrix(runs, names)
    y = np.array([float(r["value"]) for r in runs]).reshape(-1, 1)
    data = np.hstack([x, y]) if len(runs) else np.zeros((0, len(names) + 1))
    lo = data.min(axis=0) if len(data) else np.zeros(data.shape[1])
    hi = data.max(axis=0) if len(data) else np.ones(data.shape[1])
    scaled = (data - lo) / np.where(hi > lo, hi - lo, 1.0)
    axes = np.arange(data.shape[1])
    lines = LineCollection([np.column_stack([axes, row]) for row in scaled], cmap="viridis",
                           array=y.ravel(), linewidths=1.5, alpha=0.8)
    ax.add_collection(lines)
    plt.colorbar(lines, ax=ax, label=sweep["metric"])
    ax.set_xticks(axes, [*names, sweep["metric"]], rotation=20)
    ax.set_xlim(-0.1, axes[-1] + 0.1)
    ax.set_ylim(-0.1, 1.1)
    ax.set_yticks([])
    for a in axes:  # each axis' own range, bottom and top
        ax.axvline(a, color="0.6", lw=0.8)
        cats = categories.get(names[a]) if a < len(names) else None
        if cats:
            for code, cat in enumerate(cats):
                ax.text(a, (code - lo[a]) / max(hi[a] - lo[a], 1.0), f" {cat}", fontsize=7)
        else:
            ax.text(a, -0.04, f"{lo[a]:.3g}", ha="center", va="top", fontsize=7)
            ax.text(a, 1.04, f"{hi[a]:.3g}", ha="center", va="bottom", fontsize=7)
    ax.set_title(f"runs over the searched parameters, coloured by {sweep['metric']}")


def importance_png(sweep: dict, rows: list[dict], ax: Any) -> None:
    pos = np.arange(len(rows))
    ax.barh(pos - 0.2, [d["importance"] for d in rows], 0.4, label="importance (random forest)")
    ax.barh(pos + 0.2, [d["correlation"] for d in rows], 0.4,
            label=f"correlation with {sweep['metric']}")
    ax.set_yticks(pos, [d["param"] for d in rows])
    ax.invert_yaxis()
    ax.axvline(0, color="0.3", lw=0.8)
    ax.legend(loc="lower right", fontsize=8)
    caveat = rd.importance_caveat(sweep["runs"])
    ax.set_title("parameter importance" + (f"\ncaveat: {caveat}" if caveat else ""), fontsize=10)


def curves_png(sweep: dict, thresholds: dict[int, float], ax: Any) -> None:
    for r in sweep["runs"]:
        pts = [h for h in r["history"] if rd.finite(h.get("value"))]
        if not pts:
            continue
        ax.plot([h["step"] for h in pts], [h["value"] for h in pts], marker=".", lw=1)
        if rd.stop_point(r, thresholds):
            ax.plot(pts[-1]["step"], pts[-1]["value"], "x", color="red", ms=9)
    if thresholds:
        ax.plot(list(thresholds), list(thresholds.values()), "_", color="red", ms=24, mew=2,
                label="hyperband band threshold")
        ax.legend(fontsize=8)
    ax.set_xlabel(rd.STEP_AXIS)
    ax.set_ylabel(sweep["metric"])
    ax.set_title(f"{sweep['metric']} per step (x: stopped by hyperband)")


def wall_time_png(sweep: dict, ax: Any) -> None:
    best = rd.best_so_far(sweep["runs"], sweep["goal"])
    starts = [r["started_at"] for r in sweep["runs"] if r.get("started_at")]
    t0 = min(starts) if starts else 0.0
    done = [r for r in sweep["runs"] if rd.finite(r.get("value")) and r.get("ended_at")]
    ax.scatter([(r["ended_at"] - t0) / 60 for r in done], [r["value"] for r in done], s=12,
               label="run")
    if best:
        ax.step([t / 60 for t, _ in best], [b for _, b in best], where="post", color="C1",
                label="best so far")
    ax.set_xlabel("minutes")
    ax.set_ylabel(sweep["metric"])
    ax.legend(fontsize=8)
    ax.set_title(f"{sweep['metric']} against wall time")


def write_pngs(sweep: dict, figs: dict[str, Any], out: Path,
               step: Callable[[str], None] = lambda name: None) -> list[Path]:
    """One PNG per figure in ``out``; ``step`` hears each begin."""
    draw = {
        "parallel_coordinates": lambda ax: parallel_png(sweep, ax),
        "importance": lambda ax: importance_png(sweep, figs["importance"], ax),
        "curves": lambda ax: curves_png(sweep, figs["thresholds"], ax),
        "wall_time": lambda ax: wall_time_png(sweep, ax),
    }
    paths = []
    for name, fn in draw.items():
        step(f"drawing {name}.png")
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=80)
        try:
            fn(ax)
            fig.tight_layout()
            path = out / f"{name}.png"
            with replaced_whole(path, suffix=".tmp.png") as tmp:
                fig.savefig(tmp)
            paths.append(path)
        finally:
            plt.close(fig)
    return paths
