"""An evaluation report on the terminal: the per-class table with its confidence
intervals and AUCs, the headline figures, the EC57 table (AAMI classes), the per-record
errors, the confusion matrix and the most frequent mistakes."""

from __future__ import annotations

from typing import Any

from .. import ec57
from ..cli import counted
from .metrics import CI_LEVEL, RESAMPLED_BEATS, coarse_interval_note


CONFUSION_CORNER = "true \\ predicted"


def _ci_text(interval: list[float] | None, digits: int = 3) -> str:
    """An interval as the figure beside it is printed, to as many decimals."""
    return f"[{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]" if interval else "-"


def _opt(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "-"


def _level_text(report: dict[str, Any]) -> str:
    """The confidence level of the report's intervals, as a percentage."""
    return f"{(report.get('bootstrap') or {}).get('level', CI_LEVEL):.0%}"


def per_class_table(report: dict[str, Any]):
    """Precision, recall (with its interval), F1, AUCs and support of each class, then the
    macro and weighted averages."""
    from rich.table import Table

    ci = report.get("confidence_intervals") or {}
    table = Table(title=f"Test set: {report['n_beats']} beats")
    columns = ["class", "precision", "recall", f"recall {_level_text(report)} CI", "f1",
               "ROC AUC", "AP", "support"]
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
        table.add_row(label, f"{r['precision']:.3f}", f"{r['recall']:.3f}", "",
                      f"{r['f1-score']:.3f}", auc, ap, str(int(r["support"])), style="bold")
    return table


def headline_lines(report: dict[str, Any]) -> list[str]:
    """Accuracy, macro-F1 and weighted-F1 with their intervals, and what the brackets and
    the AUCs are."""
    ci = report.get("confidence_intervals") or {}
    line = (f"accuracy {report['accuracy']:.4f} {_ci_text(ci.get('accuracy'), 4)}   "
            f"macro-F1 {report['macro_f1']:.4f} {_ci_text(ci.get('macro_f1'), 4)}   "
            f"weighted-F1 {report['weighted_f1']:.4f}")
    boot = report.get("bootstrap")
    notes = [f"[brackets]: {_level_text(report)} bootstrap interval, "
             f"{counted(boot['draws'], 'draw')} of the test {_resampled(boot)}, "
             f"seed {boot['seed']}" if boot
             else "no bootstrap intervals (--bootstrap 0)"]
    notes += _interval_caveats(boot, ci)
    if report.get("macro_roc_auc") is not None:
        notes.append(f"macro ROC AUC {report['macro_roc_auc']:.4f}, macro AP "
                     f"{report['macro_average_precision']:.4f} (one class vs the rest)")
    return [line, "; ".join(notes)]


def _resampled(boot: dict[str, Any]) -> str:
    """What the draws resampled; a report written before reports said so resampled beats."""
    return boot.get("resampled", RESAMPLED_BEATS)


def _interval_caveats(boot: dict[str, Any] | None, ci: dict[str, Any]) -> list[str]:
    """What limits the intervals: few records to resample, and draws left out of macro-F1's."""
    caveats = []
    coarse = coarse_interval_note((boot or {}).get("records"))
    if coarse:
        caveats.append(coarse)
    used = ci.get("macro_f1_draws")
    if boot and used is not None and used < boot["draws"]:
        caveats.append(f"macro-F1's on {used} of {boot['draws']} draws (those with every "
                       "class of the test set)")
    return caveats


def confusion_table(report: dict[str, Any]):
    from rich.table import Table

    # the corner names the axes: a caption would wrap to the narrow table's width
    cm = Table(title="Confusion matrix")
    cm.add_column(CONFUSION_CORNER)
    for name in report["class_names"]:
        cm.add_column(name, justify="right")
    for name, row in zip(report["class_names"], report["confusion_matrix"]):
        cm.add_row(name, *map(str, row))
    return cm


def mistakes_line(report: dict[str, Any]) -> str | None:
    """How many beats were misclassified, and the most frequent true/predicted pairs."""
    pairs = report.get("misclassified") or []
    if not pairs:
        return None
    top = ", ".join(f"{p['true']}→{p['predicted']} {p['count']}" for p in pairs[:5])
    wrong = sum(p["count"] for p in pairs)
    return f"misclassified: {wrong} beats in {len(pairs)} true→predicted pairs; most: {top}"


def print_report(report: dict[str, Any], console: Any = None) -> None:
    from rich.console import Console

    if console is None:
        console = Console()
        if not console.is_terminal:  # a log file or pipe: no wrapping of the tables
            console = Console(width=max(console.width, 120))
    console.print(per_class_table(report))
    line, notes = headline_lines(report)
    console.print(line, highlight=False)
    console.print(notes, highlight=False, markup=False)
    if report.get("ec57"):  # AAMI classes only; the table above has the others' figures
        console.print(ec57.format_table(report["ec57"],
                                        "AAMI EC57 beat-by-beat (SVEB and VEB first)"),
                      highlight=False, markup=False)
    if report.get("record_errors"):
        console.print(ec57.format_record_errors(report["record_errors"], "per record, most "
                                                "errors first (beats of the class, found, "
                                                "false calls):"), highlight=False, markup=False)
    console.print(confusion_table(report))
    mistakes = mistakes_line(report)
    if mistakes:
        console.print(mistakes, highlight=False, markup=False)
