"""Bring your own data: CSVs with a header, beats of any width, classes named in a JSON file
beside the CSV, the EC57 table only for AAMI classes, and eval's warning when the test data
repeats the training data."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT, run_env, write_records_csv
from ecgsweep import data_cli, ec57, evaluation
from ecgsweep.cli import DataFormatError, UserError, run_main
from ecgsweep.data import datasets, synth
from ecgsweep.data.classes import classes_path, read_class_names
from ecgsweep.data.kaggle_csv import load_csv
from ecgsweep.evaluation.members import LoadedModel
from ecgsweep.model_record import DatasetInfo, ModelRecord

OWN_CLASSES = ["normal", "afib", "other"]


def _beats(n: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic beats stretched to ``width`` samples, labels 0..2."""
    X, y = synth.make_mitbih(n, seed)
    at = np.linspace(0, X.shape[1] - 1, width)
    return np.stack([np.interp(at, np.arange(X.shape[1]), row) for row in X]), np.minimum(y, 2)


def _write(path: Path, X: np.ndarray, y: np.ndarray, header: list[str] | None = None,
           label_first: bool = False) -> Path:
    table = np.column_stack([y, X] if label_first else [X, y])
    np.savetxt(path, table, delimiter=",", fmt="%.6g",
               header=",".join(header) if header else "", comments="")
    return path


def _names(width: int) -> list[str]:
    return [f"c{i}" for i in range(width)] + ["label"]


# ---- the loader: header, label column, width -------------------------------------------


def test_a_header_row_is_skipped_and_said_once(tmp_path, capsys):
    X, y = _beats(20, 99)
    path = _write(tmp_path / "own.csv", X, y, header=[f"c{i}" for i in range(100)])
    X1, y1 = load_csv(path, n_classes=3)
    load_csv(path, n_classes=3)  # from the cache: no second note
    assert X1.shape == (20, 99) and y1.tolist() == y.tolist()
    assert np.allclose(X1, X, atol=1e-5)
    err = capsys.readouterr().err
    assert err.count("note:") == 1, err
    assert "row 1 is a header (c0, c1, ..., c99), skipped" in err
    assert "labels from column 100 ('c99'), 99 samples per beat" in err


def test_a_header_naming_label_takes_the_labels_from_that_column(tmp_path, capsys):
    X, y = _beats(20, 60)
    path = _write(tmp_path / "first.csv", X, y, label_first=True,
                  header=["Label"] + [f"s{i}" for i in range(60)])
    X1, y1 = load_csv(path, use_cache=False)
    assert y1.tolist() == y.tolist() and np.allclose(X1, X, atol=1e-5)
    assert "labels from column 1 ('Label')" in capsys.readouterr().err


def test_the_column_numbers_pandas_writes_are_a_header(tmp_path):
    X, y = _beats(10, 30)
    path = _write(tmp_path / "pd.csv", X, y, header=[str(i) for i in range(31)])
    X1, y1 = load_csv(path, use_cache=False)
    assert X1.shape == (10, 30) and y1.tolist() == y.tolist()


def test_pandas_row_index_and_two_label_columns_are_refused_by_name(tmp_path):
    import pandas as pd

    X, y = _beats(10, 30)
    frame = pd.DataFrame(np.column_stack([X, y]))
    indexed = tmp_path / "indexed.csv"
    frame.to_csv(indexed)  # index=True: a first column of row numbers, unnamed
    with pytest.raises(DataFormatError, match=r"indexed.csv, row 1, column 1: the header gives "
                                              r"column 1 no name, as pandas does for its row "
                                              r"index \(to_csv without index=False\)"):
        load_csv(indexed, use_cache=False)
    frame.to_csv(tmp_path / "plain.csv", index=False)
    assert load_csv(tmp_path / "plain.csv", use_cache=False)[0].shape == (10, 30)
    twice = _write(tmp_path / "twice.csv", X, y,
                   header=["label"] + [f"s{i}" for i in range(29)] + ["Label"])
    with pytest.raises(DataFormatError, match=r"twice.csv, row 1: the header names 2 columns "
                                              r"'label' \(columns 1, 31\)"):
        load_csv(twice, use_cache=False)


def test_a_damaged_first_row_is_not_taken_for_a_header(tmp_path):
    X, y = _beats(5, 40)
    path = _write(tmp_path / "bad.csv", X, y)
    lines = path.read_text().splitlines()
    cells = lines[0].split(",")
    cells[1] = "abc"
    lines[0] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"bad.csv, row 1, column 2: 'abc' is not a number"):
        load_csv(path, use_cache=False)


def test_the_beat_width_is_the_files_and_a_row_of_another_width_is_named(tmp_path):
    X, y = _beats(10, 99)
    path = _write(tmp_path / "w100.csv", X, y)
    assert load_csv(path, use_cache=False)[0].shape == (10, 99)
    lines = path.read_text().splitlines()
    lines[2] = ",".join(lines[2].split(",")[:50])
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"w100.csv, row 3: 50 values, but row 1 has 100"):
        load_csv(path, use_cache=False)
    with_header = _write(tmp_path / "h.csv", X, y, header=_names(99))
    lines = with_header.read_text().splitlines()
    lines[4] += ",0.5"
    with_header.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"h.csv, row 5: 101 values, but row 2 has 100"):
        load_csv(with_header, use_cache=False)


def test_the_parse_cache_keeps_the_header_and_label_column(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "usercache"))
    X, _ = _beats(10, 30)
    y = np.array([0, 1, 2, 0, 1, 0, 1, 0, 1, 0])
    path = _write(tmp_path / "first.csv", X, y, label_first=True,
                  header=["label"] + [f"s{i}" for i in range(30)])
    load_csv(path)
    assert list((tmp_path / "usercache" / "ecg-sweeps").glob("first.csv.*.npz"))
    # served from the cache, a label out of range is still named where it is in the file
    with pytest.raises(DataFormatError, match=r"first.csv, row 4, column 1: label 2 is out"):
        load_csv(path, n_classes=2)


def test_data_check_says_99_samples_per_beat_for_a_100_column_file(tmp_path, capsys):
    X, y = _beats(12, 99)
    path = _write(tmp_path / "w100.csv", X, y)
    classes_path(path).write_text(json.dumps(OWN_CLASSES))
    data_cli.main(["check", str(path)])
    out, err = capsys.readouterr()
    assert f"{path}: 12 beats, 99 samples each" in out
    assert "0 (normal): " in out and "2 (other): " in out
    assert "every beat is of one class" not in err
    one = _write(tmp_path / "one.csv", X[:1], y[:1])
    data_cli.main(["check", str(one)])
    captured = capsys.readouterr()
    assert f"{one}: 1 beat, 99 samples each" in captured.out
    # one class: passes, with a note that training refuses it and why it may be so
    assert f"note: {one}: every beat is of one class, which training refuses" in captured.err


def test_data_check_reads_the_beat_sidecar_as_training_does(tmp_path, capsys):
    path = write_records_csv(tmp_path, "beats", {"101": 30, "106": 20}, seed=0)
    assert run_main(lambda: data_cli.main(["check", str(path)])) == 0
    assert "beats.beats.csv: its beat sidecar, in step with it (2 records)" in \
        capsys.readouterr().out
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:40]) + "\n")  # cut: the sidecar is out of step
    assert run_main(lambda: data_cli.main(["check", str(path)])) == 2
    captured = capsys.readouterr()
    assert "50 rows but its CSV has 40 beats" in captured.err and "40 beats" not in captured.out


def test_data_check_checks_every_file_given_and_names_those_that_failed(tmp_path, capsys):
    X, y = _beats(12, 99)
    good = _write(tmp_path / "good.csv", X, y)
    text = tmp_path / "text.csv"
    text.write_text(good.read_text().replace("\n", "\nnot,a,number\n", 1))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert run_main(lambda: data_cli.main(["check", str(text), str(good), str(empty)])) == 2
    out, err = capsys.readouterr()
    assert f"{good}: 12 beats, 99 samples each" in out  # checked after the bad one
    assert err.count("error: ") == 3 and f"error: {text}" in err and f"error: {empty}" in err
    assert err.strip().endswith(f"error: 2 files of 3 failed the check: {text} {empty}")


def test_data_check_refuses_classes_that_contradict_the_class_names_beside_the_csv(tmp_path,
                                                                                     capsys):
    X, y = _beats(12, 99)
    path = _write(tmp_path / "named.csv", X, y)
    classes_path(path).write_text(json.dumps(OWN_CLASSES))
    assert run_main(lambda: data_cli.main(["check", "--classes", "5", str(path)])) == 2
    assert (f"--classes 5, but {classes_path(path)} names {len(OWN_CLASSES)} classes"
            in capsys.readouterr().err)


# ---- class names beside the CSV ---------------------------------------------------------


def test_a_csv_data_set_takes_its_class_names_from_the_file_beside_it(tmp_path):
    X, y = _beats(30, 50)
    path = _write(tmp_path / "own.csv", X, y)
    assert datasets.resolve_source(str(path)).class_names == ()
    classes_path(path).write_text(json.dumps(OWN_CLASSES))
    assert classes_path(path).name == "own.classes.json"
    source = datasets.resolve_source(str(path))
    assert source.class_names == tuple(OWN_CLASSES)
    assert len(datasets.load_development(source)) == 30
    classes_path(path).write_text(json.dumps(OWN_CLASSES[:2]))  # label 2 has no name
    with pytest.raises(DataFormatError, match=r"own.csv, row \d+, column 51: label 2 is out of "
                                              r"range; this data set has classes 0..1"):
        datasets.load_development(datasets.resolve_source(str(path)))


@pytest.mark.parametrize("name", ["own.csv.gz", "OWN.CSV", "own.csv.bz2"])
def test_a_compressed_or_upper_case_csv_is_a_data_set_with_its_class_names(tmp_path, name):
    import bz2
    import gzip

    X, y = _beats(20, 40)
    plain = _write(tmp_path / "plain.csv", X, y).read_bytes()
    compress = {".gz": gzip.compress, ".bz2": bz2.compress}.get(Path(name).suffix, bytes)
    path = tmp_path / name
    path.write_bytes(compress(plain))
    stem = name.split(".")[0]
    assert classes_path(path).name == f"{stem}.classes.json"
    classes_path(path).write_text(json.dumps(OWN_CLASSES))
    source = datasets.resolve_source(str(path))
    assert source.class_names == tuple(OWN_CLASSES)
    assert len(datasets.load_development(source)) == 20
    assert datasets.resolve_source(str(tmp_path / "missing.csv.xz")).files  # "no such file" later
    with pytest.raises(UserError, match=r"'mitbh' is neither .* nor a CSV file"):
        datasets.resolve_source("mitbh", tmp_path)


def test_a_development_set_of_one_class_is_refused_naming_the_file_and_class(tmp_path):
    X, _ = _beats(20, 40)
    path = _write(tmp_path / "normal_only.csv", X, np.zeros(20, int))
    with pytest.raises(UserError, match=r"normal_only.csv: every beat is of class 0; training "
                                        r"needs beats of at least 2 classes"):
        datasets.load_development(datasets.resolve_source(str(path)))
    classes_path(path).write_text(json.dumps(OWN_CLASSES))
    with pytest.raises(UserError, match=r"every beat is of class 0 \(normal\)"):
        datasets.load_development(datasets.resolve_source(str(path)))


# ---- small data sets: splits that cannot hold every class ---------------------------------


def test_a_split_too_small_for_every_class_is_unstratified_with_a_warning():
    dev = datasets.Split(*synth.make_mitbih(301, 0))  # 5 classes
    with pytest.warns(UserWarning, match=r"val_fraction: one side of the split gets 4 beat"):
        train, val = datasets.train_val_split(dev, 0.01, seed=0)
    assert (len(train), len(val)) == (297, 4)
    with pytest.warns(UserWarning, match=r"max_train_beats: one side .* 3 beat\(s\), fewer "
                                         r"than the 5 classes; the split is not stratified"):
        train, _ = datasets.train_val_split(dev, 0.1, seed=0, max_train_beats=3)
    assert len(train) == 3


def test_a_development_set_of_one_beat_names_val_fraction():
    dev = datasets.Split(*synth.make_mitbih(1, 0))
    with pytest.raises(UserError, match=r"config key 'val_fraction': 0.1 of the 1 development "
                                        r"beat\(s\) leaves 0 for training and 1 for validation"):
        datasets.train_val_split(dev, 0.1, seed=0)


@pytest.mark.parametrize("text,says", [
    ("{", "not a JSON list of class names"),
    ('{"0": "normal"}', "holds a dict, not a list"),
    ('["normal"]', "names 1 class, at least 2 needed"),
    ('["normal", ""]', 'entry 1 ("") is not a class name'),
    ('["a", "b", "a"]', "names a more than once"),
])
def test_a_bad_class_names_file_is_one_error_naming_it(tmp_path, text, says):
    csv = tmp_path / "own.csv"
    classes_path(csv).write_text(text)
    with pytest.raises(DataFormatError, match=r"own.classes.json: " + says.replace("(", r"\(")
                       .replace(")", r"\)").replace("[", r"\[")):
        read_class_names(csv)


# ---- EC57 only for AAMI classes ---------------------------------------------------------


def test_the_ec57_table_is_only_for_aami_classes(capsys):
    assert ec57.has_ec57_rows(("N", "S", "V", "F", "Q")) and ec57.has_ec57_rows("NSVF")
    for names in (("0", "1", "2"), ("normal", "abnormal"), ("N", "S", "V", "afib")):
        assert not ec57.has_ec57_rows(names)
        assert ec57.table_heading(names) == "per class (each class against the rest)"
    cm = np.array([[8, 1, 1], [2, 6, 2], [1, 1, 8]])
    # a class named V among other classes is not EC57's VEB: no rules, no renaming
    table = ec57.class_table(cm, ["N", "V", "F"])
    assert table["V"]["name"] == "V" and table["V"]["not_counted"] == 0
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    probs = rng.dirichlet(np.ones(3), 60)
    report = evaluation.compute_report(y, probs, OWN_CLASSES, bootstrap=0)
    assert "ec57" not in report and list(report["per_class"]) == OWN_CLASSES
    evaluation.print_report(report)
    out = capsys.readouterr().out
    assert "EC57" not in out and "afib" in out
    aami = evaluation.compute_report(rng.integers(0, 5, 60), rng.dirichlet(np.ones(5), 60),
                                     ["N", "S", "V", "F", "Q"], bootstrap=0)
    assert set(aami["ec57"]) == {"N", "S", "V", "F", "Q"}


# ---- eval's overlap warning -------------------------------------------------------------


def _member(tmp_path: Path, dataset: Path, dev_fingerprint: str | None = None) -> LoadedModel:
    config = {"dataset": str(dataset), "data_dir": str(tmp_path), "classes": "aami5"}
    record = ModelRecord(config=config, class_names=OWN_CLASSES,
                         dataset=DatasetInfo(name=str(dataset), fingerprint=dev_fingerprint))
    return LoadedModel(tmp_path / "m.keras", None, record)


def test_eval_warns_when_the_test_data_repeats_the_training_data(tmp_path):
    X, y = _beats(300, 80)
    train = _write(tmp_path / "train.csv", X[:200], y[:200])
    fingerprint = datasets.fingerprint(datasets.load_development(
        datasets.resolve_source(str(train))))
    member = _member(tmp_path, train, fingerprint)

    def warnings_for(test: Path, explicit: bool = True) -> list[str]:
        split = datasets.load_test(datasets.resolve_source(str(test)), test)
        return evaluation.overlap_warnings([member], split, str(test),
                                           str(test) if explicit else None, None)

    (same_file,) = warnings_for(train)
    assert f"{train} is a file {member.path} was trained on" in same_file
    assert "not held-out scores" in same_file
    copy = _write(tmp_path / "copy.csv", X[:200], y[:200])
    (same_beats,) = warnings_for(copy)
    assert f"{copy} holds the very beats {member.path} was trained and validated on" in same_beats
    mixed = _write(tmp_path / "mixed.csv", np.concatenate([X[200:], X[:20]]),
                   np.concatenate([y[200:], y[:20]]))
    (shared,) = warnings_for(mixed)
    assert f"20 of the 120 beats of {mixed} (16.7%) are identical" in shared
    held_out = _write(tmp_path / "held_out.csv", X[200:], y[200:])
    assert warnings_for(held_out) == []


# ---- the converter's row width ----------------------------------------------------------


def test_the_wfdb_converter_writes_rows_of_the_width_asked(shared_data, tmp_path, capsys):
    out = tmp_path / "out"
    data_cli.main(["wfdb", "--src", str(shared_data / "mitdb"), "--out", str(out),
                   "--records", "100", "--beat-samples", "250"])
    X, y = load_csv(out / "mitbih_train.csv", use_cache=False)
    assert X.shape[1] == 250 and len(y) > 1000
    assert json.loads((out / "split.json").read_text())["method"]["beat_length"] == 250
    with pytest.raises(SystemExit):
        data_cli.main(["wfdb", "--src", str(shared_data / "mitdb"), "--beat-samples", "0"])
    from ecgsweep.data import wfdb_beats

    with pytest.raises(UserError, match="beat samples 8: expected at least 16"):
        wfdb_beats.convert(shared_data / "mitdb", out, records=["100"], beat_samples=8)


def test_synthetic_beats_are_refused_for_beats_of_another_width():
    from ecgsweep import imbalance

    X, y = _beats(40, 250)
    with pytest.raises(UserError, match="beats of 187 samples at 125 Hz .* the data has 250"):
        imbalance.augment_synthetic(datasets.Split(X.astype(np.float32), y), 0.5,
                                    ("N", "S", "V", "F", "Q"), seed=0)


# ---- train.py and eval.py on one's own CSVs ---------------------------------------------


def _train(tmp_path: Path, dataset: Path, name: str) -> tuple[str, Path]:
    """code/train.py, one epoch of a tiny CNN; its output and the model it promoted."""
    models = tmp_path / f"models_{name}"
    proc = subprocess.run(
        [sys.executable, "code/train.py", "--model=cnn", f"--dataset={dataset}",
         f"--models_dir={models}", "--epochs=1", "--batch_size=64", "--n_conv_blocks=1",
         "--layer_1_size=4", "--layer_2_size=4", "--layer_FC_size=8"],
        cwd=REPO_ROOT, env=run_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr, models / "cnn" / "best.keras"


def _eval(tmp_path: Path, model: Path, test: Path, out: Path) -> tuple[str, dict]:
    proc = subprocess.run(
        [sys.executable, "code/eval.py", "--model", str(model), "--test", str(test),
         "--out", str(out), "--bootstrap", "20"],
        cwd=REPO_ROOT, env=run_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr, json.loads((out / "report.json").read_text())


@pytest.mark.slow
def test_a_csv_with_a_header_and_named_classes_trains_and_evaluates(tmp_path):
    X, y = _beats(500, 99, seed=3)
    train = _write(tmp_path / "own_train.csv", X[:400], y[:400], header=_names(99))
    test = _write(tmp_path / "own_test.csv", X[400:], y[400:], header=_names(99))
    for csv in (train, test):
        classes_path(csv).write_text(json.dumps(OWN_CLASSES))
    out, model = _train(tmp_path, train, "own")
    assert "row 1 is a header" in out and f"classes {', '.join(OWN_CLASSES)}" in out
    assert "per class (each class against the rest):" in out and "EC57" not in out
    # the data set is one CSV: the eval command the run suggests needs a test file
    assert f"python code/eval.py --model {model} --test TEST.csv" in out
    assert json.loads(model.with_suffix(".json").read_text())["class_names"] == OWN_CLASSES
    out, report = _eval(tmp_path, model, test, tmp_path / "report")
    assert report["class_names"] == OWN_CLASSES and "ec57" not in report
    assert "EC57" not in out and "warning:" not in out and "warnings" not in report


@pytest.mark.slow
def test_a_csv_of_250_sample_beats_trains_and_eval_warns_on_its_training_file(tmp_path):
    X, y = _beats(400, 250, seed=4)
    train = _write(tmp_path / "w250.csv", X, y)
    out, model = _train(tmp_path, train, "w250")
    assert "classes 0, 1, 2" in out and "EC57" not in out
    assert json.loads(model.with_suffix(".json").read_text())["input_shape"] == [250, 1]
    out, report = _eval(tmp_path, model, train, tmp_path / "report")
    assert report["n_beats"] == 400 and "ec57" not in report
    warning = f"{train} is a file {model} was trained on"
    assert [line for line in out.splitlines() if line.startswith("warning:")] == [
        f"warning: {report['warnings'][0]}"]
    assert warning in report["warnings"][0]


def test_a_test_file_naming_other_classes_than_the_model_is_refused(tmp_path):
    from ecgsweep.evaluation.held_out import check_test_classes

    test = _write(tmp_path / "test.csv", *_beats(10, 40))
    member = _member(tmp_path, test)
    check_test_classes(member, str(test))  # no names file: nothing to compare
    classes_path(test).write_text(json.dumps(OWN_CLASSES))
    check_test_classes(member, str(test))
    classes_path(test).write_text(json.dumps(["N", "S", "V"]))
    with pytest.raises(UserError, match=r"test.csv: its labels mean the classes N, S, V, but "
                                        r".*m.keras predicts normal, afib, other"):
        check_test_classes(member, str(test))


def test_a_kaggle_file_of_another_data_set_is_refused_by_its_name(tmp_path):
    from ecgsweep.evaluation.held_out import check_test_classes

    ptbdb = _write(tmp_path / "ptbdb_normal.csv", *_beats(10, 187))
    mitbih = ModelRecord(config={"dataset": "mitbih", "classes": "aami4"},
                         class_names=["N", "S", "V", "F"])
    member = LoadedModel(tmp_path / "m.keras", None, mitbih)
    with pytest.raises(UserError, match=r"ptbdb_normal\.csv: its labels mean the classes "
                                        r"normal, abnormal, but .*m\.keras predicts N, S, V, F"):
        check_test_classes(member, str(ptbdb))
    # the model's class set applies to the file's classes: aami4 drops Q from N S V F Q
    check_test_classes(member, str(_write(tmp_path / "mitbih_test.csv", *_beats(10, 187))))
    unnamed = LoadedModel(tmp_path / "m.keras", None, ModelRecord(config={}, class_names=["0", "1"]))
    check_test_classes(unnamed, str(ptbdb))


@pytest.mark.parametrize("family", ["cnn", "rnn", "cnet", "cnn_lstm", "dualpath_resnet"])
def test_every_family_builds_for_beats_shorter_and_longer_than_the_kaggle_rows(family):
    from ecgsweep import models
    from ecgsweep.config import resolve

    config = resolve({"model": family, **({"downsample": 4} if family == "rnn" else {})})
    for width in (3, 250):
        model = models.build(config, (width, 1), 3)
        assert model.input_shape == (None, width, 1) and model.output_shape == (None, 3)


def test_a_folder_without_its_test_file_has_no_test_data_and_eval_is_told_to_pass_one(tmp_path):
    _write(tmp_path / "mitbih_train.csv", *_beats(20, 187))
    source = datasets.resolve_source("mitbih", tmp_path)
    assert not source.has_test_data()  # as code/data.py wfdb --split train leaves a folder
    with pytest.raises(UserError, match=r"mitbih_test\.csv: no such file \(data set 'mitbih'\); "
                                        r"put the Kaggle test CSV in .* or pass --test CSV"):
        datasets.load_test(source)
    _write(tmp_path / "mitbih_test.csv", *_beats(10, 187))
    assert source.has_test_data()
