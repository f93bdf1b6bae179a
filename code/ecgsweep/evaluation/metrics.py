"""The figures of an evaluation report, pure functions of the true labels and the class
probabilities: precision/recall/F1 and the confusion matrix; bootstrap 95% confidence
intervals of accuracy, macro-F1 and each class's precision, recall and F1 (percentile
method; the test beats are resampled with replacement); one-vs-rest ROC and
precision-recall curves with their AUCs (ROC AUC, average precision); and the
misclassified beats of every true/predicted pair, most confident mistakes first."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from sklearn.metrics import (average_precision_score, classification_report, confusion_matrix,
                             precision_recall_curve, roc_auc_score, roc_curve)

from .. import ec57


BOOTSTRAP_DRAWS = 1000
RESAMPLED_BEATS, RESAMPLED_RECORDS = "beats", "records"  # report["bootstrap"]["resampled"]
BEATS_RESAMPLED = "percentile; test beats resampled with replacement"
# Beats of one patient are not independent draws: where each beat's record is known, the
# interval resamples patients, which is what a figure on new patients varies with.
RECORDS_RESAMPLED = "percentile; whole records resampled with replacement ({} records)"
# Below this many records an interval over records is coarse (the terminal says so); with one
# there are no patients to resample, and the beats are resampled instead.
FEW_RECORDS = 10
CI_LEVEL = 0.95
CURVE_POINTS = 200  # points kept per curve in report.json
EXAMPLES_PER_PAIR = 6  # beats drawn per true/predicted pair in the misclassified picture


def rates_from_counts(cm: np.ndarray, classes: np.ndarray | None = None
                      ) -> dict[str, np.ndarray]:
    """Accuracy, macro-F1 and per-class precision/recall/F1 of confusion matrices.

    ``cm`` is (..., k, k) counts, rows true, columns predicted; any leading axes (e.g. one
    per bootstrap draw) are kept. Same conventions as scikit-learn with zero_division=0:
    a ratio with a zero denominator is 0, and the macro average is over the classes with
    beats or calls (``ec57.macro_f1``), as training's ``val_macro_f1`` and the EC57
    tables take it, or over ``classes`` (a mask) for every matrix. Recall of a class with
    no beats, and precision and F1 of one with neither beats nor calls, are NaN here, so a
    confidence interval skips the draws where they are undefined.
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support = cm.sum(axis=-1)
    predicted = cm.sum(axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, np.nan)
        accuracy = tp.sum(axis=-1) / cm.sum(axis=(-2, -1))
    present = ec57.present_classes(cm)
    precision = np.where(present, precision, np.nan)
    f1 = np.where(present, ec57.class_f1(cm), np.nan)
    return {"accuracy": accuracy, "macro_f1": ec57.macro_f1(cm, over=classes),
            "precision": precision, "recall": recall, "f1-score": f1}


def macro_average(per_class: dict[str, dict[str, float]], class_names: Sequence[str],
                  present: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 averaged over the ``present`` classes; support summed."""
    rows = [per_class[name] for name, keep in zip(class_names, present) if keep]
    return {**{key: float(np.mean([row[key] for row in rows]))
               for key in ("precision", "recall", "f1-score")},
            "support": float(sum(row["support"] for row in rows))}


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


def bootstrap_confusion_by_record(by_record: np.ndarray, draws: int, seed: int) -> np.ndarray:
    """``draws`` bootstrap replicates, shape (draws, k, k), of the pooled confusion matrix
    of the records whose matrices ``by_record`` (r, k, k) holds: each replicate pools r
    records drawn with replacement (a cluster bootstrap over patients)."""
    by_record = np.asarray(by_record, dtype=np.int64)
    r = len(by_record)
    if r == 0:
        return np.zeros((draws,) + by_record.shape[1:], dtype=np.int64)
    picks = np.random.default_rng(seed).multinomial(r, np.full(r, 1.0 / r), size=draws)
    return np.einsum("dr,rkl->dkl", picks, by_record)


def paired_differences(a: np.ndarray, b: np.ndarray, class_names: Sequence[str],
                       draws: int = BOOTSTRAP_DRAWS, seed: int = 0,
                       level: float = CI_LEVEL) -> dict[str, Any]:
    """F1 of ``a`` minus F1 of ``b``, each class's and macro-F1, pooled over the records whose
    matrices the two (r, k, k) stacks hold in the same order (the same records scored two
    ways), with a bootstrap interval that draws the same records for both: what differs
    between two configurations scored on one set of patients, every call counted."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    classes = ec57.present_classes(a.sum(axis=0)) | ec57.present_classes(b.sum(axis=0))
    picks = np.random.default_rng(seed).multinomial(len(a), np.full(len(a), 1.0 / len(a)),
                                                    size=draws)
    drawn_a, drawn_b = (np.einsum("dr,rkl->dkl", picks, stack) for stack in (a, b))
    rates_a, rates_b = (rates_from_counts(drawn, classes) for drawn in (drawn_a, drawn_b))
    point_a, point_b = (rates_from_counts(stack.sum(axis=0), classes) for stack in (a, b))

    def difference(key: str, column: int | None = None) -> dict[str, Any]:
        pick = (lambda rates: rates[key]) if column is None else (
            lambda rates: rates[key][..., column])
        point = float(pick(point_a) - pick(point_b))
        return {"difference": point if np.isfinite(point) else None,
                "interval": _interval(pick(rates_a) - pick(rates_b), level)}

    return {"records": len(a), "draws": int(draws), "seed": int(seed), "level": float(level),
            "per_class": {name: difference("f1-score", c) for c, name in enumerate(class_names)},
            "macro_f1": difference("macro_f1")}


def _interval(values: np.ndarray, level: float) -> list[float] | None:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return [float(low), float(high)]


def bootstrap_intervals(cm: np.ndarray, class_names: Sequence[str], draws: int = BOOTSTRAP_DRAWS,
                        seed: int = 0, level: float = CI_LEVEL,
                        by_record: np.ndarray | None = None) -> dict[str, Any]:
    """Percentile bootstrap intervals of accuracy, macro-F1 and per-class precision/recall/F1:
    over the records of ``by_record`` (r, k, k: the matrices whose sum is ``cm``) when given,
    else over the beats. Every draw's macro-F1 averages the classes ``cm`` has beats or
    calls of, so no draw's mean is over fewer classes."""
    replicates = (bootstrap_confusion(cm, draws, seed) if by_record is None
                  else bootstrap_confusion_by_record(by_record, draws, seed))
    rates = rates_from_counts(replicates, classes=ec57.present_classes(cm))
    return {
        "accuracy": _interval(rates["accuracy"], level),
        "macro_f1": _interval(rates["macro_f1"], level),
        # the draws the macro-F1 interval stands on: those with every class of the test set
        "macro_f1_draws": int(np.isfinite(rates["macro_f1"]).sum()),
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


def coarse_interval_note(records: int | None) -> str | None:
    """What to say of intervals over ``records`` records (None: over beats): a note under
    ``FEW_RECORDS``, else nothing."""
    if records is None or records >= FEW_RECORDS:
        return None
    return f"only {records} records to resample: a coarse interval"


def interval_report(cm: np.ndarray, class_names: Sequence[str], draws: int, seed: int,
                    level: float, by_record: np.ndarray | None = None) -> dict[str, Any]:
    """A report's ``bootstrap`` and ``confidence_intervals`` of the pooled matrix ``cm``: over
    the records of ``by_record`` (r, k, k) when there are two or more, else over the beats
    (one patient would give intervals of one point)."""
    if by_record is not None and len(by_record) < 2:
        by_record = None
    return {"bootstrap": bootstrap_description(draws, seed, level, by_record),
            "confidence_intervals": bootstrap_intervals(cm, class_names, draws, seed, level,
                                                        by_record)}


def bootstrap_description(draws: int, seed: int, level: float,
                          by_record: np.ndarray | None) -> dict[str, Any]:
    """The report's ``bootstrap``: its draws, seed and level, and what it resamples."""
    described = {"draws": int(draws), "seed": int(seed), "level": float(level)}
    if by_record is None:
        return {**described, "method": BEATS_RESAMPLED, "resampled": RESAMPLED_BEATS}
    return {**described, "method": RECORDS_RESAMPLED.format(len(by_record)),
            "resampled": RESAMPLED_RECORDS, "records": len(by_record)}


def compute_report(y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str], *,
                   bootstrap: int = BOOTSTRAP_DRAWS, seed: int = 0, level: float = CI_LEVEL,
                   curve_points: int = CURVE_POINTS,
                   examples_per_pair: int = EXAMPLES_PER_PAIR,
                   confusion_by_record: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every figure of the report from true labels and class probabilities.

    ``bootstrap`` draws (0: no intervals) with ``seed``; ``level`` is the interval's coverage.
    With each record's confusion matrix (``confusion_by_record``, ``ec57.confusion_by_record``
    of these beats) the draws resample whole records, else beats.
    """
    y_true = np.asarray(y_true)
    labels = list(range(len(class_names)))
    y_pred = probs.argmax(axis=1)
    per_class = classification_report(y_true, y_pred, labels=labels, target_names=list(class_names),
                                      output_dict=True, zero_division=0)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    macro = macro_average(per_class, class_names, ec57.present_classes(cm))
    report: dict[str, Any] = {
        "n_beats": int(len(y_true)),
        "class_names": list(class_names),
        "accuracy": float((y_pred == y_true).mean()),
        "macro_f1": ec57.macro_f1(cm),
        "weighted_f1": float(per_class["weighted avg"]["f1-score"]),
        "per_class": {name: {k: float(v) for k, v in per_class[name].items()} for name in class_names},
        "macro_avg": macro,
        "weighted_avg": {k: float(v) for k, v in per_class["weighted avg"].items()},
        "confusion_matrix": cm.tolist(),
    }
    if ec57.has_ec57_rows(class_names):  # the EC57 table only where the classes are AAMI's
        report["ec57"] = ec57.ec57_table(cm, class_names)
    if bootstrap > 0:
        by_record = (None if confusion_by_record is None
                     else np.array(list(confusion_by_record.values())))
        report.update(interval_report(cm, class_names, bootstrap, seed, level, by_record))
    else:
        report["bootstrap"] = None
        report["confidence_intervals"] = None
    report.update(curves_report(y_true, probs, class_names, curve_points))
    report["misclassified"] = misclassified_pairs(y_true, probs, class_names, examples_per_pair)
    return report
