"""Score saved models on held-out test data: metrics, confidence intervals, curves, report.

Several models given together form an ensemble: their class probabilities are averaged.

The report holds, besides precision/recall/F1 and the confusion matrix:

- bootstrap 95% confidence intervals of accuracy, macro-F1 and each class's precision,
  recall and F1 (percentile method; the test beats are resampled with replacement);
- one-vs-rest ROC and precision-recall curves with their AUCs (ROC AUC, average precision);
- the misclassified beats of every true/predicted pair, most confident mistakes first.

It is printed, written to report.json (curves downsampled), classification_report.csv
and PNG pictures, and optionally logged to W&B (``--wandb``).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.metrics import (average_precision_score, classification_report, confusion_matrix,
                             precision_recall_curve, roc_auc_score, roc_curve)

from . import ec57, params
from .artifacts import MODEL_FILE, ModelPair, atomic_write_json, load_record, sidecar_path
from .cli import UserError, wandb_start_failed, writable_folder
from .data.datasets import Split


@dataclass
class LoadedModel:
    path: Path
    model: Any  # keras.Model
    record: dict[str, Any]

    @property
    def class_names(self) -> list[str]:
        return list(self.record.get("class_names") or [])


def read_record(model_path: Path) -> dict[str, Any]:
    """The JSON record saved beside a model; for a best.keras the pair is verified first."""
    if model_path.name == MODEL_FILE:
        record = ModelPair(model_path.resolve().parent).read()  # follows the family's link
        if record is not None:
            return record
    side = sidecar_path(model_path)
    if side.is_file():
        return load_record(side, ranked=False)
    return {}


def _unloadable(path: Path, error: Exception) -> UserError:
    """Keras says "File not found" for a damaged archive: say what is wrong instead."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return UserError(f"{path}: not a Keras model file (a .keras file is a zip archive; this "
                         "one is damaged, truncated or of another format)")
    return UserError(f"{path}: not a loadable Keras model ({type(error).__name__}: "
                     f"{str(error).splitlines()[0] if str(error) else 'no detail'})")


def load_model(path: str | Path) -> LoadedModel:
    import keras

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such model file. Train one first (`make sweep` or "
                        "`python code/train.py`), or pass the path of a .keras file")
    record = read_record(path)
    from . import models as _families  # noqa: F401  (registers custom layers, if any)

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as e:  # keras raises many types for a file that is not a model
        raise _unloadable(path, e) from None
    if not record.get("class_names"):
        n_out = int(model.output_shape[-1])
        record["class_names"] = [str(i) for i in range(n_out)]
    return LoadedModel(path, model, record)


def chosen_on(record: dict[str, Any]) -> str | None:
    """The data set a model was selected on, as one line (None when unrecorded)."""
    dataset = record.get("dataset") or {}
    if not dataset:
        return None
    files = ", ".join(f"{k}: {v}" for k, v in (dataset.get("files") or {}).items())
    return (f"chosen on data set {dataset.get('name')}" + (f" ({files})" if files else "")
            + f", fingerprint {dataset.get('fingerprint')}")


def development_fingerprint(config: dict[str, Any], data_dir: str | None) -> str:
    """The fingerprint of the development beats the config's data set holds now, taken as a
    run takes it (its class set applied)."""
    from .data import datasets

    source = datasets.resolve_source(config["dataset"], data_dir or config.get("data_dir", "data"))
    dev = datasets.load_development(source)
    dev = datasets.restrict_classes(dev, source.class_names, config.get("classes", "aami5"))
    return datasets.fingerprint(dev)


def changed_data(members: Sequence[LoadedModel], data_dir: str | None) -> list[str]:
    """One warning per model whose record's data set no longer holds the development beats
    the model was chosen on (regenerated or replaced since): the test file beside them may
    then not be held out from them. Models without a recorded fingerprint are not checked."""
    from .cli import expected_errors

    now: dict[tuple[str, str, str], str] = {}  # an ensemble's folds share their data set
    warnings = []
    for m in members:
        config = m.record.get("config") or {}
        recorded = (m.record.get("dataset") or {}).get("fingerprint")
        if not recorded or not config.get("dataset"):
            continue
        key = (str(config["dataset"]), str(data_dir or config.get("data_dir")),
               str(config.get("classes")))
        try:
            if key not in now:
                now[key] = development_fingerprint(config, data_dir)
        except expected_errors() as e:
            warnings.append(f"{m.path} was chosen on development data with fingerprint "
                            f"{recorded}, which cannot be read now ({e}); the test data may not "
                            "be held out from it")
            continue
        if now[key] != recorded:
            warnings.append(
                f"{m.path} was chosen on development data with fingerprint {recorded}, but its "
                f"data set holds other data now (fingerprint {now[key]}: regenerated or "
                "replaced since?); the test data beside it may overlap the beats the model "
                "trained on, so these may not be held-out scores. Retrain on the current data, "
                "or pass --test CSV to score a file you know is held out")
    return warnings


def beat_width(model) -> int | None:
    """Samples per beat the model reads: the last axis but one of its beat input, which is
    (batch, width, 1), or (batch, seq_window, width, 1) for a sequence model."""
    beat = next((i for i in model.inputs if i.name == "beat"), model.inputs[0])
    return beat.shape[-2]


def check_fit(loaded: LoadedModel, split: Split, source: str) -> None:
    """A clear message when the model cannot score this data (beat width or class labels)."""
    expected_len = beat_width(loaded.model)
    if expected_len is not None and split.X.shape[1] != expected_len:
        raise UserError(f"{loaded.path} expects beats of {expected_len} samples but {source} "
                        f"has {split.X.shape[1]} per row")
    n_out = int(loaded.model.output_shape[-1])
    if len(split.y) and int(split.y.max()) >= n_out:
        raise UserError(f"{loaded.path} predicts {n_out} classes ({', '.join(loaded.class_names)}) "
                        f"but {source} has label {int(split.y.max())}; was the model trained on "
                        "another data set?")


def check_sidecar_needs(path: Path, config: dict[str, Any], split: Split) -> None:
    """A clear error when the model at ``path`` (trained with ``config``) needs a sidecar
    field (``params.SIDECAR_NEEDS``) that ``split`` lacks."""
    need = params.missing_sidecar_need(config, split)
    if need is not None:
        raise UserError(f"{path} was trained with {need.key}={config[need.key]}, which "
                        f"{need.says()}: "
                        "give test beats with their beat sidecar (<name>.beats.csv), as "
                        "`python code/data.py wfdb` writes them")


def predict_proba(members: Sequence[LoadedModel], data: "np.ndarray | Split",
                  batch_size: int = 1024) -> np.ndarray:
    """Mean class probabilities over the members (one member: its own probabilities). Each
    member is fed the inputs its training config names (the beats; with rr_features also
    the RR features of ``data``, a Split with a beat sidecar; a sequence model its windows,
    mapped back to one row per beat)."""
    from .training import predict_proba as predict_member

    split = data if isinstance(data, Split) else Split(np.asarray(data), np.zeros(len(data), int))
    probs = []
    for m in members:
        config = m.record.get("config") or {}
        check_sidecar_needs(m.path, config, split)
        probs.append(predict_member(m.model, split, config, batch_size))
    return np.mean(probs, axis=0)


BOOTSTRAP_DRAWS = 1000
CI_LEVEL = 0.95
CURVE_POINTS = 200  # points kept per curve in report.json
EXAMPLES_PER_PAIR = 6  # beats drawn per true/predicted pair in the misclassified picture


def rates_from_counts(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, macro-F1 and per-class precision/recall/F1 of confusion matrices.

    ``cm`` is (..., k, k) counts, rows true, columns predicted; any leading axes (e.g. one
    per bootstrap draw) are kept. Same conventions as scikit-learn with zero_division=0:
    a ratio with a zero denominator is 0 and every class counts in the macro average.
    Recall of a class with no beats is NaN here, so a confidence interval skips the
    draws where it is undefined.
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support = cm.sum(axis=-1)
    predicted = cm.sum(axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, np.nan)
        denom = support + predicted
        f1 = np.where(denom > 0, 2 * tp / denom, 0.0)
        accuracy = tp.sum(axis=-1) / cm.sum(axis=(-2, -1))
    return {"accuracy": accuracy, "macro_f1": f1.mean(axis=-1), "precision": precision,
            "recall": recall, "f1-score": f1}


def bootstrap_confusion(cm: np.ndarray, draws: int, seed: int) -> np.ndarray:
    """``draws`` bootstrap replicates of a confusion matrix, shape (draws, k, k).

    Resampling n test beats with replacement and re-counting them is the same as drawing
    the n beats' cells from a multinomial with the cell shares cm / n: every metric here
    is a function of the confusion matrix, so this is the ordinary bootstrap, done in one
    vectorized call (milliseconds for 1000 draws, whatever the number of beats).
    """
    cm = np.asarray(cm, dtype=np.int64)
    n = int(cm.sum())
    k = cm.shape[0]
    rng = np.random.default_rng(seed)
    if n == 0:
        return np.zeros((draws, k, k), dtype=np.int64)
    return rng.multinomial(n, cm.ravel() / n, size=draws).reshape(draws, k, k)


def _interval(values: np.ndarray, level: float) -> list[float] | None:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return [float(low), float(high)]


def bootstrap_intervals(cm: np.ndarray, class_names: Sequence[str], draws: int = BOOTSTRAP_DRAWS,
                        seed: int = 0, level: float = CI_LEVEL) -> dict[str, Any]:
    """Percentile bootstrap intervals of accuracy, macro-F1 and per-class precision/recall/F1."""
    rates = rates_from_counts(bootstrap_confusion(cm, draws, seed))
    return {
        "accuracy": _interval(rates["accuracy"], level),
        "macro_f1": _interval(rates["macro_f1"], level),
        "per_class": {name: {metric: _interval(rates[metric][:, c], level)
                             for metric in ("precision", "recall", "f1-score")}
                      for c, name in enumerate(class_names)},
    }


def _downsample(*arrays: np.ndarray, points: int) -> list[list[float]]:
    """Keep ``points`` evenly spaced entries (always the first and the last) of aligned arrays."""
    n = len(arrays[0])
    if n > points:
        keep = np.unique(np.linspace(0, n - 1, points).round().astype(int))
        arrays = tuple(a[keep] for a in arrays)
    return [np.round(np.asarray(a, dtype=np.float64), 6).tolist() for a in arrays]


def _mean_defined(values: Sequence[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def curves_report(y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str],
                  points: int = CURVE_POINTS) -> dict[str, Any]:
    """One-vs-rest ROC and precision-recall curves and AUCs of every class.

    A class with no beats (or only its beats) in the test set has no curve; its AUCs are
    None and the macro averages skip it.
    """
    roc_auc: dict[str, float | None] = {}
    avg_prec: dict[str, float | None] = {}
    roc: dict[str, dict[str, list[float]]] = {}
    pr: dict[str, dict[str, list[float]]] = {}
    for c, name in enumerate(class_names):
        positive = np.asarray(y_true) == c
        if positive.all() or not positive.any():
            roc_auc[name] = avg_prec[name] = None
            continue
        score = probs[:, c]
        fpr, tpr, _ = roc_curve(positive, score)
        precision, recall, _ = precision_recall_curve(positive, score)
        roc_auc[name] = float(roc_auc_score(positive, score))
        avg_prec[name] = float(average_precision_score(positive, score))
        roc[name] = dict(zip(("fpr", "tpr"), _downsample(fpr, tpr, points=points)))
        # precision_recall_curve runs from high recall to low; store it by rising recall.
        pr[name] = dict(zip(("recall", "precision"),
                            _downsample(recall[::-1], precision[::-1], points=points)))
    return {"roc_auc": roc_auc, "average_precision": avg_prec,
            "macro_roc_auc": _mean_defined(list(roc_auc.values())),
            "macro_average_precision": _mean_defined(list(avg_prec.values())),
            "curves": {"roc": roc, "pr": pr, "points_max": points}}


def misclassified_pairs(y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str],
                        per_pair: int = EXAMPLES_PER_PAIR) -> list[dict[str, Any]]:
    """Every (true, predicted) pair with mistakes: its count and its most confident examples.

    ``indices`` are positions in the test split (0-based), most confident mistake first.
    """
    y_true = np.asarray(y_true)
    y_pred = probs.argmax(axis=1)
    pairs = []
    for t, true_name in enumerate(class_names):
        for p, pred_name in enumerate(class_names):
            if t == p:
                continue
            idx = np.flatnonzero((y_true == t) & (y_pred == p))
            if idx.size == 0:
                continue
            order = idx[np.argsort(-probs[idx, p], kind="stable")][:per_pair]
            pairs.append({"true": true_name, "predicted": pred_name, "count": int(idx.size),
                          "indices": order.tolist(),
                          "confidence": np.round(probs[order, p], 4).tolist()})
    pairs.sort(key=lambda pair: -pair["count"])
    return pairs


def compute_report(y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str], *,
                   bootstrap: int = BOOTSTRAP_DRAWS, seed: int = 0, level: float = CI_LEVEL,
                   curve_points: int = CURVE_POINTS,
                   examples_per_pair: int = EXAMPLES_PER_PAIR) -> dict[str, Any]:
    """Every figure of the report from true labels and class probabilities.

    ``bootstrap`` draws (0: no intervals) with ``seed``; ``level`` is the interval's coverage.
    """
    y_true = np.asarray(y_true)
    labels = list(range(len(class_names)))
    y_pred = probs.argmax(axis=1)
    per_class = classification_report(y_true, y_pred, labels=labels, target_names=list(class_names),
                                      output_dict=True, zero_division=0)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    report: dict[str, Any] = {
        "n_beats": int(len(y_true)),
        "class_names": list(class_names),
        "accuracy": float((y_pred == y_true).mean()),
        "macro_f1": float(per_class["macro avg"]["f1-score"]),
        "weighted_f1": float(per_class["weighted avg"]["f1-score"]),
        "per_class": {name: {k: float(v) for k, v in per_class[name].items()} for name in class_names},
        "macro_avg": {k: float(v) for k, v in per_class["macro avg"].items()},
        "weighted_avg": {k: float(v) for k, v in per_class["weighted avg"].items()},
        "confusion_matrix": cm.tolist(),
        "ec57": ec57.ec57_table(cm, class_names),
    }
    if bootstrap > 0:
        report["bootstrap"] = {"draws": int(bootstrap), "seed": int(seed), "level": float(level),
                               "method": "percentile; test beats resampled with replacement"}
        report["confidence_intervals"] = bootstrap_intervals(cm, class_names, bootstrap, seed, level)
    else:
        report["bootstrap"] = None
        report["confidence_intervals"] = None
    report.update(curves_report(y_true, probs, class_names, curve_points))
    report["misclassified"] = misclassified_pairs(y_true, probs, class_names, examples_per_pair)
    return report


def write_classification_csv(report: dict[str, Any], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["class", "precision", "recall", "f1-score", "support"])
        rows = [(n, report["per_class"][n]) for n in report["class_names"]]
        rows += [("macro avg", report["macro_avg"]), ("weighted avg", report["weighted_avg"])]
        for name, r in rows:
            writer.writerow([name, f"{r['precision']:.6f}", f"{r['recall']:.6f}",
                             f"{r['f1-score']:.6f}", int(r["support"])])
        writer.writerow(["accuracy", "", "", f"{report['accuracy']:.6f}", report["n_beats"]])


def plot_confusion_matrix(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(report["confusion_matrix"], dtype=float)
    names = report["class_names"]
    row_share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2.5, 1.1 * len(names) + 2))
    ax.imshow(row_share, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{int(cm[i, j])}\n{row_share[i, j]:.0%}", ha="center", va="center",
                    color="white" if row_share[i, j] > 0.5 else "black", fontsize=9)
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"accuracy {report['accuracy']:.3f}, macro-F1 {report['macro_f1']:.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(report: dict[str, Any], path: Path) -> None:
    """One-vs-rest ROC (left) and precision-recall (right) curves, AUCs in the legends."""
    plt = _pyplot()
    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(11, 4.8))
    for name in report["class_names"]:
        roc = report["curves"]["roc"].get(name)
        pr = report["curves"]["pr"].get(name)
        if roc:
            ax_roc.plot(roc["fpr"], roc["tpr"], lw=1.5,
                        label=f"{name} (AUC {report['roc_auc'][name]:.3f})")
        if pr:
            ax_pr.step(pr["recall"], pr["precision"], where="pre", lw=1.5,
                       label=f"{name} (AP {report['average_precision'][name]:.3f})")
    ax_roc.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax_roc.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1),
               ylim=(0, 1.01), title="ROC, one class vs the rest")
    ax_pr.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.01),
              title="precision-recall, one class vs the rest")
    for ax in (ax_roc, ax_pr):
        ax.legend(loc="lower right" if ax is ax_roc else "best", fontsize=8)
        ax.grid(alpha=0.3)
    macro = report.get("macro_roc_auc")
    if macro is not None:
        fig.suptitle(f"macro ROC AUC {macro:.3f}, macro AP {report['macro_average_precision']:.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_misclassified(report: dict[str, Any], beats: np.ndarray, y_true: np.ndarray,
                       path: Path) -> bool:
    """A grid of small line plots: one row per true/predicted pair with mistakes, its most
    confident misclassified beats in the columns, over the mean beat of the true class
    (grey) and of the predicted class (orange, dashed). Returns False when there are none."""
    pairs = report.get("misclassified") or []
    if not pairs:
        return False
    plt = _pyplot()
    names = report["class_names"]
    y_true = np.asarray(y_true)
    class_mean = {}
    for pair in pairs:  # class means over all test beats of each class (reference shapes)
        for name in (pair["true"], pair["predicted"]):
            if name not in class_mean:
                members = beats[y_true == names.index(name)]
                class_mean[name] = members.mean(axis=0) if len(members) else None
    cols = max(len(pair["indices"]) for pair in pairs)
    fig, axes = plt.subplots(len(pairs), cols, figsize=(1.7 * cols + 1.2, 1.15 * len(pairs) + 0.9),
                             sharex=True, sharey=True, squeeze=False)
    t = np.arange(beats.shape[1])
    for r, pair in enumerate(pairs):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(pair["indices"]):
                ax.axis("off")
                continue
            ref_true, ref_pred = class_mean[pair["true"]], class_mean[pair["predicted"]]
            if ref_true is not None:
                ax.plot(t, ref_true, color="0.7", lw=0.8)
            if ref_pred is not None:
                ax.plot(t, ref_pred, color="tab:orange", lw=0.8, ls="--")
            ax.plot(t, beats[pair["indices"][c]], color="tab:blue", lw=0.9)
            ax.set_title(f"#{pair['indices'][c]} p={pair['confidence'][c]:.2f}", fontsize=6, pad=2)
        axes[r, 0].set_ylabel(f"{pair['true']}→{pair['predicted']}\n({pair['count']})",
                              fontsize=8, rotation=0, ha="right", va="center")
    fig.suptitle("misclassified test beats, true→predicted (count); blue: the beat, grey: mean "
                 "of the true class, orange: mean of the predicted class", fontsize=8)
    width, height = fig.get_size_inches()  # fixed margins in inches (tight_layout is slow here)
    fig.subplots_adjust(left=1.0 / width, right=1 - 0.1 / width, bottom=0.1 / height,
                        top=1 - 0.55 / height, wspace=0.06, hspace=0.35)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_report(report: dict[str, Any], out_dir: Path, beats: np.ndarray | None = None,
                 y_true: np.ndarray | None = None) -> dict[str, Path]:
    """report.json, classification_report.csv and the pictures; the misclassified-beats
    picture needs the test beats and labels and is written only when there are mistakes."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"report": out_dir / "report.json",
             "classification_report": out_dir / "classification_report.csv",
             "confusion_matrix": out_dir / "confusion_matrix.png"}
    write_classification_csv(report, paths["classification_report"])
    plot_confusion_matrix(report, paths["confusion_matrix"])
    if report.get("curves", {}).get("roc"):
        paths["roc_pr_curves"] = out_dir / "roc_pr_curves.png"
        plot_curves(report, paths["roc_pr_curves"])
    stale = out_dir / "misclassified_beats.png"
    stale.unlink(missing_ok=True)  # from an earlier report in this folder
    if beats is not None and y_true is not None and plot_misclassified(report, beats, y_true, stale):
        paths["misclassified_beats"] = stale
    report["files"] = {k: str(v) for k, v in paths.items()}
    atomic_write_json(paths["report"], report)
    return paths


def _ci_text(interval: list[float] | None) -> str:
    return f"[{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "-"


def _opt(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "-"


def print_report(report: dict[str, Any], console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:  # a log file or pipe: no wrapping of the tables
            console = Console(width=max(console.width, 120))
    ci = report.get("confidence_intervals") or {}
    level = (report.get("bootstrap") or {}).get("level", CI_LEVEL)
    pct = f"{level:.0%}"
    table = Table(title=f"Test set: {report['n_beats']} beats")
    columns = ["class", "precision", "recall", f"recall {pct} CI", "f1", "ROC AUC", "AP", "support"]
    for col in columns:
        table.add_column(col, justify="left" if col == "class" else "right")
    for name in report["class_names"]:
        r = report["per_class"][name]
        recall_ci = (ci.get("per_class", {}).get(name) or {}).get("recall")
        table.add_row(name, f"{r['precision']:.3f}", f"{r['recall']:.3f}", _ci_text(recall_ci),
                      f"{r['f1-score']:.3f}", _opt((report.get("roc_auc") or {}).get(name)),
                      _opt((report.get("average_precision") or {}).get(name)),
                      str(int(r["support"])))
    for label, key in (("macro avg", "macro_avg"), ("weighted avg", "weighted_avg")):
        r = report[key]
        auc = _opt(report.get("macro_roc_auc")) if key == "macro_avg" else ""
        ap = _opt(report.get("macro_average_precision")) if key == "macro_avg" else ""
        table.add_row(label, f"{r['precision']:.3f}", f"{r['recall']:.3f}", "", f"{r['f1-score']:.3f}",
                      auc, ap, str(int(r["support"])), style="bold")
    console.print(table)
    line = (f"accuracy {report['accuracy']:.4f} {_ci_text(ci.get('accuracy'))}   "
            f"macro-F1 {report['macro_f1']:.4f} {_ci_text(ci.get('macro_f1'))}   "
            f"weighted-F1 {report['weighted_f1']:.4f}")
    console.print(line, highlight=False)
    boot = report.get("bootstrap")
    notes = [f"[brackets]: {pct} bootstrap interval, {boot['draws']} draws, seed {boot['seed']}"
             if boot else "no bootstrap intervals (--bootstrap 0)"]
    if report.get("macro_roc_auc") is not None:
        notes.append(f"macro ROC AUC {report['macro_roc_auc']:.4f}, macro AP "
                     f"{report['macro_average_precision']:.4f} (one class vs the rest)")
    console.print("; ".join(notes), highlight=False, markup=False)
    console.print(ec57.format_table(report["ec57"], "AAMI EC57 beat-by-beat (SVEB and VEB first)"),
                  highlight=False, markup=False)
    if report.get("record_errors"):
        console.print(ec57.format_record_errors(report["record_errors"], "per record, most "
                                                "errors first (beats of the class, found, "
                                                "false calls):"), highlight=False, markup=False)
    cm = Table(title="Confusion matrix", caption="rows: true class, columns: predicted")
    cm.add_column("")
    for name in report["class_names"]:
        cm.add_column(name, justify="right")
    for name, row in zip(report["class_names"], report["confusion_matrix"]):
        cm.add_row(name, *map(str, row))
    console.print(cm)
    pairs = report.get("misclassified") or []
    if pairs:
        top = ", ".join(f"{p['true']}→{p['predicted']} {p['count']}" for p in pairs[:5])
        wrong = sum(p["count"] for p in pairs)
        console.print(f"misclassified: {wrong} beats in {len(pairs)} true→predicted pairs; "
                      f"most: {top}", highlight=False, markup=False)


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

    record = members[0].record if len(members) == 1 else {}
    run_id = None if new_run else record.get("run_id")
    project = project or record.get("project") or os.environ.get("WANDB_PROJECT", "ecg-sweeps")
    init_args: dict[str, Any] = {"project": project}
    if run_id:
        init_args.update(id=run_id, resume="allow")
    else:
        init_args.update(job_type="eval", config={
            "models": [str(m.path) for m in members], "test_data": report.get("test_data"),
            "source_runs": [m.record.get("run_id") for m in members]})
    try:
        run = wandb.init(**init_args)
    except Exception as e:  # wandb raises its own types for login/network/config problems
        raise wandb_start_failed("--wandb", e) from None
    try:
        names = report["class_names"]
        y_pred = probs.argmax(axis=1)
        logged: dict[str, Any] = {
            "test/confusion_matrix": wandb.plot.confusion_matrix(
                y_true=np.asarray(y_true).tolist(), preds=y_pred.tolist(), class_names=names,
                title="test confusion matrix"),
        }
        columns, rows = _per_class_rows(report)
        logged["test/per_class"] = wandb.Table(columns=columns, data=rows)
        curve_rows = [[name, x, y] for name, c in report["curves"]["roc"].items()
                      for x, y in zip(c["fpr"], c["tpr"])]
        logged["test/roc_curves"] = wandb.Table(columns=["class", "fpr", "tpr"], data=curve_rows)
        curve_rows = [[name, x, y] for name, c in report["curves"]["pr"].items()
                      for x, y in zip(c["recall"], c["precision"])]
        logged["test/pr_curves"] = wandb.Table(columns=["class", "recall", "precision"],
                                               data=curve_rows)
        logged["test/misclassified_pairs"] = wandb.Table(
            columns=["true", "predicted", "count", "example_indices"],
            data=[[p["true"], p["predicted"], p["count"], json.dumps(p["indices"])]
                  for p in report.get("misclassified") or []])
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


def test_data_for(loaded: LoadedModel, test_csv: str | None, data_dir: str | None) -> tuple[Split, str]:
    """The held-out test split the model's record points at, or an explicit CSV."""
    from .data import datasets

    config = loaded.record.get("config", {})
    dataset = config.get("dataset")
    if dataset is None and test_csv is None:
        raise UserError(f"{loaded.path} has no record of its data set ({sidecar_path(loaded.path)} "
                        "missing); pass --test CSV")
    source = datasets.resolve_source(dataset or str(test_csv),
                                     data_dir or config.get("data_dir", "data"))
    classes = config.get("classes", "aami5")
    split = datasets.load_test(source, test_csv)
    split = datasets.restrict_classes(split, source.class_names, classes)
    source.class_names = tuple(loaded.class_names) or source.class_names
    where = str(test_csv) if test_csv else (f"the {source.name} test data"
                                            + (f" ({source.files.get('test')})"
                                               if source.files.get("test") else ""))
    return split, where


def _default_out_dir(members: Sequence[LoadedModel]) -> Path:
    if len(members) > 1:
        return Path("reports") / "ensemble"
    m = members[0]
    family = m.record.get("config", {}).get("model")
    return Path("reports") / (f"{family}-{m.path.stem}" if family else m.path.stem)


def evaluate(model_paths: Sequence[str | Path], test_csv: str | None = None,
             data_dir: str | None = None, out_dir: str | Path | None = None, *,
             bootstrap: int = BOOTSTRAP_DRAWS, seed: int = 0, level: float = CI_LEVEL,
             examples_per_pair: int = EXAMPLES_PER_PAIR, wandb_log: bool = False,
             wandb_project: str | None = None, wandb_new_run: bool = False,
             batch_size: int = 1024) -> dict[str, Any]:
    """Load the model(s), score them on the test data, print and write the report.

    ``bootstrap`` draws (0: none) seeded by ``seed`` give the confidence intervals;
    ``wandb_log`` also logs the report to W&B (see ``log_to_wandb``).
    """
    if bootstrap < 0:
        raise UserError(f"--bootstrap {bootstrap}: give a number of draws, 0 or more")
    if not 0 < level < 1:
        raise UserError(f"confidence level {level}: must be between 0 and 1 (e.g. 0.95)")
    members = [load_model(p) for p in model_paths]
    first = members[0]
    for other in members[1:]:
        if other.class_names != first.class_names:
            raise UserError(f"{other.path} has classes {other.class_names} but {first.path} has "
                            f"{first.class_names}; an ensemble needs the same classes")
    out = writable_folder(out_dir or _default_out_dir(members), "--out")  # before the work
    split, where = test_data_for(first, test_csv, data_dir)
    # An explicit --test file is the user's choice; a derived one must come from the data
    # the model was chosen on.
    warnings = [] if test_csv else changed_data(members, data_dir)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    for m in members:
        check_fit(m, split, where)
    probs = predict_proba(members, split, batch_size=batch_size)
    report = compute_report(split.y, probs, first.class_names, bootstrap=bootstrap, seed=seed,
                            level=level, examples_per_pair=examples_per_pair)
    if split.records is not None:  # the beat sidecar names each beat's record
        by_record = ec57.confusion_by_record(split.y, probs.argmax(axis=1), split.records,
                                             len(first.class_names))
        report["record_errors"] = ec57.record_errors(by_record, first.class_names)
    report["models"] = [str(m.path) for m in members]
    report["test_data"] = where
    if warnings:
        report["warnings"] = warnings
    print(f"{', '.join(map(str, report['models']))} on {where}")
    for m in members:
        note = chosen_on(m.record)
        print(f"{m.path}: {note}" if note else f"{m.path}: no record of the data it was chosen on")
    print_report(report)
    paths = write_report(report, out, beats=split.X, y_true=split.y)
    if wandb_log:
        report["wandb"] = log_to_wandb(report, paths, members, split.y, probs,
                                       project=wandb_project, new_run=wandb_new_run)
        atomic_write_json(paths["report"], report)
        w = report["wandb"]
        how = "resumed the training run" if w["resumed"] else "new eval run"
        print(f"W&B: logged to run {w['run_id']} in project {w['project']} ({how}"
              f"{'; offline: upload with `wandb sync ' + w['run_dir'] + '`' if w['offline'] else ''})")
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return report
