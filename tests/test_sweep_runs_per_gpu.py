"""Runs packed per GPU: --runs-per-gpu K hands each visible GPU to K runs at once, each with
the variables that let runs share a GPU, and status shows which GPU each run holds. Tested
without a GPU through the ids handed out (--gpus) and what each run was given."""

import io
import json
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from ecgsweep import backend, sweep_cli
from ecgsweep.sweep import commands, executor, launch
from ecgsweep.sweep.store import Store
from ecgsweep.sweep_hooks import ECG_PROGRAM

from conftest import REPO_ROOT

CURVE = "tests/fake_programs/curve.py"
SHARE_VARS = ("TF_FORCE_GPU_ALLOW_GROWTH", "XLA_PYTHON_CLIENT_MEM_FRACTION",
              launch.GPU_MEMORY_FRACTION_ENV)


def test_runs_spread_over_the_gpus_and_k_share_each():
    gpus = ["0", "1"]
    assert [executor.gpu_for_slot(gpus, s) for s in range(4)] == ["0", "1", "0", "1"]
    assert executor.gpu_for_slot([], 3) is None
    assert executor.default_workers(gpus, 2) == 4
    assert executor.default_workers(gpus, 1) == 2
    assert executor.default_workers([], 3) == 1  # no GPU: one run at a time, as before


def test_shared_gpus_get_memory_growth_and_an_even_share_of_memory(tmp_path):
    assert launch.gpu_share_env(1) == {}  # one run per GPU: the frameworks' own defaults
    assert launch.gpu_share_env(4) == {"TF_FORCE_GPU_ALLOW_GROWTH": "true",
                                       "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.225",
                                       launch.GPU_MEMORY_FRACTION_ENV: "0.225"}
    cfg = {"program": CURVE, "method": "grid", "parameters": {}}
    shared = launch.prepare(cfg, {}, sweep_id="s", run_id="r1", wandb_dir=str(tmp_path),
                            base_env={"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.3"}, gpu="1",
                            runs_per_gpu=2).env
    assert shared["CUDA_VISIBLE_DEVICES"] == "1" and shared["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert shared[launch.GPU_MEMORY_FRACTION_ENV] == "0.450"
    assert shared["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.3"  # what the user set wins
    cpu = launch.prepare(cfg, {}, sweep_id="s", run_id="r2", wandb_dir=str(tmp_path),
                         base_env={}, gpu=None, runs_per_gpu=2).env
    assert not set(SHARE_VARS) & set(cpu)


def test_a_torch_run_reads_its_share_of_gpu_memory():
    name = launch.GPU_MEMORY_FRACTION_ENV
    assert backend.memory_fraction({}) is None
    assert backend.memory_fraction({name: "0.450"}) == pytest.approx(0.45)
    for bad in ("half", "0", "1.5", "nan"):
        with pytest.raises(backend.BackendError, match=name):
            backend.memory_fraction({name: bad})


def test_runs_per_gpu_is_for_this_machine_not_a_ray_cluster(capsys):
    with pytest.raises(SystemExit) as stop:
        sweep_cli.run(["x.yaml", "--ray", "auto", "--runs-per-gpu", "2"], ECG_PROGRAM)
    assert stop.value.code == 2
    assert "--gpus-per-run 1/K" in capsys.readouterr().err


def _sweep(tmp_path, monkeypatch, points: int, *args: str) -> Store:
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setenv("FAKE_EPOCH_S", "0.4")
    rates = ", ".join(f"0.{i + 1}" for i in range(points))
    yaml_path = tmp_path / "packed.yaml"
    yaml_path.write_text(f"program: {CURVE}\nmethod: grid\n"
                         "metric: {name: val_macro_f1, goal: maximize}\n"
                         f"parameters:\n  learning_rate: {{values: [{rates}]}}\n"
                         "  epochs: {value: 3}\n")
    store_root = tmp_path / "store"
    store_root.mkdir()
    rc = sweep_cli.run([str(yaml_path), "--store", str(store_root), "--sweep-id", "packed",
                        "--plain", "--poll", "0.05", *args], ECG_PROGRAM)
    assert rc == 0
    return Store(store_root / "packed" / "sweep.db", timeout_s=5)


def _handed(store: Store) -> list[dict]:
    """What each run was given, in the order the runs started."""
    rows = sorted(store.runs(), key=lambda r: r["started_at"])
    return [{"gpu": r["gpu"], **json.loads((Path(r["files_dir"]) / "env.json").read_text())["env"],
             "start": r["started_at"], "end": r["ended_at"]} for r in rows]


def _most_at_once(handed: list[dict], gpu: str) -> int:
    on = [h for h in handed if h["gpu"] == gpu]
    return max(sum(o["start"] <= h["start"] < o["end"] for o in on) for h in on)


@pytest.mark.slow
def test_two_runs_per_gpu_share_a_device_and_the_third_gets_another(tmp_path, monkeypatch,
                                                                    capsys):
    store = _sweep(tmp_path, monkeypatch, 3, "--gpus", "0,1", "--runs-per-gpu", "2",
                   "--workers", "3")
    handed = _handed(store)
    assert [h["CUDA_VISIBLE_DEVICES"] for h in handed] == [h["gpu"] for h in handed]
    assert Counter(h["gpu"] for h in handed) == {"0": 2, "1": 1}
    assert _most_at_once(handed, "0") == 2  # the two on GPU 0 ran at the same time
    for h in handed:
        assert h["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
        assert h[launch.GPU_MEMORY_FRACTION_ENV] == h["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.450"

    # status shows which GPU each run held, in the table and in --json
    capsys.readouterr()
    assert commands.status("packed", store_root=str(tmp_path / "store"), as_json=True) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert sorted(r["gpu"] for r in runs) == ["0", "0", "1"]
    buf = io.StringIO()
    commands.status("packed", store_root=str(tmp_path / "store"),
                    console=Console(file=buf, width=200))
    header = next(line for line in buf.getvalue().splitlines() if " state " in line)
    assert " gpu " in header


@pytest.mark.slow
def test_workers_default_to_runs_per_gpu_times_the_gpus(tmp_path, monkeypatch):
    store = _sweep(tmp_path, monkeypatch, 4, "--gpus", "0,1", "--runs-per-gpu", "2")
    runner = next(iter(store.runners().values()))
    assert runner["workers"] == 4
    handed = _handed(store)
    assert Counter(h["gpu"] for h in handed) == {"0": 2, "1": 2}
    assert _most_at_once(handed, "0") == _most_at_once(handed, "1") == 2


def test_gpu_ids_are_indices_or_uuids_as_cuda_visible_devices_takes_them(capsys):
    from ecgsweep import sweep_cli

    assert sweep_cli.gpu_ids("0, 1,GPU-8f2a,MIG-3c") == ["0", "1", "GPU-8f2a", "MIG-3c"]
    assert sweep_cli.gpu_ids("") == []  # no GPU: every run on the CPU
    with pytest.raises(SystemExit) as e:
        sweep_cli.main(["sweep_conf/cnn_grid.yaml", "--gpus", "abc,1"])
    assert e.value.code == 2
    assert "abc: not a GPU index (0, 1, ...) or UUID" in capsys.readouterr().err
