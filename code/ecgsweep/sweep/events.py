"""The one-line messages a runner prints about its runs (pure formatting)."""

from __future__ import annotations

from typing import Any

from .store import CRASHED, FINISHED, STOPPED


def num(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def started(run_id: str, params: dict, searched: list[str], where: str) -> str:
    shown = " ".join(f"{k}={num(v.get('value'))}" for k, v in params.items()
                     if k in searched and isinstance(v, dict))
    return f"{run_id} started{where}: {shown}"


def step(run_id: str, row: dict, metric: str | None, epochs_total: int | None) -> str:
    """One logged step: the sweep's metric first, then the losses."""
    epoch = row.get("epoch", row.get("_step", "?"))
    total = f"/{epochs_total}" if epochs_total and "epoch" in row else ""
    bits = [f"{metric}={num(row[metric])}"] if metric and metric in row else []
    bits += [f"{k}={num(row[k])}" for k in ("loss", "val_loss") if k in row and k != metric]
    word = "epoch" if "epoch" in row else "step"
    return f"{run_id} {word} {epoch}{total} {' '.join(bits)}"


def steps(rows_by_run: dict[str, list[dict]], metric: str | None,
          epochs_total: dict[str, int | None]) -> list[str]:
    """One line per logged step of every run (the plain view's progress)."""
    return [step(run_id, row, metric, epochs_total.get(run_id))
            for run_id, rows in rows_by_run.items() for row in rows]


def ended(run_id: str, state: str, *, steps: int, metric: str | None, best: float | None,
          error: str | None, stop_reason: str | None, requeued: bool, log_path: str,
          tail: str) -> str:
    shown = f" {metric} {num(best)}" if best is not None and metric else ""
    if state == FINISHED:
        return f"{run_id} finished:{shown} after {steps} step(s)"
    if state == STOPPED:
        return f"{run_id} stopped after {steps} step(s):{shown} ({stop_reason or 'stop requested'})"
    if state == CRASHED:
        return f"{run_id} {error}" + (" (grid point re-queued)" if requeued else "")
    return (f"{run_id} failed: {error}\n    log: {log_path}\n"
            + "\n".join("    | " + ln for ln in tail.splitlines()[-8:]))


def gpus_shared(workers: int, gpus: list[str]) -> str:
    return (f"warning: {workers} workers share {len(gpus)} GPU(s) ({', '.join(gpus)}); "
            "GPUs are handed out round-robin")
