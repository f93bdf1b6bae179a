"""code/sweep.py ensemble: the top K runs' saved models averaged, on the runs' own split."""

import io
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from ecgsweep import sweep_ensemble as ens
from ecgsweep.cli import UserError
from ecgsweep.contract import RUN_MODEL_FILE
from ecgsweep.model_record import ModelRecord
from ecgsweep.sweep.bookkeeping import RUNS_FOLDER_KEY
from ecgsweep.sweep.store import Store, db_path

SWEEP_CFG = {"program": "code/train.py", "method": "random",
             "metric": {"name": "val_macro_f1", "goal": "maximize"},
             "parameters": {"layer_1_size": {"values": [4, 8]}}}


def _record(seed=0, val_fraction=0.1, fingerprint="abc", folds=0):
    return ModelRecord.from_json({
        "config": {"dataset": "mitbih", "data_dir": "d", "seed": seed,
                   "val_fraction": val_fraction, "max_train_beats": 0, "folds": folds},
        "dataset": {"fingerprint": fingerprint}})


def test_refuses_runs_trained_on_different_splits():
    ens.check_same_split([("a", _record()), ("b", _record())])
    with pytest.raises(UserError, match=r"runs a and c .*seed 0 vs 1"):
        ens.check_same_split([("a", _record()), ("b", _record()), ("c", _record(seed=1))])
    with pytest.raises(UserError, match="val_fraction"):
        ens.check_same_split([("a", _record()), ("b", _record(val_fraction=0.2))])
    with pytest.raises(UserError, match="fingerprint"):
        ens.check_same_split([("a", _record()), ("b", _record(fingerprint="xyz"))])
    with pytest.raises(UserError, match="5-fold"):
        ens.check_same_split([("a", _record(folds=5))])


def test_top_runs_are_the_best_finished_ones_with_a_model(tmp_path):
    rows = []
    for i, (state, value) in enumerate([("finished", 0.7), ("failed", None), ("stopped", 0.9),
                                        ("finished", 0.8), ("crashed", 0.95)]):
        files = tmp_path / f"run{i}" / "files"
        files.mkdir(parents=True)
        (files.parent / RUN_MODEL_FILE).write_text("x")
        rows.append({"run_id": f"r{i}", "state": state, "metric_best": value,
                     "files_dir": str(files)})
    assert [r["run_id"] for r, _ in ens.pick_members(rows, "maximize", 2)] == ["r2", "r3"]
    with pytest.raises(UserError, match="only 3 runs with a metric, finished or stopped early"):
        ens.pick_members(rows, "maximize", 4)
    (tmp_path / "run3" / RUN_MODEL_FILE).unlink()
    with pytest.raises(UserError, match="runs r3 kept no model.keras"):
        ens.pick_members(rows, "maximize", 2)


def _saved_run(store, run_dir: Path, run_id: str, value: float, config: dict, dev, seed: int):
    """A finished run whose folder holds an (untrained) model and record, as run.py saves them."""
    import keras

    from ecgsweep import models
    from ecgsweep.data import datasets
    from ecgsweep.model_record import record_path

    keras.utils.set_random_seed(seed)
    model = models.build(config, (187, 1), 5)
    (run_dir / "files").mkdir(parents=True)
    model.save(run_dir / RUN_MODEL_FILE)
    ModelRecord.from_json({
        "config": config, "class_names": ["N", "S", "V", "F", "Q"],
        "dataset": {"fingerprint": datasets.fingerprint(dev)}}).write(
        record_path(run_dir / RUN_MODEL_FILE))
    store.insert_run(run_id, {"seed": {"value": seed}}, state="finished")
    store.update_run(run_id, metric_best=value, files_dir=str(run_dir / "files"))


@pytest.mark.slow
def test_ensemble_is_the_mean_of_the_top_runs_on_their_own_split(tmp_path, synth_dir):
    from ecgsweep import evaluation
    from ecgsweep.config import resolve
    from ecgsweep.data import datasets

    config = resolve({"model": "cnn", "dataset": "mitbih", "data_dir": str(synth_dir),
                      "n_conv_blocks": 1, "layer_1_size": 4, "layer_FC_size": 8, "epochs": 1,
                      "seed": 3, "val_fraction": 0.2})
    dev = datasets.load_development(datasets.resolve_source("mitbih", synth_dir))
    store = Store(db_path(tmp_path / "store", "ens1"), create=True)
    store.set("config", SWEEP_CFG)
    store.set("sweep_id", "ens1")
    for i, value in enumerate([0.5, 0.9, 0.7]):
        _saved_run(store, tmp_path / f"run{i}", f"r{i}", value, config, dev, seed=i)

    result = ens.evaluate_top(store, 2)
    assert result["runs"] == ["r1", "r2"]
    _, val = datasets.train_val_split(dev, 0.2, 3)
    members = [evaluation.load_model(p) for p in result["models"]]
    assert result["validation"]["ensemble"] == pytest.approx(ens.scores(
        val.y, evaluation.predict_proba(members, val.X)))
    assert result["validation"]["best"] == pytest.approx(ens.scores(
        val.y, evaluation.predict_proba(members[:1], val.X)))
    test = datasets.load_test(datasets.resolve_source("mitbih", synth_dir))
    assert result["test"]["ensemble"] == pytest.approx(
        ens.scores(test.y, evaluation.predict_proba(members, test.X)))

    buf = io.StringIO()
    assert ens.ensemble_command("ens1", top=2, store_root=str(tmp_path / "store"),
                                console=Console(file=buf, width=200)) == 0
    text = buf.getvalue()
    assert "best run r1" in text and "ensemble of r1, r2" in text
    assert f"{result['test']['ensemble']['macro_f1']:.4f}" in text
    assert np.isfinite(result["validation"]["ensemble"]["accuracy"])


def test_an_ensemble_from_another_folder_than_its_runs_is_refused_naming_theirs(
        tmp_path, monkeypatch):
    store = Store(db_path(tmp_path / "store", "ens2"), create=True)
    store.set("config", SWEEP_CFG)
    store.set("sweep_id", "ens2")
    store.set(RUNS_FOLDER_KEY, str(tmp_path / "runs"))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    # their folder gone (the store moved): nothing to send the user to, the runs are read
    with pytest.raises(UserError, match="^the sweep has no finished runs"):
        ens.ensemble_command("ens2", top=2, store_root=str(tmp_path / "store"))
    (tmp_path / "runs").mkdir()
    with pytest.raises(UserError) as refused:
        ens.ensemble_command("ens2", top=2, store_root=str(tmp_path / "store"))
    message = str(refused.value)
    assert message.startswith(f"sweep ens2's runs ran in {tmp_path / 'runs'} and name their "
                              "data and models from there")
    assert message.endswith(f"ensemble ens2 --top 2 --store {tmp_path / 'store'}")
    assert f"cd {tmp_path / 'runs'} && " in message


def test_a_sweep_of_another_program_is_refused_by_name(tmp_path):
    store = Store(db_path(tmp_path / "store", "oth1"), create=True)
    store.set("config", {**SWEEP_CFG, "program": "my_train.py"})
    store.set("sweep_id", "oth1")
    with pytest.raises(UserError, match=r"^the sweep runs another program \(my_train.py\), not "
                                        r"this project's code/train.py: its runs keep no model"):
        ens.evaluate_top(store, 2)
    store.set("config", {k: v for k, v in SWEEP_CFG.items() if k != "program"})
    with pytest.raises(UserError, match=r"^the sweep runs the program its command names, not "):
        ens.evaluate_top(store, 2)
