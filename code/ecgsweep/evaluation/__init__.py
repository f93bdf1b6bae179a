"""Score saved models on held-out test data: metrics, confidence intervals, curves, report.

Several models given together form an ensemble: their class probabilities are averaged.
Each job has its module: ``members`` loads the models and feeds them, ``held_out`` finds
the data they are scored on, ``metrics`` computes the report (pure), ``terminal`` prints
it, ``report_files`` writes report.json, classification_report.csv and the pictures, and
``wandb_report`` logs it to W&B (``--wandb``). ``evaluate`` runs them in that order; the
names below are the package's public ones.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .. import ec57
from ..cli import UserError, writable_folder
from ..data.datasets import Split
from ..data.kaggle_csv import csv_stem
from ..sweep.progress import Progress
from .held_out import (changed_data, development_fingerprint, layout_warnings, overlap_warnings,
                       test_data_for)
from .members import (LoadedModel, changed_settings, check_fit, check_sidecar_needs,
                      chosen_on, load_model, model_source, predict_proba, read_record,
                      with_settings)
from .metrics import (BOOTSTRAP_DRAWS, CI_LEVEL, CURVE_POINTS, EXAMPLES_PER_PAIR,
                      bootstrap_confusion, bootstrap_confusion_by_record,
                      bootstrap_intervals, compute_report, paired_differences,
                      curves_report, misclassified_pairs, rates_from_counts)
from .report_files import write_report, write_report_json
from .terminal import print_report
from .wandb_report import WANDB_REPORT_FILE, log_to_wandb, wandb_summary

__all__ = ["BOOTSTRAP_DRAWS", "CI_LEVEL", "CURVE_POINTS", "EXAMPLES_PER_PAIR", "LoadedModel",
           "WANDB_REPORT_FILE", "UserError", "bootstrap_confusion",
           "bootstrap_confusion_by_record", "bootstrap_intervals", "paired_differences",
           "changed_data", "check_fit", "check_sidecar_needs", "chosen_on", "compute_report",
           "curves_report", "development_fingerprint", "evaluate", "load_model",
           "layout_warnings", "log_to_wandb", "misclassified_pairs", "overlap_warnings",
           "predict_proba", "print_report",
           "rates_from_counts", "read_record", "test_data_for", "wandb_summary",
           "write_report"]


def default_out_dir(members: Sequence[LoadedModel], test_csv: str | None) -> Path:
    """``reports/<model>-<scored on>``: the model as ``<family>-<file name>`` (``ensemble``
    for several), scored on the test CSV's name, else on its data set's held-out data."""
    m = members[0]
    if len(members) > 1:
        model = "ensemble"
    else:
        model = f"{m.record.family}-{m.path.stem}" if m.record.family else m.path.stem
    return Path("reports") / f"{model}-{csv_stem(test_csv or _default_test(m))}"


def _default_test(member: LoadedModel) -> str:
    """What eval scores a model on without --test: its data set's test file, else (PTBDB's
    fixed split, synthetic data) the data set's name."""
    from ..data.datasets import resolve_source

    config = member.record.config
    dataset = str(config.get("dataset") or "test")
    try:
        source = resolve_source(dataset, config.get("data_dir") or "data")
    except UserError:
        return dataset
    return source.files.get("test") or dataset


def replaced_report(out_dir: Path, report: dict[str, Any], out_given: bool) -> str | None:
    """A warning when ``out_dir`` holds the report of other model files (however their
    paths are spelled) or other test data, which this one replaces; None when it holds none
    or the same models' on the same data."""
    path = out_dir / "report.json"
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(earlier, dict):
        return None
    models = [str(m) for m in earlier.get("models") or []]
    same = ([os.path.realpath(m) for m in models] == [os.path.realpath(m) for m in report["models"]]
            and earlier.get("test_data") == report["test_data"])
    if same:
        return None
    advice = "another --out" if out_given else "--out DIR"
    return (f"{path} held the report of {', '.join(models)} on {earlier.get('test_data')}; it "
            f"is replaced: pass {advice} to keep reports apart")


def _quiet(step: str) -> None:
    pass


def _load_members(model_paths: Sequence[str | Path],
                  step: Callable[[str], None] = _quiet) -> list[LoadedModel]:
    """The models, which must share their classes to form an ensemble."""
    members = []
    for path in model_paths:
        step(f"loading {Path(path).name}")
        members.append(load_model(path))
    first = members[0]
    for other in members[1:]:
        if other.class_names != first.class_names:
            raise UserError(f"{other.path} has classes {other.class_names} but {first.path} has "
                            f"{first.class_names}; an ensemble needs the same classes")
    return members


def _score(members: Sequence[LoadedModel], split: Split, batch_size: int,
           options: dict[str, Any], step: Callable[[str], None] = _quiet
           ) -> tuple[dict[str, Any], np.ndarray]:
    """The report of the members' mean probabilities on ``split``, and those probabilities;
    with the beat sidecar's records, the errors per record too."""
    names = members[0].class_names
    step(f"predicting {len(split.y):,} beats")
    probs = predict_proba(members, split, batch_size=batch_size)
    draws = options.get("bootstrap", 0)
    step(f"scoring, {draws:,} bootstrap draws" if draws else "scoring")
    # the beat sidecar names each beat's record: intervals over records, errors per record
    by_record = (None if split.records is None else ec57.confusion_by_record(
        split.y, probs.argmax(axis=1), split.records, len(names)))
    report = compute_report(split.y, probs, names, confusion_by_record=by_record, **options)
    if by_record is not None:
        report["record_errors"] = ec57.record_errors(by_record, names)
    return report, probs


def _print_header(report: dict[str, Any], members: Sequence[LoadedModel]) -> None:
    print(f"{', '.join(map(str, report['models']))} on {report['test_data']}")
    for m in members:
        note = chosen_on(m.record)
        print(f"{m.path}: {note}" if note else f"{m.path}: no record of the data it was chosen on")


def _log_wandb(report: dict[str, Any], paths: dict[str, Path], members: Sequence[LoadedModel],
               split: Split, probs: np.ndarray, project: str | None, new_run: bool) -> None:
    """Log the report to W&B, keep where it went in report.json, and say so."""
    report["wandb"] = log_to_wandb(report, paths, members, split.y, probs,
                                   project=project, new_run=new_run)
    write_report_json(paths["report"], report)
    w = report["wandb"]
    how = "resumed the training run" if w["resumed"] else "new eval run"
    print(f"W&B: logged to run {w['run_id']} in project {w['project']} ({how}"
          f"{'; offline: upload with `wandb sync ' + w['run_dir'] + '`' if w['offline'] else ''})")


def evaluate(model_paths: Sequence[str | Path], test_csv: str | None = None,
             data_dir: str | None = None, out_dir: str | Path | None = None, *,
             bootstrap: int = BOOTSTRAP_DRAWS, seed: int = 0, level: float = CI_LEVEL,
             examples_per_pair: int = EXAMPLES_PER_PAIR, wandb_log: bool = False,
             wandb_project: str | None = None, wandb_new_run: bool = False,
             batch_size: int = 1024, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load the model(s), score them on the test data, print and write the report.

    ``bootstrap`` draws (0: none) seeded by ``seed`` give the confidence intervals;
    ``wandb_log`` also logs the report to W&B (see ``log_to_wandb``); ``settings`` replace
    the values the models were trained with for the steps after the model
    (``config.parse_settings``).
    """
    if bootstrap < 0:
        raise UserError(f"--bootstrap {bootstrap}: give a number of draws, 0 or more")
    if not 0 < level < 1:
        raise UserError(f"confidence level {level}: must be between 0 and 1 (e.g. 0.95)")
    with Progress("eval", len(model_paths) + 4) as progress:
        members = _load_members(model_paths, progress.step)
        if settings:
            print(f"after the model, as --set gives: {changed_settings(members[0], settings)}",
                  flush=True)
            members = [with_settings(m, settings) for m in members]
        out = writable_folder(out_dir or default_out_dir(members, test_csv), "--out")  # first
        progress.step("reading the test data")
        split, where = test_data_for(members[0], test_csv, data_dir)
        # An explicit --test file is the user's choice; a derived one must come from the data
        # the model was chosen on.
        warnings = [] if test_csv else changed_data(members, data_dir)
        warnings += overlap_warnings(members, split, where, test_csv, data_dir)
        warnings += layout_warnings(members, test_csv)
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr, flush=True)
        for m in members:
            check_fit(m, split, where)
        report, probs = _score(members, split, batch_size, dict(
            bootstrap=bootstrap, seed=seed, level=level, examples_per_pair=examples_per_pair),
            progress.step)
        report.update(models=[str(m.path) for m in members], test_data=where,
                      sources=[model_source(m.record) for m in members])
        replaced = replaced_report(out, report, out_dir is not None)
        if replaced:
            print(f"warning: {replaced}", file=sys.stderr, flush=True)
            warnings.append(replaced)
        if settings:
            report["after_model_settings"] = dict(settings)
        if warnings:
            report["warnings"] = warnings
        _print_header(report, members)
        print_report(report)
        progress.step("writing the report files")
        paths = write_report(report, out, beats=split.X, y_true=split.y)
    if wandb_log:
        _log_wandb(report, paths, members, split, probs, wandb_project, wandb_new_run)
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return report
