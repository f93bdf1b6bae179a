"""The class names of each named data set, in label order: label i is name i."""

from __future__ import annotations

# AAMI EC57 superclasses, labels 0..4 as in the Kaggle MIT-BIH CSVs.
MITBIH_CLASSES: tuple[str, ...] = ("N", "S", "V", "F", "Q")
# The PTB Diagnostic ECG Database's two files, labels 0..1.
PTBDB_CLASSES: tuple[str, ...] = ("normal", "abnormal")
