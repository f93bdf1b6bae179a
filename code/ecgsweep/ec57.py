"""AAMI EC57 beat-by-beat statistics from a confusion matrix.

ANSI/AAMI EC57 reports, per beat class, sensitivity (Se = TP / (TP + FN)), positive
predictivity (+P = TP / (TP + FP)) and the false positive rate (FPR = FP / (FP + TN)); the
inter-patient literature (de Chazal et al. 2004 and after) puts the ventricular (VEB, our
V) and supraventricular (SVEB, our S) ectopic beat rows first, as they are the figures that
matter clinically and the hard ones. F1 is the harmonic mean of Se and +P.

The SVEB and VEB rows follow EC57's gross statistics as WFDB's ``bxb`` (the
ANSI/AAMI-standard beat-by-beat comparator) computes them: a fusion (F) or unclassifiable
(Q) beat called V is neither a false VEB nor a true negative, and neither is a Q beat
called S (bxb: VEB FP = Nv + Sv, SVEB FP = Ns + Vs + Fs). An F beat is part normal, part
ventricular, so calling it V is not an error that a VEB detector is judged by. The other
rows, and every macro-F1, count every call.

The table and its rules are EC57's only where the classes are AAMI's (N S V F Q, with S and
V among them: ``has_ec57_rows``); for other classes (PTB's normal/abnormal, one's own) the
same figures are each class against the rest, every call counted, under a neutral heading
(``class_table``, ``table_heading``).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .data.classes import MITBIH_CLASSES as AAMI_CLASSES

# EC57's names for the classes whose rows lead the table.
EC57_NAMES = {"S": "SVEB", "V": "VEB"}
# Per EC57 row, the true classes whose calls of it count neither as false calls nor as
# true negatives (bxb's gross statistics; see the module's docstring).
NOT_COUNTED_AGAINST = {"V": ("F", "Q"), "S": ("Q",)}


def ec57_table(cm: np.ndarray, class_names: Sequence[str],
               ec57_rules: bool = True) -> dict[str, dict[str, Any]]:
    """Per class {name, se, ppv, fpr, f1, support, not_counted} from ``cm`` (rows true,
    columns predicted); a ratio with a zero denominator is None, so F1 is None only for a
    class with neither beats nor calls. With ``ec57_rules`` the
    SVEB and VEB rows leave out the calls EC57 does not count against them (their number
    is ``not_counted``); without, every call counts, as in a plain classification report.
    Classes that are not AAMI's never get EC57's rules or row names."""
    cm = np.asarray(cm, dtype=np.float64)
    class_names = list(class_names)
    ec57_rules = ec57_rules and has_ec57_rows(class_names)
    out: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(class_names):
        ignored = [class_names.index(c) for c in NOT_COUNTED_AGAINST.get(name, ())
                   if ec57_rules and c in class_names]
        not_counted = cm[ignored, i].sum()
        counted = cm.sum() - not_counted
        tp = cm[i, i]
        fn = cm[i].sum() - tp
        fp = cm[:, i].sum() - tp - not_counted
        tn = counted - tp - fn - fp
        se, ppv, fpr = _ratio(tp, tp + fn), _ratio(tp, tp + fp), _ratio(fp, fp + tn)
        # 2TP / (2TP + FP + FN): 0 for a class with beats and no calls or no hits, so a
        # model that never calls a class scores no better than one that calls it wrongly
        f1 = _ratio(2 * tp, 2 * tp + fp + fn)
        out[name] = {"name": EC57_NAMES.get(name, name) if ec57_rules else name, "se": se,
                     "ppv": ppv, "fpr": fpr, "f1": f1, "support": int(tp + fn),
                     "not_counted": int(not_counted)}
    return out


def class_f1(cm: np.ndarray) -> np.ndarray:
    """F1 = 2TP / (2TP + FP + FN) of each class of the (..., k, k) confusion matrices ``cm``
    (rows true, columns predicted), every call counted; 0 for a class with neither beats
    nor calls, which ``present_classes`` leaves out of a mean."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    denom = cm.sum(axis=-1) + cm.sum(axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, 2 * tp / denom, 0.0)


def present_classes(cm: np.ndarray) -> np.ndarray:
    """Per class of the (..., k, k) confusion matrices ``cm``, whether it has beats or calls:
    the classes a macro average is taken over (one with neither has no F1 to average)."""
    cm = np.asarray(cm)
    return (cm.sum(axis=-1) + cm.sum(axis=-2)) > 0


def macro_f1(cm: np.ndarray, over: np.ndarray | None = None) -> Any:
    """The macro-F1 of every figure here (training's ``val_macro_f1``, the pooled and test
    reports, ``sweep.py ensemble``): the mean ``class_f1`` over the classes with beats or
    calls, every call counted (no EC57 rule). A float for one (k, k) matrix, an array for a
    stack of them.

    ``over`` (a mask of the k classes) fixes the classes averaged for every matrix of a
    stack, as a bootstrap needs (those of the matrix it resamples); a matrix in which one of
    them has neither beats nor calls has no macro-F1 over them: NaN."""
    present = present_classes(cm)
    classes = present if over is None else np.asarray(over, dtype=bool)
    macro = (class_f1(cm) * classes).sum(axis=-1) / classes.sum(axis=-1)
    if over is not None:
        macro = np.where((classes & ~present).any(axis=-1), np.nan, macro)
    return float(macro) if np.ndim(macro) == 0 else macro


def has_ec57_rows(class_names: Sequence[str]) -> bool:
    """Whether the classes are AAMI's (each one of N S V F Q) and include both of the rows
    EC57 leads with (S and V): only then are the EC57 table and its SVEB/VEB figures."""
    return (all(c in AAMI_CLASSES for c in class_names)
            and all(c in class_names for c in EC57_NAMES))


def class_table(cm: np.ndarray, class_names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The per-class table of ``cm``: EC57's (its rules) for AAMI classes, else each class
    against the rest with every call counted."""
    return ec57_table(cm, class_names, ec57_rules=has_ec57_rows(class_names))


def table_heading(class_names: Sequence[str]) -> str:
    """What ``class_table``'s figures are, for a title."""
    return ("AAMI EC57" if has_ec57_rows(class_names)
            else "per class (each class against the rest)")


def sveb_veb_f1(cm: np.ndarray, class_names: Sequence[str]) -> float:
    """Mean of the SVEB and VEB rows' F1 (EC57 rules), the two figures the inter-patient
    literature compares; a row with neither beats nor calls (F1 undefined) is left out, and
    0.0 when both are."""
    table = ec57_table(cm, class_names)
    f1 = [table[c]["f1"] for c in EC57_NAMES if table[c]["f1"] is not None]
    return float(np.mean(f1)) if f1 else 0.0


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den > 0 else None


def row_order(class_names: Sequence[str]) -> list[str]:
    """For AAMI classes SVEB and VEB rows first, then the others in class order."""
    first = [c for c in ("S", "V") if c in class_names] if has_ec57_rows(class_names) else []
    return first + [c for c in class_names if c not in first]


def format_table(table: dict[str, dict[str, Any]], title: str) -> str:
    """The table as plain text, one row per class (AAMI classes: SVEB and VEB first)."""
    def pct(v: float | None) -> str:
        return f"{100 * v:6.2f}" if v is not None else "     -"

    lines = [title, f"{'class':<10}{'Se %':>8}{'+P %':>8}{'FPR %':>8}{'F1':>8}{'beats':>8}"]
    for c in row_order(list(table)):
        r = table[c]
        label = f"{c} ({r['name']})" if r["name"] != c else c
        f1 = f"{r['f1']:.3f}" if r["f1"] is not None else "-"
        lines.append(f"{label:<10}{pct(r['se']):>8}{pct(r['ppv']):>8}{pct(r['fpr']):>8}"
                     f"{f1:>8}{r['support']:>8}")
    for c in row_order(list(table)):
        if table[c].get("not_counted"):
            others = "/".join(k for k in NOT_COUNTED_AGAINST[c] if k in table)
            lines.append(f"({table[c]['not_counted']} {others} beats called {c} not counted "
                         f"against {table[c]['name']}, as EC57 scores)")
    return "\n".join(lines)


# The classes whose errors the per-record table follows (the EC57 rows that lead).
RECORD_TABLE_CLASSES = ("S", "V")


def confusion_by_record(y: np.ndarray, pred: np.ndarray, records: np.ndarray,
                        n_classes: int) -> dict[str, list[list[int]]]:
    """One confusion matrix (rows true, columns predicted) per record of ``records``."""
    out = {}
    for record in sorted(set(np.asarray(records).tolist())):
        mine = np.asarray(records) == record
        cm = np.zeros((n_classes, n_classes), dtype=np.int64)
        np.add.at(cm, (np.asarray(y)[mine], np.asarray(pred)[mine]), 1)
        out[str(record)] = cm.tolist()
    return out


def record_errors(by_record: dict[str, Any], class_names: Sequence[str]) -> list[dict[str, Any]]:
    """Per record, for S and V: its beats, those found and the false calls of the class (as
    the EC57 table counts them); records with neither beats nor calls of them left out,
    most errors first (missed beats plus false calls), so the records that pull the pooled
    figures down lead. None for classes that are not AAMI's."""
    followed = [c for c in RECORD_TABLE_CLASSES if c in class_names]
    if not has_ec57_rows(class_names):
        return []
    rows = []
    for record, cm in by_record.items():
        cm = np.asarray(cm)
        table = ec57_table(cm, class_names)
        row: dict[str, Any] = {"record": record}
        for c in followed:
            i = list(class_names).index(c)
            found = int(cm[i, i])
            row[c] = {"beats": table[c]["support"], "found": found,
                      "false": int(cm[:, i].sum()) - found - table[c]["not_counted"]}
        errors = sum(row[c]["beats"] - row[c]["found"] + row[c]["false"] for c in followed)
        if any(row[c]["beats"] or row[c]["false"] for c in followed):
            rows.append({**row, "errors": errors})
    return sorted(rows, key=lambda r: (-r["errors"], r["record"]))


def format_record_errors(rows: list[dict[str, Any]], title: str) -> str:
    """The per-record table as plain text: beats / found / false calls for S and V."""
    followed = [c for c in RECORD_TABLE_CLASSES if rows and c in rows[0]]
    head = "".join(f"{EC57_NAMES[c] + ' beats':>12}{'found':>7}{'false':>7}" for c in followed)
    lines = [title, f"{'record':<8}{head}"]
    for r in rows:
        lines.append(f"{r['record']:<8}" + "".join(
            f"{r[c]['beats']:>12}{r[c]['found']:>7}{r[c]['false']:>7}" for c in followed))
    return "\n".join(lines)
