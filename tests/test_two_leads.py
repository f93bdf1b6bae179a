"""Rows of two leads: ``code/data.py wfdb --two-leads`` writes each beat in the lead read and
then in the record's first other lead; ``beat_leads: 2`` feeds them to the model as input
channels, and every side refuses rows of the other layout by name."""

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import copy_records, write_records_csv
from ecgsweep import evaluation, params, run
from ecgsweep.cli import UserError
from ecgsweep.data import beatnorm, sidecar
from ecgsweep.data import wfdb_beats as W
from ecgsweep.data.kaggle_csv import load_csv, write_csv

from test_kfold import FakeArtifact, FakeRun, _config

RECORDS = {f"1{i:02d}": 60 for i in range(4)}


def test_two_leads_rows_are_the_lead_read_then_the_other_lead_turned_upright(shared_data,
                                                                            tmp_path):
    src = copy_records(tmp_path / "src", shared_data / "mitdb" / "100")
    both = W.convert(src, tmp_path / "both", split="train", two_leads=True)
    first = W.convert(src, tmp_path / "mlii", split="train")
    other = W.convert(src, tmp_path / "v5", split="train", lead=W.OTHER_LEAD, qrs_up=True)
    X, y = load_csv(tmp_path / "both" / "mitbih_train.csv")
    X1, y1 = load_csv(tmp_path / "mlii" / "mitbih_train.csv")
    X2, _ = load_csv(tmp_path / "v5" / "mitbih_train.csv")
    assert X.shape == (len(X1), 2 * W.BEAT_LENGTH) and (y == y1).all()
    assert np.allclose(X[:, :W.BEAT_LENGTH], X1) and np.allclose(X[:, W.BEAT_LENGTH:], X2)
    info = both["per_record"]["100"]
    assert (info["lead"], info["second_lead"]) == ("MLII", "V5")
    assert info["second_lead_inverted"] == other["per_record"]["100"]["inverted"]
    assert both["method"]["leads"] == 2 and first["method"]["leads"] == 1
    # the records' R peaks and rhythm are the lead read's
    peaks = sidecar.read(sidecar.sidecar_path(tmp_path / "both" / "mitbih_train.csv"), len(X))[1]
    assert (peaks == sidecar.read(sidecar.sidecar_path(tmp_path / "mlii" / "mitbih_train.csv"),
                                  len(X1))[1]).all()


def test_two_leads_refuses_a_one_lead_record_and_a_reference_of_the_other_layout(
        shared_data, tmp_path):
    src = copy_records(tmp_path / "src", shared_data / "mitdb" / "100")
    W.convert(src, tmp_path / "one", split="train")
    with pytest.raises(UserError, match=r"--lead-like .*converted with other rows than this "
                                        r"conversion \(leads 1 / 2"):
        W.convert(src, tmp_path / "x", split="test", two_leads=True,
                  lead_like=tmp_path / "one")
    header = (src / "100.hea").read_text().splitlines()
    (src / "100.hea").write_text("\n".join([header[0].replace(" 2 ", " 1 ", 1), header[1],
                                            *header[3:]]) + "\n")
    with pytest.raises(UserError, match=r"record 100 has one lead \(MLII\); --two-leads needs "
                                        "records of two leads"):
        W.record_beats_and_rhythm(src / "100", two_leads=True)


def test_a_conversion_written_before_the_leads_key_reads_as_one_lead():
    assert W.layout_differences({"target_fs": 125.0, "beat_length": 187, "before_r_s": 0.0},
                                W.row_layout(187, 0.0)) == []
    assert W.layout_differences({"beat_length": 187, "target_fs": 125.0, "before_r_s": 0.0},
                                W.row_layout(187, 0.0, 2)) == ["leads 1 / 2"]


def test_beat_channels_put_each_lead_and_its_record_relative_beat_on_a_channel():
    lead1 = np.array([[1, 2, 3], [3, 4, 5], [0, 0, 0]], np.float32)
    lead2 = lead1 * 10
    records = np.array(["a", "a", "b"])
    plain = beatnorm.beat_channels(np.hstack([lead1, lead2]), records, "none", leads=2)
    assert plain.shape == (3, 3, 2)
    assert (plain[..., 0] == lead1).all() and (plain[..., 1] == lead2).all()
    both = beatnorm.beat_channels(np.hstack([lead1, lead2]), records, "record_median", leads=2)
    assert both.shape == (3, 3, beatnorm.channels("record_median", 2)) == (3, 3, 4)
    assert (both[0, :, 2] == lead1[0] - [2, 3, 4]).all()  # record a's median beat: [2, 3, 4]
    assert (both[0, :, 3] == lead2[0] - [20, 30, 40]).all()
    assert (both[2, :, 2:] == 0).all()  # record b's one beat is its own median
    one = beatnorm.beat_channels(lead1, records, "record_median")
    assert (one[..., 0] == lead1).all() and one.shape == (3, 3, 2)
    with pytest.raises(ValueError, match="rows of 3 samples do not hold 2 leads"):
        beatnorm.beat_channels(lead1, records, "none", leads=2)


@pytest.mark.parametrize("other, keys", [
    ({"aug_noise": 0.1}, ("beat_leads", "aug_noise")),
    ({"other_lead_data": "v1"}, ("beat_leads", "other_lead_data")),
    ({"pretrained": "m.keras"}, ("beat_leads", "pretrained")),
])
def test_two_leads_refuse_what_works_on_beats_of_one_lead(other, keys):
    (problem,) = params.combination_problems({"beat_leads": 2, **other})
    assert problem.keys == keys and "works on beats of one lead" in problem.message
    assert not params.combination_problems({"beat_leads": 1, **other})


def test_a_sequence_model_refuses_two_leads():
    (problem,) = params.combination_problems({"beat_leads": 2, "model": "seq2seq"})
    assert problem.keys == ("model", "beat_leads")


def _two_lead_data(folder: Path, lengths: dict, seed: int, split_json: bool = True) -> Path:
    """A beat CSV of fake records in two leads (the second a scaled copy), with its sidecar,
    and (``split_json``) a split.json saying two leads, as `--two-leads` writes."""
    csv = write_records_csv(folder, "mitbih_train", lengths, seed)
    X, y = load_csv(csv)
    write_csv(csv, np.hstack([X, 0.5 * X[:, ::-1]]), y)
    if split_json:
        method = W.row_layout(X.shape[1], 0.0, 2)
        (folder / W.SUMMARY_FILE).write_text(json.dumps({"method": method}))
    return csv


@pytest.fixture
def fake_wandb(monkeypatch):
    import wandb

    monkeypatch.setattr(wandb, "Artifact", FakeArtifact)


@pytest.mark.slow
def test_a_two_lead_run_trains_and_its_model_scores_two_lead_rows_only(tmp_path, fake_wandb):
    data = tmp_path / "data"
    _two_lead_data(data, RECORDS, seed=0)
    config = _config(data, tmp_path, folds=2, val_split="record", classes="aami4",
                     rr_features=True, beat_normalization="record_median", max_train_beats=0,
                     beat_leads=2)
    assert run._train(FakeRun(tmp_path, "twoleads"), config) == 0
    loaded = evaluation.load_model(tmp_path / "models" / "cnn" / "best.keras")
    assert tuple(loaded.model.inputs[0].shape[1:]) == (187, 4)
    test_csv = _two_lead_data(tmp_path / "test", {"200": 50}, seed=3)
    test, _ = evaluation.test_data_for(loaded, str(test_csv), None)
    probs = evaluation.predict_proba([loaded], test)
    assert probs.shape == (len(test), 4) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    one_lead = write_records_csv(tmp_path / "one", "mitbih_train", {"200": 50}, seed=3)
    one_lead_split, where = evaluation.test_data_for(loaded, str(one_lead), None)
    with pytest.raises(UserError, match=r"expects beats of 187 samples in each of 2 leads \(374 "
                                        r"per row, before the label\) but .* has 187; convert "
                                        r"it with "
                                        r"`code/data.py wfdb --two-leads`"):
        evaluation.check_fit(loaded, one_lead_split, where)
    evaluation.check_fit(loaded, test, "the two-lead rows")


@pytest.mark.parametrize("beat_leads, message", [
    (1, r"config key 'beat_leads': 1, but .*mitbih_train.csv was converted with 2 lead\(s\) "
        r"per row .*split.json\); set beat_leads=2"),
])
def test_a_run_refuses_rows_of_another_layout_before_training(tmp_path, fake_wandb, beat_leads,
                                                              message):
    data = tmp_path / "data"
    _two_lead_data(data, RECORDS, seed=0)
    config = _config(data, tmp_path, folds=2, val_split="record", beat_leads=beat_leads)
    with pytest.raises(UserError, match=message):
        run._train(FakeRun(tmp_path, "layout"), config)


def test_a_two_lead_run_refuses_rows_that_do_not_split_in_two(tmp_path, fake_wandb):
    data = tmp_path / "data"
    write_records_csv(data, "mitbih_train", RECORDS, seed=0)
    config = _config(data, tmp_path, folds=2, val_split="record", beat_leads=2)
    with pytest.raises(UserError, match=r"config key 'beat_leads': 2: .*rows of 187 samples do "
                                        r"not hold 2 leads of equal width; convert the records "
                                        r"with `code/data.py wfdb --two-leads`"):
        run._train(FakeRun(tmp_path, "odd"), config)

