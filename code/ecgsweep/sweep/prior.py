"""Prior runs: runs of earlier sweeps that a new sweep's search starts from (``--prior-runs``,
W&B's ``wandb sweep -R/--prior_run``).

W&B attaches each prior run to the new sweep, so its engine finds it in the sweep's runs:
bayes fits it like a finished run of its own, grid skips the points it covers, random takes
no notice. Here the runs are copied into the new sweep's store when the sweep is created and
handed to ``sweeps.next_run`` beside the sweep's own runs. They are not the sweep's runs:
they are not in its runs table or leaderboard, do not count toward ``--count``, and do not
set hyperband's bands.

A prior run must lie inside the new sweep's space: a value for each of its parameters within
the range, among the values, or equal to the fixed value, and no parameter the new sweep
lacks (its runs would get the program's default there). With a metric, it must have logged
it. Otherwise the sweep is refused before it is made, naming the runs and parameters.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from .engine import metric_of
from .errors import UserError
from .ranking import metric_and_goal
from .store import (FINISHED, STOPPED, StoreError, open_store, require_valid_id,
                    sqlite_errors)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from sweeps.params import HyperParameter, HyperParameterSet

PRIOR_STATES = (FINISHED, STOPPED)  # runs that ran to their end or were stopped with metrics
FLAG = "--prior-runs"
_SHOWN = 5  # runs named in a refusal before "and N more"
_MISSING = object()


def parse_refs(texts: list[str]) -> list[tuple[str, str | None]]:
    """``SWEEP`` or ``SWEEP/RUN``, each option value possibly a comma-separated list, as
    (sweep_id, run_id or None) in the order given, without repeats."""
    refs: list[tuple[str, str | None]] = []
    for text in texts:
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            sweep_id, _, run_id = part.partition("/")
            require_valid_id(sweep_id, FLAG)
            if run_id:
                require_valid_id(run_id, f"{FLAG} {sweep_id}/: run ID")
            ref = (sweep_id, run_id or None)
            if ref not in refs:
                refs.append(ref)
    return refs


def read(store_root: str, refs: list[tuple[str, str | None]], engine_cfg: dict) -> list[dict]:
    """The prior runs ``refs`` name, read from their sweeps in ``store_root`` (read-only), as
    rows of the ``prior_runs`` table; one UserError naming every missing sweep or run, and
    every run that did not end with metrics."""
    metric, goal = metric_and_goal(engine_cfg)
    out: dict[str, dict] = {}
    problems: list[str] = []
    for sweep_id in dict.fromkeys(s for s, _ in refs):
        wanted = [r for s, r in refs if s == sweep_id]
        try:
            rows, missing = _runs_of(store_root, sweep_id, None if None in wanted else wanted)
        except (UserError, FileNotFoundError, StoreError) as e:  # no such sweep, or unreadable
            problems.append(str(e))
            continue
        problems += missing
        for row in rows:
            hist = row.pop("history")
            out[row["run_id"]] = {**row, "history": hist,
                                  "metric_best": metric_of(hist, row["summary"], metric, goal)
                                  if metric else None}
    if problems:
        raise UserError("; ".join(problems))
    return list(out.values())


def _runs_of(store_root: str, sweep_id: str, run_ids: list[str] | None
             ) -> tuple[list[dict], list[str]]:
    """Sweep ``sweep_id``'s finished and stopped runs (``run_ids`` None), or those named, and
    a phrase for each named run that is missing or did not end with results."""
    store = open_store(store_root, sweep_id, FLAG, read_only=True)
    try:
        with sqlite_errors(store.path):
            rows, histories = store.runs(), store.histories()
    finally:
        store.close()
    by_id = {r["run_id"]: r for r in rows}
    problems: list[str] = []
    if run_ids is None:
        chosen = [r for r in rows if r["state"] in PRIOR_STATES]
        if not chosen:
            problems.append(f"{FLAG} {sweep_id}: the sweep has no finished or stopped run yet "
                            "to start from")
    else:
        chosen = [by_id[r] for r in run_ids if r in by_id and by_id[r]["state"] in PRIOR_STATES]
        for run_id in run_ids:
            row = by_id.get(run_id)
            if row is None:
                problems.append(f"{FLAG} {sweep_id}/{run_id}: sweep {sweep_id} has no run "
                                f"{run_id!r} (its runs: {', '.join(by_id) or 'none'})")
            elif row["state"] not in PRIOR_STATES:
                problems.append(f"{FLAG} {sweep_id}/{run_id}: the run is {row['state']}; only "
                                "finished or stopped runs carry results to start from")
    return [{"run_id": f"{sweep_id}/{r['run_id']}", "params": r["params"], "state": r["state"],
             "summary": r["summary"] if isinstance(r.get("summary"), dict) else None,
             "history": histories.get(r["run_id"], [])} for r in chosen], problems


# ----------------------------------------------------------------------------- the space


def space_problems(parameters: dict, params: dict) -> list[str]:
    """Where a run's ``params`` ({name: {"value": v}}, as the program got them) lie outside
    a sweep's ``parameters`` (the YAML's, filled as the engine reads them), one phrase each."""
    problems = [f"{name}: not a parameter of the new sweep"
                for name in params if name not in parameters]
    for hp in HyperParameterSet.from_config(parameters):
        name = hp.name.replace(HyperParameterSet.NESTING_DELIMITER, ".")
        value = _value(params, hp.name)
        if value is _MISSING:
            problems.append(f"{name}: no value")
            continue
        if not _inside(hp, value):
            problems.append(f"{name}={value!r}, {_not_allowed(hp)}")
    return problems


def _value(params: dict, name: str) -> Any:
    """The run's value of the (possibly nested) parameter ``name``; _MISSING when absent."""
    first, *inner = name.split(HyperParameterSet.NESTING_DELIMITER)
    entry = params.get(first)
    if not isinstance(entry, dict) or "value" not in entry:
        return _MISSING
    value = entry["value"]
    for key in inner:
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _bounds(hp: HyperParameter) -> tuple[float, float]:
    """The least and greatest value the engine can propose for a distribution."""
    if hp.type == HyperParameter.INT_UNIFORM:
        return float(hp.config["min"]), float(hp.config["max"])
    return float(hp.ppf(0.0)), float(hp.ppf(1.0))


def _not_allowed(hp: HyperParameter) -> str:
    """What a value outside the parameter's space is not."""
    if hp.type == HyperParameter.CONSTANT:
        return f"not the fixed value {hp.config['value']!r}"
    if hp.type in (HyperParameter.CATEGORICAL, HyperParameter.CATEGORICAL_PROB):
        return f"not one of {hp.config['values']!r}"
    lo, hi = _bounds(hp)
    return f"outside [{lo:g}, {hi:g}]"


def _inside(hp: HyperParameter, value: Any) -> bool:
    if hp.type == HyperParameter.CONSTANT:
        return value == hp.config["value"]
    if hp.type in (HyperParameter.CATEGORICAL, HyperParameter.CATEGORICAL_PROB):
        return any(value == v for v in hp.config["values"])
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    if hp.type == HyperParameter.INT_UNIFORM and value != int(value):
        return False
    lo, hi = _bounds(hp)
    slack = 1e-9 * max(1.0, abs(lo), abs(hi))  # values that went through JSON and back
    return lo - slack <= value <= hi + slack


def refuse_outside(engine_cfg: dict, rows: list[dict]) -> None:
    """UserError naming each prior run outside the new sweep's space, or without its metric."""
    metric = metric_and_goal(engine_cfg)[0]
    bad = []
    for row in rows:
        problems = space_problems(engine_cfg.get("parameters") or {}, row["params"])
        if metric and row.get("metric_best") is None:
            problems.append(f"never logged the sweep's metric {metric!r}")
        if problems:
            bad.append(f"{row['run_id']} ({'; '.join(problems)})")
    if bad:
        more = f"; and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else ""
        raise UserError(f"{FLAG}: {len(bad)} of {len(rows)} run(s) do not fit the new sweep: "
                        f"{'; '.join(bad[:_SHOWN])}{more}. Name the runs that fit as "
                        "SWEEP/RUN, or widen the YAML's parameters to cover them")


def what_the_search_does(method: str | None, rows: list[dict], *, name_runs: bool = False) -> str:
    """One line on what the sweep's method makes of its prior runs, as W&B's engine does;
    ``name_runs``: with each run's SWEEP/RUN."""
    sweeps_of = sorted({r["run_id"].split("/")[0] for r in rows})
    head = f"prior runs: {len(rows)} from sweep{'s' if len(sweeps_of) > 1 else ''} " \
           f"{', '.join(sweeps_of)}"
    if name_runs:
        head += f" ({', '.join(r['run_id'] for r in rows)})"
    use = {"bayes": "bayes fits them as finished runs of its own",
           "grid": "grid skips the points they cover"}.get(
        str(method), f"{method} search does not use them (nor does W&B's)")
    return f"{head}: {use}"
