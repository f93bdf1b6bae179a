"""``other_lead_data``: each fold also trains on its training records' beats in another
lead, never validates on them; ``code/data.py wfdb --lead other`` writes that data."""

import re
from pathlib import Path

import numpy as np
import pytest

from conftest import copy_records, write_records_csv
from ecgsweep import folds, params, run
from ecgsweep.cli import UserError
from ecgsweep.config import resolve
from ecgsweep.data import other_lead
from ecgsweep.data import wfdb_beats as W
from ecgsweep.data.datasets import Split

from test_kfold import FakeArtifact, FakeRun, _config

RECORDS = {f"1{i:02d}": 60 for i in range(6)}


def _split(records: dict[str, int], fill: float) -> Split:
    names = np.concatenate([[r] * n for r, n in records.items()])
    y = np.arange(len(names)) % 4
    return Split(np.full((len(names), 187), fill, np.float32), y, names)


def test_each_fold_trains_on_its_records_other_lead_and_validates_on_the_first_lead_alone(
        capsys):
    dev = _split(RECORDS, 0.0)
    other = other_lead.checked(_split({r: n for r, n in RECORDS.items() if r != "105"}, 1.0),
                               dev, "other/")
    config = resolve({"folds": 3, "val_split": "record", "classes": "aami4"})
    seen = 0
    for fold, _ in folds.development_folds(config, ("N", "S", "V", "F"), dev, other):
        trained_on = set(fold.train.records[fold.train.X[:, 0] == 0.0])
        added = fold.train.records[fold.train.X[:, 0] == 1.0]
        assert set(added) == {f"{r}+other-lead" for r in trained_on if r != "105"}
        assert len(added) == 60 * len(trained_on - {"105"})
        assert not set(fold.val.records) & trained_on and (fold.val.X == 0.0).all()
        seen += len(fold.val)
    assert seen == len(dev)  # validation is the development data, every beat once
    assert len(re.findall(r"fold \d: \d+ training beats added from another lead",
                          capsys.readouterr().out)) == 3


def test_splits_followed_by_another_keep_every_per_beat_field_both_have():
    a, b = _split({"100": 3}, 0.0), _split({"101": 2}, 1.0)
    a.rr, b.rr = np.zeros((3, 4)), np.ones((2, 4))
    both = a.followed_by(b)
    assert both.records.tolist() == ["100"] * 3 + ["101"] * 2
    assert both.X[:, 0].tolist() == [0, 0, 0, 1, 1] and both.rr[:, 0].tolist() == [0, 0, 0, 1, 1]
    assert both.r_peak is None  # neither has it
    assert a.followed_by(Split(b.X, b.y)).records is None  # one lacks it


def test_other_lead_data_must_match_the_development_records_and_rows():
    dev = _split({"100": 5, "101": 5}, 0.0)
    with pytest.raises(UserError, match=r"other/ holds records the development data does not "
                                        r"\(102\)"):
        other_lead.checked(_split({"101": 5, "102": 5}, 1.0), dev, "other/")
    narrow = Split(np.zeros((5, 100), np.float32), np.zeros(5, int), np.array(["100"] * 5))
    with pytest.raises(UserError, match="rows of 100 samples, the development data 187"):
        other_lead.checked(narrow, dev, "other/")
    with pytest.raises(UserError, match="no beat sidecar"):
        other_lead.checked(Split(dev.X, dev.y), dev, "other/")
    renamed = other_lead.checked(_split({"101": 5}, 1.0), dev, "other/")
    assert set(renamed.records) == {"101+other-lead"}
    assert set(other_lead.base_records(renamed.records)) == {"101"}


@pytest.fixture
def fake_wandb(monkeypatch):
    import wandb

    monkeypatch.setattr(wandb, "Artifact", FakeArtifact)


@pytest.mark.slow
@pytest.mark.parametrize("final_model", ["ensemble", "refit"])
def test_a_run_trains_with_the_other_lead_and_a_refit_on_all_of_it(tmp_path, fake_wandb, capsys,
                                                                   final_model):
    data = tmp_path / "data"
    write_records_csv(data, "mitbih_train", RECORDS, seed=0)
    write_records_csv(tmp_path / "other", "mitbih_train", RECORDS, seed=5)
    config = _config(data, tmp_path, folds=2, val_split="record", rr_features=True,
                     beat_normalization="record_median", max_train_beats=0,
                     other_lead_data=str(tmp_path / "other"), final_model=final_model)
    assert run._train(FakeRun(tmp_path, f"other{final_model}"), config) == 0
    out = capsys.readouterr().out
    added = [int(n) for n in re.findall(r"fold \d: (\d+) training beats added", out)]
    assert len(added) == 2 and sum(added) == sum(RECORDS.values())  # each record once
    refits = re.findall(r"refit: (\d+) training beats added", out)
    assert refits == ([str(sum(RECORDS.values()))] if final_model == "refit" else [])


def test_the_other_lead_refuses_validation_beats_split_at_random():
    (problem,) = params.combination_problems({"other_lead_data": "v1", "val_split": "random"})
    assert problem.keys == ("other_lead_data", "val_split")
    assert "training would see them in the other lead" in problem.message
    assert not params.combination_problems({"other_lead_data": "v1", "val_split": "record"})


def test_a_missing_other_lead_folder_is_named_before_training(tmp_path, fake_wandb):
    data = tmp_path / "data"
    write_records_csv(data, "mitbih_train", RECORDS, seed=0)
    config = _config(data, tmp_path, folds=2, val_split="record",
                     other_lead_data=str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match=r"config key 'other_lead_data': .*nowhere: no such "
                                        r"folder or file"):
        run._train(FakeRun(tmp_path, "othermissing"), config)


def test_lead_other_reads_the_first_lead_besides_mlii_and_refuses_a_one_lead_record(
        shared_data, tmp_path):
    src = copy_records(tmp_path / "src", shared_data / "mitdb" / "100")
    summary = W.convert(src, tmp_path / "other", split="train", lead=W.OTHER_LEAD)
    info = summary["per_record"]["100"]
    assert (info["lead"], info["lead_reason"]) == ("V5", "the first lead other than MLII")
    first = W.convert(src, tmp_path / "mlii", split="train")
    assert summary["counts"] == first["counts"]  # the same annotated beats, another lead
    assert W.choose_lead(["V5", "MLII"], W.OTHER_LEAD)[0] == 0
    assert W.choose_lead(["ECG1", "ECG2"], W.OTHER_LEAD)[0] == 1
    assert W.choose_lead(["II"], W.OTHER_LEAD)[0] is None
    header = (src / "100.hea").read_text().splitlines()
    (src / "100.hea").write_text("\n".join([header[0].replace(" 2 ", " 1 ", 1), header[1],
                                            *header[3:]]) + "\n")
    with pytest.raises(UserError, match=r"record 100 has one lead \(MLII\), no other"):
        W.record_beats(src / "100", lead=W.OTHER_LEAD)
