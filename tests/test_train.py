"""code/train.py run as wandb agent runs it: a subprocess, offline, params from the agent."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from conftest import REPO_ROOT, run_env
from ecgsweep.contract import DEFAULT_PROJECT
from ecgsweep.sweep.wandb_log import RunLog

pytestmark = pytest.mark.slow


def _agent_style_run(tmp_path: Path, params: dict, run_id: str, timeout=300, **popen):
    """Start train.py exactly as `wandb agent` would: param file, env, --key=value args."""
    param_path = tmp_path / "wandb" / "sweep-abc123" / f"config-{run_id}.yaml"
    param_path.parent.mkdir(parents=True, exist_ok=True)
    param_path.write_text("wandb_version: 1\n\n" + yaml.safe_dump(
        {k: {"value": v} for k, v in params.items()}, sort_keys=False))
    env = run_env(tmp_path, WANDB_SWEEP_ID="abc123", WANDB_RUN_ID=run_id,
                  WANDB_SWEEP_PARAM_PATH=str(param_path))
    cmd = [sys.executable, "code/train.py", *[f"--{k}={v}" for k, v in params.items()]]
    return subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **popen)


def _run_log(tmp_path: Path, run_id: str) -> RunLog:
    """The run's own W&B record (run-<id>.wandb), read as the sweep runner reads it."""
    (found,) = (tmp_path / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb")
    log = RunLog(found)
    log.read()
    return log


def _small_cnn(synth_dir: Path, tmp_path: Path, **over) -> dict:
    return {"model": "cnn", "dataset": "mitbih", "data_dir": str(synth_dir),
            "models_dir": str(tmp_path / "models"), "epochs": 2, "batch_size": 64,
            "n_conv_blocks": 2, "layer_1_size": 8, "layer_2_size": 8, "layer_FC_size": 16,
            "learning_rate": 0.003, **over}


def test_agent_style_run_trains_logs_and_promotes(synth_dir, tmp_path):
    params = _small_cnn(synth_dir, tmp_path, kernel_size=3, class_weight="sqrt")
    proc = _agent_style_run(tmp_path, params, "runaaaa1")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert "training on CPU" in out

    record = json.loads((tmp_path / "models" / "cnn" / "best.json").read_text())
    for key, value in params.items():
        assert record["config"][key] == value, key
    assert record["run_id"] == "runaaaa1" and record["sweep_id"] == "abc123"
    # in a sweep W&B ignores wandb.init's project: the run's project comes from the environment
    assert record["project"] == os.environ.get("WANDB_PROJECT", DEFAULT_PROJECT)
    assert record["class_names"] == ["N", "S", "V", "F", "Q"]
    assert (tmp_path / "models" / "cnn" / "best.keras").stat().st_size > 0

    log = _run_log(tmp_path, "runaaaa1")
    epochs = log.history
    assert [e["epoch"] for e in epochs] == [1, 2]
    for e in epochs:
        assert {"loss", "accuracy", "val_loss", "val_accuracy", "val_macro_f1"} <= set(e)
        assert 0.0 <= e["val_macro_f1"] <= 1.0
    summary = log.summary
    assert summary["best_val_macro_f1"] == max(e["val_macro_f1"] for e in epochs)
    assert summary["promoted"] is True and record["value"] == summary["best_val_macro_f1"]
    # the model artifact is read where the run wrote it: no copy staged outside the run
    staged = [p for p in (tmp_path / "wandb-data").rglob("*") if p.is_file()]
    assert staged == [], staged

    # A second, worse run must not replace the record (epochs=1 with a tiny learning rate).
    worse = _agent_style_run(tmp_path, _small_cnn(synth_dir, tmp_path, epochs=1,
                                                   learning_rate=0.00001), "runaaaa2")
    out2, _ = worse.communicate(timeout=300)
    assert worse.returncode == 0, out2
    second = _run_log(tmp_path, "runaaaa2").summary
    kept = json.loads((tmp_path / "models" / "cnn" / "best.json").read_text())
    if second["best_val_macro_f1"] <= record["value"]:
        assert second["promoted"] is False and kept["run_id"] == "runaaaa1"
    else:
        assert second["promoted"] is True and kept["run_id"] == "runaaaa2"


def test_misspelled_key_stops_the_run_with_known_keys(tmp_path):
    proc = subprocess.run([sys.executable, "code/train.py", "--model=cnn", "--layer_1_sise=16"],
                          cwd=REPO_ROOT, env=run_env(tmp_path), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "'layer_1_sise' is not read" in proc.stderr and "layer_1_size" in proc.stderr
    assert "Traceback" not in proc.stderr
    # a run by hand is refused before it starts a W&B run: no run folder to sync
    assert not list(tmp_path.glob("wandb/*run-*"))
    combined = subprocess.run([sys.executable, "code/train.py", "--folds=2",
                               "--final_model=refit", "--lr_schedule=plateau"],
                              cwd=REPO_ROOT, env=run_env(tmp_path), capture_output=True,
                              text=True, timeout=120)
    assert combined.returncode == 2 and "config key 'final_model': refit" in combined.stderr
    assert not list(tmp_path.glob("wandb/*run-*"))


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_stops_cleanly_and_keeps_the_run(synth_dir, tmp_path, stop):
    params = _small_cnn(synth_dir, tmp_path, epochs=200)
    proc = _agent_style_run(tmp_path, params, "runstop1")
    deadline = time.time() + 240
    log = None
    while time.time() < deadline:  # an epoch is in the run's W&B record (flushed every ~15 s)
        found = list((tmp_path / "wandb").glob("offline-run-*-runstop1/run-runstop1.wandb"))
        if found:
            log = log or RunLog(found[0])
            if log.read() or log.history:
                break
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.5)
    assert log is not None and log.history, "no epoch finished in time"
    proc.send_signal(stop)  # SIGINT: Ctrl-C
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "Traceback" not in out, out
    log.read()
    summary = log.summary
    assert summary["stopped"] is True
    n_epochs = len(log.history)
    assert 1 <= n_epochs < 200
    # a stopped run keeps its model in its run folder and never promotes it
    assert summary["promoted"] is False and not (tmp_path / "models").exists()
    assert "best model: not promoted: the run was stopped before it finished" in out
    run_model = Path(summary["run_model_path"])
    assert run_model.is_file() and json.loads(run_model.with_suffix(".json").read_text())["stopped"]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_while_the_run_starts_ends_it_with_a_message(tmp_path, stop):
    # the signal arrives inside wandb.init, before training installs its own stop
    script = ("import os, sys, wandb\n"
              "from ecgsweep import run\n"
              f"wandb.init = lambda **kw: os.kill(os.getpid(), {int(stop)})\n"
              "sys.exit(run.main(['--model=cnn', '--dataset=synthetic']))\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=run_env(tmp_path),
                          capture_output=True, text=True, timeout=120,
                          # as from a terminal, though the suite may run under nohup
                          preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    from ecgsweep.cli import EXIT_INTERRUPTED
    from ecgsweep.run import STOPPED_WHILE_STARTING

    assert proc.returncode == EXIT_INTERRUPTED, proc.stderr
    assert f"stopped: {STOPPED_WHILE_STARTING}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_stop_as_the_run_finishes_changes_nothing_of_its_outcome(tmp_path, monkeypatch):
    """A sweep's SIGTERM arriving while W&B finishes a run that trained to its end."""
    import wandb
    from ecgsweep import run
    from ecgsweep.cli import EXIT_OK

    finished = []

    def finish(exit_code):
        os.kill(os.getpid(), signal.SIGTERM)  # would end the process, or raise, unheld
        finished.append((exit_code, signal.getsignal(signal.SIGTERM)))

    monkeypatch.setattr(wandb, "init", lambda **kwargs: SimpleNamespace(config={},
                                                                        finish=finish))
    monkeypatch.setattr(run, "_train", lambda run_, config: EXIT_OK)
    assert run.main(["--dataset=synthetic"]) == EXIT_OK and finished == [(EXIT_OK, signal.SIG_IGN)]
    assert signal.getsignal(signal.SIGTERM) != signal.SIG_IGN  # held back only while it finished


def test_the_program_ends_with_its_outcome_on_a_stop_once_its_run_has_ended(monkeypatch):
    """From the run's finish to the process's exit the outcome is written: a sweep's
    SIGTERM then ends the process with that outcome, not 143; in-process callers get their
    handlers back."""
    import wandb
    from ecgsweep import run
    from ecgsweep.cli import EXIT_OK

    monkeypatch.setattr(wandb, "init", lambda **kwargs: SimpleNamespace(
        config={}, finish=lambda exit_code: None))
    monkeypatch.setattr(run, "_train", lambda run_, config: EXIT_OK)
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        assert run.main(["--dataset=synthetic"]) == EXIT_OK
        left = signal.getsignal(signal.SIGTERM)  # main's own stop handler, installed first
        assert run.main(["--dataset=synthetic"]) == EXIT_OK
        assert signal.getsignal(signal.SIGTERM) is left
        assert left not in (signal.SIG_IGN, signal.SIG_DFL)
        assert run.program_main(["--dataset=synthetic"]) == EXIT_OK
        with pytest.raises(SystemExit) as ended:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs at the next bytecode; this bounds the wait
        assert ended.value.code == EXIT_OK
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def test_a_hand_run_without_its_data_is_refused_before_any_w_and_b_run(tmp_path, monkeypatch,
                                                                       capsys):
    import wandb
    from ecgsweep import run
    from ecgsweep.cli import EXIT_USAGE

    started = []
    monkeypatch.setattr(wandb, "init", lambda **kwargs: started.append(kwargs))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WANDB_SWEEP_PARAM_PATH", raising=False)
    assert run.main(["--data_dir=nosuch"]) == EXIT_USAGE and not started
    err = capsys.readouterr().err
    assert err.startswith("error: nosuch/mitbih_train.csv: no such file (data set 'mitbih')")
    assert run.main([f"--dataset={tmp_path / 'mine.csv'}"]) == EXIT_USAGE and not started
    assert f"error: {tmp_path / 'mine.csv'}: no such file; check the path" in (
        capsys.readouterr().err)


def test_a_stop_after_the_run_started_and_before_training_says_stopped(tmp_path, monkeypatch,
                                                                        capsys):
    import wandb
    from ecgsweep import run
    from ecgsweep.cli import EXIT_INTERRUPTED

    finished = []
    started = SimpleNamespace(config={}, finish=lambda exit_code: finished.append(exit_code))
    monkeypatch.setattr(wandb, "init", lambda **kwargs: started)

    resolved = []
    real_resolve = run.resolve

    def stopped_while_resolving(config):
        resolved.append(config)
        if len(resolved) > 1:  # the check before the run starts passes; then the stop
            raise KeyboardInterrupt
        return real_resolve(config)

    monkeypatch.setattr(run, "resolve", stopped_while_resolving)
    assert run.main(["--dataset=synthetic"]) == EXIT_INTERRUPTED and finished == [EXIT_INTERRUPTED]
    assert f"stopped: {run.STOPPED_AT_ONCE}" in capsys.readouterr().err
    # stopped while its values are checked, before any W&B run: said, and nothing started
    resolved.clear()
    monkeypatch.setattr(run, "resolve", lambda config: (_ for _ in ()).throw(KeyboardInterrupt))
    assert run.main(["--dataset=synthetic"]) == EXIT_INTERRUPTED and finished == [EXIT_INTERRUPTED]
    assert f"stopped: {run.STOPPED_WHILE_STARTING}" in capsys.readouterr().err


def test_a_csv_with_a_negative_label_stops_before_the_model_is_built(synth_dir, tmp_path):
    # --dataset=FILE.csv with label -1: refused before training, not a TensorFlow traceback
    lines = (synth_dir / "mitbih_test.csv").read_text().splitlines()[:40]
    fields = lines[5].split(",")
    fields[-1] = "-1"
    lines[5] = ",".join(fields)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    proc = _agent_style_run(tmp_path, _small_cnn(synth_dir, tmp_path, dataset=str(bad)), "runneg1")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 2, out
    assert f"error: {bad}, row 6, column 188: label -1 is out of range" in out
    assert "Traceback" not in out


def test_a_models_dir_that_is_a_file_stops_the_run_before_training(synth_dir, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    proc = _agent_style_run(tmp_path, _small_cnn(synth_dir, tmp_path, models_dir=str(taken)),
                            "runfile1")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 2, out
    assert (f"error: config key models_dir: {taken} is a file, not a folder; give a folder"
            in out)
    assert "epoch 1/" not in out and "Traceback" not in out  # refused before training
    assert taken.read_text() == "keep me"
