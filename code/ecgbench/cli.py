"""Benchmark training, start-up, inference and sweeps on this machine; `make bench`.

    python code/bench.py                 # full: ratios worth reading, ~20-30 min on 2 shared cores
    python code/bench.py --smoke         # everything tiny: checks every figure can be made
    python code/bench.py --only training,inference --experiments
    python code/bench.py --only backends,gpu,packing   # GPU figures if a GPU is visible

Prints a table and writes bench/results.json (bench/results-smoke.json with --smoke),
both naming the machine (CPU, cores, GPUs, backends). The harness is the ecgbench package
beside the library (code/ecgbench/); see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from ecgbench.runner import SECTIONS
from ecgsweep.cli import UserError, prog, run_main, stop_signals_interrupt


def _sections(text: str) -> tuple[str, ...]:
    chosen = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(SECTIONS)}")
    return chosen


def _size(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE")
    return name.strip(), yaml.safe_load(value)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog("bench.py", "bench"), description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true",
                   help="tiny sizes: every figure in a few minutes, not comparable")
    p.add_argument("--out", help="results JSON (default bench/results.json, "
                                 "bench/results-smoke.json with --smoke)")
    p.add_argument("--only", type=_sections, default=SECTIONS, metavar="SECTIONS",
                   help=f"comma-separated sections to run (default all: {','.join(SECTIONS)}); "
                        "inference without training trains its model unmeasured")
    p.add_argument("--data-dir", help="where the synthetic start-up CSVs are kept between runs "
                                      "(default bench/data)")
    p.add_argument("--experiments", action="store_true",
                   help="also time the speed-work candidates (XLA baseline, prediction batch sizes)")
    p.add_argument("--sweep-target", type=float, default=None,
                   help="the inter-patient sweeps' objective (kept_val_macro_f1) a run must "
                        "reach, with and without early stopping (default: the best any "
                        "configuration reaches without early stopping, less 0.01)")
    p.add_argument("--size", type=_size, action="append", default=[], metavar="NAME=VALUE",
                   help="replace one of the sizes (code/ecgbench/sizes.py), e.g. "
                        "--size packed_sweep_runs=4 where a machine's time is short; "
                        "repeatable, and named in the results")
    p.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    stop_signals_interrupt()  # a stopped bench stops the sweeps and clusters it started
    from ecgbench import runner, sizes

    try:
        sizes.with_overrides(sizes.SMOKE if args.smoke else sizes.FULL, dict(args.size))
    except ValueError as e:
        raise UserError(f"--size: {e}") from None
    runner.run(smoke=args.smoke, out=args.out, sections=args.only, data_root=args.data_dir,
               experiments=args.experiments, sweep_target=args.sweep_target, keep=args.keep,
               size_overrides=dict(args.size))
