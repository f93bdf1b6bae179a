"""code/bench.py: every figure is produced (smoke mode) and the pieces behave."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, run_env
from ecgbench import gpu, report, sizes as bench_sizes, sweeps, training
from ecgsweep import backend
from ecgsweep.sweep_hooks import ECG_PROGRAM

EXPECTED = {  # section -> figures the smoke run must measure
    "training": 5,
    "inference": 3,
    "start-up": 3,
    "sweep": 3,
    "executors": 3,  # local, Ray, their ratio (ray is installed by make test)
}


def test_sweep_yamls_pass_the_runners_own_check(tmp_path):
    from ecgsweep.sweep import config as sweep_config

    for sizes in (bench_sizes.FULL, bench_sizes.SMOKE):
        for method in ("grid", "bayes"):
            text = sweeps.sweep_yaml(method, sizes, tmp_path / "data", tmp_path / "models")
            cfg = sweep_config.loads(text)
            problems = sweep_config.check(cfg, program=ECG_PROGRAM, cwd=REPO_ROOT)
            assert not sweep_config.errors(problems), [str(p) for p in problems]
            assert cfg["method"] == method
            for name, values in sizes.sweep_space.items():
                assert cfg["parameters"][name] == {"values": values}  # the same space
            assert ("early_terminate" in cfg) == (method == "bayes")
        grid = sweep_config.loads(sweeps.sweep_yaml("grid", sizes, tmp_path, tmp_path))
        expected = 1
        for values in sizes.sweep_space.values():
            expected *= len(values)
        assert sweep_config.grid_size(grid) == expected


def test_time_to_target_is_the_first_epoch_at_or_above_it():
    trace = sweeps.SweepTrace("grid", 0.0, arrivals=[(10.0, "a", 0.40), (12.0, "a", 0.61),
                                                     (30.0, "b", 0.70), (31.0, "b", 0.65)])
    assert trace.first_at(0.6) == (12.0, "a")
    assert trace.first_at(0.7) == (30.0, "b")
    assert trace.first_at(0.9) is None
    assert trace.best() == 0.70


def test_steady_rate_leaves_out_the_first_epoch():
    assert training.steady_rate([0.0, 5.0, 6.0, 8.0], 1000) == [1000.0, 500.0]
    assert training.steady_rate([0.0, 5.0], 1000) == []


def test_without_a_gpu_the_gpu_section_says_so_and_measures_nothing(tmp_path):
    results = report.Results("smoke", {})
    gpu.bench_gpu(results, bench_sizes.SMOKE, tmp_path, {"tensorflow": (), "torch": ()})
    [figure] = results.figures
    assert figure.section == "gpu" and figure.value is None
    assert figure.note == "not measured: no GPU visible to tensorflow, torch"


def test_concurrent_runs_are_counted_until_throughput_per_run_halves():
    assert gpu.concurrent_counts(8) == [1, 2, 4, 8]
    assert gpu.concurrent_counts(6) == [1, 2, 4, 6]
    assert gpu.runs_before_halving({1: 1000.0, 2: 900.0, 4: 600.0, 8: 300.0}) == (4, 8)
    assert gpu.runs_before_halving({1: 1000.0, 2: 500.0}) == (2, None)  # half: still held
    assert gpu.runs_before_halving({1: 1000.0, 2: 450.0}) == (1, 2)


def test_an_unusable_sweep_runner_is_reported_not_measured(tmp_path, monkeypatch):
    monkeypatch.setattr(sweeps, "sweep_runner_problem", lambda: "code/sweep.py does not exist")
    results = report.Results("smoke", {"cpu": "x", "cores": 1, "python": "3"})
    sweeps.bench_sweep(results, bench_sizes.SMOKE, tmp_path, tmp_path)
    assert [f.section for f in results.figures] == ["sweep"] * 3
    assert all(f.value is None and f.note == "not measured: code/sweep.py does not exist"
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
    figures = [f for f in figures if f is not no_gpu and f not in skipped]
    for f in figures:
        assert f["value"] is not None, f"{f['section']}: {f['name']}: {f['note']}"
        assert f["value"] > 0 or f["unit"] == "x", f
        assert f["name"] in proc.stdout, f["name"]
        assert report.format_value(f["value"], f["unit"]) in proc.stdout, f
    ratios = [f for f in figures if f["unit"] == "x"]
    # training (2), backends, start-up, sweep, executors (Ray / local)
    assert len(ratios) == 2 + (len(installed) - 1) + 1 + 1 + 1
    assert Path(str(out)).stat().st_size > 0
