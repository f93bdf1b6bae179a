"""code/bench.py: every figure is produced (smoke mode) and the pieces behave."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, kill_processes_under, run_env
from ecgbench import cli as bench_cli, gpu, packing, report, runner, sweeps, training
from ecgbench import sizes as bench_sizes
from ecgsweep import backend
from ecgsweep.cli import EXIT_USAGE, run_main
from ecgsweep.sweep_hooks import ECG_PROGRAM

EXPECTED = {  # section -> figures the smoke run must measure
    "training": 5,
    "inference": 3,
    "start-up": 3,
    "sweep": 8,  # whole sweep and time to the best, with and without early stopping, ratios, bests
    "executors": 6,  # local, Ray, their ratio; short runs and runs of a realistic length
}


def test_sweep_yamls_are_the_inter_patient_protocol_with_and_without_early_stopping(tmp_path):
    from ecgsweep.sweep import config as sweep_config

    protocol = sweep_config.loads((REPO_ROOT / "sweep_conf" /
                                   "inter_patient_cv_bayes.yaml").read_text())
    for sizes in (bench_sizes.FULL, bench_sizes.SMOKE):
        orders = set()
        for seed in (1, 2, 3):
            for early_stop in (False, True):
                text = sweeps.sweep_yaml(sizes, tmp_path / "data", tmp_path / "models", seed,
                                         early_stop)
                cfg = sweep_config.loads(text)
                problems = sweep_config.check(cfg, program=ECG_PROGRAM, cwd=REPO_ROOT)
                assert not problems, [str(p) for p in problems]
                assert cfg["method"] == "grid" and cfg["metric"] == protocol["metric"]
                assert cfg.get("early_terminate") == (protocol["early_terminate"]
                                                      if early_stop else None)
                params = cfg["parameters"]
                for key in ("val_split", "classes", "split_seed", "keep_epoch"):
                    assert params[key] == protocol["parameters"][key], key
                assert params["folds"]["value"] >= 2
                for name, values in sizes.sweep_space.items():
                    assert sorted(params[name]["values"]) == sorted(values)  # the same space
                orders.add(tuple(tuple(params[n]["values"]) for n in sizes.sweep_space))
        if len(next(iter(sizes.sweep_space.values()))) > 2:
            assert len(orders) > 1  # each seed runs the configurations in its own order


class FakeStore:
    def __init__(self, runs, histories):
        self._runs, self._histories = runs, histories

    def runs(self):
        return self._runs

    def histories(self):
        return self._histories


def test_time_to_the_best_objective_counts_runs_that_trained_every_fold():
    metric = "kept_val_macro_f1"
    runs = [
        {"run_id": "a", "state": "finished", "started_at": 1.0, "ended_at": 112.0,
         "summary": {metric: 0.40, "folds": 3, "folds_completed": 3}},
        {"run_id": "b", "state": "stopped", "started_at": 112.0, "ended_at": 140.0,
         "stop_reason": "hyperband: behind", "summary": {metric: 0.90, "folds": 3,
                                                          "folds_completed": 1}},
        {"run_id": "c", "state": "finished", "started_at": 140.0, "ended_at": 230.0,
         "summary": {metric: 0.61, "folds": 3, "folds_completed": 3}},
        {"run_id": "d", "state": "running", "started_at": 230.0, "summary": None}]
    trace = sweeps.SweepTrace("folds", 1, started=100.0)
    sweeps.read_trace(trace, FakeStore(runs, {"b": [{"folds_completed": 1, metric: 0.9}]}),
                      metric)
    assert trace.finished == [(12.0, "a", 0.40), (130.0, "c", 0.61)]
    assert trace.stopped_at_fold == [1] and trace.runs == 4
    assert trace.first_at(0.6) == (130.0, "c")  # a stopped run's partial mean does not count
    assert trace.first_at(0.7) is None and trace.best() == 0.61


def test_the_whole_sweeps_time_is_the_median_over_seeds_and_an_unended_sweep_is_not_measured():
    def trace(arm: str, seed: int, duration: float | None) -> sweeps.SweepTrace:
        t = sweeps.SweepTrace(arm, seed, started=0.0, duration=duration, runs=5)
        t.stopped_at_fold = [1, 1] if arm == "folds" else []
        return t

    results = report.Results("full", {})
    sweeps.report_whole_sweeps(results, {"none": [trace("none", s, d) for s, d in
                                                  ((1, 300.0), (2, 320.0), (3, 310.0))],
                                         "folds": [trace("folds", s, d) for s, d in
                                                   ((1, 200.0), (2, 150.0), (3, 155.0))]}, "grid")
    values = {f.name: f.value for f in results.figures}
    assert values[sweeps.FIGURES["whole-none"]] == 310.0
    assert values[sweeps.FIGURES["whole-folds"]] == 155.0
    assert values[sweeps.FIGURES["whole-ratio"]] == 2.0
    assert "2 stopped by hyperband" in results.figures[1].note

    results = report.Results("full", {})
    sweeps.report_whole_sweeps(results, {"none": [trace("none", 1, 300.0)],
                                         "folds": [trace("folds", 1, None)]}, "grid")
    assert [f.value for f in results.figures] == [300.0, None, None]


def test_steady_rate_leaves_out_the_first_epoch():
    assert training.steady_rate([0.0, 5.0, 6.0, 8.0], 1000) == [1000.0, 500.0]
    assert training.steady_rate([0.0, 5.0], 1000) == []


def test_size_overrides_replace_fields_and_refuse_unknown_names_and_types():
    sizes = bench_sizes.with_overrides(bench_sizes.FULL, {"packed_sweep_runs": 4,
                                                          "gpu_batches": [256]})
    assert (sizes.packed_sweep_runs, sizes.gpu_batches) == (4, (256,))
    assert sizes.gpu_beats == bench_sizes.FULL.gpu_beats
    with pytest.raises(ValueError, match="unknown size 'packed_runs'"):
        bench_sizes.with_overrides(bench_sizes.FULL, {"packed_runs": 4})
    with pytest.raises(ValueError, match="packed_sweep_runs='four'"):
        bench_sizes.with_overrides(bench_sizes.FULL, {"packed_sweep_runs": "four"})
    with pytest.raises(ValueError, match="packed_sweep_runs=-1: a count, at least 1"):
        bench_sizes.with_overrides(bench_sizes.FULL, {"packed_sweep_runs": -1})
    for epochs in bench_sizes.WARMED_EPOCHS:  # the first epoch is not timed: one more must run
        with pytest.raises(ValueError, match=f"{epochs}=1: a count, at least 2"):
            bench_sizes.with_overrides(bench_sizes.FULL, {epochs: 1})
    with pytest.raises(ValueError, match="executor_long_epoch_s=-0.5: a finite number of 0"):
        bench_sizes.with_overrides(bench_sizes.FULL, {"executor_long_epoch_s": -0.5})


def test_the_bench_cli_refuses_an_unknown_size_before_measuring(tmp_path, capsys):
    out = tmp_path / "r.json"
    argv = ["--only", "gpu", "--size", "gpu_beat=100", "--out", str(out)]
    assert run_main(lambda: bench_cli.main(argv)) == EXIT_USAGE
    assert capsys.readouterr().err.startswith("error: --size: unknown size 'gpu_beat'")
    assert not out.exists()


def test_the_results_name_the_sizes_that_were_replaced(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "_run_sections", lambda *args, **kwargs: None)
    runner.run(out=tmp_path / "r.json", sections=("gpu",), size_overrides={"gpu_beats": 500})
    assert json.loads((tmp_path / "r.json").read_text())["mode"] == "full, gpu_beats=500"


def test_without_a_gpu_the_gpu_section_says_so_and_measures_nothing(tmp_path):
    results = report.Results("smoke", {})
    gpu.bench_gpu(results, bench_sizes.SMOKE, tmp_path, {"tensorflow": (), "torch": ()})
    [figure] = results.figures
    assert figure.section == "gpu" and figure.value is None
    assert figure.note == "not measured: no GPU visible to tensorflow, torch"


def test_without_a_gpu_the_packing_section_says_so_and_measures_nothing(tmp_path):
    results = report.Results("smoke", {})
    packing.bench_packing(results, bench_sizes.SMOKE, tmp_path, {"torch": ()})
    assert [f.value for f in results.figures] == [None, None, None]
    assert {f.note for f in results.figures} == {"not measured: no GPU visible to torch"}
    assert not list(tmp_path.iterdir())  # nothing trained, nothing written


@pytest.mark.slow
def test_packed_sweep_runs_share_the_gpu_it_is_handed(tmp_path):
    """Without a GPU: a stand-in GPU name makes the section time real training runs on the
    CPU, one per GPU and then two at once on device 0."""
    from ecgsweep.sweep.store import Store

    results = report.Results("smoke", {})
    packing.bench_packing(results, bench_sizes.SMOKE, tmp_path,
                          {"tensorflow": ("stand-in GPU",), "torch": ()})
    one, packed, ratio = results.figures
    assert one.unit == packed.unit == "runs/min" and one.value > 0 and packed.value > 0
    assert ratio.value == pytest.approx(packed.value / one.value)
    assert "tensorflow" in one.note and "stand-in GPU" in one.note
    [db] = (tmp_path / "sweep-packed2-0" / "store").glob("*/sweep.db")
    store = Store(db)
    try:
        runs = store.runs()
    finally:
        store.close()
    assert len(runs) == bench_sizes.SMOKE.packed_sweep_runs
    assert {r["gpu"] for r in runs} == {"0"} and {r["state"] for r in runs} == {"finished"}


def test_concurrent_runs_are_counted_until_throughput_per_run_halves():
    assert gpu.concurrent_counts(8) == [1, 2, 4, 8]
    assert gpu.concurrent_counts(6) == [1, 2, 4, 6]
    assert gpu.runs_before_halving({1: 1000.0, 2: 900.0, 4: 600.0, 8: 300.0}) == (4, 8)
    assert gpu.runs_before_halving({1: 1000.0, 2: 500.0}) == (2, None)  # half: still held
    assert gpu.runs_before_halving({1: 1000.0, 2: 450.0}) == (1, 2)


def test_without_ds1_the_sweep_section_says_so_and_measures_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(sweeps, "DS1_SOURCE", tmp_path / "no-ds1")
    results = report.Results("smoke", {"cpu": "x", "cores": 1, "python": "3"})
    sweeps.bench_sweep(results, bench_sizes.SMOKE, tmp_path, tmp_path)
    assert [f.section for f in results.figures] == ["sweep"] * len(sweeps.FIGURES)
    assert all(f.value is None and f.note.startswith("not measured: no DS1 records in")
               for f in results.figures)
    saved = tmp_path / "r.json"
    report.write_results(results, saved)
    assert json.loads(saved.read_text())["figures"][0]["value"] is None


@pytest.mark.slow
def test_smoke_run_prints_and_saves_every_figure(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "code/bench.py", "--smoke", "--out", str(out),
         "--data-dir", str(tmp_path / "data")],
        cwd=REPO_ROOT, env=run_env(tmp_path, COLUMNS="250"), capture_output=True, text=True,
        timeout=420)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["mode"] == "smoke"
    machine = results["machine"]
    for key in ("cpu", "cores", "tensorflow", "torch", "keras", "backend", "python"):
        assert machine[key], key
    assert machine["tensorflow"] in proc.stdout and machine["cpu"] in proc.stdout
    figures = results["figures"]
    for section, count in EXPECTED.items():
        assert sum(f["section"] == section for f in figures) == count, section
    installed = [b for b in backend.BACKENDS if machine[b] != "not installed"]
    assert "tensorflow" in installed and "torch" in installed  # requirements-test.txt
    # One figure per backend (a note for one not installed), one ratio per other installed one
    by_backend = [f for f in figures if f["section"] == "backends"]
    assert len(by_backend) == len(backend.BACKENDS) + len(installed) - 1
    skipped = [f for f in by_backend if f["value"] is None]
    assert all("not installed" in f["note"] for f in skipped)
    assert len(skipped) == len(backend.BACKENDS) - len(installed)
    [no_gpu] = [f for f in figures if f["section"] == "gpu"]  # CI has no GPU
    assert no_gpu["value"] is None and "no GPU visible to tensorflow" in no_gpu["note"]
    unpacked = [f for f in figures if f["section"] == "packing"]
    assert len(unpacked) == 3 and all(f["value"] is None for f in unpacked)
    figures = [f for f in figures if f is not no_gpu and f not in skipped + unpacked]
    for f in figures:
        assert f["value"] is not None, f"{f['section']}: {f['name']}: {f['note']}"
        assert f["value"] > 0 or f["unit"] == "x", f
        assert f["name"] in proc.stdout, f["name"]
        assert report.format_value(f["value"], f["unit"]) in proc.stdout, f
    ratios = [f for f in figures if f["unit"] == "x"]
    # training (2), backends, start-up, sweep (whole, to the best), executors (two run lengths)
    assert len(ratios) == 2 + (len(installed) - 1) + 1 + 2 + 2
    assert Path(str(out)).stat().st_size > 0


A_SWEEP = """
program: tests/fake_programs/curve.py
method: grid
metric: {name: val_macro_f1, goal: maximize}
parameters:
  learning_rate: {values: [0.1, 0.2]}
  epochs: {value: 100}
  epoch_s: {value: 1}
"""

A_BENCH_SWEEP = """
import sys
from pathlib import Path
from ecgsweep.cli import run_main, stop_signals_interrupt
from ecgbench.sweeps import SweepTrace, run_sweep


def main():
    stop_signals_interrupt()
    run_sweep(SweepTrace("plain", 1, 0.0), sys.argv[2], Path(sys.argv[1]), None,
              "val_macro_f1")

sys.exit(run_main(main))
"""


def test_a_stopped_bench_stops_the_sweep_it_started(tmp_path):
    """SIGTERM to the bench ends it as Ctrl-C does, so it stops its sweep runner and the
    runner's runs instead of leaving them running."""
    import signal

    bench = subprocess.Popen([sys.executable, "-c", A_BENCH_SWEEP, str(tmp_path), A_SWEEP],
                             cwd=REPO_ROOT, env=run_env(tmp_path), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        run_pid = _stand_in_run_pid(tmp_path, lambda: bench.poll() is None, bench.stdout.read)
        bench.send_signal(signal.SIGTERM)
        out, _ = bench.communicate(timeout=120)
        assert bench.returncode == 130, out  # EXIT_INTERRUPTED, as after Ctrl-C
        _wait_until_gone(run_pid)  # the run ends once the runner passes the stop on
    finally:
        bench.kill()
        kill_processes_under(tmp_path)


def test_a_stopped_bench_keeps_the_figures_it_measured(tmp_path, monkeypatch, capsys):
    """Stopped in its third section, the bench still prints and writes the figures of the
    sections before and of the one stopped, and marks the file stopped."""
    from ecgbench import runner

    def gpu_section(results, *args):
        results.add("gpu", "torch, batch 64, float32", 1234.0, "beats/s")

    def packing_section(results, *args):
        results.add("packing", "sweep throughput, one run per GPU", 2.5, "runs/min")
        raise KeyboardInterrupt  # Ctrl-C, or SIGTERM through stop_signals_interrupt

    monkeypatch.setattr(runner, "_probe_gpus", lambda sizes, work: {"torch": ("a GPU",)})
    monkeypatch.setattr(runner, "bench_gpu", gpu_section)
    monkeypatch.setattr(runner, "bench_packing", packing_section)
    out = tmp_path / "results.json"
    with pytest.raises(KeyboardInterrupt):
        runner.run(smoke=True, out=out, sections=("gpu", "packing"))
    saved = json.loads(out.read_text())
    assert saved["stopped"] is True
    assert [(f["section"], f["value"]) for f in saved["figures"]] == [("gpu", 1234.0),
                                                                       ("packing", 2.5)]
    printed = capsys.readouterr().out
    assert "gpu: torch, batch 64, float32: 1,234 beats/s" in printed  # as it was measured
    assert "stopped before its end" in printed


def test_a_stopped_bench_ends_the_sweep_a_smoke_thread_runs(tmp_path):
    """In a smoke bench the sweep section runs in a thread, which the stop signal does not
    reach: it sees the bench's stop flag and stops its sweep runner and runs there."""
    import threading

    from ecgbench import stopping
    from ecgbench.sweeps import SweepTrace, run_sweep

    ended: list[BaseException] = []

    def section() -> None:
        try:
            trace = run_sweep(SweepTrace("plain", 1, 0.0), A_SWEEP, tmp_path, None,
                              "val_macro_f1")
            ended.append(AssertionError(f"the sweep ended on its own: {trace.output_tail}"))
        except BaseException as e:  # noqa: BLE001  (what the thread ended with)
            ended.append(e)

    stopping.requested.clear()
    thread = threading.Thread(target=section)
    try:
        thread.start()
        run_pid = _stand_in_run_pid(tmp_path, thread.is_alive, lambda: ended)
        stopping.requested.set()
        thread.join(timeout=120)
        assert not thread.is_alive() and isinstance(ended[0], stopping.Stopped), ended
        _wait_until_gone(run_pid)  # the runner passed the stop on to its run
    finally:
        stopping.requested.set()
        thread.join(timeout=120)
        stopping.requested.clear()
        kill_processes_under(tmp_path)


A_BENCH_STARTUP = """
import sys
from pathlib import Path
from ecgsweep.cli import run_main, stop_signals_interrupt
from ecgbench import runner, startup

# a stand-in for code/train.py: says it is up, notes its pid, and waits to be stopped
STAND_IN = (sys.executable, "-c", "import os, pathlib, sys, time; print('run ', flush=True); "
            "pathlib.Path(sys.argv[1]).write_text(str(os.getpid())); time.sleep(600)")


def bench_startup(results, sizes, work, data_root):
    startup.launch_to_first_step([sys.argv[1] + "/run.pid"], work / "wandb", program=STAND_IN)


def main():
    stop_signals_interrupt()
    runner.bench_csv = lambda data_root, rows: None
    runner.bench_startup = bench_startup
    runner.run(smoke=True, out=Path(sys.argv[1]) / "results.json", sections=("startup",))

sys.exit(run_main(main))
"""


def test_a_stopped_smoke_bench_stops_the_run_it_launches_and_removes_its_work_folder(tmp_path):
    """The start-up section runs in a thread in a smoke bench; a SIGTERM that comes while
    the main thread waits for it reaches it: its run is stopped, the work folder removed,
    and the table is the last thing printed."""
    import signal
    import time

    temp = tmp_path / "tmp"  # the bench's work folder is made here (TMPDIR)
    temp.mkdir()
    bench = subprocess.Popen([sys.executable, "-c", A_BENCH_STARTUP, str(tmp_path)],
                             cwd=REPO_ROOT, env=run_env(tmp_path, TMPDIR=str(temp)),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "run.pid").exists() or not (tmp_path / "run.pid").read_text():
            assert time.monotonic() < deadline and bench.poll() is None, bench.stdout.read()
            time.sleep(0.2)
        run_pid = int((tmp_path / "run.pid").read_text())
        bench.send_signal(signal.SIGTERM)
        out, _ = bench.communicate(timeout=120)
        assert bench.returncode == 130, out
        _wait_until_gone(run_pid)
        assert not list(temp.glob("ecg-bench-*")), out
        lines = out.strip().splitlines()
        assert lines[-2].startswith("wrote ") and lines[-1] == "interrupted", out
        assert "startup stopped after" in out and "startup section" not in out, out
    finally:
        bench.kill()
        kill_processes_under(tmp_path)


def test_a_stop_that_comes_as_a_run_starts_still_stops_and_waits_for_it(tmp_path, monkeypatch):
    """Ctrl-C in the instant between the start of code/train.py and the bench knowing it."""
    import signal
    import time

    from ecgbench import startup

    started: list[subprocess.Popen] = []
    real_popen = subprocess.Popen

    def popen_then_ctrl_c(argv, **kwargs):
        proc = real_popen([sys.executable, "-c", "import time; time.sleep(600)"], **kwargs)
        started.append(proc)
        signal.raise_signal(signal.SIGINT)
        time.sleep(0.5)  # Python runs the signal's handler in here
        return proc

    monkeypatch.setattr(subprocess, "Popen", popen_then_ctrl_c)
    # Python's own Ctrl-C handler, which a shell's background job starts without (SIG_IGN)
    default = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            startup.launch_to_first_step(["--epochs=1"], tmp_path / "wandb")
        assert len(started) == 1 and started[0].returncode is not None  # stopped, waited for
    finally:
        signal.signal(signal.SIGINT, default)
        for proc in started:
            proc.kill()
            proc.wait()


def test_a_throughput_worker_that_overruns_is_ended_and_waited_for():
    from ecgbench import backends

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            backends.read_throughput(proc, timeout_s=0.5)
        assert proc.returncode is not None
    finally:
        proc.kill()
        proc.wait()


def test_only_inference_trains_its_model_without_the_training_figures(tmp_path, monkeypatch):
    from ecgbench import runner

    def training_section(*args):
        raise AssertionError("the training section ran")

    def inference_section(results, sizes, model_path, experiments):
        results.add("inference", f"predicted with {model_path.name}", 1.0, "beats/s")

    monkeypatch.setattr(runner, "bench_training", training_section)
    monkeypatch.setattr(runner, "inference_model", lambda sizes, work: work / "m.keras")
    monkeypatch.setattr(runner, "bench_inference", inference_section)
    results = runner.run(smoke=True, out=tmp_path / "r.json", sections=("inference",))
    assert [(f.section, f.name) for f in results.figures] == [("inference",
                                                                "predicted with m.keras")]


def _stand_in_run_pid(folder: Path, alive, says) -> int:
    """The process id of the stand-in run once it has started under ``folder``; fails with
    ``says()`` when what launches it (``alive()``) ends first."""
    import time

    deadline = time.monotonic() + 120
    while not list(folder.rglob("env.json")):
        assert time.monotonic() < deadline and alive(), says()
        time.sleep(0.2)
    return json.loads(next(folder.rglob("env.json")).read_text())["pid"]


def _wait_until_gone(pid: int) -> None:
    import os
    import time

    deadline = time.monotonic() + 60
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        assert time.monotonic() < deadline, f"run {pid} still running after the stop"
        time.sleep(0.2)
