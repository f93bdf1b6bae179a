"""GPU figures, only when a backend sees a GPU: beats/s per backend at each batch size with
mixed precision off and on, and how many concurrent runs one GPU holds before the
throughput of each run falls to half of a run alone.

On a machine with no GPU visible the section records one figure saying so.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from .backends import read_throughput, run_throughput
from .report import Results
from .sizes import Sizes

CONCURRENCY_BATCH = 256


def concurrent_counts(max_runs: int) -> list[int]:
    """1, 2, 4, ... up to ``max_runs`` (included when it is not a power of two)."""
    counts, n = [], 1
    while n < max_runs:
        counts.append(n)
        n *= 2
    return counts + [max_runs]


def runs_before_halving(per_run: dict[int, float]) -> tuple[int, int | None]:
    """From beats/s per run at each number of concurrent runs: the most runs tried whose
    per-run throughput is still at least half of one run's alone, and the first count at
    which it falls below half (None: it never did in the counts tried)."""
    single = per_run[1]
    held = 1
    for n in sorted(per_run):
        if per_run[n] < 0.5 * single:
            return held, n
        held = n
    return held, None


def _median_rate(result: dict) -> float:
    return statistics.median(result["rates"])


def _concurrency(results: Results, name: str, gpu: str, sizes: Sizes, work: Path) -> None:
    per_run: dict[int, float] = {}
    for n in concurrent_counts(sizes.gpu_max_concurrent):
        procs = [run_throughput(name, work, sizes.gpu_beats, sizes.gpu_epochs,
                                CONCURRENCY_BATCH, model=sizes.model) for _ in range(n)]
        per_run[n] = statistics.mean(_median_rate(read_throughput(p)) for p in procs)
        if per_run[n] < 0.5 * per_run[1]:
            break
    held, halved = runs_before_halving(per_run)
    tried = ", ".join(f"{n}: {r:,.0f}" for n, r in per_run.items())
    results.add("gpu", f"{name}: concurrent runs per GPU before beats/s per run halves", held,
                "runs", f"{gpu}, batch {CONCURRENCY_BATCH}, float32; beats/s per run at "
                f"{tried}" + ("" if halved else "; never halved in the counts tried"),
                per_run=per_run)


def bench_gpu(results: Results, sizes: Sizes, work: Path,
              gpus: dict[str, tuple[str, ...]]) -> None:
    """``gpus``: the GPU names each installed backend sees (from the backends section)."""
    with_gpu = {name: names for name, names in gpus.items() if names}
    if not with_gpu:
        seen_by = ", ".join(gpus) or "no backend"
        results.not_measured("gpu", "beats/s per backend, batch size and precision", "beats/s",
                             f"no GPU visible to {seen_by}")
        return
    for name, names in with_gpu.items():
        for batch in sizes.gpu_batches:
            for mixed in (False, True):
                got = read_throughput(run_throughput(name, work, sizes.gpu_beats,
                                                     sizes.gpu_epochs, batch, mixed, sizes.model))
                results.add("gpu", f"{name}, batch {batch}, {got['precision']}",
                            _median_rate(got), "beats/s",
                            f"{names[0]}; {sizes.gpu_beats} beats, {sizes.gpu_epochs} epochs",
                            epochs=got["rates"])
        _concurrency(results, name, names[0], sizes, work)
