"""Training pieces: class weights, divergence detection, stop requests, best-epoch weights."""

import numpy as np
import pytest

from ecgsweep import models, training
from ecgsweep.config import resolve
from ecgsweep.data import datasets
from ecgsweep.data.datasets import Split

CLASSES = datasets.MITBIH_CLASSES  # five, as _tiny_split's labels 0..4


def test_class_weights_balanced_and_sqrt():
    y = np.array([0] * 80 + [1] * 20)
    balanced = training.class_weights(y, "balanced", 3)
    assert balanced[0] == pytest.approx(100 / (2 * 80)) and balanced[1] == pytest.approx(100 / (2 * 20))
    assert balanced[2] == 1.0  # absent class
    sqrt = training.class_weights(y, "sqrt", 3)
    assert sqrt[1] == pytest.approx(np.sqrt(balanced[1]))
    assert training.class_weights(y, "none", 3) is None


def test_class_weight_cap_limits_only_the_weights_above_it():
    y = np.array([0] * 90 + [1] * 9 + [2] * 1)  # balanced: 0.37, 3.7, 33.3
    capped = training.class_weights(y, "balanced", 3, cap=5.0)
    assert capped[0] == pytest.approx(100 / (3 * 90)) and capped[1] == pytest.approx(100 / 27)
    assert capped[2] == 5.0
    assert training.class_weights(y, "balanced", 3, cap=0.0)[2] == pytest.approx(100 / 3)


def _tiny_split(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return Split(rng.random((n, 187), dtype=np.float32), rng.integers(0, 5, n))


def test_nan_loss_raises_with_the_epoch():
    config = resolve({"n_conv_blocks": 1, "layer_1_size": 4, "layer_FC_size": 0, "epochs": 3,
                      "batch_size": 16})
    model = models.build(config, (187, 1), 5)
    bad = _tiny_split()
    bad.X[:] = np.float32(1e38)  # overflows to inf/NaN in the first step
    with pytest.raises(training.TrainingDiverged, match="NaN loss at epoch 1"):
        training.fit(model, config, bad, _tiny_split(seed=1), CLASSES, lambda m: None,
                     training.StopRequest())


def test_fit_keeps_the_best_epoch_and_reports_every_epoch():
    config = resolve({"n_conv_blocks": 1, "layer_1_size": 4, "layer_FC_size": 0, "epochs": 3,
                      "batch_size": 16})
    model = models.build(config, (187, 1), 5)
    seen = []
    result = training.fit(model, config, _tiny_split(), _tiny_split(seed=1), CLASSES, seen.append,
                          training.StopRequest())
    assert [m["epoch"] for m in seen] == [1, 2, 3]
    best = max(seen, key=lambda m: m["val_macro_f1"])
    assert result.kept_epoch == best["epoch"]
    assert result.kept_value == best["val_macro_f1"]


def _fit_with_scores(monkeypatch, keep_epoch, scores):
    """Fit three epochs whose val_macro_f1 is ``scores`` (stand-in validation), recording
    the weights after each epoch."""
    config = resolve({"n_conv_blocks": 1, "layer_1_size": 4, "layer_FC_size": 0, "epochs": 3,
                      "batch_size": 16, "keep_epoch": keep_epoch})
    model = models.build(config, (187, 1), 5)
    scores, weights_after = iter(scores), []

    def stand_in_validation(fitted, val, cfg, class_names, class_prior):
        weights_after.append([w.copy() for w in fitted.get_weights()])
        return {"val_loss": 1.0, "val_accuracy": 0.5, "val_macro_f1": next(scores)}

    monkeypatch.setattr(training, "_validation_metrics", stand_in_validation)
    result = training.fit(model, config, _tiny_split(), _tiny_split(seed=1), CLASSES,
                          lambda m: None, training.StopRequest())
    return model, result, weights_after


@pytest.mark.parametrize("keep_epoch, kept", [("best", 1), ("last", 3)])
def test_keep_epoch_chooses_whose_weights_the_model_keeps(monkeypatch, keep_epoch, kept):
    model, result, weights_after = _fit_with_scores(monkeypatch, keep_epoch, [0.9, 0.5, 0.1])
    assert result.kept_epoch == kept
    assert result.kept_value == [0.9, 0.5, 0.1][kept - 1]
    assert result.kept_metrics["epoch"] == kept
    assert len(result.history) == 3
    for held, saved in zip(model.get_weights(), weights_after[kept - 1]):
        np.testing.assert_array_equal(held, saved)
    # The epochs differ, so holding the kept epoch's weights is not a coincidence.
    assert any(not np.array_equal(a, b) for a, b in zip(weights_after[0], weights_after[2]))


def _fit_recording(monkeypatch, ema_epochs, epochs=3, stop_after=None):
    """Fit with a stand-in validation that records the weights it is shown and the
    training loss of every epoch; ``stop_after`` epochs, a stop is requested."""
    import keras

    keras.utils.set_random_seed(0)
    config = resolve({"n_conv_blocks": 1, "layer_1_size": 4, "layer_FC_size": 0,
                      "epochs": epochs, "batch_size": 16, "keep_epoch": "last",
                      "ema_epochs": ema_epochs})
    model = models.build(config, (187, 1), 5)
    validated, stop = [], training.StopRequest()

    def stand_in_validation(fitted, val, cfg, class_names, class_prior):
        validated.append([w.copy() for w in fitted.get_weights()])
        stop.requested = len(validated) == stop_after
        return {"val_loss": 1.0, "val_accuracy": 0.5, "val_macro_f1": 0.5}

    monkeypatch.setattr(training, "_validation_metrics", stand_in_validation)
    result = training.fit(model, config, _tiny_split(), _tiny_split(seed=1), CLASSES,
                          lambda m: None, stop)
    return model, result, validated


def test_ema_validates_and_keeps_the_averaged_weights_while_training_goes_on_raw(monkeypatch):
    plain_model, plain, plain_validated = _fit_recording(monkeypatch, ema_epochs=0)
    model, result, validated = _fit_recording(monkeypatch, ema_epochs=1)
    assert model.optimizer.use_ema and not plain_model.optimizer.use_ema
    assert model.optimizer.ema_momentum == pytest.approx(1 - 1 / 4)  # 64 beats / 16 = 4 steps
    # training goes on from the raw weights: the same losses as without averaging ...
    np.testing.assert_allclose([h["loss"] for h in result.history],
                               [h["loss"] for h in plain.history], rtol=1e-5)
    # ... while validation sees, and the model keeps, the averaged ones
    assert any(not np.allclose(a, b) for a, b in zip(validated[-1], plain_validated[-1]))
    for held, seen in zip(model.get_weights(), validated[-1]):
        np.testing.assert_array_equal(held, seen)


def test_ema_run_stopped_early_keeps_the_averaged_weights_of_its_last_epoch(monkeypatch):
    model, result, validated = _fit_recording(monkeypatch, ema_epochs=1, epochs=5,
                                              stop_after=2)
    assert result.stopped and result.kept_epoch == 2 and len(validated) == 2
    for held, seen in zip(model.get_weights(), validated[-1]):
        np.testing.assert_array_equal(held, seen)


def test_a_stop_between_epochs_ends_the_fit_before_the_next():
    config = resolve({"n_conv_blocks": 1, "layer_1_size": 4, "layer_FC_size": 0, "epochs": 50,
                      "batch_size": 16})
    model = models.build(config, (187, 1), 5)
    stop = training.StopRequest()
    seen = []

    def sink(metrics):
        seen.append(metrics)
        stop.requested = True  # as if SIGTERM arrived once epoch 1 had ended

    result = training.fit(model, config, _tiny_split(), _tiny_split(seed=1), CLASSES, sink, stop)
    assert len(seen) == 1 and result.stopped


def _fit_stopped_in_epoch(monkeypatch, keep_epoch, epoch, batch, scores=(0.5, 0.9), **over):
    """Fit up to three epochs of 4 batches whose val_macro_f1 is ``scores``; a stop arrives
    during batch ``batch`` of epoch ``epoch``. Returns the result, the metrics logged and
    the weights each validation saw."""
    import keras

    config = resolve({"n_conv_blocks": 1, "layer_1_size": 4, "layer_FC_size": 0, "epochs": 3,
                      "batch_size": 16, "keep_epoch": keep_epoch, **over})
    model = models.build(config, (187, 1), 5)
    stop, scores, validated, seen = training.StopRequest(), iter(scores), [], []

    class StopWithin(keras.callbacks.Callback):  # the signal handler, as a batch ends
        def on_train_batch_end(self, index, logs=None):
            if len(validated) + 1 == epoch and index + 1 == batch:
                stop.requested = True

    def stand_in_validation(fitted, val, cfg, class_names, class_prior):
        validated.append([w.copy() for w in fitted.get_weights()])
        return {"val_loss": 1.0, "val_accuracy": 0.5, "val_macro_f1": next(scores)}

    monkeypatch.setattr(training, "_validation_metrics", stand_in_validation)
    monkeypatch.setattr(training, "epoch_bars", lambda steps, epochs: [StopWithin()])
    result = training.fit(model, config, _tiny_split(), _tiny_split(seed=1), CLASSES,
                          seen.append, stop)
    return model, result, seen, validated


@pytest.mark.parametrize("keep_epoch", ["best", "last"])
def test_an_epoch_a_stop_cuts_short_is_marked_and_not_kept_over_a_whole_one(monkeypatch,
                                                                              keep_epoch):
    from ecgsweep.folds import format_metrics

    model, result, seen, validated = _fit_stopped_in_epoch(monkeypatch, keep_epoch, 2, 2)
    assert [m["epoch"] for m in seen] == [1, 2] and "stopped_after_batch" not in seen[0]
    assert seen[1]["stopped_after_batch"] == 2 and seen[1]["epoch_batches"] == 4
    assert format_metrics(seen[1]).endswith("val_macro_f1 0.9000 (stopped after batch 2 of 4)")
    # it scores higher, but it is not an epoch: the whole epoch 1 stays kept
    assert result.kept_epoch == 1 and result.kept_value == 0.5
    assert result.stopped and result.stopped_mid_epoch and not result.finished
    for held, kept in zip(model.get_weights(), validated[0]):
        np.testing.assert_array_equal(held, kept)


def test_a_cut_short_epoch_is_logged_under_its_own_prefix_so_no_sweep_ranks_by_it(monkeypatch):
    from ecgsweep.folds import logged_row

    _, _, seen, _ = _fit_stopped_in_epoch(monkeypatch, "best", 2, 2)
    assert logged_row(seen[0]) == seen[0]
    row = logged_row(seen[1])
    assert row["epoch"] == 2 and row["stopped_after_batch"] == 2 and row["epoch_batches"] == 4
    assert row["cut_short/val_macro_f1"] == 0.9 and "val_macro_f1" not in row


def test_early_stopping_on_a_cut_short_epoch_does_not_make_the_fit_finished(monkeypatch):
    import keras

    class FiresAtOnce(keras.callbacks.EarlyStopping):  # out of patience on the part-epoch
        def __init__(self, **kwargs):
            super().__init__(**{**kwargs, "patience": 0, "min_delta": 10.0})

    monkeypatch.setattr(keras.callbacks, "EarlyStopping", FiresAtOnce)
    _, result, seen, _ = _fit_stopped_in_epoch(monkeypatch, "best", 2, 2,
                                               early_stopping_patience=1)
    assert "stopped_after_batch" in seen[-1] and not result.finished


def test_a_first_epoch_cut_short_is_kept_marked_as_such(monkeypatch):
    _, result, seen, _ = _fit_stopped_in_epoch(monkeypatch, "best", 1, 3)
    assert len(seen) == 1 and result.kept_epoch == 1
    assert result.kept_metrics["stopped_after_batch"] == 3 and not result.finished


def test_a_stop_after_the_last_batch_leaves_the_epoch_whole_and_the_fit_finished(monkeypatch):
    _, result, seen, _ = _fit_stopped_in_epoch(monkeypatch, "best", 3, 4, (0.5, 0.6, 0.9))
    assert [m["epoch"] for m in seen] == [1, 2, 3] and "stopped_after_batch" not in seen[-1]
    assert result.kept_epoch == 3 and result.stopped and result.finished


def test_a_stop_request_says_it_stops_after_the_current_batch(capsys):
    import signal

    training.StopRequest()._handle(signal.SIGINT, None)
    assert "stopping after the current batch" in capsys.readouterr().err


def test_nan_inference_statistics_end_fit_as_diverged_though_the_loss_is_finite():
    # SGD at a huge rate can turn BatchNormalization's moving statistics NaN;
    # training (batch statistics) keeps a finite loss, inference predicts a constant
    import keras

    config = resolve({"n_conv_blocks": 1, "layer_1_size": 4, "layer_FC_size": 0, "epochs": 2,
                      "batch_size": 16})
    model = models.build(config, (187, 1), 5)
    bn = next(l for l in model.layers if isinstance(l, keras.layers.BatchNormalization))
    bn.moving_mean.assign(np.full(bn.moving_mean.shape, np.nan, np.float32))
    losses = []
    with pytest.raises(training.TrainingDiverged, match="validation outputs are NaN"):
        training.fit(model, config, _tiny_split(), _tiny_split(seed=1), CLASSES, losses.append,
                     training.StopRequest())
    assert losses == []  # no epoch with NaN outputs reached the sink


def test_non_finite_weights_are_named():
    config = resolve({"n_conv_blocks": 1, "layer_1_size": 4, "layer_FC_size": 0})
    model = models.build(config, (187, 1), 5)
    weights = model.get_weights()
    weights[0][...] = np.inf
    model.set_weights(weights)
    with pytest.raises(training.TrainingDiverged, match=f"{weights[0].size} of .* weights"):
        training.check_finite_weights(model, "after epoch 1")
