"""Benchmark training, start-up, inference and sweeps on this machine; `make bench`.

    python code/bench.py                 # full: ratios worth reading, ~6-7 minutes on 2 cores
    python code/bench.py --smoke         # everything tiny: checks every figure can be made
    python code/bench.py --only training,inference --experiments
    python code/bench.py --only backends,gpu   # per-backend ratios; GPU figures if one is visible

Prints a table and writes bench/results.json (bench/results-smoke.json with --smoke),
both naming the machine (CPU, cores, GPUs, backends). The harness is the ecgbench package
beside the library (code/ecgbench/); see docs/benchmarks.md.
"""

import sys

from ecgsweep.cli import run_main
from ecgbench.cli import main

if __name__ == "__main__":
    sys.exit(run_main(main))
