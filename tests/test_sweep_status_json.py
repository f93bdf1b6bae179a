"""`code/sweep.py status ID --json`: the sweep and its runs for scripts."""

import json
import subprocess
import sys
from pathlib import Path

from ecgsweep.sweep import config as sc
from ecgsweep.sweep.bookkeeping import create_or_join

REPO = Path(__file__).resolve().parents[1]


def test_status_json_lists_the_sweep_and_its_runs(tmp_path):
    yaml_text = ("program: p.py\nmethod: random\nmetric: {name: val/loss, goal: minimize}\n"
                 "parameters:\n  lr: {min: 0.1, max: 0.9}\n  opt: {parameters: {beta: {value: 1}}}\n")
    store, _ = create_or_join(tmp_path / "store", sc.loads(yaml_text), yaml_text, "s.yaml",
                              sweep_id="json0001", count=5)
    with store.transaction():
        store.register_runner("r1", host="nodeA", pid=1, pid_start=None, boot_id="", workers=1)
        store.insert_run("run1", {"lr": {"value": 0.5}, "opt": {"value": {"beta": 1}}},
                         state="finished", owner="r1")
        store.add_history("run1", 0, [{"val/loss": 0.7}, {"val/loss": 0.4}])
        store.update_run("run1", exit_code=0, metric_best=0.4, epochs=2)
        store.insert_run("run2", {"lr": {"value": 0.2}, "opt": {"value": {"beta": 1}}},
                         state="stopped", owner="r1")
        store.update_run("run2", exit_code=0, stop_reason="hyperband: behind")
    store.close()
    res = subprocess.run([sys.executable, "code/sweep.py", "status", "json0001", "--json",
                          "--store", str(tmp_path / "store")], cwd=REPO, capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    sweep = doc["sweep"]
    assert sweep["id"] == "json0001" and sweep["method"] == "random"
    assert sweep["metric"] == "val/loss" and sweep["goal"] == "minimize"
    assert sweep["state"] == "running" and sweep["run_cap"] == 5
    runs = {r["id"]: r for r in doc["runs"]}
    assert set(runs) == {"run1", "run2"}
    one = runs["run1"]
    assert one == {"id": "run1", "state": "finished", "params": {"lr": 0.5, "opt": {"beta": 1}},
                   "metric": 0.4, "steps": 2, "exit_code": 0, "stop_reason": None,
                   "host": "nodeA", "node_id": None, "gpu": None}
    assert runs["run2"]["metric"] is None and runs["run2"]["stop_reason"] == "hyperband: behind"


def test_every_status_view_calls_a_sweep_whose_runner_died_idle(tmp_path):
    import socket

    yaml_text = ("program: p.py\nmethod: random\nmetric: {name: val/loss, goal: minimize}\n"
                 "parameters:\n  lr: {min: 0.1, max: 0.9}\n")
    store, _ = create_or_join(tmp_path / "store", sc.loads(yaml_text), yaml_text, "s.yaml",
                              sweep_id="dead0001")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid of this machine that no longer runs
    with store.transaction():
        store.register_runner("r1", host=socket.gethostname(), pid=gone.pid, pid_start=None,
                              boot_id="", workers=1)
        store.insert_run("run1", {"lr": {"value": 0.5}}, state="running", owner="r1")
    store.close()

    def status(*args):
        res = subprocess.run([sys.executable, "code/sweep.py", "status", *args, "--store",
                              str(tmp_path / "store")], cwd=REPO, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        return res.stdout

    assert json.loads(status("dead0001", "--json"))["sweep"]["state"] == "idle"
    assert status().split()[:2] == ["dead0001", "idle"]
    assert "sweep dead0001 idle: " in status("dead0001")
    assert "runners:" not in status("dead0001")  # its dead runner is not listed as working
    assert "continue with: python code/sweep.py --resume dead0001 --store " in status("dead0001")


def test_status_from_another_folder_reads_the_best_model_where_the_runs_ran(tmp_path, monkeypatch):
    from ecgsweep.model_record import DatasetInfo, ModelRecord
    from ecgsweep.sweep import commands
    from ecgsweep.sweep.bookkeeping import RUNS_FOLDER_KEY

    runs_folder = tmp_path / "project"
    run = runs_folder / "wandb" / "offline-run-1-run1"
    (run / "files").mkdir(parents=True)
    (run / "model.keras").write_bytes(b"model")
    record = ModelRecord(config={"model": "cnn", "models_dir": "models"}, run_id="run1",
                         dataset=DatasetInfo(name="mitbih", fingerprint="abc"))
    record.write(run / "model.json")
    slot = runs_folder / "models" / "cnn" / "mitbih-abc"
    slot.mkdir(parents=True)
    (slot / "best.keras").write_bytes(b"model")
    ModelRecord(config=record.config, run_id="run1", metric="val_macro_f1", value=0.8,
                sha256="0" * 64, dataset=record.dataset).write(slot / "best.json")
    yaml_text = ("program: code/train.py\nmethod: random\nmetric: {name: val_macro_f1, goal: "
                 "maximize}\nparameters:\n  epochs: {values: [1, 2]}\n")
    store, _ = create_or_join(tmp_path / "store", sc.loads(yaml_text), yaml_text, "s.yaml",
                              sweep_id="away0001")
    with store.transaction():
        store.set(RUNS_FOLDER_KEY, str(runs_folder))
        store.insert_run("run1", {"epochs": {"value": 1}}, state="finished")
        store.update_run("run1", files_dir=str(run / "files"), metric_best=0.8, exit_code=0)
    store.close()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    from io import StringIO

    from rich.console import Console

    out = StringIO()
    from ecgsweep.sweep_hooks import ECG_PROGRAM

    commands.status("away0001", store_root=str(tmp_path / "store"),
                    console=Console(file=out, width=200), program=ECG_PROGRAM)
    assert f"best cnn model: {slot / 'best.keras'} (from this sweep, run run1" in out.getvalue()
