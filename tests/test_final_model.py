"""A k-fold run saves and promotes the model its cross-validation measured: its fold models
averaged in one file (final_model: ensemble) or one model refitted on every development
beat (final_model: refit)."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT, run_env, write_records_csv
from ecgsweep import evaluation, final_model, params, run
from ecgsweep.contract import PROMOTE_BY_COORDINATOR, PROMOTE_ENV
from ecgsweep.data.datasets import Split
from ecgsweep.sweep_models import promote_shipped

from test_kfold import FakeArtifact, FakeRun, _config

RECORDS = {f"1{i:02d}": 60 for i in range(6)}


@pytest.fixture(autouse=True)
def fake_wandb(monkeypatch):
    import wandb

    monkeypatch.setattr(wandb, "Artifact", FakeArtifact)
    monkeypatch.delenv(PROMOTE_ENV, raising=False)


@pytest.fixture
def record_data(tmp_path) -> Path:
    """Beats of six development records and three test records, each with its sidecar."""
    data = tmp_path / "data"
    write_records_csv(data, "mitbih_train", RECORDS, seed=0)
    write_records_csv(data, "mitbih_test", {"200": 50, "201": 50, "202": 50}, seed=1)
    return data


def _record_config(data, tmp_path, **over):
    """Two record-grouped folds of one epoch, with every step after the model on."""
    return _config(data, tmp_path, folds=2, val_split="record", classes="aami4",
                   rr_features=True, prior_adaptation=0.5, s_gate_irregularity=0.2,
                   v_template_clusters=3, max_train_beats=0, **over)


def test_the_promoted_model_predicts_as_the_fold_ensemble_eval_scores(record_data, tmp_path,
                                                                     capsys):
    fake = FakeRun(tmp_path, "ens001")
    assert run._train(fake, _record_config(record_data, tmp_path)) == 0
    run_dir = Path(fake.dir).parent
    folds = [run_dir / "fold1.keras", run_dir / "fold2.keras"]

    best_path = tmp_path / "models" / "cnn" / "best.keras"
    best = json.loads(best_path.with_suffix(".json").read_text())
    fold_values = [json.loads(p.with_suffix(".json").read_text())["value"] for p in folds]
    assert best["final_model"] == "ensemble" and best["members"] == [str(p) for p in folds]
    assert best["value"] == pytest.approx(np.mean(fold_values))
    fold_priors = [json.loads(p.with_suffix(".json").read_text())["class_prior"] for p in folds]
    assert best["class_prior"] == pytest.approx(np.mean(fold_priors, axis=0).tolist())
    assert fold_priors[0] != fold_priors[1]  # each fold's training records have their own mix
    assert fake.summary["run_model_path"] == str(run_dir / "model.keras")
    out = capsys.readouterr().out
    assert f"python code/eval.py --model {best_path}" in out

    promoted = evaluation.load_model(best_path)
    members = [evaluation.load_model(p) for p in folds]
    test, _ = evaluation.test_data_for(promoted, None, None)
    alone = evaluation.predict_proba([promoted], test)
    together = evaluation.predict_proba(members, test)
    assert np.allclose(alone, together, atol=1e-6)
    assert not np.allclose(alone, evaluation.predict_proba(members[:1], test), atol=1e-6)
    # report.json names what it scored: the run, and that the file is its folds' ensemble
    report = evaluation.evaluate([best_path], out_dir=tmp_path / "rep", bootstrap=0)
    assert report["sources"] == [{"run_id": "ens001", "run_dir": str(run_dir),
                                  "final_model": "ensemble", "model": "cnn",
                                  "metric": best["metric"], "value": best["value"]}]


class StandIn:
    """A model that answers fixed probabilities, whatever it is fed."""

    def __init__(self, probs):
        self.probs = np.asarray(probs, dtype=np.float32)

    def predict(self, inputs, batch_size=None, verbose=0):
        return self.probs


def _member(probs, **config):
    from ecgsweep.evaluation import LoadedModel
    from ecgsweep.model_record import ModelRecord

    record = ModelRecord(class_names=["N", "S", "V", "F"],
                         config={"model": "cnn", "v_template_clusters": 2, **config})
    return LoadedModel(Path("stand-in.keras"), StandIn(probs), record)


def test_eval_averages_the_models_before_the_steps_they_share():
    from ecgsweep import training
    from ecgsweep.data.sidecar import RR_FEATURES

    rng = np.random.default_rng(0)
    beats = Split(rng.random((8, 187), dtype=np.float32), np.zeros(8, int),
                  records=np.array(["a"] * 4 + ["b"] * 4), rr=np.zeros((8, len(RR_FEATURES))))
    probs = [rng.dirichlet(np.ones(4), size=8) for _ in range(2)]
    members = [_member(p) for p in probs]
    config = members[0].record.config
    expected = training.per_record_steps(np.mean(probs, axis=0), beats, config)
    each_first = np.mean([training.per_record_steps(p, beats, config) for p in probs], axis=0)
    assert not np.allclose(expected, each_first)  # the V templates' step is not linear
    assert np.allclose(evaluation.predict_proba(members, beats), expected)
    # members with other settings each apply their own steps: the mean of their results
    other = _member(probs[1], v_template_clusters=0)
    assert np.allclose(evaluation.predict_proba([members[0], other], beats),
                       np.mean([evaluation.predict_proba([m], beats)
                                for m in (members[0], other)], axis=0))


def test_refit_trains_one_model_on_every_development_beat(record_data, tmp_path, monkeypatch,
                                                         capsys):
    from ecgsweep import training

    fits = []
    real_fit = training.fit

    def recording_fit(model, config, train, val, *args, **kwargs):
        fits.append((len(train), val is None, config["epochs"]))
        return real_fit(model, config, train, val, *args, **kwargs)

    scores = iter([0.9, 0.1, 0.1, 0.9])  # fold 1 keeps epoch 1, fold 2 epoch 2: mean 1.5

    def stand_in_validation(model, val, config, class_names, class_prior):
        return {"val_loss": 1.0, "val_accuracy": 0.5, "val_macro_f1": next(scores)}

    monkeypatch.setattr(training, "fit", recording_fit)
    monkeypatch.setattr(training, "_validation_metrics", stand_in_validation)
    fake = FakeRun(tmp_path, "refit01")
    config = _record_config(record_data, tmp_path, final_model="refit", epochs=2,
                            keep_epoch="best")
    assert run._train(fake, config) == 0
    out = capsys.readouterr().out

    run_dir = Path(fake.dir).parent
    n_dev = sum(json.loads((run_dir / f"fold{i}.json").read_text())["dataset"]["n_val"]
                for i in (1, 2))  # the folds' validation parts cover the development beats
    assert fits[-1] == (n_dev, True, 2)  # every beat, no validation data, 1.5 epochs -> 2
    best = json.loads((tmp_path / "models" / "cnn" / "best.json").read_text())
    assert best["final_model"] == "refit" and best["best_epoch"] == 2
    assert best["dataset"]["n_train"] == n_dev and "members" not in best
    assert len(best["class_prior"]) == 4 and sum(best["class_prior"]) == pytest.approx(1.0)
    assert best["value"] == pytest.approx(0.9)  # the folds' mean, not a score of the refit
    assert [m["refit/epoch"] for m in fake.logged if "refit/epoch" in m] == [1, 2]
    assert "no validation data" in out
    assert json.loads((run_dir / "model.json").read_text())["final_model"] == "refit"


def test_refit_epochs_are_the_folds_kept_epochs_mean_rounded_half_up():
    assert final_model.refit_epochs([10, 10, 10]) == 10
    assert final_model.refit_epochs([1, 2]) == 2
    assert final_model.refit_epochs([2, 3, 3, 3]) == 3
    assert final_model.refit_epochs([1, 1, 2]) == 1


def test_refit_refuses_the_plateau_schedule_it_cannot_follow():
    [problem] = params.combination_problems(
        {"final_model": "refit", "folds": 4, "lr_schedule": "plateau"})
    assert problem.keys == ("final_model", "lr_schedule")
    assert "without validation data" in problem.message
    assert not params.combination_problems({"final_model": "refit", "folds": 0,
                                            "lr_schedule": "plateau"})


def test_the_coordinator_promotes_a_shipped_kfold_runs_own_model(record_data, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setenv(PROMOTE_ENV, PROMOTE_BY_COORDINATOR)
    fake = FakeRun(tmp_path, "ship01")
    assert run._train(fake, _record_config(record_data, tmp_path)) == 0
    assert not (tmp_path / "models").exists()
    shipped = tmp_path / "back" / "run"
    shutil.copytree(Path(fake.dir).parent, shipped)

    note = promote_shipped(shipped, tmp_path)
    assert note.startswith("best model updated by the coordinator")
    best = json.loads((tmp_path / "models" / "cnn" / "best.json").read_text())
    run_record = json.loads((shipped / "model.json").read_text())
    assert best["value"] == run_record["value"] == pytest.approx(run_record["kfold"]["mean"])
    assert best["final_model"] == "ensemble"
    assert best["members"] == [str(shipped / f"fold{i}.keras") for i in (1, 2)]
    assert best["run_dir"] == str(shipped)  # where the run lies now, not the node's folder
    assert (tmp_path / "models" / "cnn" / "best.keras").read_bytes() == (
        shipped / "model.keras").read_bytes()


ENSEMBLE_ON_A_BACKEND = textwrap.dedent("""
    import sys
    import numpy as np
    import keras
    from ecgsweep import config, final_model, models

    out = sys.argv[1]
    cfg = config.resolve({"model": "cnet", "n_res_blocks": 1, "n_filters": 4,
                          "layer_FC_size": 4, "rr_features": True})
    paths = []
    for i in range(2):
        keras.utils.set_random_seed(i)
        models.build(cfg, (187, 1), 4).save(f"{out}/fold{i}.keras")
        paths.append(f"{out}/fold{i}.keras")
    final_model.ensemble_model(paths).save(f"{out}/model.keras")
    back = keras.models.load_model(f"{out}/model.keras", compile=False)
    rng = np.random.default_rng(0)
    x = {"beat": rng.random((9, 187, 1), dtype=np.float32),
         "rr": rng.random((9, models.rr_width(cfg)), dtype=np.float32)}
    folds = [keras.models.load_model(p, compile=False).predict(x, verbose=0) for p in paths]
    assert np.allclose(back.predict(x, verbose=0), np.mean(folds, axis=0), atol=1e-6)
    print("ok", keras.backend.backend())
""")


@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_the_ensemble_file_saves_loads_and_predicts_on_each_backend(tmp_path, backend):
    env = run_env(tmp_path, KERAS_BACKEND=backend, PYTHONPATH=str(REPO_ROOT / "code"))
    proc = subprocess.run([sys.executable, "-c", ENSEMBLE_ON_A_BACKEND, str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith(f"ok {backend}")
