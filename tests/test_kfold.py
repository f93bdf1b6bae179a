"""Stratified k-fold: folds partition the development data; the run reports the folds' mean."""

import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ecgsweep import cv_report, ec57, evaluation, fold_training, folds, run
from ecgsweep.cli import UserError
from ecgsweep.config import resolve
from ecgsweep.data import datasets, synth
from ecgsweep.data.datasets import Split

from conftest import REPO_ROOT, run_env


def test_validation_folds_partition_the_development_data():
    dev = Split(*synth.make_mitbih(400, 0))
    folds = datasets.kfold_splits(dev, 3, seed=3, max_train_beats=150)
    assert [f.index for f in folds] == [1, 2, 3]
    all_val = np.concatenate([f.val_index for f in folds])
    assert sorted(all_val.tolist()) == list(range(len(dev)))  # each beat in exactly one fold
    for f in folds:
        assert np.array_equal(f.val.X, dev.X[f.val_index]) and np.array_equal(f.val.y, dev.y[f.val_index])
        assert len(f.train) == 150  # the cap cuts training parts, never validation folds
        val_rows = {r.tobytes() for r in f.val.X}
        assert not any(r.tobytes() in val_rows for r in f.train.X)
        # stratified: every class in every validation fold, in about its share
        assert set(f.val.y.tolist()) == set(dev.y.tolist())
    again = datasets.kfold_splits(dev, 3, seed=3)
    assert all(np.array_equal(a.val_index, b.val_index) for a, b in zip(folds, again))
    assert not np.array_equal(datasets.kfold_splits(dev, 3, seed=4)[0].val_index, folds[0].val_index)
    # F has 3 beats here: 4 folds cannot all hold one, and the warning says which class
    with pytest.warns(UserWarning, match=r"label 3 \(3 beats\)"):
        datasets.kfold_splits(dev, 4, seed=3)


def test_mean_history_carries_an_early_stopped_fold_forward():
    a = [{"epoch": 1, "val_macro_f1": 0.2, "loss": 1.0}, {"epoch": 2, "val_macro_f1": 0.4, "loss": 0.5}]
    b = [{"epoch": 1, "val_macro_f1": 0.6, "loss": 0.8}]
    rows = folds.mean_history([a, b])
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[0]["val_macro_f1"] == pytest.approx(0.4) and rows[1]["val_macro_f1"] == pytest.approx(0.5)
    assert rows[1]["loss"] == pytest.approx(0.65) and rows[0]["val_macro_f1_std"] == pytest.approx(0.2)
    # no epoch's mean beats the mean of the folds' best epochs (the run's objective)
    assert max(r["val_macro_f1"] for r in rows) <= np.mean([0.4, 0.6]) + 1e-12


class FakeRun:
    """What run._train uses of a wandb run, recorded in memory."""

    def __init__(self, root: Path, run_id: str):
        self.id, self.project, self.logged = run_id, "test", []
        self.dir = str(root / f"run-{run_id}" / "files")
        Path(self.dir).mkdir(parents=True)
        self.summary: dict = {}
        self.artifacts: list = []
        self.on_log = None

    def log(self, metrics):
        self.logged.append(dict(metrics))
        if self.on_log:
            self.on_log(metrics)

    def log_artifact(self, artifact, aliases=()):
        self.artifacts.append((artifact, list(aliases)))


class FakeArtifact:
    def __init__(self, name, type, metadata=None):
        self.name, self.files = name, []

    def add_file(self, path, name=None, policy="mutable", skip_cache=False):
        assert Path(path).is_file()
        assert policy == "immutable"  # read where the run wrote it: no copy staged elsewhere
        self.files.append(name)


def _config(synth_dir, tmp_path, **over):
    return resolve({"dataset": "mitbih", "data_dir": str(synth_dir),
                    "models_dir": str(tmp_path / "models"), "epochs": 1, "batch_size": 64,
                    "n_conv_blocks": 1, "layer_1_size": 4, "layer_FC_size": 8,
                    "global_pooling": "avg", "learning_rate": 0.003, "folds": 3,
                    "max_train_beats": 400, **over})


@pytest.fixture
def fake_wandb(monkeypatch):
    import wandb

    monkeypatch.setattr(wandb, "Artifact", FakeArtifact)


def test_kfold_run_trains_k_models_and_reports_their_mean(synth_dir, tmp_path, fake_wandb, capsys):
    config = _config(synth_dir, tmp_path)
    fake = FakeRun(tmp_path, "kfold001")
    assert run._train(fake, config) == 0
    out = capsys.readouterr().out
    run_dir = Path(fake.dir).parent

    records = [json.loads((run_dir / f"fold{i}.json").read_text()) for i in (1, 2, 3)]
    assert all((run_dir / f"fold{i}.keras").stat().st_size > 0 for i in (1, 2, 3))
    assert [r["fold"] for r in records] == [1, 2, 3] and {r["folds"] for r in records} == {3}
    dev = datasets.load_development(datasets.resolve_source("mitbih", synth_dir))
    assert sum(r["dataset"]["n_val"] for r in records) == len(dev)  # the folds cover dev
    for r in records:  # same record shape as a single run's
        assert {"metric", "value", "best_epoch", "metrics", "config", "run_id", "class_names",
                "input_shape", "dataset", "stopped"} <= set(r)
    values = [r["value"] for r in records]

    summary = fake.summary
    assert summary["val_macro_f1"] == pytest.approx(np.mean(values))
    assert summary["best_val_macro_f1"] == summary["val_macro_f1"]
    assert summary["val_macro_f1_std"] == pytest.approx(np.std(values))
    assert summary["fold_val_macro_f1"] == values and summary["folds_completed"] == 3
    # the plain val_macro_f1 is logged once per fold: the mean of the folds so far
    lines = [m for m in fake.logged if "val_macro_f1" in m]
    assert [l["folds_completed"] for l in lines] == [1, 2, 3]
    assert [l["val_macro_f1"] for l in lines] == pytest.approx(
        [np.mean(values[:i]) for i in (1, 2, 3)])
    # the epoch-wise mean over the folds, for plots, under mean/
    assert [m["mean/epoch"] for m in fake.logged if "mean/val_macro_f1" in m] == [1]
    # per-fold epochs went to W&B under a fold prefix
    assert {m.get("fold") for m in fake.logged if "fold" in m} == {1, 2, 3}
    assert any("fold2/val_macro_f1" in m for m in fake.logged)

    # promotion compares the mean; the promoted file is the run's own: its folds averaged
    best = json.loads((tmp_path / "models" / "cnn" / "best.json").read_text())
    assert best["value"] == pytest.approx(np.mean(values)) and "fold" not in best
    assert best["final_model"] == "ensemble"
    assert best["kfold"]["models"] == [str(run_dir / f"fold{i}.keras") for i in (1, 2, 3)]
    assert best["members"] == best["kfold"]["models"]
    artifact, _ = fake.artifacts[0]
    assert artifact.files == ["fold1.keras", "fold1.json", "fold2.keras", "fold2.json",
                              "fold3.keras", "fold3.json", "model.keras", "model.json"]

    # the printed eval command scores the ensemble
    command = best["kfold"]["eval_command"]
    assert command in out and command.count("--model ") == 3
    report = evaluation.evaluate(best["kfold"]["models"], out_dir=tmp_path / "report")
    assert len(report["models"]) == 3 and 0.0 <= report["macro_f1"] <= 1.0


def test_sigterm_during_kfold_keeps_the_folds_done(synth_dir, tmp_path, fake_wandb, capsys):
    config = _config(synth_dir, tmp_path, folds=2)
    fake = FakeRun(tmp_path, "kfold002")

    def sigterm_on_first_epoch(metrics):
        if metrics.get("fold") == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # run._train turns it into a stop request

    fake.on_log = sigterm_on_first_epoch
    assert run._train(fake, config) == 0
    run_dir = Path(fake.dir).parent
    assert (run_dir / "fold1.keras").exists() and not (run_dir / "fold2.keras").exists()
    summary = fake.summary
    assert summary["stopped"] is True and summary["folds_completed"] == 1
    fold1 = json.loads((run_dir / "fold1.json").read_text())
    assert summary["val_macro_f1"] == pytest.approx(fold1["value"])
    # stopped between folds: the run did not finish, so its model is not promoted
    assert summary["promoted"] is False and fold1["stopped"] is True
    assert not (tmp_path / "models" / "cnn").exists()
    out = capsys.readouterr().out
    assert "best model: not promoted: the run was stopped before it finished" in out
    # one fold finished: its value alone, with no spread over folds
    done = next(line for line in out.splitlines() if line.startswith("done: "))
    assert "+-" not in done and "over 1 of 2 folds" in done


def test_a_kfold_run_stopped_between_folds_is_not_promoted(synth_dir, tmp_path, fake_wandb,
                                                          monkeypatch, capsys):
    config = _config(synth_dir, tmp_path, folds=2)
    scored = fold_training.validation_confusion

    def sigterm_once_fold_1_has_trained(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # after fold 1's fit, before fold 2 starts
        return scored(*args, **kwargs)

    monkeypatch.setattr(fold_training, "validation_confusion", sigterm_once_fold_1_has_trained)
    fake = FakeRun(tmp_path, "kfoldgap")
    assert run._train(fake, config) == 0
    run_dir = Path(fake.dir).parent
    assert (run_dir / "fold1.keras").exists() and not (run_dir / "fold2.keras").exists()
    assert not (run_dir / "model.keras").exists()  # no final model of a stopped run
    assert fake.summary["folds_completed"] == 1 and fake.summary["promoted"] is False
    assert not (tmp_path / "models" / "cnn").exists()
    # its record says so, for a coordinator that promotes shipped run folders
    assert json.loads((run_dir / "fold1.json").read_text())["stopped"] is True
    out = capsys.readouterr().out
    assert "best model: not promoted: the run was stopped before it finished" in out
    assert f"the run's model stays in {run_dir / 'fold1.keras'}" in out


def test_kfold_keep_epoch_last_reports_every_folds_last_epoch(synth_dir, tmp_path, fake_wandb,
                                                              monkeypatch, capsys):
    from ecgsweep import training

    scores = itertools.cycle([0.9, 0.1])  # each fold: epoch 1 scores best, epoch 2 last
    monkeypatch.setattr(training, "_validation_metrics", lambda model, val, config, names, prior: {
        "val_loss": 1.0, "val_accuracy": 0.5, "val_macro_f1": next(scores)})
    config = _config(synth_dir, tmp_path, epochs=2, keep_epoch="last")
    fake = FakeRun(tmp_path, "kfoldlast")
    assert run._train(fake, config) == 0
    out = capsys.readouterr().out

    best = json.loads((tmp_path / "models" / "cnn" / "best.json").read_text())
    assert best["kfold"]["best_epochs"] == [2, 2, 2] and best["best_epoch"] == 2
    assert best["kfold"]["values"] == [0.1, 0.1, 0.1]
    assert fake.summary["val_macro_f1"] == pytest.approx(0.1)
    # W&B's engine judges a run by its metric's highest value over history and summary: a
    # k-fold run logs both names once per fold, at the kept (last) epochs, so both carry the
    # 0.1; the best epochs' 0.9 is only in the plots' mean/ rows
    from ecgsweep.contract import KEPT_METRIC
    from ecgsweep.sweep.engine import metric_of

    history = fake.logged
    assert metric_of(history, fake.summary, "val_macro_f1", "maximize") == pytest.approx(0.1)
    assert metric_of(history, fake.summary, KEPT_METRIC, "maximize") == pytest.approx(0.1)
    assert metric_of(history, None, "mean/val_macro_f1", "maximize") == pytest.approx(0.9)
    assert "fold 3/3: last val_macro_f1 0.1000 at epoch 2" in out


def test_kfold_run_keeps_and_ranks_by_its_objective(synth_dir, tmp_path, fake_wandb,
                                                   monkeypatch, capsys):
    from ecgsweep import training

    # each fold: epoch 1 leads on macro-F1, epoch 2 on the SVEB/VEB F1
    epochs = itertools.cycle([(0.9, 0.2), (0.1, 0.6)])

    def stand_in_validation(model, val, config, class_names, class_prior):
        macro, sveb_veb = next(epochs)
        return {"val_loss": 1.0, "val_accuracy": 0.5, "val_macro_f1": macro,
                "val_sveb_veb_f1": sveb_veb}

    monkeypatch.setattr(training, "_validation_metrics", stand_in_validation)
    config = _config(synth_dir, tmp_path, epochs=2, objective="sveb_veb_f1")
    fake = FakeRun(tmp_path, "kfoldobj")
    assert run._train(fake, config) == 0
    out = capsys.readouterr().out

    best = json.loads((tmp_path / "models" / "cnn" / "best.json").read_text())
    assert best["metric"] == "val_sveb_veb_f1" and best["value"] == pytest.approx(0.6)
    assert best["kfold"]["best_epochs"] == [2, 2, 2]
    summary = fake.summary
    assert summary["kept_val_sveb_veb_f1"] == pytest.approx(0.6)
    assert summary["kept_val_macro_f1"] == pytest.approx(0.1)  # the same (kept) epoch's
    assert summary["fold_val_sveb_veb_f1"] == pytest.approx([0.6] * 3)
    assert "fold 3/3: best val_sveb_veb_f1 0.6000 at epoch 2" in out
    assert "done: val_sveb_veb_f1 0.6000" in out

    # a later run ranked by macro-F1 does not replace a model ranked by another metric
    macro = _config(synth_dir, tmp_path, epochs=2)
    assert run._train(FakeRun(tmp_path, "kfoldmacro"), macro) == 0
    assert "ranked by val_sveb_veb_f1" in capsys.readouterr().out
    assert json.loads((tmp_path / "models" / "cnn" / "best.json").read_text()) == best


def test_kfold_by_record_reports_every_held_out_records_errors(tmp_path, fake_wandb, capsys):
    from conftest import write_records_csv

    data = tmp_path / "data"
    names = [f"1{i:02d}" for i in range(6)]
    write_records_csv(data, "mitbih_train", {name: 70 for name in names}, seed=0)
    config = _config(data, tmp_path, val_split="record", classes="aami4")
    fake = FakeRun(tmp_path, "kfoldrec")
    assert run._train(fake, config) == 0
    out = capsys.readouterr().out

    run_dir = Path(fake.dir).parent
    folds = [json.loads((run_dir / f"fold{i}.json").read_text()) for i in (1, 2, 3)]
    for fold in folds:  # each fold's matrices: its own held-out records, adding up to its own
        assert sorted(fold["val_confusion_by_record"]) == fold["val_records"]
        assert np.sum(list(fold["val_confusion_by_record"].values()), axis=0).tolist() == (
            fold["val_confusion"])
    by_record = {k: v for f in folds for k, v in f["val_confusion_by_record"].items()}
    assert sorted(by_record) == names  # every record held out once
    best = json.loads((tmp_path / "models" / "cnn" / "best.json").read_text())
    rows = best["kfold"]["record_errors"]
    assert rows and {r["record"] for r in rows} <= set(names)
    for r in rows:
        cm = np.asarray(by_record[r["record"]])
        assert r["S"] == {"beats": int(cm[1].sum()), "found": int(cm[1, 1]),
                          "false": int(cm[:, 1].sum() - cm[1, 1])}
        # EC57: an F beat called V is not a false VEB
        assert r["V"]["false"] == int(cm[:, 2].sum() - cm[2, 2] - cm[3, 2])
    assert [r["errors"] for r in rows] == sorted((r["errors"] for r in rows), reverse=True)
    table = out[out.index("per held-out record"):]
    assert all(f"\n{r['record']} " in table for r in rows)

    # eval.py --cv-run prints the same pooled tables again from the run folder alone
    again = cv_report.report_run_folder(run_dir)
    reprinted = capsys.readouterr().out
    assert again["confusion"] == best["kfold"]["confusion"]
    assert again["record_errors"] == rows
    assert reprinted.startswith("cross-validated over 3 folds")
    # and the pooled figures' intervals over the 6 held-out records, as eval's over test records
    assert again["bootstrap"]["resampled"] == "records" and again["bootstrap"]["records"] == 6
    assert ("F1 95% intervals over the 6 held-out records (whole records resampled; every call "
            "counted; only 6 records to resample: a coarse interval)") in reprinted
    for line in table.splitlines()[:len(rows) + 2]:
        assert line in reprinted
    # --records: the tables of part of the held-out records, as a folder or a list names them
    part = cv_report.report_run_folder(run_dir, names=["100", "103", "105"])
    assert part["confusion"] == np.sum([by_record[n] for n in ("100", "103", "105")],
                                       axis=0).tolist()
    assert {r["record"] for r in part["record_errors"]} <= {"100", "103", "105"}
    assert "pool 3 of the 6 held-out records" in capsys.readouterr().out
    folder = tmp_path / "wfdb"
    folder.mkdir()
    for name in ("100", "105"):
        (folder / f"{name}.hea").write_text("")
        (folder / f"{name}.atr").write_text("")
    (folder / "103.hea").write_text("")  # no reference annotations: not a record to score
    assert cv_report.record_names(str(folder)) == ["100", "105"]
    assert cv_report.record_names("100, 105") == ["100", "105"]
    with pytest.raises(UserError, match="--records '': no record names"):
        cv_report.record_names("")  # an unset shell variable: not every record
    with pytest.raises(UserError, match="999 held out by no fold of this run"):
        cv_report.report_run_folder(run_dir, names=["100", "999"])
    (run_dir / "fold3.json").unlink()  # a run killed in its last fold: pools what it has
    cv_report.report_run_folder(run_dir)
    assert "2 of 3 folds finished" in capsys.readouterr().out


def test_cv_run_without_fold_records_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="no fold<i>.json in it, so no fold of a k-fold run "
                                        "finished there"):
        cv_report.read_fold_records(tmp_path)
    (tmp_path / "fold1.json").write_text('{"config": {}}')
    with pytest.raises(UserError, match="fold1.json: has no val_confusion"):
        cv_report.read_fold_records(tmp_path)
    with pytest.raises(UserError, match="no such folder"):
        cv_report.read_fold_records(tmp_path / "missing")
    proc = subprocess.run([sys.executable, "code/eval.py", "--cv-run", str(tmp_path)],
                          cwd=REPO_ROOT, env=run_env(tmp_path), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().endswith("older ecg-sweeps or not a fold record")


def test_cv_run_scored_again_with_other_settings_after_the_model(tmp_path, fake_wandb, capsys):
    from conftest import write_records_csv

    from ecgsweep import cv_rescore

    data = tmp_path / "data"
    write_records_csv(data, "mitbih_train", {f"1{i:02d}": 150 for i in range(6)}, seed=0)
    # trained until it calls S, so that the gate has calls to move
    config = _config(data, tmp_path, val_split="record", classes="aami4", rr_features=True,
                     epochs=4, learning_rate=0.01, max_train_beats=0, class_weight="balanced",
                     s_gate_irregularity=0.3, v_template_clusters=3)
    fake = FakeRun(tmp_path, "kfoldset")
    assert run._train(fake, config) == 0
    run_dir = Path(fake.dir).parent
    stored = cv_report.report_run_folder(run_dir)

    # the settings it was trained with: each fold's model predicts its records as in the run
    same = cv_rescore.rescore_run_folders([run_dir], {"s_gate_irregularity": 0.3})
    assert same["confusion"] == stored["confusion"]
    assert same["record_errors"] == stored["record_errors"]
    out = capsys.readouterr().out
    assert "s_gate_irregularity=0.3 (trained with 0.3)" in out

    # other settings are applied: no gate lets S calls through, a gate at every beat none
    s = 1
    ungated = cv_rescore.rescore_run_folders([run_dir], {"s_gate_irregularity": 0.0})
    assert np.asarray(ungated["confusion"])[:, s].sum() > 0
    assert "s_gate_irregularity=0.0 (trained with 0.3)" in capsys.readouterr().out
    everywhere = cv_rescore.rescore_run_folders([run_dir], {"s_gate_irregularity": 1e-9})
    assert np.asarray(everywhere["confusion"])[:, s].sum() == 0
    assert np.asarray(everywhere["confusion"]).sum() == np.asarray(stored["confusion"]).sum()
    assert everywhere["after_model_settings"] == {"s_gate_irregularity": 1e-9}

    # the held-out records read from another conversion of them (another lead): scored there,
    # the records it lacks left out; a record not among the run's is refused
    other = tmp_path / "other_lead"
    csv = write_records_csv(other, "mitbih_train", {f"1{i:02d}": 150 for i in range(1, 6)},
                            seed=5)
    capsys.readouterr()
    elsewhere = cv_rescore.rescore_run_folders([run_dir], {}, held_out_from=str(other))
    labels = np.loadtxt(csv, delimiter=",")[:, -1]
    assert np.asarray(elsewhere["confusion"]).sum() == (labels < 4).sum()  # aami4: no Q
    assert "held-out records not there, left out: 100" in capsys.readouterr().out
    last_fold = [str(r) for r in cv_report.read_fold_records(run_dir)[-1].val_records]
    write_records_csv(other, "mitbih_train", {r: 150 for r in last_fold}, seed=5)
    cv_rescore.rescore_run_folders([run_dir], {}, held_out_from=str(other))
    assert "scored again on the records they held out" in capsys.readouterr().out
    write_records_csv(other, "mitbih_train", {"100": 150, "199": 150}, seed=5)
    with pytest.raises(UserError, match="records 199 are not the run.s development records"):
        cv_rescore.rescore_run_folders([run_dir], {}, held_out_from=str(other))

    # the data set changed since the run: refused, naming the run and the fingerprints
    write_records_csv(data, "mitbih_train", {f"1{i:02d}": 150 for i in range(6)}, seed=1)
    with pytest.raises(UserError, match="holds other beats now"):
        cv_rescore.rescore_run_folders([run_dir], {"s_gate_irregularity": 0.0})


def test_runs_of_the_same_folds_score_together_fold_by_fold(tmp_path, fake_wandb, capsys):
    from conftest import write_records_csv

    from ecgsweep import cv_rescore

    data = tmp_path / "data"
    write_records_csv(data, "mitbih_train", {f"1{i:02d}": 120 for i in range(6)}, seed=0)

    def trained(run_id, **over):
        config = _config(data, tmp_path, val_split="record", classes="aami4", rr_features=True,
                         epochs=2, learning_rate=0.01, max_train_beats=0,
                         **{"split_seed": 3, **over})
        fake = FakeRun(tmp_path, run_id)
        assert run._train(fake, config) == 0
        return Path(fake.dir).parent

    seed0, seed1 = trained("avgseed0", seed=0), trained("avgseed1", seed=1)
    alone = cv_rescore.rescore_run_folders([seed0], {})
    # a run averaged with itself scores as it does alone
    assert cv_rescore.rescore_run_folders([seed0, seed0], {})["confusion"] == alone["confusion"]
    both = cv_rescore.rescore_run_folders([seed0, seed1], {})
    assert np.asarray(both["confusion"]).sum() == np.asarray(alone["confusion"]).sum()
    assert both["val_records"] == alone["val_records"] and both["runs"] == [str(seed0), str(seed1)]
    assert "2 runs" in capsys.readouterr().out

    # --against: the difference on the same held-out records, drawn alike for both
    same = cv_report.print_paired(alone, alone)
    assert same["records"] == 6 and same["macro_f1"] == {"difference": 0.0,
                                                          "interval": [0.0, 0.0]}
    paired = cv_report.print_paired(both, alone)
    assert paired["per_class"]["N"]["difference"] == pytest.approx(
        ec57.class_f1(np.asarray(both["confusion"]))[0]
        - ec57.class_f1(np.asarray(alone["confusion"]))[0])
    assert "F1 of --cv-run minus F1 of --against, the same 6 held-out records" in \
        capsys.readouterr().out
    part = cv_report.print_pooled(cv_report.read_fold_records(seed0), names=["100", "101", "102"])
    with pytest.raises(UserError, match="--against: the runs held out other records.*pass "
                                        "--records with the records both held out"):
        cv_report.print_paired(part, alone)

    # other folds: refused, naming the run and the first fold that differs
    other = trained("avgsplit", seed=0, folds=2)
    with pytest.raises(UserError, match=r"--cv-run .*avgsplit.*: its fold \d held out other "
                                        r"records .*same folds"):
        cv_rescore.rescore_run_folders([seed0, other], {})


def test_cv_run_set_refuses_what_needs_training_again(tmp_path):
    proc = subprocess.run([sys.executable, "code/eval.py", "--cv-run", str(tmp_path),
                           "--set", "learning_rate=0.1"], cwd=REPO_ROOT, env=run_env(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "'learning_rate' is read when the model is trained" in proc.stderr
    assert "s_gate_irregularity" in proc.stderr  # says which keys can be set


def test_records_without_a_cv_run_is_refused(tmp_path):
    proc = subprocess.run([sys.executable, "code/eval.py", "--model", "m.keras", "--records",
                           "100"], cwd=REPO_ROOT, env=run_env(tmp_path), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "--records goes with --cv-run" in proc.stderr


def test_against_without_a_cv_run_is_refused(tmp_path):
    proc = subprocess.run([sys.executable, "code/eval.py", "--model", "m.keras", "--against",
                           str(tmp_path)], cwd=REPO_ROOT, env=run_env(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--against goes with --cv-run" in proc.stderr


def test_an_against_folder_without_folds_is_named_before_any_work(tmp_path):
    proc = subprocess.run([sys.executable, "code/eval.py", "--cv-run", str(tmp_path),
                           "--against", str(tmp_path / "nope")], cwd=REPO_ROOT,
                          env=run_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "error: --against " in proc.stderr
    assert "nope: no such folder" in proc.stderr and proc.stdout == ""


def test_one_split_of_whole_records_says_what_share_of_the_beats_it_holds_out():
    from ecgsweep.data.datasets import Fold, Split

    val = Split(np.zeros((3, 4), np.float32), np.zeros(3, np.int64),
                records=np.array(["209", "209", "209"]))
    fold = Fold(1, val, val)
    assert folds.held_out_line(fold, False, 0.44, 0.1).startswith(
        "validation: held-out records 209")
    assert "44% of the beats (whole records; val_fraction 0.1 asks for about 10%)" in \
        folds.held_out_line(fold, False, 0.44, 0.1)
    assert folds.held_out_line(fold, True, 0.44, 0.1).startswith("fold 1: held-out records 209")
