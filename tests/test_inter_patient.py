"""The inter-patient protocol: beat sidecar with RR features, record-grouped validation,
aami4 classes, the RR input of every family, and the EC57 table."""

from pathlib import Path

import numpy as np
import pytest

from ecgsweep import ec57, model_inputs, models, training
from ecgsweep.cli import UserError
from ecgsweep.config import resolve
from ecgsweep.data import datasets, sidecar
from ecgsweep.data import wfdb_beats as W
from ecgsweep.data.kaggle_csv import DataFormatError, load_csv
from ecgsweep.data.datasets import Split


def test_rr_features_match_hand_computed_values():
    # beats at 0, 1, 2, 3.5, 4.5 s (fs 100): intervals 1, 1, 1.5, 1
    fs = 100.0
    rr = sidecar.rr_features(np.array([0, 100, 200, 350, 450]), fs)
    col = {name: rr[:, i] for i, name in enumerate(sidecar.RR_FEATURES)}
    assert col["pre_rr"].tolist() == [1.0, 1.0, 1.0, 1.5, 1.0]  # the first borrows its next
    assert col["post_rr"].tolist() == [1.0, 1.0, 1.5, 1.0, 1.0]  # the last borrows its previous
    assert col["record_rr"] == pytest.approx([4.5 / 4] * 5)
    # LOCAL_RR_BEATS = 10 covers the whole record here: every beat's local mean is 1.125
    assert col["local_rr"] == pytest.approx([1.125] * 5)
    assert col["pre_ratio"][3] == pytest.approx(1.5 / 1.125)
    assert col["pre_local_ratio"][3] == pytest.approx(1.5 / 1.125)
    # spread of the intervals 1, 1, 1.5, 1 over their mean 1.125 (population deviation)
    assert col["local_spread"] == pytest.approx([np.std([1, 1, 1.5, 1]) / 1.125] * 5)
    # successive differences 0, 0.5, 0.5: median 0.5, over the local mean
    assert col["local_irregularity"] == pytest.approx([0.5 / 1.125] * 5)


def test_irregularity_is_high_in_an_irregular_rhythm_and_low_in_a_regular_one():
    rng = np.random.default_rng(0)
    regular = np.cumsum(np.r_[0, np.full(40, 100)])  # 1 s intervals at fs 100
    regular[20] -= 30  # one premature beat
    irregular = np.cumsum(np.r_[0, rng.uniform(40, 160, 40)]).astype(int)
    regular_rr = sidecar.rr_features(regular, 100.0)
    irregular_rr = sidecar.rr_features(irregular, 100.0)
    spread = sidecar.RR_FEATURES.index("local_spread")
    assert regular_rr[5, spread] == pytest.approx(0.0, abs=1e-9)  # far from the premature beat
    assert regular_rr[:, spread].max() < 0.2 < np.median(irregular_rr[:, spread])
    # the median of successive differences ignores the premature beat's own two differences
    irregularity = sidecar.RR_FEATURES.index("local_irregularity")
    assert regular_rr[:, irregularity] == pytest.approx(np.zeros(41), abs=1e-9)
    assert np.median(irregular_rr[:, irregularity]) > 0.2
    assert sidecar.rr_features(np.array([0, 100]), 100.0)[:, irregularity].tolist() == [0, 0]


def _rhythm_column(samples: np.ndarray, name: str, fs: float = 100.0) -> np.ndarray:
    return sidecar.rr_features(samples, fs)[:, sidecar.RR_FEATURES.index(name)]


def test_the_rhythm_reference_ignores_frequent_premature_beats_that_shift_the_mean():
    # 1 s sinus intervals, every third beat premature at 0.6 s with a 1.4 s pause after it
    intervals = np.tile([100, 100, 60, 140], 30)
    samples = np.cumsum(np.r_[0, intervals])
    premature = np.flatnonzero(np.r_[100, intervals] == 60)
    middle = premature[len(premature) // 2]
    reference = _rhythm_column(samples, "ref_rr")
    assert reference[middle] == pytest.approx(1.0)  # the median interval: the sinus one
    assert _rhythm_column(samples, "pre_ref_ratio")[middle] == pytest.approx(0.6)
    assert _rhythm_column(samples, "post_ref_ratio")[middle] == pytest.approx(1.4)
    assert _rhythm_column(samples, "post_pre_ratio")[middle] == pytest.approx(1.4 / 0.6)


def test_rhythm_irregularity_is_low_in_bigeminy_and_high_in_fibrillation():
    rng = np.random.default_rng(1)
    bigeminy = np.cumsum(np.r_[0, np.tile([60, 140], 30)])
    fibrillation = np.cumsum(np.r_[0, rng.uniform(40, 160, 60)]).astype(int)
    middle = 30
    # successive intervals differ by 0.8 s all along bigeminy; every other one not at all
    assert _rhythm_column(bigeminy, "local_irregularity")[middle] > 0.5
    assert _rhythm_column(bigeminy, "rhythm_irregularity")[middle] == pytest.approx(0.0)
    assert _rhythm_column(fibrillation, "rhythm_irregularity")[middle] > 0.2


def test_the_parameters_offer_exactly_the_normalizations_the_data_code_implements():
    from ecgsweep import params
    from ecgsweep.data import beatnorm

    choices = {p.name: set(p.choices) for p in params.TRAINING_PARAMS if p.choices}
    assert choices["rr_normalization"] == set(sidecar.RR_COLUMNS_BY_NORMALIZATION)
    assert choices["beat_normalization"] == set(beatnorm.MODES)


def test_rhythm_normalization_feeds_the_rhythm_columns():
    names = [sidecar.RR_FEATURES[i] for i in sidecar.rr_columns("rhythm")]
    assert "pre_ref_ratio" in names and "post_pre_ratio" in names
    assert not {"pre_ratio", "record_rr", "pre_rr"} & set(names)


def test_record_timing_feeds_the_record_ratios_without_the_spread_of_the_rhythm():
    rng = np.random.default_rng(2)
    fibrillation = np.cumsum(np.r_[0, rng.uniform(40, 160, 60)]).astype(int)
    rows = _sidecar_rows(fibrillation)
    split = Split(np.zeros((len(rows), 187), dtype=np.float32), np.zeros(len(rows), dtype=int),
                  np.array(["r"] * len(rows)), rows)
    timing = model_inputs.rr_input(split, {"rr_normalization": "record_timing"})
    record = model_inputs.rr_input(split, {"rr_normalization": "record"})
    names = [sidecar.RR_FEATURES[i] for i in sidecar.rr_columns("record_timing")]
    assert names == ["pre_ratio", "post_ratio", "local_ratio", "pre_local_ratio"]
    # the same ratios as `record`, the two spread measures (high in fibrillation) left out
    assert np.array_equal(timing, record[:, :4])
    assert record[30, 4:].min() > 0.1
    assert timing.shape[1] == models.rr_width(resolve({"rr_normalization": "record_timing",
                                                       "rr_features": True}))


def test_record_entropy_feeds_the_timing_ratios_and_the_entropy_of_each_records_intervals():
    rng = np.random.default_rng(3)
    bigeminy = _sidecar_rows(np.cumsum(np.r_[0, np.tile([60, 140], 40)]))
    fibrillation = _sidecar_rows(np.cumsum(np.r_[0, rng.uniform(40, 160, 80)]).astype(int))
    rows = np.vstack([bigeminy, fibrillation])
    records = np.array(["bigeminy"] * len(bigeminy) + ["af"] * len(fibrillation))
    split = Split(np.zeros((len(rows), 187), dtype=np.float32), np.zeros(len(rows), dtype=int),
                  records, rows)
    config = {"rr_normalization": "record_entropy"}
    fed = model_inputs.rr_input(split, config)
    assert fed.shape[1] == 5 == models.rr_width(resolve({**config, "rr_features": True}))
    timing = model_inputs.rr_input(split, {"rr_normalization": "record_timing"})
    assert np.array_equal(fed[:, :4], timing)
    entropy = fed[:, 4]
    # bigeminy fills two bins (1 bit), fibrillation many; successive differences would not
    # tell them apart
    assert np.median(entropy[records == "bigeminy"]) == pytest.approx(1.0, abs=0.05)
    assert np.median(entropy[records == "af"]) > 3.0
    windows = np.array([[0, 1, 2], [90, 91, 92]])  # a sequence model's rows
    assert np.array_equal(model_inputs.rr_input(split, config, windows), fed[windows])
    with pytest.raises(ValueError, match="record"):
        model_inputs.rr_input(Split(split.X, split.y, None, split.rr), config)


def _sidecar_rows(samples: np.ndarray, fs: float = 100.0) -> np.ndarray:
    return sidecar.rr_features(samples, fs).astype(np.float32)


def test_record_p75_reference_is_the_sinus_interval_where_runs_of_premature_beats_pull_the_mean():
    # 1 s sinus intervals, and runs of tachycardia at 0.5 s holding 40% of the beats
    intervals = np.tile(np.r_[np.full(6, 100), np.full(4, 50)], 12)
    rows = _sidecar_rows(np.cumsum(np.r_[0, intervals]))
    records = np.array(["r"] * len(rows))
    in_run, sinus = 57, 52  # beat 57 ends a 0.5 s interval, beat 52 a 1 s one
    by_p75 = sidecar.reference_scaled(rows, records, "record_p75")
    by_mean = sidecar.reference_scaled(rows, records, "record")
    pre = sidecar.RR_COLUMNS_BY_NORMALIZATION["record_p75"].index("pre_rr")
    assert by_p75[[in_run, sinus], pre] == pytest.approx([0.5, 1.0])
    # the mean (0.8 s) makes the run's beats less premature and the sinus beats late
    assert by_mean[[in_run, sinus], 0] == pytest.approx([0.625, 1.25], rel=1e-3)
    local = sidecar.RR_COLUMNS_BY_NORMALIZATION["record_p75"].index("local_irregularity")
    assert by_p75[in_run, local] == rows[in_run, sidecar.RR_FEATURES.index(
        "local_irregularity")]  # the local ratios need no reference and pass as they are


def test_record_p75_reference_is_each_records_own_whatever_rows_are_fed():
    fast = _sidecar_rows(np.cumsum(np.r_[0, np.full(30, 50)]))
    slow = _sidecar_rows(np.cumsum(np.r_[0, np.full(30, 100)]))
    split = Split(np.zeros((62, 187), dtype=np.float32), np.zeros(62, dtype=int),
                  np.array(["fast"] * 31 + ["slow"] * 31), np.vstack([fast, slow]))
    config = {"rr_normalization": "record_p75"}
    pre = sidecar.RR_COLUMNS_BY_NORMALIZATION["record_p75"].index("pre_rr")
    whole = model_inputs.rr_input(split, config)
    assert np.allclose(whole[:, pre], 1.0)  # each record's steady rhythm is its reference
    windows = np.array([[0, 1, 40], [41, 42, 43]])  # a sequence model's rows
    assert np.array_equal(model_inputs.rr_input(split, config, windows), whole[windows])
    assert whole.shape[1] == models.rr_width(resolve({"rr_normalization": "record_p75",
                                                      "rr_features": True}))
    with pytest.raises(ValueError, match="record"):
        model_inputs.rr_input(Split(split.X, split.y, None, split.rr), config)


@pytest.mark.parametrize("normalization", ["record_p75", "record_entropy"])
def test_a_run_refuses_rr_of_the_whole_record_without_records(tmp_path, normalization):
    from types import SimpleNamespace

    from ecgsweep.run_start import check_sidecar as _check_sidecar

    rr_only = Split(np.zeros((2, 187)), np.zeros(2, int),
                    rr=np.ones((2, len(sidecar.RR_FEATURES)), dtype=np.float32))
    source = SimpleNamespace(files={"train": str(tmp_path / "x.csv")}, name="mitbih")
    config = resolve({"rr_features": True, "rr_normalization": normalization})
    with pytest.raises(UserError, match=f"'rr_normalization': {normalization} reads each "
                                        "beat's RR intervals against its whole record's and "
                                        "needs each beat's record"):
        _check_sidecar(config, rr_only, source)
    _check_sidecar(resolve({"rr_features": True}), rr_only, source)


def test_s_gate_reads_the_configured_measure():
    rr = np.zeros((2, len(sidecar.RR_FEATURES)), dtype=np.float32)
    rr[:, sidecar.RR_FEATURES.index("local_irregularity")] = [0.5, 0.5]  # bigeminy-like
    rr[:, sidecar.RR_FEATURES.index("rhythm_irregularity")] = [0.0, 0.5]
    split = Split(np.zeros((2, 187), dtype=np.float32), np.array([1, 1]), rr=rr)
    model = _constant_model([0.1, 0.6, 0.2, 0.1])
    by_lag1 = resolve({"classes": "aami4", "s_gate_irregularity": 0.1})
    by_pattern = resolve({"classes": "aami4", "s_gate_irregularity": 0.1,
                          "s_gate_measure": "rhythm_irregularity"})
    assert training.predict_proba(model, split, by_lag1).argmax(axis=1).tolist() == [0, 0]
    assert training.predict_proba(model, split, by_pattern).argmax(axis=1).tolist() == [1, 0]


def test_local_rr_averages_the_ten_intervals_around_the_beat():
    samples = np.cumsum(np.r_[0, np.arange(1, 30)])  # interval i is i+1 samples long
    rr = sidecar.rr_features(samples, 1.0)
    local = rr[:, sidecar.RR_FEATURES.index("local_rr")]
    # beat 15: intervals 10..19 (lengths 11..20)
    assert local[15] == pytest.approx(np.mean(np.arange(11, 21)))


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    from conftest import SHARED_DATA

    out = tmp_path_factory.mktemp("wfdb100")
    W.convert(SHARED_DATA / "mitdb", out, split="intra", test_fraction=0.2, seed=0)
    return out


def test_sidecar_is_written_and_read_back_in_step_with_the_csv(converted):
    for side in ("train", "test"):
        X, y = load_csv(converted / f"mitbih_{side}.csv", use_cache=False)
        records, peaks, rr = sidecar.read(sidecar.sidecar_path(converted / f"mitbih_{side}.csv"),
                                          len(y))
        assert set(records) == {"100"} and rr.shape == (len(y), len(sidecar.RR_FEATURES))
        assert np.isfinite(rr).all() and (np.diff(np.sort(peaks)) > 0).all()
    dev = datasets.load_development(datasets.resolve_source("mitbih", converted))
    assert dev.records is not None and len(dev.records) == len(dev) == len(dev.rr)
    # S beats of record 100 are premature: their RR before is shorter than the record's mean
    pre = dev.rr[:, sidecar.RR_FEATURES.index("pre_ratio")]
    assert np.median(pre[dev.y == 1]) < 0.9 < np.median(pre[dev.y == 0])


def test_a_sidecar_out_of_step_is_a_clear_error(converted, tmp_path):
    import shutil

    csv = tmp_path / "mitbih_train.csv"
    shutil.copy(converted / "mitbih_train.csv", csv)
    lines = sidecar.sidecar_path(converted / "mitbih_train.csv").read_text().splitlines()
    sidecar.sidecar_path(csv).write_text("\n".join(lines[:-5]) + "\n")
    with pytest.raises(DataFormatError, match="out of step with the CSV"):
        datasets.load_development(datasets.resolve_source(str(csv)))
    lines[3] = lines[3].rsplit(",", 1)[0] + ",nan"
    sidecar.sidecar_path(csv).write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=f"row 4, column {sidecar.RR_FEATURES[-1]}"):
        datasets.load_development(datasets.resolve_source(str(csv)))


def _dev_with_records(n_records=8, per_record=40, seed=0):
    rng = np.random.default_rng(seed)
    n = n_records * per_record
    y = rng.integers(0, 5, n)
    records = np.repeat([f"r{i}" for i in range(n_records)], per_record)
    return Split(rng.random((n, 187), dtype=np.float32), y, records,
                 rng.random((n, len(sidecar.RR_FEATURES)), dtype=np.float32))


def test_record_grouped_split_never_puts_a_record_on_both_sides():
    dev = _dev_with_records()
    train, val = datasets.record_val_split(dev, 0.25, seed=1)
    assert set(train.records).isdisjoint(val.records) and len(train) + len(val) == len(dev)
    folds = datasets.kfold_splits(dev, 4, seed=1, by_record=True)
    seen = []
    for fold in folds:
        assert set(fold.train.records).isdisjoint(fold.val.records)
        seen += sorted(set(fold.val.records))
    assert sorted(seen) == sorted(set(dev.records))  # every record held out exactly once
    with pytest.raises(UserError, match=r"^val_split: record holds out whole records for "
                                        r"validation, and the development data has one "
                                        r"record \(r0\)"):
        datasets.record_val_split(_dev_with_records(n_records=1), 0.25, seed=1)


def test_val_split_auto_follows_what_the_data_knows():
    with_records = _dev_with_records()
    assert datasets.choose_val_split("auto", with_records)[0] is True
    by_record, note = datasets.choose_val_split("auto", Split(with_records.X, with_records.y))
    assert by_record is False and "intra-patient" in note and "flatters" in note
    with pytest.raises(datasets.UserError, match="beat sidecar"):
        datasets.choose_val_split("record", Split(with_records.X, with_records.y))


def test_aami4_drops_q_everywhere():
    dev = _dev_with_records()
    kept = datasets.restrict_classes(dev, datasets.MITBIH_CLASSES, "aami4")
    assert 4 not in kept.y and len(kept) == int((dev.y != 4).sum())
    assert len(kept.records) == len(kept.rr) == len(kept)
    assert datasets.class_names_for(datasets.MITBIH_CLASSES, "aami4") == ("N", "S", "V", "F")
    # not MIT-BIH classes: nothing to drop
    ptb = datasets.restrict_classes(dev, datasets.PTBDB_CLASSES, "aami4")
    assert len(ptb) == len(dev)


def test_aami4_on_data_of_other_classes_is_refused_before_loading(tmp_path):
    from ecgsweep.run_start import check_class_set

    ptbdb = datasets.resolve_source("ptbdb", tmp_path)
    with pytest.raises(UserError, match=r"'classes': aami4 drops MIT-BIH's Q beats, but data set "
                                        r"'ptbdb' has the classes normal, abnormal; set "
                                        r"classes=aami5"):
        check_class_set(resolve({"classes": "aami4"}), ptbdb)
    unnamed = datasets.resolve_source(str(tmp_path / "beats.csv"))
    with pytest.raises(UserError, match=r"names no classes \(name them N S V F Q in "
                                        r".*beats\.classes\.json"):
        check_class_set(resolve({"classes": "aami4"}), unnamed)
    check_class_set(resolve({"classes": "aami5"}), ptbdb)
    check_class_set(resolve({"classes": "aami4"}), datasets.resolve_source("mitbih", tmp_path))


def test_every_family_trains_with_rr_features():
    dev = datasets.restrict_classes(_dev_with_records(), datasets.MITBIH_CLASSES, "aami4")
    for family in models.FAMILY_MODULES:
        config = resolve({"model": family, "rr_features": True, "epochs": 1, "batch_size": 32,
                          "classes": "aami4"})
        model = models.build(config, (187, 1), 4)
        assert [i.name for i in model.inputs] == ["beat", "rr"], family
        result = training.fit(model, config, dev, dev, datasets.CLASS_SETS["aami4"],
                              lambda m: None, training.StopRequest())
        assert result.kept_epoch == 1


def test_beat_dropout_hides_whole_waveforms_in_training_only():
    import keras

    # no other dropout or batch statistics, so training=True differs only by beat_dropout
    config = resolve({"model": "cnn", "rr_features": True, "beat_dropout": 0.5,
                      "n_filters": 4, "layer_FC_size": 8, "classes": "aami4",
                      "dropout_rate": 0.0, "batch_norm": False})
    model = models.build(config, (187, 1), 4)
    hidden = model.get_layer("beat_dropout")
    probe = keras.Model(model.inputs, hidden.output)
    rng = np.random.default_rng(0)
    X = {"beat": rng.random((200, 187, 1), dtype=np.float32),
         "rr": rng.random((200, len(sidecar.rr_columns("record"))), dtype=np.float32)}
    kept = np.asarray(probe(X, training=False))
    dropped = np.asarray(probe(X, training=True))
    zero_rows = (dropped == 0).all(axis=1)
    # about half the beats lose every waveform feature; the others keep all (scaled by 2)
    assert 60 < zero_rows.sum() < 140
    assert np.allclose(dropped[~zero_rows], 2 * kept[~zero_rows], atol=1e-5)
    assert np.array_equal(np.asarray(probe(X, training=False)), kept)  # inference: untouched
    plain = models.build(resolve({"model": "cnn", "rr_features": True}), (187, 1), 4)
    assert "beat_dropout" not in [layer.name for layer in plain.layers]


def test_ec57_table_from_a_confusion_matrix():
    cm = np.array([[90, 5, 5, 0], [2, 8, 0, 0], [1, 0, 9, 0], [0, 0, 0, 0]])
    table = ec57.ec57_table(cm, ["N", "S", "V", "F"])
    s = table["S"]
    assert s["name"] == "SVEB" and s["se"] == pytest.approx(0.8)
    assert s["ppv"] == pytest.approx(8 / 13) and s["fpr"] == pytest.approx(5 / 110)
    assert s["f1"] == pytest.approx(2 * 0.8 * (8 / 13) / (0.8 + 8 / 13))
    assert table["F"]["se"] is None and table["F"]["support"] == 0
    text = ec57.format_table(table, "t")
    assert text.splitlines()[2].startswith("S (SVEB)") and text.splitlines()[3].startswith("V (VEB)")


def test_ec57_does_not_count_fusion_beats_called_v_against_veb():
    # as WFDB's bxb scores EC57: VEB FP = Nv + Sv (an F beat called V is no false VEB and
    # no true negative either); SVEB FP = Ns + Vs + Fs (an F beat called S is a false SVEB)
    cm = np.array([[90, 4, 6, 0], [2, 8, 0, 0], [1, 0, 9, 0], [1, 2, 5, 2]])
    table = ec57.ec57_table(cm, ["N", "S", "V", "F"])
    v, s = table["V"], table["S"]
    assert v["ppv"] == pytest.approx(9 / 15) and v["not_counted"] == 5
    assert v["fpr"] == pytest.approx(6 / (6 + 94 + 10 + 5))  # TN: N, S, F beats not called V
    assert v["se"] == pytest.approx(0.9) and v["support"] == 10
    assert s["ppv"] == pytest.approx(8 / 14) and s["not_counted"] == 0
    plain = ec57.ec57_table(cm, ["N", "S", "V", "F"], ec57_rules=False)
    assert plain["V"]["ppv"] == pytest.approx(9 / 20) and plain["V"]["not_counted"] == 0
    # macro-F1 stays the plain classification figure: every call counts
    assert ec57.macro_f1(cm) == pytest.approx(
        np.mean([plain[c]["f1"] for c in "NSVF"]))
    assert "5 F beats called V not counted against VEB" in ec57.format_table(table, "t")
    rows = ec57.record_errors({"r": cm.tolist()}, ["N", "S", "V", "F"])
    assert rows[0]["V"] == {"beats": 10, "found": 9, "false": 6}
    assert rows[0]["S"] == {"beats": 10, "found": 8, "false": 6}


def test_record_errors_count_each_records_beats_found_and_false_calls():
    # classes N S V F; record a: 2 S (1 found), 1 N called S (2 errors); record b: 4 V
    # (3 found), 1 S called V (3 errors); record c: only N, all right (not in the table)
    y = np.array([1, 1, 0, 0, 2, 2, 2, 2, 1, 0, 0])
    pred = np.array([1, 0, 1, 0, 2, 2, 2, 0, 2, 0, 0])
    records = np.array(["a", "a", "a", "a", "b", "b", "b", "b", "b", "c", "c"])
    by_record = ec57.confusion_by_record(y, pred, records, 4)
    assert sorted(by_record) == ["a", "b", "c"]
    assert np.sum(list(by_record.values()), axis=0).tolist() == (
        np.bincount(4 * y + pred, minlength=16).reshape(4, 4).tolist())
    rows = ec57.record_errors(by_record, ["N", "S", "V", "F"])
    assert rows == [
        {"record": "b", "S": {"beats": 1, "found": 0, "false": 0},
         "V": {"beats": 4, "found": 3, "false": 1}, "errors": 3},
        {"record": "a", "S": {"beats": 2, "found": 1, "false": 1},
         "V": {"beats": 0, "found": 0, "false": 0}, "errors": 2}]
    text = ec57.format_record_errors(rows, "t")
    assert "SVEB beats" in text and "VEB beats" in text
    assert text.splitlines()[2].split() == ["b", "1", "0", "0", "4", "3", "1"]


def test_augmentation_changes_training_batches_only():
    from ecgsweep import augment

    rng = np.random.default_rng(0)
    X = rng.random((20, 187), dtype=np.float32)
    config = {"aug_scale": 0.2, "aug_shift": 5, "aug_wander": 0.1, "aug_noise": 0.05, "seed": 0}
    out = augment.augment_beats(X, np.random.default_rng(1), config)
    assert out.shape == X.shape and not np.allclose(out, X)
    shifted = augment._shift_rows(np.arange(6, dtype=np.float32)[None, :], np.array([2]))
    assert shifted.tolist() == [[0, 0, 0, 1, 2, 3]]
    # a run with augmentation: the validation beats the model is scored on are untouched
    dev = datasets.restrict_classes(_dev_with_records(), datasets.MITBIH_CLASSES, "aami4")
    val = dev.take(np.arange(40))
    before = val.X.copy()
    cfg = resolve({"epochs": 1, "batch_size": 16, "n_conv_blocks": 1, "layer_1_size": 4,
                   "layer_FC_size": 0, "aug_scale": 0.3, "aug_noise": 0.1})
    model = models.build(cfg, (187, 1), 4)
    seen = []
    training.fit(model, cfg, dev, val, datasets.CLASS_SETS["aami4"], seen.append,
                 training.StopRequest())
    assert np.array_equal(val.X, before) and np.array_equal(dev.X[:40], before)
    probs = model.predict(model_inputs.model_inputs(val, cfg), verbose=0)
    acc = float((probs.argmax(axis=1) == val.y).mean())
    assert seen[0]["val_accuracy"] == pytest.approx(acc)  # scored on the beats as they are


def _constant_model(probs):
    """A model that predicts ``probs`` for every beat (zero kernel, log-probability bias)."""
    import keras

    beat = keras.Input((187, 1), name="beat")
    out = keras.layers.Dense(len(probs), activation="softmax", kernel_initializer="zeros",
                             bias_initializer=keras.initializers.Constant(np.log(probs)))(
        keras.layers.Flatten()(beat))
    return keras.Model(beat, out)


def test_s_gate_moves_s_calls_to_n_only_where_the_rhythm_is_irregular():
    rr = np.zeros((4, len(sidecar.RR_FEATURES)), dtype=np.float32)
    rr[:, sidecar.RR_FEATURES.index("local_irregularity")] = [0.02, 0.09, 0.11, 0.4]
    split = Split(np.zeros((4, 187), dtype=np.float32), np.array([1, 1, 0, 0]), rr=rr)
    model = _constant_model([0.1, 0.6, 0.2, 0.1])  # N S V F: every beat called S
    config = resolve({"classes": "aami4", "s_gate_irregularity": 0.1})
    probs = training.predict_proba(model, split, config)
    assert probs.argmax(axis=1).tolist() == [1, 1, 0, 0]  # S kept where regular
    np.testing.assert_allclose(probs[2:], [[0.7, 0, 0.2, 0.1]] * 2, atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-6)
    plain = training.predict_proba(model, split, resolve({"classes": "aami4"}))
    assert plain.argmax(axis=1).tolist() == [1, 1, 1, 1]  # off by default
    with pytest.raises(ValueError, match="needs the beats' RR features"):
        training.predict_proba(model, Split(split.X, split.y), config)


@pytest.mark.parametrize("setting, says, needs", [
    ({"model": "seq2seq"}, "'model': seq2seq reads consecutive beats", "record"),
    ({"rr_features": True}, "'rr_features': True feeds each beat's RR intervals", "RR features"),
    ({"s_gate_irregularity": 0.1}, "'s_gate_irregularity': 0.1 moves S calls to N",
     "RR features"),
    ({"v_template_clusters": 10}, "'v_template_clusters': 10 shares the V probability",
     "record"),
    ({"prior_adaptation": 0.5}, "'prior_adaptation': 0.5 re-estimates each record's balance",
     "record"),
    ({"beat_normalization": "record_median"}, "'beat_normalization': record_median normalizes",
     "record"),
])
def test_run_refuses_data_without_the_sidecar_fields_an_option_needs(tmp_path, setting, says,
                                                                     needs):
    from types import SimpleNamespace

    from ecgsweep.run_start import check_sidecar as _check_sidecar

    config = resolve(setting)
    source = SimpleNamespace(files={"train": str(tmp_path / "x.csv")}, name="mitbih")
    bare = Split(np.zeros((2, 187)), np.zeros(2, int))
    with pytest.raises(UserError, match=f"config key {says}.* and needs each beat's {needs}, from "
                                        r"the beat sidecar.*x\.csv\) has none \(.*x\.beats\.csv "
                                        "missing"):
        _check_sidecar(config, bare, source)
    full = Split(bare.X, bare.y, records=np.array(["a", "a"]), rr=np.zeros((2, 11)))
    _check_sidecar(config, full, source)  # nothing missing: no error
    _check_sidecar(resolve({}), bare, source)  # the default needs none


def test_rr_features_refuse_what_cannot_carry_rr():
    from ecgsweep.run_start import check_combinations as _check_rr_combinations

    for extra in ({"resample": "smote"}, {"augment_synthetic": 0.5},
                  {"pretrained": "models/cnn/best.keras"}):
        with pytest.raises(UserError, match="not supported together with"):
            _check_rr_combinations(resolve({"rr_features": True, **extra}))
    _check_rr_combinations(resolve({"rr_features": True}))


def test_record_median_channel_is_the_beat_minus_its_records_median_beat():
    from ecgsweep.data import beatnorm

    X = np.array([[0, 1, 2], [2, 1, 0], [4, 4, 4], [10, 0, 0], [0, 0, 10]], dtype=np.float32)
    records = np.array(["a", "a", "a", "b", "b"])
    medians = beatnorm.record_median_beats(X, records)
    # record a: sample-wise medians of (0, 2, 4), (1, 1, 4), (2, 0, 4); record b: means of two
    assert medians[:3].tolist() == [[2, 1, 2]] * 3 and medians[3:].tolist() == [[5, 0, 5]] * 2
    out = beatnorm.beat_channels(X, records, "record_median")
    assert out.shape == (5, 3, 2) and np.array_equal(out[..., 0], X)
    assert out[..., 1].tolist() == [[-2, 0, 0], [0, 0, -2], [2, 3, 2], [5, 0, -5], [-5, 0, 5]]
    assert np.array_equal(beatnorm.beat_channels(X, None, "none"), X[..., None])
    with pytest.raises(ValueError, match="record"):
        beatnorm.beat_channels(X, None, "record_median")


def test_record_median_uses_only_the_beats_own_record():
    from ecgsweep.data import beatnorm

    dev = _dev_with_records(n_records=3, per_record=9)
    before = beatnorm.beat_channels(dev.X, dev.records, "record_median")
    changed = dev.X.copy()
    other = dev.records != "r0"
    changed[other] = changed[other] * 7 + 3  # every other record's beats, nothing of r0
    after = beatnorm.beat_channels(changed, dev.records, "record_median")
    mine = ~other
    assert np.array_equal(after[mine], before[mine])
    assert not np.allclose(after[other][..., 1], before[other][..., 1])
    # the order of the beats, or scoring r0 alone, does not change r0's channel either
    alone = beatnorm.beat_channels(dev.X[mine], dev.records[mine], "record_median")
    assert np.array_equal(alone, before[mine])
    order = np.random.default_rng(0).permutation(len(dev))
    shuffled = beatnorm.beat_channels(dev.X[order], dev.records[order], "record_median")
    assert np.array_equal(shuffled, before[order])


def test_beat_normalization_feeds_train_validation_and_eval_alike():
    from ecgsweep import evaluation
    from ecgsweep.data import beatnorm
    from ecgsweep.model_record import ModelRecord

    dev = datasets.restrict_classes(_dev_with_records(), datasets.MITBIH_CLASSES, "aami4")
    config = resolve({"beat_normalization": "record_median", "rr_features": True, "epochs": 1,
                      "batch_size": 32, "classes": "aami4", "n_conv_blocks": 1,
                      "layer_1_size": 4})
    inputs = model_inputs.model_inputs(dev, config)
    assert inputs["beat"].shape == (len(dev), 187, 2)
    model = models.build(config, (187, beatnorm.channels("record_median")), 4)
    result = training.fit(model, config, dev, dev, datasets.CLASS_SETS["aami4"], lambda m: None,
                          training.StopRequest())
    assert result.kept_epoch == 1
    member = evaluation.LoadedModel(Path("m.keras"), model, ModelRecord(config=config))
    direct = model.predict(inputs, verbose=0)
    assert np.allclose(evaluation.predict_proba([member], dev), direct, atol=1e-6)
    with pytest.raises(datasets.UserError, match="beat_normalization"):
        evaluation.predict_proba([member], Split(dev.X, dev.y, None, dev.rr))


def test_beat_normalization_refuses_what_has_no_record():
    from ecgsweep.run_start import check_combinations as _check_beat_normalization

    dev = _dev_with_records()
    source = datasets.DataSource("x", datasets.MITBIH_CLASSES)
    for extra in ({"resample": "smote"}, {"augment_synthetic": 0.5},
                  {"pretrained": "models/cnn/best.keras"}):
        with pytest.raises(UserError, match="not supported together with"):
            _check_beat_normalization(resolve({"beat_normalization": "record_median", **extra}))
    _check_beat_normalization(resolve({"beat_normalization": "record_median"}))
    _check_beat_normalization(resolve({"beat_normalization": "record_median", "aug_noise": 0.1}))


def test_augmentation_takes_the_record_channel_against_the_augmented_beat():
    from ecgsweep import augment
    from ecgsweep.data import beatnorm

    dev = _dev_with_records()
    beats = beatnorm.beat_channels(dev.X, dev.records, "record_median")
    record_median = beatnorm.record_median_beats(dev.X, dev.records)
    config = {"aug_shift": 3, "aug_wander": 0.1, "aug_noise": 0.02}
    out = augment.augment_channels(beats, np.random.default_rng(0), config)
    alone = augment.augment_beats(dev.X, np.random.default_rng(0), config)
    assert out.shape == beats.shape and np.allclose(out[:, :, 0], alone)
    assert np.allclose(out[:, :, 1], alone - record_median, atol=1e-6)
    assert not np.allclose(out[:, :, 1], beats[:, :, 1])
    one_channel = augment.augment_channels(beats[:, :, :1], np.random.default_rng(0), config)
    assert np.allclose(one_channel[:, :, 0], alone)


def test_split_seed_fixes_the_folds_whatever_the_seed():
    from ecgsweep.folds import split_seed

    assert split_seed(resolve({"seed": 7})) == 7
    assert split_seed(resolve({"seed": 7, "split_seed": 42})) == 42
