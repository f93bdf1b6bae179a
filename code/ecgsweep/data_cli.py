"""Data commands: make synthetic data, convert PhysioNet records, download, check CSVs.

    python code/data.py synth --out data/
    python code/data.py check data/mitbih_train.csv
    python code/data.py wfdb --src data/mitdb --out data/ --split inter
    python code/data.py wfdb --src data/svdb --out data/svdb --split test   # a test set
    python code/data.py wfdb --download mitdb          # PhysioNet -> data/mitdb, then convert
    python code/data.py wfdb --download mitdb --out mydata   # -> mydata/mitdb, mydata/*.csv
    python code/data.py kaggle --out data/             # Kaggle heartbeat CSVs (needs a token)
"""

from __future__ import annotations

import argparse
import sys

from ecgsweep.cli import (UserError, counted, non_negative_int, positive_int, prog, run_main,
                          writable_folder)
from ecgsweep.data.kaggle_csv import BEAT_LENGTH, SAMPLE_RATE_HZ


def _synth(args: argparse.Namespace) -> None:
    from pathlib import Path

    from ecgsweep.data import synth
    from ecgsweep.data.classes import MITBIH_FILES, PTBDB_FILES

    out = writable_folder(args.out, "--out")
    written = synth.write_dataset(out, n_train=args.train, n_test=args.test, n_ptb=args.ptb,
                                  seed=args.seed)
    for path in written:
        print(f"wrote {path}")
    for name in (*MITBIH_FILES.values(), *PTBDB_FILES.values()):
        if (Path(out) / name).is_file() and Path(out) / name not in written:
            print(f"note: {Path(out) / name} is left from before (not written now): the "
                  "folder's files are of two generations", file=sys.stderr)


def _check(args: argparse.Namespace) -> None:
    """Each file checked in turn; one that fails is named and the rest are still checked,
    and the command fails at the end when any did."""
    from ecgsweep.cli import expected_errors

    failed = []
    for path in args.csv:
        try:
            _check_one(path, args.classes)
        except expected_errors() as e:
            if len(args.csv) == 1:
                raise
            print(f"error: {e}", file=sys.stderr, flush=True)
            failed.append(path)
    if failed:
        raise UserError(f"{counted(len(failed), 'file')} of {len(args.csv)} failed the check: "
                        + " ".join(failed))


def _check_one(path: str, classes: int | None) -> None:
    import numpy as np

    from ecgsweep.data import sidecar
    from ecgsweep.data.classes import classes_path, read_class_names
    from ecgsweep.data.kaggle_csv import load_csv

    names = read_class_names(path) or ()  # <name>.classes.json beside it
    if classes and names and classes != len(names):
        raise UserError(f"--classes {classes}, but {classes_path(path)} names "
                        f"{len(names)} classes, which training reads: drop --classes, or "
                        "correct that file")
    n_classes = classes or len(names) or None
    X, y = load_csv(path, n_classes=n_classes, use_cache=False)  # validate the file itself
    beside = sidecar.read_beside(path, len(y))  # as training and eval read it
    counts = ", ".join(f"{c}{f' ({names[c]})' if c < len(names) else ''}: {n}"
                       for c, n in zip(*np.unique(y, return_counts=True)))
    print(f"{path}: {counted(len(y), 'beat')}, {X.shape[1]} samples each, "
          f"labels {{{counts}}}")
    if len(np.unique(y)) == 1:
        print(f"note: {path}: every beat is of one class, which training refuses (a test "
              "file, or one of PTBDB's two files, may hold one); if it should hold "
              "several, is its label column (the last) missing?", file=sys.stderr)
    if beside is not None:
        print(f"{sidecar.sidecar_path(path)}: its beat sidecar, in step with it "
              f"({counted(len(set(beside[0].tolist())), 'record')})")


def _print_records(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    classes = summary["classes"]
    table = Table(title=f"{summary['split']} split: beats per record and AAMI class")
    for col in ["record", "lead", "side", *classes, "dropped", "skipped"]:
        table.add_column(col, justify="left" if col in ("record", "lead", "side") else "right")
    per_record = list(summary["per_record"].items())
    for i, (name, info) in enumerate(per_record):
        table.add_row(name, info["lead"], info["side"], *(str(info["counts"][c]) for c in classes),
                      str(sum(info["dropped"].values())), str(sum(info["skipped"].values())),
                      end_section=i == len(per_record) - 1)
    for side, counts in summary["counts"].items():
        table.add_row(f"[bold]{side}[/bold]", "", "", *(str(counts[c]) for c in classes), "", "")
    Console(width=max(100, Console().width)).print(table)


def _print_leads(per_record: dict) -> None:
    """Which lead the records were read from, and why: one line per lead and reason; then
    the records turned upside down (``--qrs-up``), when any was."""
    groups: dict[tuple[str, str], list[str]] = {}
    for name, info in per_record.items():
        why = info["lead_reason"].split(" (")[0]  # without each record's leads and scores
        groups.setdefault((info["lead"], why), []).append(name)
    for (lead, why), names in groups.items():
        print(f"lead {lead} ({why}): {len(names)} record(s), {' '.join(names)}")
    inverted = [name for name, info in per_record.items() if info["inverted"]]
    if inverted:
        print(f"turned upside down (QRS pointing down in the lead read): {len(inverted)} "
              f"record(s), {' '.join(inverted)}")
    seconds: dict[str, list[str]] = {}
    for name, info in per_record.items():
        if "second_lead" in info:
            seconds.setdefault(info["second_lead"], []).append(name)
    for lead, names in seconds.items():
        print(f"second lead {lead} (turned upright): {len(names)} record(s), {' '.join(names)}")


def _wfdb(args: argparse.Namespace) -> None:
    import warnings
    from pathlib import Path

    from ecgsweep.data import download, wfdb_beats
    from ecgsweep.data.records import listed_records

    writable_folder(args.out, "--out")  # before any work, not after the conversion
    # an empty value is refused: it would otherwise mean every record
    records = (None if args.records is None
               else listed_records(args.records, "or leave --records out for every record"))
    src = Path(args.src) if args.src else download.records_folder(args.out)
    if args.download:
        print(f"downloading {args.download} from PhysioNet into {src} ...")
        download.download_mitdb(src)
    with warnings.catch_warnings(record=True) as caught:  # one line each, e.g. no MLII lead
        warnings.simplefilter("always")
        try:
            summary = wfdb_beats.convert(src, args.out, split=args.split,
                                         test_fraction=args.test_fraction, seed=args.seed,
                                         records=records, before_r_s=args.before_r,
                                         beat_samples=args.beat_samples, lead=args.lead,
                                         qrs_up=args.qrs_up, lead_like=args.lead_like,
                                         two_leads=args.two_leads)
        finally:
            for w in caught:
                print(f"warning: {w.message}", file=sys.stderr)
    _print_records(summary)
    _print_leads(summary["per_record"])
    if summary["missing"]:
        print(f"warning: {len(summary['missing'])} DS1/DS2 records missing from {src}: "
              f"{', '.join(summary['missing'])}", file=sys.stderr)
    if summary["ignored"]:
        print(f"note: not in DS1 or DS2, left out of the inter-patient split: "
              f"{', '.join(summary['ignored'])}", file=sys.stderr)
    out = Path(args.out)
    for side, name in summary["files"].items():
        print(f"wrote {out / name} ({sum(summary['counts'][side].values())} beats, records "
              f"{' '.join(summary['records'][side])}) and its beat sidecar "
              f"{out / summary['sidecars'][side]}")
    print(f"wrote {out / wfdb_beats.SUMMARY_FILE}")
    for path in wfdb_beats.earlier_parts(out, summary):
        print(f"warning: {path} is left from an earlier conversion: this one wrote "
              f"{', '.join(summary['files'].values())} only, and {wfdb_beats.SUMMARY_FILE} "
              "describes it alone; remove the file, or convert into a folder of its own",
              file=sys.stderr)
    for name, reason in summary["skipped_records"].items():
        print(f"warning: skipped record {name}: {reason}", file=sys.stderr)


def _kaggle(args: argparse.Namespace) -> None:
    from ecgsweep.data import download

    dest = download.download_kaggle(args.out)
    for name in download.KAGGLE_FILES:
        if (dest / name).is_file():
            print(f"wrote {dest / name}")


def _add_wfdb_parser(sub: argparse._SubParsersAction) -> None:
    """The `wfdb` command: WFDB records to Kaggle-format CSVs."""
    from ecgsweep.data import wfdb_beats

    p = sub.add_parser("wfdb", help="convert PhysioNet WFDB records (e.g. MIT-BIH) to "
                       "Kaggle-format CSVs, with an intra- or inter-patient split")
    p.add_argument("--src", default=None,
                   help="folder of records (.hea, .dat, .atr) (default: <--out>/mitdb)")
    p.add_argument("--out", default="data", help="output folder (default: data)")
    p.add_argument("--split", choices=wfdb_beats.SPLITS, default="intra",
                   help="intra: random beats, stratified (like Kaggle; same patients on both "
                   "sides); inter: de Chazal 2004 DS1 train / DS2 test; train: every beat "
                   "to the training file (development data); test: every beat to the test "
                   "file, a whole database held out for `code/eval.py --test` (default: "
                   "intra)")
    p.add_argument("--test-fraction", type=float, default=0.2,
                   help="share of beats in the test file with --split intra (default: 0.2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the intra split (default: 0)")
    p.add_argument("--records", default=None,
                   help="comma-separated record names to use, e.g. 100,101 (default: all)")
    p.add_argument("--lead", default=None, metavar="NAME",
                   help="read this lead of every record, as its header names it (e.g. V1; "
                   "default: MLII, else each record's first channel); 'other': the first "
                   "lead besides that default, the same beats from another lead, to train on "
                   "as well (train.py --other_lead_data)")
    p.add_argument("--lead-like", default=None, metavar="CSV",
                   help="for a record without MLII, read the lead whose beats look most like "
                   "those of this beat CSV (or folder holding mitbih_train.csv), the data the "
                   "model trained on; split.json gives each lead's likeness per record")
    p.add_argument("--qrs-up", action="store_true",
                   help="turn each record whose QRS complexes mostly point down in the lead "
                   "read upside down, so every row starts at an upward R peak as in MLII "
                   "(split.json says which records per record: inverted)")
    p.add_argument("--two-leads", action="store_true",
                   help="each row holds the beat in the lead read, then the same beat in the "
                   "record's first other lead, turned upright (2 x --beat-samples wide; "
                   "train.py --beat_leads 2 reads them as two input channels)")
    p.add_argument("--before-r", type=float, default=0.0, metavar="SECONDS",
                   help="start each beat's window this long before its R peak, so the P "
                   "wave is in view (e.g. 0.25; default 0: the Kaggle format, from the R peak)")
    p.add_argument("--beat-samples", type=positive_int, default=BEAT_LENGTH, metavar="N",
                   help="samples per row: each beat's window is cut and zero-padded to N "
                   f"(default {BEAT_LENGTH}: the Kaggle layout at {SAMPLE_RATE_HZ} Hz)")
    p.add_argument("--download", choices=["mitdb"], default=None,
                   help="first download this PhysioNet database into --src")
    p.set_defaults(func=_wfdb)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog("data.py", "data"), description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="write synthetic mitbih/ptbdb CSVs in the Kaggle format")
    p.add_argument("--out", default="data", help="output folder (default: data)")
    p.add_argument("--train", type=non_negative_int, default=6000,
                   help="beats in mitbih_train.csv (default: 6000; 0: not written)")
    p.add_argument("--test", type=non_negative_int, default=2000,
                   help="beats in mitbih_test.csv (default: 2000; 0: not written)")
    p.add_argument("--ptb", type=non_negative_int, default=2000,
                   help="beats in the two ptbdb files together (default: 2000; 0: not "
                        "written)")
    p.add_argument("--seed", type=int, default=0, help="seed of the beats (default: 0)")
    p.set_defaults(func=_synth)

    p = sub.add_parser("check", help="validate beat CSVs (Kaggle format, or a header and "
                       "beats of any width) and print their width and class counts")
    p.add_argument("csv", nargs="+")
    p.add_argument("--classes", type=positive_int, default=None, metavar="N",
                   help="number of classes labels must fit (labels 0..N-1)")
    p.set_defaults(func=_check)

    _add_wfdb_parser(sub)

    p = sub.add_parser("kaggle",
                       help="download the Kaggle heartbeat CSVs (needs a Kaggle API token)")
    p.add_argument("--out", default="data", help="output folder (default: data)")
    p.set_defaults(func=_kaggle)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)
