"""The offline engine runs any W&B program: tests/fake_programs/wandb_only/train.py uses only
wandb.init, wandb.config and wandb.log (no TensorFlow, nothing of ecg-sweeps), and the
runner reads its metrics from the run's own W&B record. Each run starts a real wandb
(offline), a few seconds each."""

import json
from pathlib import Path

import pytest
import yaml

from ecgsweep.sweep import config as sc
from ecgsweep.sweep.bookkeeping import RUNS_FOLDER_KEY, create_or_join
from ecgsweep.sweep.runner import Options, Runner
from ecgsweep.sweep_hooks import ECG_PROGRAM

REPO = Path(__file__).resolve().parents[1]
PROGRAM = "tests/fake_programs/wandb_only/train.py"


def run_sweep(tmp_path, yaml_text, *, count=None, workers=1):
    cfg = sc.loads(yaml_text)
    errs = sc.errors(sc.check(cfg, program=ECG_PROGRAM, cwd=REPO))
    assert not errs, [str(e) for e in errs]
    store, _ = create_or_join(tmp_path / "store", cfg, yaml_text, "test.yaml", count=count)
    runner = Runner(store, Options(poll_s=0.2, cwd=str(REPO), kill_delay_s=5, gpus=[],
                                   workers=workers))
    return store, runner.run()


def summary_json(row, key):
    return json.loads(row["summary"][key])


@pytest.mark.parametrize("method, learn_rate", [
    ("grid", "{values: [0.2, 0.6]}"),
    ("random", "{distribution: log_uniform_values, min: 0.01, max: 0.9}"),
    ("bayes", "{distribution: uniform, min: 0.1, max: 0.9}"),
])
def test_each_method_in_w_and_b_shape_with_nested_parameters(tmp_path, method, learn_rate):
    store, rc = run_sweep(tmp_path, f"""\
program: {PROGRAM}
method: {method}
metric:
  name: val/loss
  goal: minimize
parameters:
  learn_rate: {learn_rate}
  optimizer:
    parameters:
      name: {{values: [adam, sgd]}}
      momentum: {{value: 0.9}}
""", count=2)
    assert rc == 0
    rows = store.runs()
    assert len(rows) == 2 and {r["state"] for r in rows} == {"finished"}
    for row in rows:
        hist = store.history(row["run_id"])
        lr = row["params"]["learn_rate"]["value"]
        assert [h["_step"] for h in hist] == [0, 1, 2]  # every wandb.log call, read back
        assert row["metric_best"] == pytest.approx(min(h["val/loss"] for h in hist))
        assert row["metric_best"] == pytest.approx(1.0 - lr + 0.125)
        optimizer = row["params"]["optimizer"]["value"]  # nested: one dict, as from the server
        assert optimizer["momentum"] == 0.9 and optimizer["name"] in ("adam", "sgd")
        assert summary_json(row, "optimizer_seen") == optimizer


def _macro_sweep(tmp_path, command):
    items = "".join(f"  - {item}\n" for item in command)
    return run_sweep(tmp_path, f"""\
program: {PROGRAM}
method: grid
metric: {{name: val/loss, goal: minimize}}
command:
{items}parameters:
  learn_rate: {{value: 0.5}}
  steps: {{value: 1}}
  flag: {{value: true}}
""")


@pytest.mark.parametrize("command", [
    ["${env}", "${interpreter}", "${program}", "${args}"],
    ["${interpreter}", "${program}", "${args_no_hyphens}"],
    ["${interpreter}", "${program}", "${args_no_equals}"],
    ["${interpreter}", "${program}", "${args_no_boolean_flags}"],
    ["${interpreter}", "${program}", "${args_json}"],
    ["${env}", "sh", "tests/fake_programs/wandb_only/run.sh", "${interpreter}", "${args_json_file}"],
], ids=["args", "args_no_hyphens", "args_no_equals", "args_no_boolean_flags", "args_json",
        "args_json_file-shell-program"])
def test_each_args_macro_reaches_the_program(tmp_path, command):
    store, rc = _macro_sweep(tmp_path, command)
    (row,) = store.runs()
    assert rc == 0 and row["state"] == "finished", row["output_tail"]
    got = summary_json(row, "from_args")
    as_values = {k: yaml.safe_load(v) if isinstance(v, str) else v for k, v in got.items()}
    assert as_values == {"learn_rate": 0.5, "steps": 1, "flag": True}


def test_metric_target_ends_the_sweep_as_on_the_server(tmp_path):
    store, rc = run_sweep(tmp_path, f"""\
program: {PROGRAM}
method: grid
metric: {{name: score with space, goal: maximize, target: 0.7}}
parameters:
  learn_rate: {{values: [0.3, 0.8, 0.9, 0.4]}}
  steps: {{value: 1}}
""")
    assert rc == 0
    values = [r["params"]["learn_rate"]["value"] for r in store.runs()]
    assert values == [0.3, 0.8]  # the grid stops at the first run that reaches 0.7
    assert "metric.target reached" in store.get("finished_because")


def test_run_cap_in_the_yaml_caps_the_sweep(tmp_path):
    store, rc = run_sweep(tmp_path, f"""\
program: {PROGRAM}
method: random
run_cap: 2
metric: {{name: val/loss, goal: minimize}}
parameters:
  learn_rate: {{min: 0.1, max: 0.9}}
  steps: {{value: 1}}
""")
    assert rc == 0 and len(store.runs()) == 2
    assert store.get("finished_because") == "run cap of 2 reached"


def test_a_crash_is_recorded_and_a_missing_metric_is_noted_in_the_runs_row(tmp_path):
    store, rc = run_sweep(tmp_path, f"""\
program: {PROGRAM}
method: grid
metric: {{name: val/loss, goal: minimize}}
parameters:
  crash: {{values: [true, false]}}
  log_metric: {{value: false}}
""")
    crashed, finished = store.runs()
    assert crashed["state"] == "failed" and "ZeroDivisionError" in crashed["error"]
    assert finished["state"] == "finished" and rc == 1  # the sweep stops: it would run blind
    assert finished["error"] == "never logged the sweep's metric 'val/loss'; it logged: from_args, loss, optimizer_seen"
    assert "never logged" in store.get("failure")


@pytest.mark.slow
def test_hyperband_stops_a_lagging_w_and_b_program(tmp_path):
    # The lagging run logs one step a second; wandb flushes its record every ~15 s, so the
    # engine sees its steps late but still stops it long before its 60 steps.
    store, rc = run_sweep(tmp_path, f"""\
program: {PROGRAM}
method: grid
metric: {{name: val/loss, goal: minimize}}
early_terminate: {{type: hyperband, min_iter: 2, eta: 2}}
parameters:
  learn_rate: {{values: [0.9, 0.8, 0.1]}}
  steps: {{value: 60}}
  slow_below: {{value: 0.5}}
""")
    assert rc == 0
    by_lr = {r["params"]["learn_rate"]["value"]: r for r in store.runs()}
    assert by_lr[0.9]["state"] == by_lr[0.8]["state"] == "finished"
    lag = by_lr[0.1]
    assert lag["state"] == "stopped" and "hyperband" in lag["stop_reason"], lag
    assert 2 <= len(store.history(lag["run_id"])) < 60


def test_a_yaml_written_the_usual_way_runs_after_check_fix(tmp_path):
    import subprocess
    import sys

    yaml_path = tmp_path / "sweep.yaml"
    yaml_path.write_text(f"""\
program: {PROGRAM}
method: random
metric: {{name: val/loss, goal: minimize}}
parameters:
  learn_rate: {{distribution: log_uniform, min: 1e-4, max: 1e-2}}
  decay: {{values: [1e-5, 1e-6]}}
  steps: {{value: 1}}
""")
    check = [sys.executable, "code/sweep.py", "check", str(yaml_path)]
    refused = subprocess.run(check, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "check --fix" in refused.stdout + refused.stderr
    fixed = subprocess.run(check[:3] + ["--fix", str(yaml_path)], cwd=REPO, capture_output=True,
                           text=True, timeout=120)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    res = subprocess.run([sys.executable, "code/sweep.py", str(tmp_path / "sweep.fixed.yaml"),
                          "--store", str(tmp_path / "store"), "--sweep-id", "fixed01",
                          "--count", "1", "--poll", "0.2"], cwd=REPO, capture_output=True,
                         text=True, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    from ecgsweep.sweep.store import open_store

    (row,) = open_store(tmp_path / "store", "fixed01").runs()
    assert row["state"] == "finished"
    assert 1e-4 <= row["params"]["learn_rate"]["value"] <= 1e-2
    assert row["params"]["decay"]["value"] in (1e-5, 1e-6)


def test_a_program_of_another_project_is_not_taken_for_ecg_sweeps_train_py(tmp_path, monkeypatch):
    yaml_text = ("method: grid\nmetric: {name: acc, goal: maximize}\n"
                 "parameters: {lr: {values: [0.1]}}\n")
    no_program = sc.loads(yaml_text + 'command: ["${env}", "${interpreter}", "myprog.py", "${args}"]\n')
    installed = sc.loads(yaml_text + 'command: ["${env}", "${interpreter}", "-m", "ecgsweep.run", '
                                     '"${args}"]\n')
    assert not ECG_PROGRAM.owns(no_program) and ECG_PROGRAM.owns(installed)
    assert not any("train.py" in p.message for p in sc.check(no_program, program=ECG_PROGRAM,
                                                             cwd=tmp_path, check_program=False))
    own = sc.loads(yaml_text + "program: code/train.py\n")
    monkeypatch.chdir(tmp_path)
    assert ECG_PROGRAM.owns(own)  # no code/train.py here: the package's own copy runs
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "train.py").write_text("import wandb\nwandb.init()\n")
    assert not ECG_PROGRAM.owns(own)
    monkeypatch.chdir(REPO)
    assert ECG_PROGRAM.owns(own)
    # checked for runs that start in the other project, from here: its train.py decides
    assert not ECG_PROGRAM.owns(own, cwd=tmp_path)
    assert not any(p.level == "error" for p in sc.check(own, program=ECG_PROGRAM, cwd=tmp_path))


def test_a_program_that_names_its_own_wandb_folder_is_found_and_synced(tmp_path, monkeypatch):
    from ecgsweep.sweep.results import sync_command

    monkeypatch.setenv("FAKE_RUN_DIR", "out")
    yaml_text = f"""\
program: {REPO / PROGRAM}
method: grid
metric: {{name: val/loss, goal: minimize}}
parameters:
  learn_rate: {{values: [0.3]}}
  steps: {{value: 2}}
"""
    cfg = sc.loads(yaml_text)
    store, _ = create_or_join(tmp_path / "store", cfg, yaml_text, "test.yaml")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    rc = Runner(store, Options(poll_s=0.2, cwd=str(work), kill_delay_s=5, gpus=[])).run()
    (row,) = store.runs()
    assert rc == 0 and row["state"] == "finished", row
    assert len(store.history(row["run_id"])) == 2
    run_folder = Path(row["files_dir"]).parent
    assert run_folder.parent == work / "out" / "wandb"
    assert store.get(RUNS_FOLDER_KEY) == str(work.resolve())  # where `status` reads models from
    assert sync_command(store).endswith(f" {store.folder / 'wandb'} out/wandb/{run_folder.name}")
