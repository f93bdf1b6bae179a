"""The adapter to W&B's `sweeps` engine: the store's runs in, proposals and stop decisions out.

Pure functions of a snapshot (run rows and their histories): no processes, no files, so the
search and early-stopping behaviour is testable on its own.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from .ranking import metric_and_goal
from .store import CRASHED, FAILED, FINISHED, PENDING, RUNNING, STOPPED, plain

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import sweeps

_ENGINE_STATE = {PENDING: "pending", RUNNING: "running", FINISHED: "finished",
                 STOPPED: "finished", FAILED: "failed", CRASHED: "crashed"}


def engine_runs(rows: list[dict], histories: dict[str, list[dict]]) -> list[Any]:
    """The store's runs as ``sweeps.SweepRun``; a stopped run counts as finished+stopped."""
    out = []
    for r in rows:
        summary = r.get("summary") if isinstance(r.get("summary"), dict) else {}
        numeric = {k: v for k, v in summary.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        out.append(sweeps.SweepRun(
            name=r["run_id"], state=_ENGINE_STATE[r["state"]], config=r["params"],
            history=histories.get(r["run_id"], []), summary_metrics=numeric,
            stopped=r["state"] == STOPPED, should_stop=bool(r.get("should_stop")),
            exitcode=r.get("exit_code")))
    return out


def metric_of(history: list[dict], summary: dict | None, metric: str, goal: str) -> float | None:
    """Best value of the metric over the history and summary, as the engine computes it."""
    vals = [h.get(metric) for h in history] + [(summary or {}).get(metric)]
    vals = [float(v) for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v)]
    if not vals:
        return None
    return max(vals) if goal == "maximize" else min(vals)


def propose(engine_cfg: dict, rows: list[dict],
            histories: dict[str, list[dict]]) -> tuple[dict, dict | None] | None:
    """The engine's next (params, search_info), or None when the search is exhausted."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        suggestion = sweeps.next_run(engine_cfg, engine_runs(rows, histories))
    if suggestion is None:
        return None
    info = plain(suggestion.search_info) if suggestion.search_info else None
    return plain(suggestion.config), info


def stop_decisions(engine_cfg: dict, rows: list[dict],
                   histories: dict[str, list[dict]]) -> dict[str, str]:
    """Running runs the engine's early termination stops, each with its own reason.

    Raises ValueError when the engine cannot apply the early_terminate config.
    """
    runs = engine_runs(rows, histories)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        to_stop = sweeps.stop_runs(engine_cfg, runs)
    by_id = {r["run_id"]: r for r in rows}
    metric = metric_and_goal(engine_cfg)[0] or ""
    strict = (engine_cfg.get("early_terminate") or {}).get("strict") is True
    out = {}
    for run in to_stop:
        row = by_id.get(run.name)
        if row is None or row["state"] != RUNNING or row.get("should_stop"):
            continue
        out[run.name] = hyperband_reason(run.early_terminate_info or {},
                                         run.metric_history(metric, filter_invalid=True),
                                         engine_cfg, strict=strict)
    return out


def hyperband_reason(info: dict, history: list[float], engine_cfg: dict, *,
                     strict: bool = False) -> str:
    """Why hyperband stops a run, from the engine's structured bands and thresholds.

    The engine's free-text ``lines`` are shared between runs in sweeps 0.3.0, so the
    run's own numbers are recomputed here from its history, as the engine does.
    """
    name, goal = metric_and_goal(engine_cfg)
    metric, maximize = name or "", goal == "maximize"
    bands, thresholds = info.get("bands") or [], info.get("thresholds") or []
    applying = [(b, t) for b, t in zip(bands, thresholds) if b <= len(history)]
    if not applying or not history:
        return "hyperband: below the band's threshold"
    band, threshold = applying[-1]
    sign = -1.0 if maximize else 1.0  # the engine negates the metrics it maximizes
    value = sign * history[band - 1] if strict else min(sign * v for v in history)
    what = f"{metric} at epoch {band}" if strict else f"best {metric} so far"
    return (f"hyperband: {what} {sign * value:.4g} is behind the epoch-{band} "
            f"threshold {sign * float(threshold):.4g}")


def uses_hyperband(engine_cfg: dict) -> bool:
    et = engine_cfg.get("early_terminate")
    return isinstance(et, dict) and et.get("type") == "hyperband" and bool(metric_and_goal(engine_cfg)[0])
