"""Runner processes dying, resuming, and sharing one store (the CLI, in subprocesses)."""

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from rich.console import Console

from ecgsweep.sweep import commands
from ecgsweep.sweep import config as sc
from ecgsweep.sweep import liveness
from ecgsweep.sweep.bookkeeping import create_or_join
from ecgsweep.sweep.runner import Options, Runner
from ecgsweep.sweep.store import db_path, open_store

REPO = Path(__file__).resolve().parents[1]
CURVE = "tests/fake_programs/curve.py"


def write_yaml(tmp_path, params, method="grid", program=CURVE):
    path = tmp_path / "sweep.yaml"
    path.write_text(f"program: {program}\nmethod: {method}\n"
                    "metric: {name: val_macro_f1, goal: maximize}\nparameters:\n" + params)
    return path


def start_cli(args, env_extra):
    env = dict(os.environ, WANDB_MODE="offline", **env_extra)
    return subprocess.Popen([sys.executable, "code/sweep.py", *args, "--poll", "0.1"], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def query(db, sql, args=()):
    """Read the store as an outsider would (the runner may be mid-write)."""
    if not Path(db).exists():
        return []
    con = sqlite3.connect(str(db), timeout=30)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql, args)]
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_resume_after_sigkill_loses_no_finished_run(tmp_path):
    yaml_path = write_yaml(tmp_path, "  learning_rate: {values: [0.9, 0.7, 0.5, 0.3]}\n"
                                     "  epochs: {value: 3}\n")
    store_root = tmp_path / "store"
    db = db_path(store_root, "killme01")
    proc = start_cli([str(yaml_path), "--store", str(store_root), "--sweep-id", "killme01"],
                     {"FAKE_EPOCH_S": "0.25"})
    try:
        # kill the runner once one run has finished and the next one has logged an epoch
        wait_for(lambda: query(db, "SELECT 1 FROM runs WHERE state = 'finished'")
                 and query(db, "SELECT 1 FROM runs WHERE state = 'running' AND epochs >= 1"),
                 timeout=40, what="a finished run and a live one")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = {r["run_id"]: r for r in query(db, "SELECT * FROM runs")}
    hist_before = {rid: query(db, "SELECT step, data FROM history WHERE run_id = ? ORDER BY step",
                              (rid,)) for rid in before}
    finished_before = [rid for rid, r in before.items() if r["state"] == "finished"]
    live_before = [rid for rid, r in before.items() if r["state"] == "running"]
    assert finished_before and len(live_before) == 1

    store = open_store(store_root, "killme01")
    rc = Runner(store, Options(poll_s=0.05, cwd=str(REPO), gpus=[], kill_delay_s=5)).run()
    assert rc == 0
    rows = {r["run_id"]: r for r in store.runs()}
    # finished runs are untouched: same row, same history, not run again
    for rid in finished_before:
        assert rows[rid]["state"] == "finished"
        assert rows[rid]["ended_at"] == before[rid]["ended_at"]
        assert store.history(rid) == [json.loads(h["data"])
                                                   for h in hist_before[rid]]
    # the run that was live is crashed, keeps the epochs it logged, and its point is re-queued
    (lost,) = live_before
    assert rows[lost]["state"] == "crashed" and rows[lost]["requeued"] == 1
    assert "died" in rows[lost]["error"]
    assert len(store.history(lost)) >= 1
    retry = [r for r in rows.values() if r["retry_of"] == lost]
    assert len(retry) == 1 and retry[0]["state"] == "finished"
    assert retry[0]["params"] == rows[lost]["params"]
    # every grid point finished exactly once
    finished = Counter(r["params"]["learning_rate"]["value"] for r in rows.values()
                       if r["state"] == "finished")
    assert finished == Counter({0.9: 1, 0.7: 1, 0.5: 1, 0.3: 1})
    assert store.get("state") == "finished"


def test_live_runs_of_a_dead_runner_are_crashed_not_requeued_for_random(tmp_path):
    yaml_text = f"program: {CURVE}\nmethod: random\nparameters:\n  learning_rate: {{min: 0.1, max: 0.9}}\n"
    cfg = sc.loads(yaml_text)
    store, _ = create_or_join(tmp_path / "store", cfg, yaml_text, "x.yaml", count=1)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with store.transaction():
        store.register_runner("ghost", host=os.uname().nodename, pid=dead.pid, pid_start=None,
                              boot_id="", workers=1)
        store.insert_run("ghostrun", {"learning_rate": {"value": 0.5}}, state="running",
                         owner="ghost")
        store.add_history("ghostrun", 0, [{"epoch": 1, "val_macro_f1": 0.25}])
    def reap():
        return liveness.reap_dead(store, "me", time.time(), stale_after_s=120, requeue_grid=False,
                                  wandb_dir=str(store.folder), cwd=str(REPO),
                                  metric="val_macro_f1", goal="maximize")

    assert reap() == ["ghostrun marked crashed (its runner ghost died)"]
    row = store.run("ghostrun")
    assert row["state"] == "crashed" and row["requeued"] == 0
    assert store.runs("pending") == []
    assert store.history("ghostrun") == [{"epoch": 1, "val_macro_f1": 0.25}]
    # a runner that is alive (this test process) keeps its runs
    with store.transaction():
        store.register_runner("alive", host=os.uname().nodename, pid=os.getpid(),
                              pid_start=None, boot_id="", workers=1)
        store.insert_run("liverun", {"learning_rate": {"value": 0.4}}, state="running",
                         owner="alive")
    assert reap() == []
    assert store.run("liverun")["state"] == "running"


@pytest.mark.slow
def test_two_runner_processes_share_one_store(tmp_path):
    yaml_path = write_yaml(tmp_path, "  learning_rate: {values: [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]}\n"
                                     "  epochs: {value: 2}\n")
    store_root = tmp_path / "store"
    args = [str(yaml_path), "--store", str(store_root), "--sweep-id", "shared01", "--plain"]
    procs = [start_cli(args, {"FAKE_EPOCH_S": "0.15"}) for _ in range(2)]
    outs = [p.communicate(timeout=60)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    store = open_store(store_root, "shared01")
    rows = store.runs()
    points = Counter(r["params"]["learning_rate"]["value"] for r in rows)
    assert points == Counter({v: 1 for v in (0.9, 0.8, 0.7, 0.6, 0.5, 0.4)})
    assert all(r["state"] == "finished" for r in rows)
    assert len(store.runners()) == 2
    assert "joining" in outs[0] + outs[1] and "created" in outs[0] + outs[1]


@pytest.mark.slow
def test_sigint_stops_runs_and_resume_finishes_the_grid(tmp_path):
    yaml_path = write_yaml(tmp_path, "  learning_rate: {values: [0.9, 0.5]}\n"
                                     "  epochs: {value: 6}\n")
    store_root = tmp_path / "store"
    db = db_path(store_root, "ctrlc001")
    proc = start_cli([str(yaml_path), "--store", str(store_root), "--sweep-id", "ctrlc001",
                      "--plain"], {"FAKE_EPOCH_S": "0.3"})
    wait_for(lambda: query(db, "SELECT 1 FROM runs WHERE state = 'running' AND epochs >= 1"),
             timeout=40, what="a live run")
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 130, out
    assert "--resume ctrlc001" in out
    rows = query(db, "SELECT * FROM runs")
    assert [r["state"] for r in rows if not r["retry_of"]] == ["crashed"]
    assert [r["state"] for r in rows if r["retry_of"]] == ["pending"]
    os.environ["FAKE_EPOCH_S"] = "0.01"
    try:
        rc = commands.run_sweep(yaml_path=str(yaml_path), store_root=str(store_root),
                                resume="ctrlc001",
                                opts=Options(poll_s=0.05, cwd=str(REPO), gpus=[]),
                                console=Console(file=io.StringIO()))
    finally:
        del os.environ["FAKE_EPOCH_S"]
    assert rc == 0
    rows = query(db, "SELECT * FROM runs")
    done = sorted(json.loads(r["params"])["learning_rate"]["value"]
                  for r in rows if r["state"] == "finished")
    assert done == [0.5, 0.9]


@pytest.mark.slow
def test_a_real_wandb_run_gets_the_sweep_params_and_lands_in_the_sweep_folder(tmp_path):
    yaml_path = write_yaml(tmp_path, "  learning_rate: {min: 0.2, max: 0.8}\n  epochs: {value: 2}\n",
                           method="random", program="tests/fake_programs/wandb_curve.py")
    store_root = tmp_path / "store"
    res = subprocess.run([sys.executable, "code/sweep.py", str(yaml_path), "--store",
                          str(store_root), "--sweep-id", "wandb001", "--count", "1", "--project",
                          "ecg-test", "--poll", "0.2"], cwd=REPO, capture_output=True,
                         text=True, env=dict(os.environ, WANDB_MODE="online"), timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    store = open_store(store_root, "wandb001")
    (row,) = store.runs()
    assert row["state"] == "finished" and len(store.history(row["run_id"])) == 2
    seen = json.loads((Path(row["files_dir"]) / "seen.json").read_text())
    assert seen["run_id"] == row["run_id"] and seen["sweep_id"] == "wandb001"
    assert seen["mode"] == "offline"  # offline even though the caller's env said online
    assert seen["config"]["learning_rate"] == row["params"]["learning_rate"]["value"]
    run_dir = Path(row["files_dir"]).parent
    assert run_dir.parent == store.folder / "wandb"
    assert run_dir.name.startswith("offline-run-") and run_dir.name.endswith(row["run_id"])
    assert list(run_dir.glob("run-*.wandb"))
    assert f"wandb sync -p ecg-test {store.folder / 'wandb'}" in res.stdout
    dry = subprocess.run([sys.executable, "-m", "wandb", "sync", "--dry-run", "-p", "ecg-test",
                          str(store.folder / "wandb")], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)
    assert f"run-{row['run_id']}.wandb" in dry.stdout + dry.stderr


def test_runs_crashed_by_their_runners_death_do_not_count_toward_the_cap(tmp_path):
    """--count 3, runner killed once, resumed: still 3 finished runs."""
    yaml_text = (f"program: {CURVE}\nmethod: random\nmetric: {{name: val_macro_f1, goal: maximize}}\n"
                 "parameters:\n  learning_rate: {min: 0.1, max: 0.9}\n  epochs: {value: 1}\n")
    cfg = sc.loads(yaml_text)
    store, _ = create_or_join(tmp_path / "store", cfg, yaml_text, "x.yaml", count=3)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with store.transaction():
        store.register_runner("ghost", host=os.uname().nodename, pid=dead.pid, pid_start=None,
                              boot_id="", workers=1)
        store.insert_run("ghostrun", {"learning_rate": {"value": 0.5}, "epochs": {"value": 1}},
                         state="running", owner="ghost")
    rc = Runner(store, Options(poll_s=0.05, cwd=str(REPO), gpus=[], kill_delay_s=5)).run()
    assert rc == 0
    states = Counter(r["state"] for r in store.runs())
    assert states == Counter({"finished": 3, "crashed": 1}), states


def test_a_resume_from_a_folder_without_the_program_is_refused_before_any_run(tmp_path):
    yaml_text = (f"program: {CURVE}\nmethod: grid\nmetric: {{name: val_macro_f1, goal: "
                 "maximize}\nparameters:\n  learning_rate: {values: [0.9, 0.5]}\n")
    store, _ = create_or_join(tmp_path / "store", sc.loads(yaml_text), yaml_text, "x.yaml",
                              count=2)
    sweep_id = store.meta()["sweep_id"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(commands.UserError, match=rf"^sweep {sweep_id}: {CURVE} not found "
                                                 rf"from {elsewhere} \(programs run from the "
                                                 r"current directory"):
        commands.run_sweep(yaml_path=None, store_root=str(tmp_path / "store"),
                           resume=sweep_id,
                           opts=Options(poll_s=0.05, cwd=str(elsewhere), gpus=[]),
                           console=Console(file=io.StringIO()))
    assert store.runs() == []  # no run was started, so none counts against the cap


def test_a_sweep_is_resumed_only_from_the_folder_its_runs_ran_in(tmp_path):
    from ecgsweep.sweep.bookkeeping import RUNS_FOLDER_KEY
    from ecgsweep.sweep.errors import UserError

    yaml_text = (f"program: {REPO / CURVE}\nmethod: grid\nmetric: {{name: val_loss, goal: "
                 "minimize}\nparameters:\n  lr: {values: [0.1, 0.2]}\n")
    store, _ = create_or_join(tmp_path / "store", sc.loads(yaml_text), yaml_text, "s.yaml",
                              sweep_id="moved001")
    ran_in = tmp_path / "project"
    ran_in.mkdir()
    with store.transaction():
        store.set(RUNS_FOLDER_KEY, str(ran_in))
    store.close()
    with pytest.raises(UserError, match=rf"moved001's runs ran in {ran_in}, and their data .* "
                                        rf"continue it from that folder: cd {ran_in} && .* "
                                        rf"--resume moved001 --store {tmp_path / 'store'}"):
        commands.run_sweep(yaml_path=None, store_root=str(tmp_path / "store"), resume="moved001",
                           opts=Options(cwd=str(tmp_path)), console=Console(file=io.StringIO()))
