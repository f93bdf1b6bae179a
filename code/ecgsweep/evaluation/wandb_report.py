"""An evaluation report in W&B: logged into the run that trained the model, or a new
``eval`` run; offline, to a local run folder to upload later with ``wandb sync``."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..cli import wandb_start_failed
from ..contract import DEFAULT_PROJECT
from .members import LoadedModel


WANDB_REPORT_FILE = "ecgsweep-eval-report.json"


def wandb_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The report's headline numbers as flat ``test_*`` summary keys."""
    ci = report.get("confidence_intervals") or {}
    summary: dict[str, Any] = {"test_n_beats": report["n_beats"],
                               "test_accuracy": report["accuracy"],
                               "test_macro_f1": report["macro_f1"],
                               "test_weighted_f1": report["weighted_f1"]}
    for key in ("accuracy", "macro_f1"):
        if ci.get(key):
            summary[f"test_{key}_ci_low"], summary[f"test_{key}_ci_high"] = ci[key]
    if report.get("macro_roc_auc") is not None:
        summary["test_macro_roc_auc"] = report["macro_roc_auc"]
        summary["test_macro_average_precision"] = report["macro_average_precision"]
    for name in report["class_names"]:
        summary[f"test_recall_{name}"] = report["per_class"][name]["recall"]
        summary[f"test_f1_{name}"] = report["per_class"][name]["f1-score"]
        auc = (report.get("roc_auc") or {}).get(name)
        if auc is not None:
            summary[f"test_roc_auc_{name}"] = auc
    return summary


def _per_class_rows(report: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    ci = (report.get("confidence_intervals") or {}).get("per_class", {})
    columns = ["class", "precision", "recall", "recall_ci_low", "recall_ci_high", "f1",
               "roc_auc", "average_precision", "support"]
    rows = []
    for name in report["class_names"]:
        r = report["per_class"][name]
        recall_ci = (ci.get(name) or {}).get("recall") or [None, None]
        rows.append([name, r["precision"], r["recall"], recall_ci[0], recall_ci[1], r["f1-score"],
                     (report.get("roc_auc") or {}).get(name),
                     (report.get("average_precision") or {}).get(name), int(r["support"])])
    return columns, rows


def _init_args(report: dict[str, Any], members: Sequence[LoadedModel], project: str | None,
               new_run: bool) -> tuple[dict[str, Any], str | None]:
    """``wandb.init``'s arguments, and the run resumed (None: a new ``eval`` run)."""
    record = members[0].record if len(members) == 1 else None
    run_id = None if new_run or record is None else record.run_id
    project = (project or (record.project if record else None)
               or os.environ.get("WANDB_PROJECT", DEFAULT_PROJECT))
    init_args: dict[str, Any] = {"project": project}
    if run_id:
        init_args.update(id=run_id, resume="allow")
    else:
        init_args.update(job_type="eval", config={
            "models": [str(m.path) for m in members], "test_data": report.get("test_data"),
            "source_runs": [m.record.run_id for m in members]})
    return init_args, run_id


def _tables(report: dict[str, Any], y_true: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    """The confusion matrix, per-class table, curves and mistakes as W&B objects."""
    import wandb

    columns, rows = _per_class_rows(report)
    roc_rows = [[name, x, y] for name, c in report["curves"]["roc"].items()
                for x, y in zip(c["fpr"], c["tpr"])]
    pr_rows = [[name, x, y] for name, c in report["curves"]["pr"].items()
               for x, y in zip(c["recall"], c["precision"])]
    return {
        "test/confusion_matrix": wandb.plot.confusion_matrix(
            y_true=np.asarray(y_true).tolist(), preds=probs.argmax(axis=1).tolist(),
            class_names=report["class_names"], title="test confusion matrix"),
        "test/per_class": wandb.Table(columns=columns, data=rows),
        "test/roc_curves": wandb.Table(columns=["class", "fpr", "tpr"], data=roc_rows),
        "test/pr_curves": wandb.Table(columns=["class", "recall", "precision"], data=pr_rows),
        "test/misclassified_pairs": wandb.Table(
            columns=["true", "predicted", "count", "example_indices"],
            data=[[p["true"], p["predicted"], p["count"], json.dumps(p["indices"])]
                  for p in report.get("misclassified") or []]),
    }


def log_to_wandb(report: dict[str, Any], paths: dict[str, Path], members: Sequence[LoadedModel],
                 y_true: np.ndarray, probs: np.ndarray, *, project: str | None = None,
                 new_run: bool = False) -> dict[str, Any]:
    """Log the report to the W&B run that trained the model, or to a new ``eval`` run.

    A single model whose record names its run is logged into that run
    (``wandb.init(id=..., resume="allow")``); an ensemble, a model without a record, or
    ``new_run`` gets a new run with job_type "eval". WANDB_MODE=offline works: the run is
    written to a local ``offline-run-*`` folder to upload later with ``wandb sync``.
    """
    import wandb

    init_args, run_id = _init_args(report, members, project, new_run)
    try:
        run = wandb.init(**init_args)
    except Exception as e:  # wandb raises its own types for login/network/config problems
        raise wandb_start_failed("--wandb", e) from None
    try:
        logged = _tables(report, y_true, probs)
        for key in ("confusion_matrix", "roc_pr_curves", "misclassified_beats"):
            if key in paths:
                logged[f"test/{key}_image"] = wandb.Image(str(paths[key]))
        run.log(logged)
        summary = wandb_summary(report)
        run.summary.update(summary)
        # The whole report travels with the run (uploaded by `wandb sync` in offline mode).
        shutil.copyfile(paths["report"], Path(run.dir) / WANDB_REPORT_FILE)
        info = {"run_id": run.id, "project": run.project, "resumed": bool(run_id),
                "run_dir": str(Path(run.dir).parent), "offline": bool(run.offline),
                "summary_keys": sorted(summary)}
    except BaseException:
        run.finish(exit_code=1)
        raise
    run.finish()
    return info
