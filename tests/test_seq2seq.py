"""The seq2seq family: windows of consecutive beats of one record, one prediction per beat,
a clear error without record identity, and a run through code/train.py that eval scores."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import FAKE_RECORD_FS as FS, REPO_ROOT, run_env, write_records_csv
from ecgsweep import beat_windows, evaluation, models, params, training
from ecgsweep.cli import UserError
from ecgsweep.config import ConfigError, resolve
from ecgsweep.data import datasets, sidecar, synth
from ecgsweep.data.datasets import Split

SMALL = {"model": "seq2seq", "seq_window": 8, "seq_stride": 4, "n_conv_blocks": 2,
         "n_filters": 4, "beat_features": 8, "rnn_units": 4, "layer_FC_size": 8}


def _records_split(lengths: dict[str, int], seed: int = 0) -> Split:
    """Beats of several records with sidecar fields, rows shuffled (not in record order)."""
    rng = np.random.default_rng(seed)
    X, y = synth.make_mitbih(sum(lengths.values()), seed)
    records = np.concatenate([[name] * n for name, n in lengths.items()])
    peaks = np.concatenate([np.cumsum(rng.integers(250, 400, n)) for n in lengths.values()])
    rr = np.concatenate([sidecar.rr_features(np.cumsum(rng.integers(250, 400, n)), FS)
                         for n in lengths.values()]).astype(np.float32)
    order = rng.permutation(len(y))
    return Split(X, y, records, rr, peaks).take(order)


def test_windows_hold_consecutive_beats_of_one_record_and_cover_every_beat():
    split = _records_split({"a": 37, "b": 5, "c": 20})
    rows = beat_windows.window_rows(split, resolve(SMALL))
    assert rows.shape[1] == 8
    for window in rows:
        real = window[window != beat_windows.PAD]
        assert len(set(split.records[real])) == 1  # never two records
        assert (np.diff(split.r_peak[real]) > 0).all()  # in time order
    for name, n in (("a", 37), ("b", 5), ("c", 20)):
        mine = rows[np.isin(rows, np.flatnonzero(split.records == name)).any(axis=1)]
        in_time = np.flatnonzero(split.records == name)[np.argsort(
            split.r_peak[split.records == name])]
        # consecutive: each window is a run of the record's beats in time order
        for window in mine:
            real = window[window != beat_windows.PAD]
            start = int(np.flatnonzero(in_time == real[0])[0])
            assert real.tolist() == in_time[start:start + len(real)].tolist()
        covered = set(mine[mine != beat_windows.PAD].tolist())
        assert covered == set(in_time.tolist()), name  # the tail of 37 and 20 included
    # record b (5 beats) fills one window, padded
    (short,) = [w for w in rows if set(split.records[w[w != beat_windows.PAD]]) == {"b"}]
    assert (short == beat_windows.PAD).sum() == 3


def test_seq_stride_above_seq_window_is_refused():
    with pytest.raises(ConfigError, match="seq_stride.*use seq_stride <= seq_window"):
        resolve({**SMALL, "seq_stride": 9})
    assert params.SEQUENCE_FAMILIES == ("seq2seq",)


class _EchoModel:
    """Predicts, for each beat of a window, a one-hot of the beat's first sample (0..3)."""

    output_shape = (None, 8, 4)

    def predict(self, x, batch_size=None, verbose=0):
        return np.eye(4)[np.asarray(x)[..., 0, 0].astype(int)]


def test_predictions_come_back_one_row_per_beat_in_the_splits_order():
    split = _records_split({"a": 23, "b": 3, "c": 13}, seed=1)
    split.X[:, 0] = np.arange(len(split)) % 4  # what the echo model reads back
    config = resolve({**SMALL, "seq_stride": 3})
    probs = training.predict_proba(_EchoModel(), split, config)
    assert probs.shape == (len(split), 4)  # every beat once, the records' tails included
    np.testing.assert_allclose(probs, np.eye(4)[np.arange(len(split)) % 4])


def test_seq2seq_builds_trains_and_predicts_with_rr_features():
    import keras

    split = datasets.restrict_classes(_records_split({"a": 45, "b": 30, "c": 19}),
                                      datasets.MITBIH_CLASSES, "aami4")
    config = resolve({**SMALL, "rr_features": True, "classes": "aami4", "epochs": 1,
                      "batch_size": 32, "class_weight": "sqrt", "aug_noise": 0.01})
    model = models.build(config, (187, 1), 4)
    assert [i.name for i in model.inputs] == ["beat", "rr"]
    assert model.output_shape == (None, 8, 4)
    before = [w.copy() for w in model.get_weights()]
    result = training.fit(model, config, split, split, datasets.CLASS_SETS["aami4"],
                          lambda m: None, training.StopRequest())
    assert result.kept_epoch == 1
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))
    probs = training.predict_proba(model, split, config)
    assert probs.shape == (len(split), 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    keras.backend.clear_session()


def test_seq2seq_builds_at_extreme_values():
    import keras

    caps = {"seq_window": 6, "seq_stride": 6, "n_filters": 4, "beat_features": 4,
            "rnn_units": 4, "layer_FC_size": 4, "n_conv_blocks": 6, "kernel_size": 9}
    low, high, variants = {}, {}, []
    for p in params.FAMILY_PARAMS["seq2seq"]:
        if p.choices:
            variants += [{p.name: c} for c in p.choices]
        elif p.kind is bool:
            low[p.name], high[p.name] = False, True
        else:
            low[p.name] = p.kind(p.low)
            high[p.name] = p.kind(min(p.high, caps.get(p.name, p.high)))
    for variant in ({}, low, high, *variants, {"attention": False, "rnn_cell": "gru"}):
        config = resolve({"model": "seq2seq", **variant})
        model = models.build(config, (187, 1), 5)
        window = config["seq_window"]
        out = model(np.zeros((2, window, 187, 1), np.float32), training=False)
        assert tuple(out.shape) == (2, window, 5), variant
        keras.backend.clear_session()


def test_data_without_a_sidecar_is_one_clear_error(tmp_path):
    from ecgsweep.run_start import check_combinations, load_protocol_data

    csv = write_records_csv(tmp_path, "kaggle_like", {"a": 30}, seed=0, with_sidecar=False)
    config = resolve({**SMALL, "dataset": str(csv)})
    with pytest.raises(UserError) as err:
        load_protocol_data(config, datasets.resolve_source(str(csv)))
    message = str(err.value)
    assert str(csv) in message and "code/data.py wfdb" in message and "\n" not in message
    source = datasets.resolve_source(str(write_records_csv(tmp_path, "ok", {"a": 30}, seed=0)))
    load_protocol_data(config, source)  # with its sidecar: no error
    for extra in ({"max_train_beats": 10}, {"val_split": "random"}, {"resample": "smote"},
                  {"beat_dropout": 0.3}):
        with pytest.raises(UserError, match="not supported together with"):
            check_combinations(resolve({**SMALL, **extra}))


def test_train_py_runs_seq2seq_and_eval_scores_every_test_beat(tmp_path):
    data = tmp_path / "data"
    train_lengths = {f"1{i:02d}": 40 + 7 * i for i in range(6)}
    write_records_csv(data, "mitbih_train", train_lengths, seed=0)
    write_records_csv(data, "mitbih_test", {"200": 43, "201": 29}, seed=1)  # tails of 43 and 29
    models_dir = tmp_path / "models"
    args = {**SMALL, "dataset": "mitbih", "data_dir": data, "models_dir": models_dir,
            "classes": "aami4", "rr_features": True, "epochs": 1, "batch_size": 32,
            "val_fraction": 0.3}
    proc = subprocess.run([sys.executable, "code/train.py", *[f"--{k}={v}" for k, v in args.items()]],
                          cwd=REPO_ROOT, env=run_env(tmp_path), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "whole records held out" in proc.stdout and "AAMI EC57" in proc.stdout
    assert "per held-out record, most errors first" in proc.stdout
    best = models_dir / "seq2seq" / "best.keras"
    record = json.loads((models_dir / "seq2seq" / "best.json").read_text())
    assert record["config"]["seq_window"] == 8 and record["class_names"] == ["N", "S", "V", "F"]

    report = evaluation.evaluate([best], out_dir=tmp_path / "report", bootstrap=0,
                                 examples_per_pair=1)
    test = datasets.restrict_classes(datasets.load_test(datasets.resolve_source("mitbih", data)),
                                     datasets.MITBIH_CLASSES, "aami4")
    assert report["n_beats"] == len(test) and np.sum(report["confusion_matrix"]) == len(test)
    assert "ec57" in json.dumps(report).lower()
    # the test beats name their records: the report says where each record's errors are
    assert {r["record"] for r in report["record_errors"]} <= {"200", "201"}
    assert sum(r["V"]["false"] for r in report["record_errors"]) == (
        np.sum(np.asarray(report["confusion_matrix"])[:, 2]) - report["confusion_matrix"][2][2])
    bare = write_records_csv(tmp_path / "bare", "mitbih_test", {"200": 43}, seed=1,
                          with_sidecar=False)
    with pytest.raises(UserError, match="model=seq2seq, which reads consecutive beats"):
        evaluation.evaluate([best], test_csv=str(bare), out_dir=tmp_path / "r2", bootstrap=0)
