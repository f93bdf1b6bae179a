"""The sweep's closing summary names only the best-model slots of the data its own runs
trained on, and none for a program that leaves no model records."""

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from ecgsweep.artifacts import BestModelSlot
from ecgsweep.cli import script_command
from ecgsweep.model_record import ModelRecord
from ecgsweep.sweep import commands
from ecgsweep.sweep import config as sc
from ecgsweep.sweep.bookkeeping import create_or_join
from ecgsweep.sweep.runner import Options, Runner
from ecgsweep.sweep_hooks import ECG_PROGRAM

REPO = Path(__file__).resolve().parents[1]
# The data key of the stand-in program's records (tests/fake_programs/curve.py save_model).
FAKE_DATA_KEY = "fake-ffffffffffff"


def _sweep(tmp_path: Path, params: str):
    text = ("program: tests/fake_programs/curve.py\nmethod: grid\n"
            "metric: {name: val_macro_f1, goal: maximize}\nparameters:\n"
            "  learning_rate: {values: [0.9, 0.2]}\n  epochs: {value: 1}\n" + params)
    store, _ = create_or_join(tmp_path / "store", sc.loads(text), text, "test.yaml")
    assert Runner(store, Options(poll_s=0.05, cwd=str(REPO), gpus=[])).run() == 0
    return store


def _summary(store, cwd: Path) -> str:
    buf = io.StringIO()
    commands.final_report(store, Console(file=buf, width=300), cwd=str(cwd), program=ECG_PROGRAM)
    return buf.getvalue()


def _promote(models: Path, run_id: str, data_key_name: str, fingerprint: str, value: float):
    model = models.parent / f"{run_id}.keras"
    model.write_bytes(f"model of {run_id}".encode())
    BestModelSlot(models, "cnn").promote_if_better(model, ModelRecord.from_json({
        "metric": "val_macro_f1", "value": value, "run_id": run_id,
        "dataset": {"name": data_key_name, "fingerprint": fingerprint}}))


@pytest.fixture(autouse=True)
def fast_epochs(monkeypatch):
    monkeypatch.setenv("FAKE_EPOCH_S", "0.01")


def test_the_summary_never_names_another_data_sets_model(tmp_path):
    cwd = tmp_path / "cwd"
    (cwd / "models").mkdir(parents=True)
    # a run on data set B, trained last: the family's links point at its model
    _promote(cwd / "models", "runonb", "other.csv", "b" * 16, 0.99)
    store = _sweep(tmp_path, "  models_dir: {value: models}\n")
    out = _summary(store, cwd)
    assert "runonb" not in out and "models/cnn/best.keras" not in out
    assert f"no cnn model promoted yet ({cwd}/models/cnn/{FAKE_DATA_KEY}/best.keras missing)" in out

    # the slot of the sweep's own data, promoted from one of its runs
    best = max(store.runs(), key=lambda r: r["metric_best"])
    _promote(cwd / "models", best["run_id"], "fake.csv", "f" * 16, 0.5)
    _promote(cwd / "models", "runonb2", "other.csv", "b" * 16, 0.999)  # links back to B
    out = _summary(store, cwd)
    assert (f"best cnn model: {cwd}/models/cnn/{FAKE_DATA_KEY}/best.keras (from this sweep, "
            f"run {best['run_id']}, val_macro_f1 0.5)") in out
    assert (f"next: cd {cwd} && {script_command('eval.py', 'eval', cwd)} --model "
            f"{cwd}/models/cnn/{FAKE_DATA_KEY}/best.keras") in out
    assert "runonb" not in out


def test_a_program_that_is_not_ours_gets_no_best_model_lines(tmp_path):
    cwd = tmp_path / "cwd"
    (cwd / "models").mkdir(parents=True)
    _promote(cwd / "models", "ours", "mitbih", "a" * 16, 0.8)
    store = _sweep(tmp_path, "")  # no models_dir: the stand-in leaves no model records
    out = _summary(store, cwd)
    assert "best.keras" not in out and "code/eval.py" not in out and "best cnn" not in out
    assert "upload later: wandb sync" in out


def test_a_damaged_slot_record_is_named_in_one_line(tmp_path):
    cwd = tmp_path / "cwd"
    store = _sweep(tmp_path, "  models_dir: {value: models}\n")
    slot = cwd / "models" / "cnn" / FAKE_DATA_KEY
    slot.mkdir(parents=True)
    (slot / "best.keras").write_bytes(b"x")
    (slot / "best.json").write_text(json.dumps([1, 2]))
    out = _summary(store, cwd)
    line = next(l for l in out.splitlines() if l.startswith("best cnn model:"))
    assert "best.json: not a valid model record: it holds a JSON list, not an object" in line
    assert "code/eval.py" not in out


def test_the_eval_hint_asks_for_a_test_file_where_the_runs_data_holds_none(tmp_path):
    from ecgsweep import sweep_models
    from ecgsweep.model_record import ModelRecord

    def hint(config):
        record = ModelRecord(config=config, run_id="r1", metric="val_macro_f1", value=0.5)
        rec = {"model": "cnn", "model_path": "m/best.keras", "record": record,
               "problem": None, "from_this_sweep": True,
               "needs_test_csv": not sweep_models._has_test_data(record, tmp_path)}
        return sweep_models.best_model_lines(rec)[-1]

    (tmp_path / "mydata").mkdir()
    (tmp_path / "mydata" / "train.csv").write_text("0.1,0.2,0\n0.3,0.4,1\n")
    assert hint({"dataset": "mydata/train.csv"}).endswith("--model m/best.keras --test TEST.csv")
    (tmp_path / "data").mkdir()
    assert hint({"dataset": "mitbih", "data_dir": "data"}).endswith("--test TEST.csv")
    (tmp_path / "data" / "mitbih_test.csv").write_text("0.1,0.2,0\n")
    assert hint({"dataset": "mitbih", "data_dir": "data"}).endswith("--model m/best.keras")
