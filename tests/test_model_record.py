"""The saved model's record: one type, read and written in one module, its JSON unchanged on
disk, damaged ones named in one line."""

import json

import pytest

from ecgsweep.artifacts import DamagedRecord
from ecgsweep.model_record import DatasetInfo, KFoldSummary, ModelRecord, record_path

# A k-fold run's record as it lies on disk, every key a run writes.
FULL = {
    "metric": "val_macro_f1", "goal": "maximize", "value": 0.81, "best_epoch": 7,
    "metrics": {"val_macro_f1": 0.81, "val_loss": 0.4}, "config": {"model": "cnn", "folds": 2},
    "run_id": "abc", "project": "ecg-sweeps", "sweep_id": None, "run_dir": "wandb/run-abc",
    "class_names": ["N", "S", "V", "F"], "n_classes": 4, "input_shape": [187, 1],
    "dataset": {"name": "mitbih", "files": {"train": "data/mitbih_train.csv"},
                "fingerprint": "f" * 16, "n_train": 900, "n_val": 100,
                "added": {"smote": {"S": 40}}},
    "created": "2026-01-01T00:00:00+0000", "device": "CPU", "keras_version": "3.0",
    "backend": "tensorflow", "stopped": False, "val_confusion": [[5, 1], [0, 4]],
    "val_records": ["101", "106"], "val_confusion_by_record": {"101": [[5, 1], [0, 4]]},
    "transfer": {"pretrained": "base.keras"}, "fold": 1, "folds": 2,
    "kfold": {"folds": 2, "completed": 2, "values": [0.8, 0.82], "mean": 0.81, "std": 0.01,
              "best_epochs": [7, 6], "confusion": [[9, 2], [1, 8]], "ec57": {"rows": []},
              "pooled_macro_f1": 0.8, "val_records": [["101"], ["106"]],
              "record_errors": [{"record": "101"}], "models": ["fold1.keras", "fold2.keras"],
              "eval_command": "python code/eval.py --model fold1.keras --model fold2.keras"},
    "sha256": "0" * 64, "model_file": "best.keras",
}


def test_a_full_record_reads_typed_and_writes_back_the_same_json(tmp_path):
    record = ModelRecord.from_json(FULL)
    assert isinstance(record.dataset, DatasetInfo) and isinstance(record.kfold, KFoldSummary)
    assert record.dataset.added == {"smote": {"S": 40}} and record.kfold.models[1] == "fold2.keras"
    assert record.family == "cnn"
    assert record.to_json() == {**FULL, "schema_version": ModelRecord.SCHEMA_VERSION}
    path = tmp_path / "best.json"
    record.write(path)
    assert ModelRecord.read(path, ranked=True) == record
    assert [p.name for p in tmp_path.iterdir()] == ["best.json"]  # no temp file left


def test_a_record_without_a_schema_version_or_optional_parts_still_reads(tmp_path):
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"config": {"model": "rnn"}, "class_names": ["N", "S"],
                                "dataset": {"fingerprint": "abc"}, "note": "kept"}))
    record = ModelRecord.read(path)
    assert record.class_names == ["N", "S"] and record.dataset.fingerprint == "abc"
    assert record.kfold is None and record.value is None and not record.stopped
    written = record.to_json()
    assert written["note"] == "kept" and written["schema_version"] == 1
    assert not {"kfold", "fold", "sha256", "transfer"} & set(written)


@pytest.mark.parametrize("text, says", [
    ('{"value": 0.5', "not a readable model record"),
    ("[1, 2]", "not a valid model record: it holds a JSON list, not an object"),
    ('{"dataset": ["mitbih"]}', "its 'dataset' is a list, not a JSON dict"),
    ('{"dataset": {"files": "a.csv"}}', "its 'dataset.files' is a str, not a JSON dict"),
    ('{"kfold": {"models": "fold1.keras"}}', "its 'kfold.models' is a str, not a JSON list"),
    ('{"schema_version": 99}', "its schema_version 99 is newer than this ecg-sweeps reads"),
    ('{"schema_version": "1"}', "its 'schema_version' '1' is not a whole number"),
])
def test_a_damaged_record_is_one_error_naming_the_file(tmp_path, text, says):
    path = tmp_path / "model.json"
    path.write_text(text)
    with pytest.raises(DamagedRecord) as info:
        ModelRecord.read(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and says in message and "\n" not in message


def test_a_ranked_record_needs_its_value_metric_and_sha256(tmp_path):
    path = tmp_path / "best.json"
    for missing, says in (("value", "its 'value' None is not a number"),
                          ("metric", "it has no 'metric'"), ("sha256", "it has no 'sha256'")):
        path.write_text(json.dumps({k: v for k, v in FULL.items() if k != missing}))
        ModelRecord.read(path)  # a run folder's record needs none of them
        with pytest.raises(DamagedRecord, match=says):
            ModelRecord.read(path, ranked=True)


def test_the_record_of_a_model_lies_beside_it():
    assert record_path("models/cnn/best.keras").name == "best.json"
    assert record_path("run/fold2.keras").as_posix() == "run/fold2.json"
