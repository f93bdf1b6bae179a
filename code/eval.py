"""Score a trained model (or an ensemble) on held-out test data.

    python code/eval.py --model models/cnn/best.keras
    python code/eval.py --model a.keras --model b.keras --test data/mitbih_test.csv --out reports/ens
    python code/eval.py --model models/cnn/best.keras --bootstrap 2000 --wandb
    python code/eval.py --cv-run wandb/offline-run-<time>-<id>

Prints per-class precision/recall/F1/support with bootstrap confidence intervals and
one-vs-rest ROC AUC and average precision, the averages, accuracy and the confusion
matrix; writes report.json, classification_report.csv, confusion_matrix.png,
roc_pr_curves.png and misclassified_beats.png to --out. With --wandb the report is also
logged to the W&B run that trained the model (or a new eval run); with WANDB_MODE=offline
it goes to a local run folder to upload later with `wandb sync`.

--cv-run prints the cross-validated tables of a k-fold run folder again (the pooled AAMI
EC57 table and the per-record errors, from its fold<i>.json), without loading a model.
"""

import sys

from ecgsweep.cli import run_main
from ecgsweep.eval_cli import main

if __name__ == "__main__":
    sys.exit(run_main(main))
