"""The end of a run: offer its model to the best-model slot, keep its files as a W&B
artifact, and write its summary (W&B's run record, where the sweep runner reads it).

Only a run that ends by itself (all its epochs, or its own early stopping) is offered to the
best-model slot. A run stopped from outside (SIGTERM: hyperband, the sweep runner ending, a
stop by hand; SIGINT: Ctrl-C), k-fold between folds included, keeps its model in its run
folder, marked ``stopped`` in its record, and says that it was not promoted.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from pathlib import Path
from typing import Any

from .cli import EXIT_NAN, counted
from .contract import (PROMOTE_BY_COORDINATOR, PROMOTE_ENV, STOPPED, STOPPED_MID_EPOCH,
                       VAL_METRICS, kept_metric)
from .final_model import FinalModel
from .folds import FoldOutcome, cut_short_note, eval_command, folds_done_text
from .model_record import ModelRecord, record_path
from .run_start import RunContext

NOT_FINISHED = ("the run was stopped before it finished (SIGTERM: hyperband, the sweep "
                "runner ending, or a stop by hand; SIGINT: Ctrl-C); only a run that ends by "
                "itself is promoted")


def record_divergence(ctx: RunContext, message: str) -> int:
    """A diverged run: nothing saved; the error goes to W&B's summary and stderr."""
    summary = {"model": ctx.config["model"], STOPPED: False, "promoted": False,
               "error": message}
    ctx.run.summary.update(summary)
    print(f"error: {message}", file=sys.stderr, flush=True)
    return EXIT_NAN


def promote(ctx: RunContext, path: Path, record: ModelRecord):
    """Offer the run's model to its data set's best-model slot, unless the run was stopped
    (``record.stopped``); returns (promoted, slot)."""
    from . import artifacts

    slot = artifacts.BestModelSlot(ctx.config["models_dir"], ctx.config["model"])
    if record.stopped:
        _mark_stopped(record_path(path))  # so the coordinator does not offer it
        print(f"best model: not promoted: {NOT_FINISHED}; the run's model stays in {path}",
              flush=True)
        return False, slot
    if os.environ.get(PROMOTE_ENV) == PROMOTE_BY_COORDINATOR:
        print("best model: offered by the sweep's coordinator once this run folder is back "
              "on its disk", flush=True)
        return False, slot
    promoted, reason = slot.promote_if_better(path, record)
    # kept: named by its data set's own path, since an agent finishing on other data at the
    # same time may move the family's best.keras away from it
    shown = slot.model_path if promoted else slot.pair_for(record).model_path
    print(f"best model {'updated' if promoted else 'kept'}: {shown} ({reason})", flush=True)
    return promoted, slot


def _mark_stopped(path: Path) -> None:
    """Say ``stopped`` in the record beside the run's model, which a stop that came after it
    was written (or between folds) left saying otherwise."""
    saved = ModelRecord.read(path)
    if not saved.stopped:
        dataclasses.replace(saved, stopped=True).write(path)


def _artifact_name(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(parts)).strip("-")[:120]


def log_model_artifact(ctx: RunContext, outcomes: list[FoldOutcome], final: FinalModel,
                       promoted: bool) -> None:
    """The run's model file(s) and records as a W&B artifact (offline: kept for sync): a
    k-fold run's fold models and its own model (``final_model``)."""
    import wandb

    record = final.record
    metadata = {"metric": record.metric, "value": record.value,
                "best_epoch": record.best_epoch, "class_names": record.class_names,
                "final_model": record.final_model}
    artifact = wandb.Artifact(_artifact_name(ctx.config["model"], ctx.source.name), type="model",
                              metadata=metadata)
    paths = [o.path for o in outcomes] if ctx.folds else []
    paths += [final.path] if final.path not in paths else []
    # The run's own files, which nothing rewrites: W&B reads them where they are ("immutable")
    # rather than copying each model into a staging folder under the user's home, which
    # nothing would ever remove.
    for path in paths:
        for file in (path, record_path(path)):
            artifact.add_file(str(file), name=file.name, policy="immutable", skip_cache=True)
    ctx.run.log_artifact(artifact, aliases=["latest", "best"] if promoted else ["latest"])


def finish(ctx: RunContext, outcomes: list[FoldOutcome], final: FinalModel,
           best_value: float, best_epoch: int, promoted: bool, slot) -> None:
    """The run's summary (in W&B's run record, where the sweep runner reads it) and its
    last lines."""
    first, record = outcomes[0], final.record
    metric = record.metric
    stopped = record.stopped or ctx.stop.requested
    # The kept epoch's values (best, or last with keep_epoch: last; k-fold: the mean over
    # the folds), whose weights we keep. A sweep on the objective's metric is judged by the
    # highest value logged, which is the kept one with keep_epoch: best; kept_<metric> is
    # the kept one always (contract.kept_metric).
    summary: dict[str, Any] = {
        "model": ctx.config["model"], f"best_{metric}": best_value, "best_epoch": best_epoch,
        metric: best_value, **{kept_metric(m): float(record.metrics[m])
                               for m in VAL_METRICS if m in record.metrics},
        kept_metric(metric): best_value, STOPPED: stopped,
        STOPPED_MID_EPOCH: any(o.result.stopped_mid_epoch for o in outcomes),
        "promoted": promoted, "model_path": str(slot.model_path),
        "run_model_path": str(final.path)}
    if ctx.folds:
        kfold = record.kfold
        summary.update({"folds": ctx.folds, "folds_completed": len(outcomes),
                        "final_model": record.final_model,
                        f"{metric}_std": kfold.std, f"fold_{metric}": kfold.values,
                        "fold_models": kfold.models, "eval_command": kfold.eval_command})
    added_total = first.record.dataset.added
    if added_total:
        summary["train_beats_added"] = added_total
    ctx.run.summary.update(summary)
    _print_done(ctx, record, best_value, best_epoch, stopped, len(outcomes),
                slot.model_path if promoted else final.path)


def _print_done(ctx: RunContext, record: ModelRecord, best_value: float, best_epoch: int,
                stopped: bool, completed: int, model_path: Path) -> None:
    note = " (stopped early by request)" if stopped else ""
    needs_test = not ctx.source.has_test_data()
    if ctx.folds:
        # one fold has no spread to show
        spread = f" +- {record.kfold.std:.4f}" if completed > 1 else ""
        print(f"done: {record.metric} {best_value:.4f}{spread} "
              f"{folds_done_text(completed, ctx.folds)}{note}", flush=True)
        if record.final_model:
            print(f"evaluate the run's model ({record.final_model} of the "
                  f"{counted(completed, 'fold')}) "
                  f"on the test data:\n  {eval_command([model_path], needs_test)}", flush=True)
        together = (f"the {counted(completed, 'fold model')} as an ensemble" if completed > 1
                    else "the one fold model")
        print(f"evaluate {together} on the test data:\n  {record.kfold.eval_command}",
              flush=True)
    else:
        print(f"done: {ctx.config['keep_epoch']} {record.metric} {best_value:.4f} at epoch "
              f"{best_epoch}{cut_short_note(record.metrics)}{note}", flush=True)
        print(f"evaluate on the test data:\n  {eval_command([model_path], needs_test)}",
              flush=True)
