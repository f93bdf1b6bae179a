"""code/eval.py: the report of a trained model, and clear errors when model and data differ."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT, run_env
from ecgsweep import evaluation, models, training
from ecgsweep.config import resolve
from ecgsweep.data import datasets
from ecgsweep.data.datasets import Split
from ecgsweep.model_record import ModelRecord, record_path


def _train_tiny(tmp_path: Path, synth_dir: Path, dataset: str, name: str, seed: int = 0) -> Path:
    """Train one epoch in-process and save model + record the way a run does."""
    import keras

    config = resolve({"model": "cnn", "dataset": dataset, "data_dir": str(synth_dir),
                      "n_conv_blocks": 2, "layer_1_size": 8, "layer_2_size": 8,
                      "layer_FC_size": 16, "epochs": 1, "seed": seed})
    source = datasets.resolve_source(dataset, synth_dir)
    dev = datasets.load_development(source)
    train, val = datasets.train_val_split(dev, 0.1, seed)
    keras.utils.set_random_seed(seed)
    model = models.build(config, (187, 1), len(source.class_names))
    training.fit(model, config, train, val, source.class_names, lambda m: None,
                 training.StopRequest())
    path = tmp_path / f"{name}.keras"
    model.save(path)
    ModelRecord(config=config, class_names=list(source.class_names)).write(record_path(path))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synth_dir):
    folder = tmp_path_factory.mktemp("trained")
    return {"a": _train_tiny(folder, synth_dir, "mitbih", "a", seed=0),
            "b": _train_tiny(folder, synth_dir, "mitbih", "b", seed=1),
            "ptb": _train_tiny(folder, synth_dir, "ptbdb", "ptb")}


def test_report_matches_the_model_predictions(trained, synth_dir, tmp_path):
    report = evaluation.evaluate([trained["a"]], out_dir=tmp_path / "rep")
    test = datasets.load_test(datasets.resolve_source("mitbih", synth_dir))
    loaded = evaluation.load_model(trained["a"])
    pred = evaluation.predict_proba([loaded], test.X).argmax(axis=1)
    assert report["n_beats"] == len(test) == 500
    assert report["accuracy"] == pytest.approx(float((pred == test.y).mean()))
    cm = np.array(report["confusion_matrix"])
    assert cm.shape == (5, 5) and cm.sum() == 500
    assert cm.sum(axis=1).tolist() == np.bincount(test.y, minlength=5).tolist()
    saved = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert saved["macro_f1"] == pytest.approx(report["macro_f1"])
    rows = list(csv.reader((tmp_path / "rep" / "classification_report.csv").open()))
    assert [r[0] for r in rows] == ["class", "N", "S", "V", "F", "Q", "macro avg",
                                    "weighted avg", "accuracy"]
    png = (tmp_path / "rep" / "confusion_matrix.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_ensemble_probabilities_are_the_mean_of_members(trained, synth_dir):
    test = datasets.load_test(datasets.resolve_source("mitbih", synth_dir))
    a, b = evaluation.load_model(trained["a"]), evaluation.load_model(trained["b"])
    pa = evaluation.predict_proba([a], test.X[:50])
    pb = evaluation.predict_proba([b], test.X[:50])
    both = evaluation.predict_proba([a, b], test.X[:50])
    assert not np.allclose(pa, pb)
    assert np.allclose(both, (pa + pb) / 2)


def test_ptbdb_model_scores_its_own_held_out_split(trained, tmp_path):
    report = evaluation.evaluate([trained["ptb"]], out_dir=tmp_path / "ptb")
    assert report["class_names"] == ["normal", "abnormal"]
    assert report["n_beats"] == 100  # 20% of the 500 PTB beats, fixed split


def _eval_cli(tmp_path, *args):
    return subprocess.run([sys.executable, "code/eval.py", *args], cwd=REPO_ROOT,
                          env=run_env(tmp_path), capture_output=True, text=True, timeout=180)


@pytest.mark.slow
def test_model_that_does_not_fit_the_data_is_a_clear_error(trained, synth_dir, tmp_path):
    proc = _eval_cli(tmp_path, "--model", str(trained["ptb"]), "--test",
                     str(synth_dir / "mitbih_test.csv"), "--out", str(tmp_path / "x"))
    assert proc.returncode == 2, proc.stderr
    assert "mitbih_test.csv: its labels mean the classes N, S, V, F, Q, but" in proc.stderr
    unnamed = tmp_path / "beats.csv"  # the same rows under a name that says no classes
    unnamed.write_bytes((synth_dir / "mitbih_test.csv").read_bytes())
    proc = _eval_cli(tmp_path, "--model", str(trained["ptb"]), "--test", str(unnamed),
                     "--out", str(tmp_path / "x"))
    assert proc.returncode == 2, proc.stderr
    assert "predicts 2 classes (normal, abnormal)" in proc.stderr
    assert "has label 4" in proc.stderr and "Traceback" not in proc.stderr
    proc = _eval_cli(tmp_path, "--model", str(tmp_path / "nope.keras"))
    assert proc.returncode == 2 and "nope.keras: no such model file" in proc.stderr
    with pytest.raises(evaluation.UserError,
                       match=r"a folder, not a model file; pass the path of a \.keras file"):
        evaluation.load_model(tmp_path)


def test_report_has_intervals_curves_and_the_misclassified_picture(trained, synth_dir, tmp_path):
    report = evaluation.evaluate([trained["a"]], out_dir=tmp_path / "rep", bootstrap=300, seed=3)
    ci = report["confidence_intervals"]
    assert ci["accuracy"][0] <= report["accuracy"] <= ci["accuracy"][1]
    assert ci["macro_f1"][0] <= report["macro_f1"] <= ci["macro_f1"][1]
    assert report["bootstrap"]["draws"] == 300 and report["bootstrap"]["seed"] == 3
    assert set(report["roc_auc"]) == {"N", "S", "V", "F", "Q"}
    assert all(0.0 <= v <= 1.0 for v in report["roc_auc"].values())
    saved = json.loads((tmp_path / "rep" / "report.json").read_text())
    for key in ("n_beats", "class_names", "accuracy", "macro_f1", "weighted_f1", "per_class",
                "macro_avg", "weighted_avg", "confusion_matrix", "models", "test_data"):
        assert key in saved  # the keys existing callers read are still there
    assert saved["macro_roc_auc"] == pytest.approx(report["macro_roc_auc"])
    assert len(saved["curves"]["roc"]["N"]["fpr"]) <= evaluation.CURVE_POINTS
    wrong = int(np.sum(np.array(report["confusion_matrix"])) - np.trace(report["confusion_matrix"]))
    assert sum(p["count"] for p in report["misclassified"]) == wrong
    if wrong:
        assert (tmp_path / "rep" / "misclassified_beats.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "rep" / "roc_pr_curves.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_cli_logs_the_report_to_an_offline_wandb_run(trained, tmp_path):
    out = tmp_path / "rep"
    proc = _eval_cli(tmp_path, "--model", str(trained["a"]), "--out", str(out),
                     "--bootstrap", "200", "--wandb")
    assert proc.returncode == 0, proc.stderr
    assert "ROC AUC" in proc.stdout and "95% bootstrap interval, 200 draws" in proc.stdout
    assert "W&B: logged to run" in proc.stdout and "new eval run" in proc.stdout
    saved = json.loads((out / "report.json").read_text())
    folder = Path(saved["wandb"]["run_dir"])
    assert folder.parent == tmp_path / "wandb" and folder.name.startswith("offline-run-")
    assert saved["wandb"]["offline"] and not saved["wandb"]["resumed"]
    copied = json.loads((folder / "files" / evaluation.WANDB_REPORT_FILE).read_text())
    assert copied["macro_f1"] == pytest.approx(saved["macro_f1"])
    assert list(folder.glob("*.wandb"))


# ---- hostile inputs to eval ----------------------------------------------------------------


def test_negative_label_in_test_csv_is_refused(trained, synth_dir, tmp_path):
    from ecgsweep.data.kaggle_csv import DataFormatError, load_csv, write_csv

    X, y = load_csv(synth_dir / "mitbih_test.csv", use_cache=False)
    y = y[:50].copy()
    y[7] = -1
    bad = write_csv(tmp_path / "neg.csv", X[:50], y)
    with pytest.raises(DataFormatError, match="row 8, column 188: label -1 is out of range"):
        evaluation.evaluate([trained["a"]], test_csv=str(bad), out_dir=tmp_path / "rep",
                            bootstrap=0)


def test_corrupt_model_file_is_named_without_keras_file_not_found(tmp_path):
    path = tmp_path / "best.keras"
    path.write_bytes(b"PK\x03\x04 this is not a whole zip archive")
    with pytest.raises(evaluation.UserError) as info:
        evaluation.load_model(path)
    assert "damaged" in str(info.value) and "File not found" not in str(info.value)


def test_eval_says_which_data_the_model_was_chosen_on(trained, tmp_path, capsys):
    from ecgsweep.artifacts import BestModelSlot

    record = {"metric": "val_macro_f1", "value": 0.5, "run_id": "r1",
              "config": json.loads(record_path(trained["a"]).read_text())["config"],
              "class_names": ["N", "S", "V", "F", "Q"],
              "dataset": {"name": "mitbih", "fingerprint": "abcd1234", "files": {"train": "t.csv"}}}
    slot = BestModelSlot(tmp_path / "models", "cnn")
    slot.promote_if_better(trained["a"], ModelRecord.from_json(record))
    evaluation.evaluate([slot.model_path], out_dir=tmp_path / "rep", bootstrap=0)
    out = capsys.readouterr().out
    assert "chosen on data set mitbih (train: t.csv), fingerprint abcd1234" in out


@pytest.mark.parametrize("setting, says, needs", [
    ({"model": "seq2seq"}, "model=seq2seq, which reads consecutive beats", "record"),
    ({"rr_features": True}, "rr_features=True, which feeds each beat's RR intervals",
     "RR features"),
    ({"s_gate_irregularity": 0.1}, "s_gate_irregularity=0.1, which moves S calls to N",
     "RR features"),
    ({"s_run_tolerance": 0.15}, "s_run_tolerance=0.15, which calls S the beats of a run",
     "RR features"),
    ({"s_premature_ratio": 0.85}, "s_premature_ratio=0.85, which calls S the beats called N "
     "that come early", "RR features"),
    ({"s_premature_spread": 5.0}, "s_premature_spread=5.0, which calls S the beats called N "
     "that come early against their own record's", "RR features"),
    ({"v_template_clusters": 10}, "v_template_clusters=10, which shares the V probability",
     "record"),
    ({"v_novel_templates": 3.0}, "v_novel_templates=3.0, which calls V the premature "
     "templates of a novel shape", "RR features"),
    ({"prior_adaptation": 0.5}, "prior_adaptation=0.5, which re-estimates each record's",
     "record"),
    ({"beat_normalization": "record_median"}, "beat_normalization=record_median, which normalizes",
     "record"),
])
def test_eval_refuses_beats_without_the_sidecar_fields_a_model_needs(tmp_path, setting, says,
                                                                    needs):
    from ecgsweep.cli import UserError
    from ecgsweep.evaluation import check_sidecar_needs

    config = resolve(setting)
    bare = Split(np.zeros((2, 187), np.float32), np.zeros(2, int))
    with pytest.raises(UserError, match=f"m.keras runs with {says}.* and needs each beat's {needs}: .*beat sidecar"):
        check_sidecar_needs(tmp_path / "m.keras", config, bare)
    full = Split(bare.X, bare.y, records=np.array(["a", "a"]), rr=np.zeros((2, 11), np.float32))
    check_sidecar_needs(tmp_path / "m.keras", config, full)  # nothing missing: no error
    check_sidecar_needs(tmp_path / "m.keras", resolve({}), bare)  # the default needs none


# ---- the model's record: damaged, or its data changed since -----------------------------


def _promoted_copy(trained_model: Path, models_dir: Path, data_dir: Path) -> Path:
    """``trained_model`` promoted to a slot with a record of the data in ``data_dir``, as a
    run records it (the development beats' fingerprint)."""
    from ecgsweep.artifacts import BestModelSlot

    config = {**json.loads(record_path(trained_model).read_text())["config"],
              "data_dir": str(data_dir)}
    assert config["classes"] == "aami5"  # the development beats as loaded, none dropped
    dev = datasets.load_development(datasets.resolve_source("mitbih", data_dir))
    fingerprint = datasets.fingerprint(dev)
    record = {"metric": "val_macro_f1", "value": 0.5, "run_id": "r1", "config": config,
              "class_names": ["N", "S", "V", "F", "Q"],
              "dataset": {"name": "mitbih", "fingerprint": fingerprint}}
    slot = BestModelSlot(models_dir, "cnn")
    assert slot.promote_if_better(trained_model, ModelRecord.from_json(record))[0]
    return slot.model_path


def test_eval_warns_when_the_data_the_model_was_chosen_on_has_changed(trained, tmp_path, capsys):
    from ecgsweep.data import synth

    data = tmp_path / "data"
    synth.write_dataset(data, n_train=300, n_test=100, n_ptb=100, seed=0)
    model = _promoted_copy(trained["a"], tmp_path / "models", data)
    report = evaluation.evaluate([model], out_dir=tmp_path / "same", bootstrap=0)
    assert "warning" not in capsys.readouterr().err and "warnings" not in report

    synth.write_dataset(data, n_train=300, n_test=100, n_ptb=100, seed=1)  # regenerated
    report = evaluation.evaluate([model], out_dir=tmp_path / "changed", bootstrap=0)
    err = capsys.readouterr().err
    assert err.startswith(f"warning: {model} was chosen on development data with fingerprint")
    assert "holds other data now" in err and "--test CSV" in err and err.count("\n") == 1
    saved = json.loads((tmp_path / "changed" / "report.json").read_text())
    assert saved["warnings"] == report["warnings"] == [err.removeprefix("warning: ").strip()]

    # a test file the user names is theirs to choose: no comparison
    evaluation.evaluate([model], test_csv=str(data / "mitbih_test.csv"),
                        out_dir=tmp_path / "named", bootstrap=0)
    assert "warning" not in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("text, says", [
    ('{"metric": "val_macro_f1", "value"', "not a readable model record"),
    ("[1, 2]", "it holds a JSON list, not an object"),
    (None, "its 'value' 'abc' is not a number"),
])
def test_eval_of_a_model_with_a_damaged_record_is_one_error_line(trained, synth_dir, tmp_path,
                                                                  text, says):
    model = _promoted_copy(trained["a"], tmp_path / "models", synth_dir)
    saved = model.resolve().with_suffix(".json")
    if text is None:
        text = json.dumps({**json.loads(saved.read_text()), "value": "abc"})
    saved.write_text(text)
    proc = _eval_cli(tmp_path, "--model", str(model), "--out", str(tmp_path / "rep"))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"error: {saved}: ") and says in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_a_run_folders_damaged_model_record_is_named(trained, tmp_path):
    run_model = tmp_path / "run" / "model.keras"
    run_model.parent.mkdir()
    run_model.write_bytes(trained["a"].read_bytes())
    record_path(run_model).write_text("[1, 2]")
    with pytest.raises(evaluation.UserError, match=r"model\.json: not a valid model record: it "
                                                   r"holds a JSON list"):
        evaluation.load_model(run_model)


def test_eval_set_scores_the_model_with_another_step_after_it(trained, tmp_path, capsys):
    from conftest import write_records_csv

    test_csv = write_records_csv(tmp_path / "data", "mitbih_test", {"a": 300, "b": 300}, seed=3)
    scored = {}
    for name, settings in (("as_trained", None), ("gated", {"s_gate_irregularity": 1e-9})):
        scored[name] = evaluation.evaluate([trained["a"]], test_csv=str(test_csv),
                                           out_dir=tmp_path / name, bootstrap=0,
                                           settings=settings)
    # the gate at every beat leaves no S probability: S ranks no beat above another
    assert scored["as_trained"]["roc_auc"]["S"] != pytest.approx(0.5)
    gated = scored["gated"]
    assert gated["roc_auc"]["S"] == pytest.approx(0.5)
    assert np.asarray(gated["confusion_matrix"])[:, 1].sum() == 0
    assert gated["after_model_settings"] == {"s_gate_irregularity": 1e-9}
    assert "after_model_settings" not in scored["as_trained"]
    assert "s_gate_irregularity=1e-09 (trained with 0.0)" in capsys.readouterr().out


def test_eval_set_refuses_a_step_on_a_class_the_model_lacks(trained, tmp_path):
    with pytest.raises(evaluation.UserError, match="--set s_gate_irregularity=0.1 moves S calls "
                                                   "to N .*ptb.keras predicts the classes"):
        evaluation.evaluate([trained["ptb"]], out_dir=tmp_path / "r", bootstrap=0,
                            settings={"s_gate_irregularity": 0.1})


def test_eval_set_refuses_a_malformed_setting(trained, tmp_path):
    proc = subprocess.run([sys.executable, "code/eval.py", "--model", str(trained["a"]),
                           "--set", "s_gate_irregularity"], cwd=REPO_ROOT,
                          env=run_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--set 's_gate_irregularity': give KEY=VALUE" in proc.stderr


def test_held_out_from_goes_with_cv_run():
    from ecgsweep import eval_cli
    from ecgsweep.cli import UserError

    with pytest.raises(UserError, match="--held-out-from goes with --cv-run"):
        eval_cli.main(["--model", "m.keras", "--held-out-from", "other_lead"])


def _converted_folder(folder: Path, **method) -> Path:
    folder.mkdir(parents=True)
    base = {"target_fs": 125, "beat_length": 187, "before_r_s": 0.0, "qrs_up": False}
    (folder / "split.json").write_text(json.dumps({"method": {**base, **method}}))
    return folder


def test_eval_warns_when_the_test_rows_were_laid_out_otherwise(tmp_path):
    from types import SimpleNamespace

    from ecgsweep.evaluation import layout_warnings

    trained_on = _converted_folder(tmp_path / "dev")
    folds = [SimpleNamespace(path=tmp_path / f"fold{i}.keras", record=SimpleNamespace(
        dataset=SimpleNamespace(files={"train": str(trained_on / "mitbih_train.csv")})))
        for i in (1, 2)]
    alike = _converted_folder(tmp_path / "alike", qrs_up=True)  # turned upright: alike
    assert layout_warnings(folds, str(alike / "mitbih_test.csv")) == []
    assert layout_warnings(folds, None) == []  # the data set's own test file
    assert layout_warnings(folds, str(tmp_path / "kaggle" / "mitbih_test.csv")) == []
    other = _converted_folder(tmp_path / "p_wave", before_r_s=0.25)
    [warning] = layout_warnings(folds, str(other / "mitbih_test.csv"))  # one per training folder
    assert "fold1.keras" in warning and "fold2.keras" in warning and str(trained_on) in warning
    assert "before_r_s 0.0 / 0.25 (training / test)" in warning
