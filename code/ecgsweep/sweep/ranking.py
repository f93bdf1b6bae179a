"""The sweep's metric and goal, and runs ranked by it: one definition for the summary, the
report, ``status --json``, the bookkeeping and a program's own tools (an ensemble)."""

from __future__ import annotations

import math
from typing import Any, Iterable

from .store import FINISHED, STOPPED

# Runs whose metric ranks them: ended by themselves or stopped by hyperband.
ENDED = (FINISHED, STOPPED)


def metric_and_goal(cfg: dict) -> tuple[str | None, str]:
    """The sweep's metric name (None when it has none) and goal (W&B's default: minimize),
    from the config as written or as the engine reads it (``config.engine_config``)."""
    metric = cfg.get("metric") or {}
    return metric.get("name"), metric.get("goal", "minimize")


def finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def better(a: float, b: float, goal: str) -> bool:
    """Whether value ``a`` beats ``b`` under ``goal``."""
    return a > b if goal == "maximize" else a < b


def ranked(runs: Iterable[dict], goal: str, *, score: str = "metric_best",
           states: tuple[str, ...] | None = ENDED, keep_unscored: bool = False) -> list[dict]:
    """Runs best first by their ``score`` key. ``states``: only runs in these states (None:
    any); ``keep_unscored``: runs with no finite score listed last, in their order, instead
    of left out. Ties keep the runs' order."""
    sign = -1.0 if goal == "maximize" else 1.0
    picked = [r for r in runs if states is None or r.get("state") in states]
    scored = [r for r in picked if finite(r.get(score))]
    best_first = sorted(scored, key=lambda r: sign * float(r[score]))
    if not keep_unscored:
        return best_first
    return best_first + [r for r in picked if not finite(r.get(score))]
