"""Imbalance handling: focal loss, SMOTE and synthetic augmentation touch training beats only."""

import warnings

import keras
import numpy as np
import pytest

from ecgsweep import imbalance, model_inputs, models, training
from ecgsweep.cli import UserError
from ecgsweep.config import resolve
from ecgsweep.data import datasets, synth
from ecgsweep.data.datasets import Split
from ecgsweep.folds import development_folds

MITBIH = datasets.DataSource("synthetic", datasets.MITBIH_CLASSES)


# ----------------------------------------------------------------------------- focal loss


def test_focal_loss_matches_the_formula_by_hand():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]], dtype=np.float32)
    y = np.array([0, 2])
    # -(1 - p_t)^2 log p_t: 0.3^2 * -ln 0.7 = 0.0321002, 0.7^2 * -ln 0.3 = 0.5899459
    expected = (0.09 * 0.35667494 + 0.49 * 1.20397280) / 2
    loss = imbalance.SparseCategoricalFocalLoss(gamma=2.0)
    assert float(loss(y, probs)) == pytest.approx(expected, rel=1e-5)
    assert float(loss(y[:, None], probs)) == pytest.approx(expected, rel=1e-5)  # (n, 1) labels
    # alpha weights each beat by its true class
    weighted = imbalance.SparseCategoricalFocalLoss(gamma=2.0, alpha=[0.25, 1.0, 0.5])
    by_hand = (0.25 * 0.09 * 0.35667494 + 0.5 * 0.49 * 1.20397280) / 2
    assert float(weighted(y, probs)) == pytest.approx(by_hand, rel=1e-5)


def test_focal_loss_with_gamma_zero_is_cross_entropy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(32, 5)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = rng.integers(0, 5, 32)
    ce = keras.losses.SparseCategoricalCrossentropy()(y, probs)
    assert float(imbalance.SparseCategoricalFocalLoss(gamma=0.0)(y, probs)) == pytest.approx(
        float(ce), rel=1e-6)
    # a confident right answer costs far less than under cross-entropy
    easy = np.array([[0.95, 0.05]], dtype=np.float32)
    assert float(imbalance.SparseCategoricalFocalLoss(2.0)(np.array([0]), easy)) == pytest.approx(
        0.05 ** 2 * -np.log(0.95), rel=1e-5)


def test_focal_loss_from_config_trains_saves_and_reloads(tmp_path):
    config = resolve({"loss": "focal", "focal_gamma": 1.5, "class_weight": "balanced",
                      "n_conv_blocks": 1, "layer_1_size": 4, "layer_FC_size": 0, "epochs": 1,
                      "batch_size": 32})
    loss = imbalance.make_loss(config)
    assert isinstance(loss, imbalance.SparseCategoricalFocalLoss) and loss.gamma == 1.5
    assert imbalance.make_loss(resolve({})) == "sparse_categorical_crossentropy"
    X, y = synth.make_mitbih(96, 0)
    model = models.build(config, (187, 1), 5)
    seen = []
    training.fit(model, config, Split(X, y), Split(X[:48], y[:48]), datasets.MITBIH_CLASSES,
                 seen.append, training.StopRequest())
    assert np.isfinite(seen[0]["loss"])
    # val_loss is the plain cross-entropy of the probabilities, whatever the training loss
    probs = model.predict(model_inputs.as_model_input(X[:48]), verbose=0).astype(np.float64)
    assert seen[0]["val_loss"] == pytest.approx(
        -np.log(np.clip(probs[np.arange(48), y[:48]], 1e-12, 1)).mean(), rel=1e-5)
    path = tmp_path / "focal.keras"
    model.save(path)
    again = keras.models.load_model(path)  # compiled: the registered loss deserializes
    assert isinstance(again.loss, imbalance.SparseCategoricalFocalLoss) and again.loss.gamma == 1.5


# ----------------------------------------------------------------------------- SMOTE


def _dev(n=600, seed=0):
    return Split(*synth.make_mitbih(n, seed))


def _rows(X):
    return {row.tobytes() for row in X}


def test_smote_touches_only_the_training_split():
    dev = _dev()
    plain = resolve({"dataset": "synthetic"})
    smoted = resolve({"dataset": "synthetic", "resample": "smote"})
    (fold0, added0), = development_folds(plain, MITBIH.class_names, dev)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny classes: k_neighbors reduced
        (fold1, added1), = development_folds(smoted, MITBIH.class_names, dev)
    assert added0 == {} and set(added1) == {"smote"}
    # validation beats: bit-identical with and without SMOTE
    assert np.array_equal(fold0.val.X, fold1.val.X) and np.array_equal(fold0.val.y, fold1.val.y)
    # the original training beats come first, unchanged and in order
    n = len(fold0.train)
    assert np.array_equal(fold1.train.X[:n], fold0.train.X)
    assert np.array_equal(fold1.train.y[:n], fold0.train.y)
    new_y = fold1.train.y[n:]
    counts = np.bincount(fold0.train.y, minlength=5)
    majority = int(np.argmax(counts))
    assert len(new_y) > 0 and majority not in set(new_y.tolist())
    # every class now has the majority count, and the report says how many were added
    assert np.all(np.bincount(fold1.train.y, minlength=5) == counts.max())
    assert sum(added1["smote"].values()) == len(new_y)
    # new beats are new: none equals a validation beat or an original training beat
    assert not (_rows(fold1.train.X[n:]) & (_rows(fold0.val.X) | _rows(fold0.train.X)))
    # seeded: the same config gives the same beats
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (again, _), = development_folds(smoted, MITBIH.class_names, dev)
    assert np.array_equal(again.train.X, fold1.train.X)


def test_smote_reduces_k_or_skips_classes_too_small_and_names_them():
    rng = np.random.default_rng(0)
    y = np.array([0] * 40 + [1] * 10 + [2] * 3 + [3] * 1)
    train = Split(rng.random((len(y), 187), dtype=np.float32), y)
    with pytest.warns(UserWarning) as caught:
        out, added = imbalance.smote(train, 0, ("N", "S", "V", "F"))
    messages = " | ".join(str(w.message) for w in caught)
    assert "class V (label 2) has only 3" in messages and "k_neighbors=2" in messages
    assert "class F (label 3) has 1 training beat" in messages
    assert added == {1: 30, 2: 37} and 3 not in added
    assert np.bincount(out.y).tolist() == [40, 40, 40, 1]


# ----------------------------------------------------------------------------- synthetic beats


def test_water_fill_raises_the_rarest_classes_first_and_never_past_the_majority():
    assert imbalance.water_fill([100, 5, 20, 1, 50], 30).tolist() == [0, 13, 0, 17, 0]
    assert imbalance.water_fill([100, 5, 20, 1, 50], 10**6).tolist() == [0, 95, 80, 99, 50]
    assert imbalance.water_fill([100, 5, 20, 1, 50], 0).tolist() == [0, 0, 0, 0, 0]
    assert imbalance.water_fill([10, 10], 5).tolist() == [0, 0]


def test_augmentation_adds_minority_beats_to_the_training_split_only():
    dev = _dev()
    plain = resolve({"dataset": "synthetic"})
    aug = resolve({"dataset": "synthetic", "augment_synthetic": 0.25})
    (fold0, _), = development_folds(plain, MITBIH.class_names, dev)
    (fold1, added), = development_folds(aug, MITBIH.class_names, dev)
    assert np.array_equal(fold0.val.X, fold1.val.X) and np.array_equal(fold0.val.y, fold1.val.y)
    n = len(fold0.train)
    assert np.array_equal(fold1.train.X[:n], fold0.train.X)
    new_y = fold1.train.y[n:]
    assert len(new_y) == round(0.25 * n) == sum(added["synthetic"].values())
    counts = np.bincount(fold0.train.y, minlength=5)
    assert int(np.argmax(counts)) not in set(new_y.tolist())
    after = np.bincount(fold1.train.y, minlength=5)
    assert after.max() == counts.max()  # the majority class is untouched
    assert after[3] > counts[3]  # F, the rarest class, gets beats
    X_new = fold1.train.X[n:]
    assert X_new.dtype == np.float32 and X_new.shape[1] == 187
    assert X_new.min() >= 0.0 and X_new.max() <= 1.0
    assert not (_rows(X_new) & _rows(fold0.val.X))


def test_make_class_is_deterministic_and_the_ptb_generator_serves_ptb():
    a = synth.make_class(3, 20, 5)
    assert a.shape == (20, 187) and a.dtype == np.float32
    assert np.array_equal(a, synth.make_class(3, 20, 5))
    assert not np.array_equal(a, synth.make_class(3, 20, 6))
    assert synth.make_class(1, 7, 0, "ptbdb").shape == (7, 187)
    with pytest.raises(ValueError, match="not a ptbdb class"):
        synth.make_class(3, 5, 0, "ptbdb")
    assert imbalance.generator_for(datasets.PTBDB_CLASSES) == "ptbdb"
    ptb = Split(*synth.make_ptb(80, 0))
    out, added = imbalance.augment_synthetic(ptb, 0.2, datasets.PTBDB_CLASSES, 0)
    assert set(added) == {0} and added[0] == 16  # normal is PTB's minority class
    with pytest.raises(UserError, match="augment_synthetic"):
        imbalance.augment_synthetic(ptb, 0.2, ("a", "b"), 0)
