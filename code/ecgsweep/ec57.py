"""AAMI EC57 beat-by-beat statistics from a confusion matrix.

ANSI/AAMI EC57 reports, per beat class, sensitivity (Se = TP / (TP + FN)), positive
predictivity (+P = TP / (TP + FP)) and the false positive rate (FPR = FP / (FP + TN)); the
inter-patient literature (de Chazal et al. 2004 and after) puts the ventricular (VEB, our
V) and supraventricular (SVEB, our S) ectopic beat rows first, as they are the figures that
matter clinically and the hard ones. F1 is the harmonic mean of Se and +P.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

# EC57's names for the classes whose rows lead the table.
EC57_NAMES = {"S": "SVEB", "V": "VEB"}


def ec57_table(cm: np.ndarray, class_names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per class {name, se, ppv, fpr, f1, support} from ``cm`` (rows true, columns predicted);
    a ratio with a zero denominator is None."""
    cm = np.asarray(cm, dtype=np.float64)
    total = cm.sum()
    out: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(class_names):
        tp = cm[i, i]
        fn = cm[i].sum() - tp
        fp = cm[:, i].sum() - tp
        tn = total - tp - fn - fp
        se, ppv, fpr = _ratio(tp, tp + fn), _ratio(tp, tp + fp), _ratio(fp, fp + tn)
        f1 = (2 * se * ppv / (se + ppv) if se is not None and ppv is not None and se + ppv > 0
              else (0.0 if se is not None and ppv is not None else None))
        out[name] = {"name": EC57_NAMES.get(name, name), "se": se, "ppv": ppv, "fpr": fpr,
                     "f1": f1, "support": int(tp + fn)}
    return out


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den > 0 else None


def row_order(class_names: Sequence[str]) -> list[str]:
    """SVEB and VEB rows first, then the others in class order."""
    first = [c for c in ("S", "V") if c in class_names]
    return first + [c for c in class_names if c not in first]


def format_table(table: dict[str, dict[str, Any]], title: str) -> str:
    """The table as plain text, one row per class, SVEB and VEB first."""
    def pct(v: float | None) -> str:
        return f"{100 * v:6.2f}" if v is not None else "     -"

    lines = [title, f"{'class':<10}{'Se %':>8}{'+P %':>8}{'FPR %':>8}{'F1':>8}{'beats':>8}"]
    for c in row_order(list(table)):
        r = table[c]
        label = f"{c} ({r['name']})" if r["name"] != c else c
        f1 = f"{r['f1']:.3f}" if r["f1"] is not None else "-"
        lines.append(f"{label:<10}{pct(r['se']):>8}{pct(r['ppv']):>8}{pct(r['fpr']):>8}"
                     f"{f1:>8}{r['support']:>8}")
    return "\n".join(lines)
