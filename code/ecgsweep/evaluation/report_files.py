"""An evaluation report on disk: report.json (curves downsampled),
classification_report.csv and the PNG pictures (confusion matrix, ROC and
precision-recall curves, misclassified beats)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..sweep.files import write_text_whole


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


# The pictures a report draws only when its data allow (curves need two classes or more
# among the test beats, the misclassified beats a mistake).
OPTIONAL_PICTURES = {"roc_pr_curves": "roc_pr_curves.png",
                     "misclassified_beats": "misclassified_beats.png"}


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
    for name in OPTIONAL_PICTURES.values():  # an earlier report's, which this one may not draw
        (out_dir / name).unlink(missing_ok=True)
    if report.get("curves", {}).get("roc"):
        paths["roc_pr_curves"] = out_dir / OPTIONAL_PICTURES["roc_pr_curves"]
        plot_curves(report, paths["roc_pr_curves"])
    misclassified = out_dir / OPTIONAL_PICTURES["misclassified_beats"]
    if beats is not None and y_true is not None and plot_misclassified(report, beats, y_true,
                                                                       misclassified):
        paths["misclassified_beats"] = misclassified
    report["files"] = {k: str(v) for k, v in paths.items()}
    write_report_json(paths["report"], report)
    return paths


def write_report_json(path: Path, report: dict[str, Any]) -> None:
    """report.json, replaced whole."""
    write_text_whole(path, json.dumps(report, indent=2, sort_keys=True, default=str))
