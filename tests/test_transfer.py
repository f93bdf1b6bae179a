"""Transfer learning: feature layers kept, frozen phase leaves them bit-identical, clear errors."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import REPO_ROOT, run_env
from ecgsweep import models, training, transfer
from ecgsweep.cli import UserError
from ecgsweep.config import resolve
from ecgsweep.data import datasets, synth
from ecgsweep.data.datasets import Split
from ecgsweep.run_start import check_pretrained as _check_pretrained

TINY_CNN = {"n_conv_blocks": 2, "layer_1_size": 4, "layer_2_size": 4, "layer_FC_size": 8,
            "kernel_size": 3, "batch_norm": True, "global_pooling": "avg"}


def _save_pretrained(path, width=187, n_classes=5, **over):
    config = resolve({**TINY_CNN, **over})
    keras.utils.set_random_seed(0)
    model = models.build(config, (width, 1), n_classes)
    # move the batch-norm statistics off their initial values, so "unchanged" means something
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.full(layer.moving_mean.shape, 0.05, np.float32))
            layer.moving_variance.assign(np.full(layer.moving_variance.shape, 1.5, np.float32))
    model.save(path)
    return path


def _base_weights(path):
    """The feature layers' weights of a saved model, read afresh from the file."""
    return transfer.feature_extractor(keras.models.load_model(path, compile=False)).get_weights()


def test_feature_layers_end_where_the_dense_head_begins(tmp_path):
    cnn = models.build(resolve(TINY_CNN), (187, 1), 5)
    assert isinstance(transfer.feature_layer(cnn), keras.layers.GlobalAveragePooling1D)
    flat = models.build(resolve({**TINY_CNN, "global_pooling": "flatten", "dropout_rate": 0.0}),
                        (187, 1), 5)
    assert isinstance(transfer.feature_layer(flat), keras.layers.Flatten)
    rnn = models.build(resolve({"model": "rnn", "rnn_units": 4, "downsample": 4}), (187, 1), 5)
    assert isinstance(transfer.feature_layer(rnn), keras.layers.LSTM)
    no_head = keras.Sequential([keras.Input((187, 1)), keras.layers.Flatten()])
    with pytest.raises(UserError, match="not a Dense softmax"):
        transfer.feature_layer(no_head)


def test_frozen_phase_keeps_pretrained_weights_then_fine_tuning_changes_them(tmp_path):
    path = _save_pretrained(tmp_path / "mitbih.keras")
    before = _base_weights(path)
    config = resolve({**TINY_CNN, "dataset": "ptbdb", "pretrained": str(path), "epochs": 2,
                      "freeze_epochs": 1, "fine_tune_lr_factor": 0.5, "learning_rate": 0.01,
                      "batch_size": 32, "layer_FC_size": 6})
    model, base = transfer.build(config, transfer.load_pretrained(path, 187), 2)
    assert model.output_shape == (None, 2) and model.get_layer("probabilities").units == 2
    fine_tune = training.FineTune(base, config["freeze_epochs"], config["fine_tune_lr_factor"])
    snapshots, rates = [], []

    def sink(metrics):
        snapshots.append([w.copy() for w in base.get_weights()])
        rates.append(metrics["learning_rate"])

    X, y = synth.make_ptb(128, 0)
    training.fit(model, config, Split(X, y), Split(*synth.make_ptb(64, 1)), datasets.PTBDB_CLASSES,
                 sink, training.StopRequest(), fine_tune=fine_tune)
    assert len(snapshots) == 2
    after_frozen, after_tuned = snapshots
    assert all(np.array_equal(a, b) for a, b in zip(before, after_frozen))  # bit-identical
    names = [w.path for w in base.weights]
    changed = {n for n, a, b in zip(names, before, after_tuned) if not np.array_equal(a, b)}
    assert any("conv" in n for n in changed), changed  # unfrozen: the features learn
    # batch norm stays in inference mode: moving statistics (and gamma/beta) untouched
    assert not any("bn" in n or "batch_normalization" in n for n in changed), changed
    assert rates[0] == pytest.approx(0.01) and rates[1] == pytest.approx(0.005)


def test_transfer_model_saves_and_reloads(tmp_path):
    path = _save_pretrained(tmp_path / "mitbih.keras")
    config = resolve({**TINY_CNN, "pretrained": str(path)})
    model, _ = transfer.build(config, transfer.load_pretrained(path, 187), 2)
    model.save(tmp_path / "ptb.keras")
    again = keras.models.load_model(tmp_path / "ptb.keras", compile=False)
    X = synth.make_ptb(8, 0)[0][..., None]
    np.testing.assert_allclose(again.predict(X, verbose=0), model.predict(X, verbose=0), atol=1e-6)


def test_missing_or_mismatched_pretrained_file_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match=r"pretrained': .*nowhere\.keras: no such file"):
        transfer.load_pretrained(tmp_path / "nowhere.keras", 187)
    narrow = _save_pretrained(tmp_path / "narrow.keras", width=100)
    with pytest.raises(UserError, match=r"narrow\.keras: the model takes beats of 100 samples but "
                                        r"the data set has 187"):
        transfer.load_pretrained(narrow, 187)
    junk = tmp_path / "junk.keras"
    junk.write_text("not a model")
    with pytest.raises(UserError, match=r"pretrained': .*junk\.keras: not a Keras model file"):
        transfer.load_pretrained(junk, 187)
    whole = _save_pretrained(tmp_path / "whole.keras").read_bytes()
    cut = tmp_path / "cut.keras"
    cut.write_bytes(whole[:len(whole) // 2])  # a copy broken off: the file is there
    with pytest.raises(UserError) as info:
        transfer.load_pretrained(cut, 187)
    assert "damaged, truncated" in str(info.value) and "File not found" not in str(info.value)


def test_pretrained_file_cannot_be_the_slot_the_run_promotes_into(tmp_path):
    slot = tmp_path / "models" / "cnn"
    slot.mkdir(parents=True)
    _save_pretrained(slot / "best.keras")
    config = resolve({"pretrained": str(slot / "best.keras"), "models_dir": str(tmp_path / "models")})
    with pytest.raises(UserError, match="best-model file this run would replace"):
        _check_pretrained(config, 187)
    info = _check_pretrained({**config, "models_dir": str(tmp_path / "other")}, 187)
    assert info["feature_layer"] and len(info["sha256"]) == 64


def test_a_pretrained_model_whose_record_is_damaged_is_one_error_naming_it(tmp_path):
    model = _save_pretrained(tmp_path / "base.keras")
    config = resolve({"pretrained": str(model), "models_dir": str(tmp_path / "models")})
    record = tmp_path / "base.json"
    for text, says in (("[1, 2]", "it holds a JSON list, not an object"),
                       ('{"dataset": "mitbih"}', "its 'dataset' is a str, not a JSON dict"),
                       ('{"config": {', "not a readable model record")):
        record.write_text(text)
        with pytest.raises(UserError) as info:
            _check_pretrained(config, 187)
        message = str(info.value)
        assert message.startswith(f"config key 'pretrained': {record}: ") and says in message
        assert "\n" not in message
    record.write_text(json.dumps({"config": {"model": "cnn"}, "run_id": "r9", "value": 0.7,
                                  "dataset": {"name": "mitbih"}}))
    assert _check_pretrained(config, 187)["source"] == {"model": "cnn", "dataset": "mitbih",
                                                        "run_id": "r9", "value": 0.7}


def test_a_pretrained_model_of_another_family_is_refused_naming_both(tmp_path):
    model = _save_pretrained(tmp_path / "base.keras")
    (tmp_path / "base.json").write_text(json.dumps({"config": {"model": "cnet"}}))
    config = resolve({"pretrained": str(model), "models_dir": str(tmp_path / "models")})
    with pytest.raises(UserError, match=r"base\.keras is a cnet model .*but model=cnn: .*"
                                        r"set model=cnet"):
        _check_pretrained(config, 187)
    assert _check_pretrained({**config, "model": "cnet"}, 187)["source"]["model"] == "cnet"


def test_a_pretrained_model_of_the_run_s_own_data_set_is_named_a_fine_tuning(tmp_path, capsys):
    model = _save_pretrained(tmp_path / "base.keras", n_classes=2)
    (tmp_path / "base.json").write_text(json.dumps({"config": {"model": "cnn"},
                                                    "dataset": {"name": "ptbdb"}}))
    config = resolve({"pretrained": str(model), "models_dir": str(tmp_path / "models"),
                      "dataset": "ptbdb"})
    _check_pretrained(config, 187)
    assert "was trained on ptbdb, the data set this run trains on" in capsys.readouterr().out
    _check_pretrained({**config, "dataset": "mitbih"}, 187)
    assert "note:" not in capsys.readouterr().out


@pytest.mark.slow
def test_train_py_exits_2_naming_the_mismatched_file(tmp_path, synth_dir):
    narrow = _save_pretrained(tmp_path / "narrow.keras", width=100)
    proc = subprocess.run(
        [sys.executable, "code/train.py", "--dataset=ptbdb", f"--data_dir={synth_dir}",
         f"--pretrained={narrow}", f"--models_dir={tmp_path / 'models'}"],
        cwd=REPO_ROOT, env=run_env(tmp_path), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{narrow}: the model takes beats of 100 samples" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "models").exists()  # nothing trained, nothing promoted


def test_a_fine_tuned_model_transfers_again_with_its_feature_layers(tmp_path):
    path = _save_pretrained(tmp_path / "mitbih.keras")
    config = resolve({**TINY_CNN, "pretrained": str(path)})
    first, _ = transfer.build(config, transfer.load_pretrained(path, 187), 2)
    first.save(tmp_path / "ptb.keras")
    tuned = transfer.load_pretrained(tmp_path / "ptb.keras", 187)
    assert transfer.feature_layer(tuned).name == transfer.feature_layer(
        keras.models.load_model(path, compile=False)).name  # the real last feature layer
    second, base = transfer.build(config, tuned, 3)
    assert [layer.name for layer in second.layers].count(transfer.BASE_NAME) == 1
    assert not any(isinstance(sub, keras.Model) for sub in base.layers)  # nests no deeper
    for a, b in zip(_base_weights(path), base.get_weights()):
        np.testing.assert_array_equal(a, b)
    second.save(tmp_path / "again.keras")
    X = synth.make_ptb(8, 0)[0][..., None]
    assert keras.models.load_model(tmp_path / "again.keras", compile=False).predict(
        X, verbose=0).shape == (8, 3)


def test_a_kfold_ensemble_is_refused_naming_the_way_out(tmp_path):
    from ecgsweep.final_model import ensemble_model

    folds = [_save_pretrained(tmp_path / f"fold{i}.keras") for i in (1, 2)]
    ensemble_model(folds).save(tmp_path / "best.keras")
    with pytest.raises(UserError, match=r"k-fold run's ensemble .*final_model=refit, or pass "
                                        r"one fold's model, fold<i>\.keras"):
        transfer.feature_layer(transfer.load_pretrained(tmp_path / "best.keras", 187))


@pytest.mark.parametrize("freeze, epochs, says", [
    (6, 1, "new head trained alone for all 1 epoch(s) (freeze_epochs 6 >= epochs): the "
           "feature layers are never fine-tuned"),
    (0, 3, "all layers at learning rate x 0.1 from epoch 1 (freeze_epochs 0: no frozen phase)"),
    (2, 5, "new head trained alone for 2 epoch(s), then all layers at learning rate x 0.1 to "
           "epoch 5"),
])
def test_the_transfer_line_says_what_the_epochs_will_do(tmp_path, capsys, freeze, epochs, says):
    model = _save_pretrained(tmp_path / "base.keras")
    config = resolve({"pretrained": str(model), "models_dir": str(tmp_path / "models"),
                      "freeze_epochs": freeze, "epochs": epochs, "fine_tune_lr_factor": 0.1})
    _check_pretrained(config, 187)
    assert capsys.readouterr().out.rstrip().endswith(f"; {says}")


def test_early_stopping_in_the_frozen_phase_starts_fine_tuning_at_the_next_epoch(tmp_path,
                                                                                monkeypatch):
    path = _save_pretrained(tmp_path / "mitbih.keras")
    config = resolve({**TINY_CNN, "dataset": "ptbdb", "pretrained": str(path), "epochs": 6,
                      "freeze_epochs": 4, "early_stopping_patience": 1, "learning_rate": 0.01,
                      "fine_tune_lr_factor": 0.5, "batch_size": 32})
    model, base = transfer.build(config, transfer.load_pretrained(path, 187), 2)
    scores = iter([0.5, 0.1, 0.1, 0.1, 0.1, 0.1])  # no gain after epoch 1, nor in the second phase
    monkeypatch.setattr(training, "_validation_metrics", lambda *args: {
        "val_loss": 1.0, "val_accuracy": 0.5, "val_macro_f1": next(scores)})
    seen = []
    result = training.fit(model, config, Split(*synth.make_ptb(64, 0)),
                          Split(*synth.make_ptb(32, 1)), datasets.PTBDB_CLASSES, seen.append,
                          training.StopRequest(), fine_tune=training.FineTune(base, 4, 0.5))
    # frozen: epochs 1-2 (stopped early); fine-tuning numbered on from 3, and its own early
    # stopping ends the run
    assert [m["epoch"] for m in seen] == [1, 2, 3, 4]
    assert [m["learning_rate"] for m in seen] == pytest.approx([0.01, 0.01, 0.005, 0.005])
    assert result.kept_epoch == 1 and result.finished and not result.stopped
