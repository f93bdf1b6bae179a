"""Score a trained model (or an ensemble) on held-out test data.

    python code/eval.py --model models/cnn/best.keras
    python code/eval.py --model a.keras --model b.keras --test data/mitbih_test.csv --out reports/ens
    python code/eval.py --model models/cnn/best.keras --bootstrap 2000 --wandb
    python code/eval.py --cv-run wandb/offline-run-<time>-<id>
    python code/eval.py --cv-run wandb/offline-run-<time>-<id> --set s_gate_irregularity=0.15
    python code/eval.py --cv-run seed42/wandb/offline-run-<...> --cv-run seed7/wandb/offline-run-<...>

Prints per-class precision/recall/F1/support with bootstrap confidence intervals and
one-vs-rest ROC AUC and average precision, the averages, accuracy and the confusion
matrix; writes report.json, classification_report.csv, confusion_matrix.png,
roc_pr_curves.png and misclassified_beats.png to --out. With --wandb the report is also
logged to the W&B run that trained the model (or a new eval run); with WANDB_MODE=offline
it goes to a local run folder to upload later with `wandb sync`.

--cv-run prints the cross-validated tables of a k-fold run folder again (the pooled AAMI
EC57 table and the per-record errors, from its fold<i>.json), without loading a model.
Given several times, for runs of the same folds trained with other seeds, it scores each
fold's models averaged on the records that fold held out: the seeds' models together.

--set KEY=VALUE (repeatable) changes a step after the model, which changes no weight
(premature templates of a novel shape called V, premature beats called S, the S gate, the
runs of S, the V templates, the per-record class mix), from the value the model was trained
with: with --model the model is scored with it; with --cv-run each fold's model scores the
records it held out again with it, and the folds are pooled as the run pooled them.
--records pools part of a k-fold run's held-out records only. --held-out-from DIR reads the
held-out records from another conversion of them (another lead) and scores the fold models
there.
"""

from __future__ import annotations

import argparse
import sys

from ecgsweep.cli import UserError, non_negative_int, positive_int, prog, run_main
from ecgsweep.params import PER_RECORD_KEYS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog("eval.py", "eval"), description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", action="append",
                      help="a .keras file; repeat to average several models' probabilities")
    what.add_argument("--cv-run", metavar="DIR", action="append",
                      help="a k-fold run's folder: print its cross-validated EC57 and "
                           "per-record tables from its fold records, no model loaded; "
                           "repeat for runs of the same folds (other seeds): each fold's "
                           "models averaged, scored again; a code/protocol.py output folder "
                           "stands for its seeds' runs")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        dest="settings",
                        help="a step after the model set to VALUE instead of the value the "
                             "model was trained with; repeatable; keys: "
                             + ", ".join(PER_RECORD_KEYS))
    parser.add_argument("--against", metavar="DIR", action="append",
                        help="with --cv-run: k-fold runs of the same folds (repeat for other "
                             "seeds), scored as they were trained; prints each class's F1 of "
                             "--cv-run minus theirs, with an interval that draws the same "
                             "held-out records for both; a protocol's output folder stands "
                             "for its seeds' runs")
    parser.add_argument("--records", metavar="LIST|DIR",
                        help="with --cv-run: pool these held-out records only, named "
                             "separated by commas or as the WFDB records of a folder (one "
                             "database's part of a development set drawn from two)")
    parser.add_argument("--held-out-from", metavar="DIR",
                        help="with --cv-run: score each fold's models on the records it held "
                             "out as read from DIR, the same records converted otherwise "
                             "(e.g. `code/data.py wfdb --split train --lead V1`); records DIR "
                             "lacks are left out")
    parser.add_argument("--test", help="test CSV (default: the test data of the model's data set)")
    parser.add_argument("--data-dir", help="folder of the data set's CSVs (default: as trained)")
    parser.add_argument("--out", help="report folder (default: reports/<family>-<model file>-<test data>)")
    parser.add_argument("--bootstrap", type=non_negative_int, default=1000, metavar="N",
                        help="bootstrap draws for the 95%% confidence intervals (default 1000; "
                             "0: none)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    parser.add_argument("--examples", type=positive_int, default=6, metavar="K",
                        help="misclassified beats drawn per true/predicted pair (default 6)")
    parser.add_argument("--batch-size", type=positive_int, default=1024,
                        help="beats per prediction batch (default 1024)")
    parser.add_argument("--wandb", action="store_true",
                        help="log the report to W&B: into the run that trained the model "
                             "(resumed by the run_id in its record) or a new eval run")
    parser.add_argument("--wandb-project", help="W&B project (default: the model's, else "
                                                "WANDB_PROJECT or ecg-sweeps)")
    parser.add_argument("--wandb-new-run", action="store_true",
                        help="log to a new eval run even when the model's run is known")
    return parser


# What only scoring a model file reads (dest: flag): --cv-run refuses them rather than
# ignore them.
MODEL_ONLY_OPTIONS = {"test": "--test", "out": "--out", "bootstrap": "--bootstrap",
                      "seed": "--seed", "examples": "--examples", "wandb": "--wandb",
                      "wandb_project": "--wandb-project", "wandb_new_run": "--wandb-new-run"}


def model_only_options_given(args: argparse.Namespace,
                             parser: argparse.ArgumentParser) -> list[str]:
    """The flags of ``MODEL_ONLY_OPTIONS`` given other values than their defaults."""
    return [flag for dest, flag in MODEL_ONLY_OPTIONS.items()
            if getattr(args, dest) != parser.get_default(dest)]


def refuse_without(flags: list[str], needed: str) -> None:
    """UserError when any of ``flags`` was given: each goes with ``needed`` (and what to do)."""
    if flags:
        verb = "go" if len(flags) > 1 else "goes"
        raise UserError(f"{' '.join(flags)} {verb} with {needed}")


def run_folders(folders: list[str], flag: str) -> list[str]:
    """Each folder as given, or, for a protocol's output folder, its seeds' run folders."""
    from ecgsweep.protocol import seed_run_folders, seed_runs_without_report

    expanded = []
    for folder in folders:
        unreported = seed_runs_without_report(folder)
        if unreported:
            raise UserError(f"{flag} {folder}: a protocol's output folder without its "
                            "protocol.json (the protocol stopped before writing it), so which "
                            "seeds it reports is unknown; give its seeds' run folders: "
                            + " ".join(unreported))
        seeds = seed_run_folders(folder)
        if seeds:
            print(f"{flag} {folder}: the protocol's seeds' runs, {' '.join(seeds)}", flush=True)
        expanded += seeds or [folder]
    return expanded


def cv_pooled(run_dirs: list[str], settings: dict, names: list[str] | None,
              args: argparse.Namespace) -> dict:
    """Prints, and returns, the pooled tables of k-fold runs: from their fold records as
    stored (one run, as trained), else their fold models scored again."""
    from ecgsweep import cv_report

    if len(run_dirs) == 1 and not settings and not args.held_out_from:
        return cv_report.report_run_folder(run_dirs[0], names)
    from ecgsweep import backend, cv_rescore

    backend.select()  # before Keras loads: a missing backend is one error line; quiet TF
    return cv_rescore.rescore_run_folders(run_dirs, settings, data_dir=args.data_dir,
                                          batch_size=args.batch_size, names=names,
                                          held_out_from=args.held_out_from)


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    from ecgsweep import cv_report
    from ecgsweep.config import parse_settings

    settings = parse_settings(args.settings)
    if args.records is not None and not args.cv_run:
        raise UserError("--records goes with --cv-run (a k-fold run's held-out records); to "
                        "score part of a test file, convert those records alone")
    if args.cv_run:
        refuse_without(model_only_options_given(args, parser),
                       "--model (scoring a model file); --cv-run scores a k-fold run's models "
                       "on the records its folds held out (the same records converted "
                       "otherwise: --held-out-from DIR)")
    elif not args.wandb:
        refuse_without([flag for flag, given in (("--wandb-project", args.wandb_project),
                                                 ("--wandb-new-run", args.wandb_new_run))
                        if given], "--wandb (log the report to W&B); add --wandb, or leave it out")
    names = None if args.records is None else cv_report.record_names(args.records)
    if args.held_out_from and not args.cv_run:
        raise UserError("--held-out-from goes with --cv-run (a k-fold run's held-out records); "
                        "to score a model on other data, give it with --test")
    if args.against and not args.cv_run:
        raise UserError("--against goes with --cv-run (two k-fold runs' held-out records "
                        "compared); to compare models on test data, score each with --model")
    if args.cv_run:
        args.cv_run = run_folders(args.cv_run, "--cv-run")
        args.against = run_folders(args.against or [], "--against") or None
        for run_dir in args.against or []:  # before any work: a wrong folder is one line
            cv_report.read_fold_records(run_dir, "--against")
        pooled = cv_pooled(args.cv_run, settings, names, args)
        if args.against:
            print(f"--against {' '.join(args.against)}: scored as trained", flush=True)
            cv_report.print_paired(pooled, cv_pooled(args.against, {}, names, args))
        return
    from ecgsweep import backend, evaluation

    backend.select()  # before Keras loads: a missing backend is one error line; quiet TF
    evaluation.evaluate(args.model, test_csv=args.test, data_dir=args.data_dir, out_dir=args.out,
                        bootstrap=args.bootstrap, seed=args.seed, examples_per_pair=args.examples,
                        wandb_log=args.wandb, wandb_project=args.wandb_project,
                        wandb_new_run=args.wandb_new_run, batch_size=args.batch_size,
                        settings=settings)
