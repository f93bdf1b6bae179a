"""What the sweep report shows, as plain data: runs, hyperband bands and thresholds, importance.

Everything here but ``read_sweep`` is a pure function of plain dicts and lists, so the
figures (``report.py``) can be drawn from a hand-built sweep as well as from a store.
A run is ``{"id", "state", "params": {name: value}, "value", "history": [{"step", "value"}],
"started_at", "ended_at", "stop_reason"}``; a sweep is ``{"id", "metric", "goal",
"searched", "early_terminate", "runs"}``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from . import config as sweep_config
from .ranking import better, finite, metric_and_goal, ranked
from .store import Store

# Fewer runs than this and the random forest's importances are mostly noise (W&B's panel
# warns the same way); the figure still shows them, with the caveat.
MIN_RUNS_FOR_IMPORTANCE = 10

# What one step of the curves is: the metric's nth value, hyperband's unit of progress.
STEP_AXIS = "step: the metric's nth value (an epoch; a fold of a k-fold run)"
_STOP_RE = re.compile(r"epoch-(\d+) threshold (\S+)")


def read_sweep(store: Store) -> dict[str, Any]:
    """The report's data from a sweep store (the only I/O in this module)."""
    meta = store.meta()
    cfg = meta["config"]
    filled = sweep_config.engine_config(cfg)
    metric, goal = metric_and_goal(filled)
    histories = store.histories()
    runs = []
    for r in store.runs():
        hist = histories.get(r["run_id"], [])
        runs.append({
            "id": r["run_id"], "state": r["state"],
            "params": {k: (v.get("value") if isinstance(v, dict) else v)
                       for k, v in r["params"].items()},
            "value": r.get("metric_best"),
            "history": metric_steps(hist, metric),
            "started_at": r.get("started_at"), "ended_at": r.get("ended_at"),
            "stop_reason": r.get("stop_reason")})
    return {"id": meta["sweep_id"], "metric": metric, "goal": goal,
            "searched": sweep_config.searched_params(cfg),
            "early_terminate": filled.get("early_terminate"), "runs": runs}


def metric_steps(rows: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """The run's finite values of ``metric``, each with its step: its place among them, as
    hyperband counts them (an epoch for most programs, a fold for a k-fold run that logs
    its running mean after each fold), whatever else the rows hold."""
    values = [row[metric] for row in rows if finite(row.get(metric))]
    return [{"step": n, "value": value} for n, value in enumerate(values, start=1)]


def metric_values(run: dict) -> list[float]:
    """The run's metric per step, invalid values dropped (as the hyperband engine reads it)."""
    return [float(h["value"]) for h in run["history"] if finite(h.get("value"))]


def hyperband_bands(early_terminate: dict | None, max_epoch: int) -> tuple[list[int], float]:
    """(band epochs up to ``max_epoch``, eta) as sweeps' hyperband derives them; ([], 0) if none."""
    et = early_terminate or {}
    if et.get("type") != "hyperband":
        return [], 0.0
    eta = float(et.get("eta", 3))
    bands: list[int] = []
    if "max_iter" in et:
        band = float(et["max_iter"])
        for _ in range(int(et.get("s", 0))):
            band /= eta
            if band < 1:
                break
            bands.append(int(band))
    elif "min_iter" in et:
        band = float(et["min_iter"])
        while int(band) <= max_epoch:
            bands.append(int(band))
            band *= eta
    return sorted(b for b in set(bands) if 1 <= b <= max_epoch), eta


def band_thresholds(curves: list[list[float]], bands: list[int], eta: float,
                    goal: str) -> dict[int, float]:
    """Per band epoch, the value a run had to reach there to go on: sweeps' hyperband rule.

    Over the runs that reached the band, the metric at that epoch, sorted best first, and
    the one at index int(n / eta): a run behind it is in the worst 1 - 1/eta and is stopped.
    """
    sign = -1.0 if goal == "maximize" else 1.0  # the engine minimizes
    out: dict[int, float] = {}
    for band in bands:
        vals = sorted(sign * c[band - 1] for c in curves if len(c) >= band)
        if vals:
            out[band] = sign * vals[int(len(vals) / eta)]
    return out


def stop_point(run: dict, thresholds: dict[int, float]) -> tuple[int, float | None] | None:
    """(band epoch, threshold missed) of a stopped run, None for a run not stopped.

    The runner's stop reason holds the exact threshold at the time; otherwise the last band
    the run reached, with the threshold derived from all runs.
    """
    if run["state"] != "stopped":
        return None
    m = _STOP_RE.search(run.get("stop_reason") or "")
    if m and finite(_float(m.group(2))):
        return int(m.group(1)), _float(m.group(2))
    n = len(metric_values(run))
    reached = [b for b in thresholds if b <= n]
    if reached:
        return max(reached), thresholds[max(reached)]
    return (n, None) if n else None


def _float(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


def feature_matrix(runs: list[dict], names: list[str]) -> tuple[np.ndarray, dict[str, list[str]]]:
    """Runs' params as numbers: numeric as they are, anything else as category codes.

    Returns the matrix (one row per run) and, per categorical parameter, its categories.
    """
    cols, categories = [], {}
    for name in names:
        vals = [r["params"].get(name) for r in runs]
        if all(finite(v) for v in vals):
            cols.append([float(v) for v in vals])
        else:
            cats = categories[name] = sorted({str(v) for v in vals})
            cols.append([float(cats.index(str(v))) for v in vals])
    return np.array(cols, dtype=float).T.reshape(len(runs), len(names)), categories


def importance(runs: list[dict], names: list[str], *, seed: int = 0) -> list[dict[str, Any]]:
    """Per searched parameter: random-forest importance and linear correlation with the metric.

    As W&B's parameter-importance panel: a random forest fitted on the runs' parameters to
    predict the metric, its feature importances, and Pearson's r. Sorted most important first.
    """
    from sklearn.ensemble import RandomForestRegressor

    scored = [r for r in runs if finite(r.get("value"))]
    if len(scored) < 2 or not names:
        return []
    x, _ = feature_matrix(scored, names)
    y = np.array([float(r["value"]) for r in scored])
    forest = RandomForestRegressor(n_estimators=200, random_state=seed).fit(x, y)
    out = []
    for i, name in enumerate(names):
        col = x[:, i]
        corr = (float(np.corrcoef(col, y)[0, 1])
                if col.std() > 0 and y.std() > 0 else 0.0)
        out.append({"param": name, "importance": float(forest.feature_importances_[i]),
                    "correlation": corr})
    return sorted(out, key=lambda d: -d["importance"])


def importance_caveat(runs: list[dict]) -> str | None:
    n = sum(1 for r in runs if finite(r.get("value")))
    if n >= MIN_RUNS_FOR_IMPORTANCE:
        return None
    return (f"only {n} run{'s' if n != 1 else ''} with a metric: importances from fewer than "
            f"{MIN_RUNS_FOR_IMPORTANCE} runs are mostly noise")


def best_so_far(runs: list[dict], goal: str) -> list[tuple[float, float]]:
    """(seconds since the sweep's first start, best metric so far) at each run's end."""
    done = sorted((r for r in runs if finite(r.get("value")) and r.get("ended_at")),
                  key=lambda r: r["ended_at"])
    starts = [r["started_at"] for r in runs if r.get("started_at")]
    if not done or not starts:
        return []
    t0, best, out = min(starts), None, []
    for r in done:
        v = float(r["value"])
        if best is None or better(v, best, goal):
            best = v
        out.append((r["ended_at"] - t0, best))
    return out


def leaderboard(runs: list[dict], goal: str) -> list[dict]:
    """Runs best first, in any state; runs without a metric last."""
    return ranked(runs, goal, score="value", states=None, keep_unscored=True)
