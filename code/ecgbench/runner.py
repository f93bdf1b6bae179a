"""Runs the chosen sections, prints the table and writes the results JSON."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from . import stopping
from .backends import bench_backends
from .executors import bench_executors
from .gpu import bench_gpu
from .inference import bench_inference
from .packing import bench_packing
from .report import Results, machine_info, machine_line, print_results, write_results
from .sizes import FULL, REPO_ROOT, SMOKE, Sizes, with_overrides
from .startup import bench_csv, bench_startup
from .sweeps import bench_sweep
from .training import bench_training, inference_model

SECTIONS = ("training", "inference", "backends", "gpu", "packing", "startup", "sweep",
            "executors")

SECTION_TITLES = {"training": "training", "inference": "inference",
                  "inference-model": "inference", "backends": "backends", "gpu": "gpu",
                  "gpu-probe": "gpu", "packing": "packing", "startup": "start-up",
                  "data": "start-up", "sweep": "sweep", "experiments": "experiments",
                  "executors": "executors"}


def _guarded(results: Results) -> Callable[[str, Callable[[], Any]], Any]:
    """Runs one section: a broken one is noted as not measured and the others go on; a
    stopped one ends with a line saying so and no figure."""

    def guarded(name: str, step: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        print(f"  {name} ...", flush=True)
        ended = "done in"
        try:
            return step()
        except (KeyboardInterrupt, stopping.Stopped):
            ended = "stopped after"
            if threading.current_thread() is threading.main_thread():
                raise
            return None  # a threaded section's stop: the main thread ends the bench
        except Exception as e:  # one broken section should not hide the others
            results.not_measured(SECTION_TITLES[name], f"{name} section", "",
                                 f"{type(e).__name__}: {e}")
            return None
        finally:
            print(f"  {name} {ended} {time.perf_counter() - t0:.0f} s", flush=True)

    return guarded


def _wait_for(ended: list[threading.Event]) -> None:
    """Until every threaded section has ended. It waits on events, not Thread.join: a stop
    signal that interrupts Thread.join on Python 3.11 leaves the running thread marked as
    ended, so later joins, and the interpreter's exit, do not wait for it."""
    for event in ended:
        while not event.wait(stopping.WATCH_S):
            pass


def _run_sections(results: Results, sizes: Sizes, sections: tuple[str, ...], work: Path,
                  data_root: Path, experiments: bool, concurrent: bool) -> None:
    """Training and inference run in this process; start-up and sweeps launch programs.
    With ``concurrent`` (smoke) the launching sections run in threads beside the others;
    they have ended, having stopped what they started, before this returns or raises."""
    guarded = _guarded(results)
    launching = []
    if "startup" in sections:
        launching.append(("startup", lambda: bench_startup(results, sizes, work, data_root)))
    if "sweep" in sections:
        launching.append(("sweep", lambda: bench_sweep(results, sizes, work, data_root)))
    if concurrent and launching:
        # the start-up CSV is written once, before anyone reads it
        guarded("data", lambda: bench_csv(data_root, sizes.csv_rows))
    stopping.requested.clear()
    ended = [threading.Event() for _ in launching] if concurrent else []
    for (name, step), event in zip(launching, ended):
        threading.Thread(target=_threaded, args=(guarded, name, step, event)).start()
    try:
        _run_in_this_thread(guarded, results, sizes, sections, work, experiments)
        _wait_for(ended)
    except BaseException:
        stopping.requested.set()  # the threaded sections stop what they started, now
        raise
    finally:
        held = stopping.HeldSignals()  # a second stop does not leave them running
        try:
            _wait_for(ended)
        finally:
            held.release()
    if not concurrent:
        for name, step in launching:
            guarded(name, step)


def _threaded(guarded: Callable[[str, Callable[[], Any]], Any], name: str,
              step: Callable[[], Any], ended: threading.Event) -> None:
    try:
        guarded(name, step)
    finally:
        ended.set()


def _run_in_this_thread(guarded: Callable[[str, Callable[[], Any]], Any], results: Results,
                        sizes: Sizes, sections: tuple[str, ...], work: Path,
                        experiments: bool) -> None:
    """The sections that run in the bench's own process: training, inference, backends,
    gpu, packing and executors. Inference without training trains its model unmeasured."""
    model_path = None
    if "training" in sections:
        model_path = guarded("training", lambda: bench_training(results, sizes, work, experiments))
    elif "inference" in sections:
        model_path = guarded("inference-model", lambda: inference_model(sizes, work))
    if "inference" in sections and model_path is not None:
        guarded("inference", lambda: bench_inference(results, sizes, model_path, experiments))
    gpus = None
    if "backends" in sections:
        gpus = guarded("backends", lambda: bench_backends(results, sizes, work))
    if "gpu" in sections or "packing" in sections:
        gpus = gpus if gpus is not None else guarded("gpu-probe",
                                                     lambda: _probe_gpus(sizes, work))
    if "gpu" in sections and gpus is not None:
        guarded("gpu", lambda: bench_gpu(results, sizes, work, gpus))
    if "packing" in sections and gpus is not None:
        guarded("packing", lambda: bench_packing(results, sizes, work, gpus))
    if "executors" in sections:
        guarded("executors", lambda: bench_executors(results, sizes, work))


def run(smoke: bool = False, out: Path | None = None, sections: tuple[str, ...] = SECTIONS,
        data_root: Path | None = None, experiments: bool = False,
        sweep_target: float | None = None, keep: bool = False,
        size_overrides: dict[str, Any] | None = None) -> Results:
    """Run the chosen sections, print the table and write the JSON; returns the results.
    ``size_overrides`` replace fields of the sizes and are named in the results' mode."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["WANDB_MODE"] = "offline"
    os.environ.setdefault("WANDB_SILENT", "true")
    overrides = dict(size_overrides or {})
    if sweep_target is not None:
        overrides["sweep_target"] = sweep_target
    sizes = with_overrides(SMOKE if smoke else FULL, overrides)
    out = Path(out) if out else REPO_ROOT / "bench" / ("results-smoke.json" if smoke else "results.json")
    data_root = Path(data_root) if data_root else REPO_ROOT / "bench" / "data"
    mode = ("smoke" if smoke else "full") + "".join(
        f", {name}={value}" for name, value in overrides.items())
    results = Results(mode, machine_info(), echo=True)
    work = Path(tempfile.mkdtemp(prefix="ecg-bench-"))
    print(f"benchmark ({results.mode}) on {machine_line(results.machine)}", flush=True)
    results.stopped = True  # until the sections end by themselves
    try:
        _run_sections(results, sizes, sections, work, data_root, experiments,
                      concurrent=sizes.sweep_concurrent)
        results.stopped = False
    finally:
        if keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
        _report(results, out)
    return results


def _report(results: Results, out: Path) -> None:
    """Print the table and write the JSON, also when the bench was stopped: a stopped run
    keeps the figures it measured, marked ``stopped``."""
    order = {name: i for i, name in enumerate(SECTION_TITLES.values())}
    results.figures.sort(key=lambda f: order.get(f.section, len(order)))
    if hasattr(os, "getloadavg"):
        results.machine["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print_results(results)
    write_results(results, out)
    what = "stopped before its end; the figures measured until then" if results.stopped \
        else "in all"
    print(f"wrote {out} ({results.as_json()['wall_s']:.0f} s, {what})", flush=True)


def _probe_gpus(sizes: Sizes, work: Path) -> dict[str, tuple[str, ...]]:
    """The GPUs each installed backend sees, when the backends section did not run."""
    from ecgsweep import backend

    from .backends import read_throughput, run_throughput

    return {name: tuple(read_throughput(run_throughput(name, work, 64, 2, 64))["gpus"])
            for name in backend.BACKENDS if backend.is_installed(name)}
