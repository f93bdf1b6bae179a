"""Score a trained model (or an ensemble) on held-out test data.

    python code/eval.py --model models/cnn/best.keras
    python code/eval.py --model a.keras --model b.keras --test data/mitbih_test.csv --out reports/ens

Prints per-class precision/recall/F1/support, averages, accuracy and the confusion matrix;
writes report.json, classification_report.csv and confusion_matrix.png to --out.
"""

from __future__ import annotations

import argparse
import os
import sys

from ecgsweep.cli import run_main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="code/eval.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True,
                        help="a .keras file; repeat to average several models' probabilities")
    parser.add_argument("--test", help="test CSV (default: the test data of the model's data set)")
    parser.add_argument("--data-dir", help="folder of the data set's CSVs (default: as trained)")
    parser.add_argument("--out", help="report folder (default: reports/<model name>)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ecgsweep import evaluation

    evaluation.evaluate(args.model, test_csv=args.test, data_dir=args.data_dir, out_dir=args.out)


if __name__ == "__main__":
    sys.exit(run_main(main))
