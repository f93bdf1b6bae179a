"""Early stopping that sees folds: a k-fold run logs the sweep's metric once per fold (the
mean of its folds so far), hyperband stops a configuration whose first fold lags, and a
stopped k-fold run is never promoted."""

import json
import os
import signal
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ecgsweep import folds, run
from ecgsweep.contract import kept_metric
from ecgsweep.sweep import config as sc
from ecgsweep.sweep_hooks import ECG_PROGRAM

from conftest import REPO_ROOT
from test_kfold import FakeRun, _config, fake_wandb  # noqa: F401 (a fixture)

KFOLD_CURVE = "tests/fake_programs/kfold_curve.py"
INTER_PATIENT_CV = sorted((REPO_ROOT / "sweep_conf").glob("inter_patient_cv*.yaml"))


def _outcome(kept: dict, stopped: bool = False) -> folds.FoldOutcome:
    result = SimpleNamespace(kept_metrics=kept, stopped=stopped)
    return folds.FoldOutcome(Path("fold.keras"), None, result)


def test_the_row_after_each_fold_is_the_mean_of_the_folds_so_far():
    a = _outcome({"epoch": 3, "learning_rate": 0.1, "val_loss": 1.0, "val_macro_f1": 0.6,
                  "val_sveb_veb_f1": 0.4})
    b = _outcome({"epoch": 2, "learning_rate": 0.1, "val_loss": 0.5, "val_macro_f1": 0.2,
                  "val_sveb_veb_f1": 0.8})
    row = folds.folds_done_row([a, b])
    assert row == pytest.approx({"folds_completed": 2, "val_loss": 0.75, "val_macro_f1": 0.4,
                                 "val_sveb_veb_f1": 0.6, kept_metric("val_macro_f1"): 0.4,
                                 kept_metric("val_sveb_veb_f1"): 0.6})

    logged = FakeRun.__new__(FakeRun)
    logged.logged, logged.on_log = [], None
    log = folds.FoldsDoneLog(logged)
    log([a])
    log([a, _outcome(b.result.kept_metrics, stopped=True)])  # interrupted: not comparable
    assert [r["folds_completed"] for r in logged.logged] == [1]


def test_a_kfold_run_stopped_after_its_first_fold_is_never_promoted(synth_dir, tmp_path,
                                                                    fake_wandb, capsys):
    """What hyperband does: it reads the row of fold 1 and sends SIGTERM."""
    config = _config(synth_dir, tmp_path, folds=3)
    fake = FakeRun(tmp_path, "kfoldhb1")

    def stop_on_the_first_fold_row(metrics):
        if metrics.get("folds_completed") == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # run._train turns it into a stop request

    fake.on_log = stop_on_the_first_fold_row
    assert run._train(fake, config) == 0
    run_dir = Path(fake.dir).parent
    assert (run_dir / "fold1.keras").exists() and not (run_dir / "fold2.keras").exists()
    summary = fake.summary
    assert summary["stopped"] is True and summary["promoted"] is False
    assert summary["folds_completed"] == 1 and summary["folds"] == 3
    fold1 = json.loads((run_dir / "fold1.json").read_text())
    assert fold1["stopped"] is True
    assert summary[kept_metric("val_macro_f1")] == pytest.approx(fold1["value"])
    assert not (tmp_path / "models" / "cnn").exists()
    assert [m["folds_completed"] for m in fake.logged if "val_macro_f1" in m] == [1]
    assert "best model: not promoted" in capsys.readouterr().out


def _stopped_in_fold(synth_dir, tmp_path, fold: int):
    """A 3-fold run of 2 epochs, and its fake W&B run, which SIGTERM stops during ``fold``."""
    config = _config(synth_dir, tmp_path, folds=3, epochs=2)
    fake = FakeRun(tmp_path, f"kfoldstop{fold}")

    def stop_in_the_fold(metrics):
        if metrics.get("fold") == fold:
            os.kill(os.getpid(), signal.SIGTERM)

    fake.on_log = stop_in_the_fold
    return config, fake


def test_a_fold_stopped_before_its_end_is_not_kept(synth_dir, tmp_path, fake_wandb):
    config, fake = _stopped_in_fold(synth_dir, tmp_path, 2)
    assert run._train(fake, config) == 0
    run_dir = Path(fake.dir).parent
    assert (run_dir / "fold1.keras").exists() and not (run_dir / "fold2.keras").exists()
    assert fake.summary["folds_completed"] == 1 and fake.summary["promoted"] is False
    assert fake.summary["fold_val_macro_f1"] == [json.loads(
        (run_dir / "fold1.json").read_text())["value"]]


def test_a_first_fold_stopped_before_its_end_is_not_kept_either(synth_dir, tmp_path, fake_wandb):
    from ecgsweep.cli import StoppedEmptyHanded

    config, fake = _stopped_in_fold(synth_dir, tmp_path, 1)
    with pytest.raises(StoppedEmptyHanded,
                       match="stopped before its first fold finished; nothing to keep"):
        run._train(fake, config)
    assert not (Path(fake.dir).parent / "fold1.keras").exists()
    assert not any("folds_completed" in m for m in fake.logged)


def test_a_run_stopped_before_it_kept_anything_exits_as_interrupted(synth_dir, tmp_path,
                                                                    monkeypatch, capsys):
    """Not as a bad configuration (exit 2): W&B and the offline runner see an interrupted run."""
    import wandb
    from ecgsweep.cli import EXIT_INTERRUPTED, StoppedEmptyHanded

    fake = FakeRun(tmp_path, "stopped0")
    fake.config = {"data_dir": str(synth_dir), "models_dir": str(tmp_path / "models")}
    fake.finish = lambda exit_code: setattr(fake, "exit_code", exit_code)
    monkeypatch.setattr(wandb, "init", lambda **kwargs: fake)

    def stopped(run_, config):
        raise StoppedEmptyHanded("the run was stopped before its first fold finished; "
                                 "nothing to keep")

    monkeypatch.setattr(run, "_train", stopped)
    assert run.main(["--dataset=synthetic"]) == EXIT_INTERRUPTED
    assert fake.exit_code == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert "stopped: the run was stopped before its first fold finished" in err
    assert "error:" not in err


def test_the_inter_patient_cv_sweeps_stop_lagging_runs_fold_by_fold():
    assert INTER_PATIENT_CV
    for path in INTER_PATIENT_CV:
        cfg = sc.loads(path.read_text())
        assert cfg["early_terminate"] == {"type": "hyperband", "min_iter": 1, "eta": 2}, path
        assert cfg["metric"]["name"].startswith("kept_")
        assert cfg["parameters"]["folds"]["value"] >= 2
        problems = sc.check(cfg, program=ECG_PROGRAM, cwd=REPO_ROOT)
        assert not [p for p in problems if p.field in ("early_terminate", "metric.name")], \
            (path, [str(p) for p in problems])


def test_check_still_warns_of_hyperband_on_a_summary_only_metric_without_folds():
    text = (INTER_PATIENT_CV[0].read_text()
            .replace("  folds:\n    value: 2\n", "  folds:\n    values: [0, 2]\n")
            .replace("  folds:\n    value: 4\n", "  folds:\n    values: [0, 4]\n"))
    problems = sc.check(sc.loads(text), program=ECG_PROGRAM, cwd=REPO_ROOT)
    [warned] = [p for p in problems if p.field == "early_terminate"]
    assert "stop none" in warned.message and "folds: 2 or more" in warned.message


@pytest.mark.slow
def test_a_kfold_run_logs_one_metric_row_per_fold_in_its_wandb_record(synth_dir, tmp_path):
    from test_train import _agent_style_run, _run_log, _small_cnn

    params = _small_cnn(synth_dir, tmp_path, folds=3, epochs=2, max_train_beats=400,
                        n_conv_blocks=1)
    proc = _agent_style_run(tmp_path, params, "kfoldrow1")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    log = _run_log(tmp_path, "kfoldrow1")
    rows = [h for h in log.history if "val_macro_f1" in h]
    assert [r["folds_completed"] for r in rows] == [1, 2, 3]
    values = log.summary["fold_val_macro_f1"]
    assert [r["val_macro_f1"] for r in rows] == pytest.approx(
        [np.mean(values[:i]) for i in (1, 2, 3)])
    assert [r[kept_metric("val_macro_f1")] for r in rows] == [r["val_macro_f1"] for r in rows]
    assert log.summary["val_macro_f1"] == pytest.approx(np.mean(values))  # all folds
    # the per-fold epochs and the epoch-wise mean stay for plots, under other names
    assert sum("fold2/val_macro_f1" in h for h in log.history) == 2
    assert [h["mean/epoch"] for h in log.history if "mean/val_macro_f1" in h] == [1, 2]


@pytest.mark.slow
def test_hyperband_stops_a_configuration_whose_first_fold_lags(tmp_path, monkeypatch):
    from test_sweep_runner import run_sweep

    monkeypatch.setenv("FAKE_EPOCH_S", "0.4")
    early_terminate = "early_terminate: {type: hyperband, min_iter: 1, eta: 2}\n"
    store, rc = run_sweep(tmp_path, f"program: {KFOLD_CURVE}\nmethod: grid\n"
                          "metric: {name: kept_val_macro_f1, goal: maximize}\n"
                          + early_terminate + "parameters:\n"
                          "  quality: {values: [0.9, 0.8, 0.3]}\n"
                          "  folds: {value: 3}\n  epochs: {value: 2}\n")
    assert rc == 0
    by_quality = {r["params"]["quality"]["value"]: r for r in store.runs()}
    for quality in (0.9, 0.8):
        done = by_quality[quality]
        assert done["state"] == "finished" and done["summary"]["folds_completed"] == 3
        assert len([h for h in store.history(done["run_id"]) if "kept_val_macro_f1" in h]) == 3
    lag = by_quality[0.3]
    assert lag["state"] == "stopped" and "hyperband" in lag["stop_reason"]
    assert "kept_val_macro_f1" in lag["stop_reason"]
    # stopped on its first fold's row, during its second fold: the fold it finished is
    # recorded, the one it was training is not
    assert [h["folds_completed"] for h in store.history(lag["run_id"])
            if "kept_val_macro_f1" in h] == [1]
    assert lag["summary"]["stopped"] is True and lag["summary"]["folds_completed"] == 1
