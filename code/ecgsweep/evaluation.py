"""Score saved models on held-out test data: metrics, confusion matrix, report files.

Several models given together form an ensemble: their class probabilities are averaged.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix

from .artifacts import BestModelSlot, atomic_write_json, sidecar_path
from .cli import UserError
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
    if model_path.name == "best.keras":
        record = BestModelSlot(model_path.parent.parent, model_path.parent.name).read()
        if record is not None:
            return record
    side = sidecar_path(model_path)
    if side.is_file():
        return json.loads(side.read_text())
    return {}


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
        raise UserError(f"{path}: not a loadable Keras model ({type(e).__name__}: {e})") from None
    if not record.get("class_names"):
        n_out = int(model.output_shape[-1])
        record["class_names"] = [str(i) for i in range(n_out)]
    return LoadedModel(path, model, record)


def check_fit(loaded: LoadedModel, split: Split, source: str) -> None:
    """A clear message when the model cannot score this data (beat width or class labels)."""
    expected_len = loaded.model.input_shape[1]
    if expected_len is not None and split.X.shape[1] != expected_len:
        raise UserError(f"{loaded.path} expects beats of {expected_len} samples but {source} "
                        f"has {split.X.shape[1]} per row")
    n_out = int(loaded.model.output_shape[-1])
    if len(split.y) and int(split.y.max()) >= n_out:
        raise UserError(f"{loaded.path} predicts {n_out} classes ({', '.join(loaded.class_names)}) "
                        f"but {source} has label {int(split.y.max())}; was the model trained on "
                        "another data set?")


def predict_proba(members: Sequence[LoadedModel], X: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Mean class probabilities over the members (one member: its own probabilities)."""
    from .training import as_model_input

    inputs = as_model_input(X)
    probs = [np.asarray(m.model.predict(inputs, batch_size=batch_size, verbose=0), dtype=np.float64)
             for m in members]
    return np.mean(probs, axis=0)


def compute_report(y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    labels = list(range(len(class_names)))
    y_pred = probs.argmax(axis=1)
    per_class = classification_report(y_true, y_pred, labels=labels, target_names=list(class_names),
                                      output_dict=True, zero_division=0)
    return {
        "n_beats": int(len(y_true)),
        "class_names": list(class_names),
        "accuracy": float((y_pred == y_true).mean()),
        "macro_f1": float(per_class["macro avg"]["f1-score"]),
        "weighted_f1": float(per_class["weighted avg"]["f1-score"]),
        "per_class": {name: {k: float(v) for k, v in per_class[name].items()} for name in class_names},
        "macro_avg": {k: float(v) for k, v in per_class["macro avg"].items()},
        "weighted_avg": {k: float(v) for k, v in per_class["weighted avg"].items()},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


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


def write_report(report: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"report": out_dir / "report.json",
             "classification_report": out_dir / "classification_report.csv",
             "confusion_matrix": out_dir / "confusion_matrix.png"}
    atomic_write_json(paths["report"], report)
    write_classification_csv(report, paths["classification_report"])
    plot_confusion_matrix(report, paths["confusion_matrix"])
    return paths


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"Test set: {report['n_beats']} beats")
    for col in ("class", "precision", "recall", "f1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for name in report["class_names"]:
        r = report["per_class"][name]
        table.add_row(name, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1-score']:.3f}",
                      str(int(r["support"])))
    for label, key in (("macro avg", "macro_avg"), ("weighted avg", "weighted_avg")):
        r = report[key]
        table.add_row(label, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1-score']:.3f}",
                      str(int(r["support"])), style="bold")
    console.print(table)
    console.print(f"accuracy {report['accuracy']:.4f}   macro-F1 {report['macro_f1']:.4f}   "
                  f"weighted-F1 {report['weighted_f1']:.4f}")
    cm = Table(title="Confusion matrix", caption="rows: true class, columns: predicted")
    cm.add_column("")
    for name in report["class_names"]:
        cm.add_column(name, justify="right")
    for name, row in zip(report["class_names"], report["confusion_matrix"]):
        cm.add_row(name, *map(str, row))
    console.print(cm)


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
    source.class_names = tuple(loaded.class_names) or source.class_names
    split = datasets.load_test(source, test_csv)
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
             data_dir: str | None = None, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Load the model(s), score them on the test data, print and write the report."""
    members = [load_model(p) for p in model_paths]
    first = members[0]
    for other in members[1:]:
        if other.class_names != first.class_names:
            raise UserError(f"{other.path} has classes {other.class_names} but {first.path} has "
                            f"{first.class_names}; an ensemble needs the same classes")
    split, where = test_data_for(first, test_csv, data_dir)
    for m in members:
        check_fit(m, split, where)
    probs = predict_proba(members, split.X)
    report = compute_report(split.y, probs, first.class_names)
    report["models"] = [str(m.path) for m in members]
    report["test_data"] = where
    out = Path(out_dir) if out_dir else _default_out_dir(members)
    print(f"{', '.join(map(str, report['models']))} on {where}")
    print_report(report)
    paths = write_report(report, out)
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return report
