"""v_template_clusters: beats of one shape within one record share one V probability."""

from types import SimpleNamespace

import numpy as np
import pytest

from ecgsweep import beat_templates, training
from ecgsweep.cli import UserError
from ecgsweep.config import resolve
from ecgsweep.data.datasets import Split


def test_share_v_probability_matches_hand_computed_values():
    probs = np.array([[0.8, 0.1, 0.1, 0.0],   # template 0: V 0.1, 0.7, 0.1 -> mean 0.3
                      [0.2, 0.1, 0.7, 0.0],
                      [0.6, 0.3, 0.1, 0.0],
                      [0.0, 0.0, 1.0, 0.0]])  # template 1: alone, sure of V
    out = beat_templates.share_v_probability(probs, np.array([0, 0, 0, 1]), v_index=2)
    np.testing.assert_allclose(out[:, 2], [0.3, 0.3, 0.3, 1.0])
    # the others keep their proportions and fill the rest: beat 1's N:S = 2:1 of 0.7
    np.testing.assert_allclose(out[1], [0.7 * 2 / 3, 0.7 / 3, 0.3, 0.0])
    np.testing.assert_allclose(out[0], [0.7 * 8 / 9, 0.7 / 9, 0.3, 0.0])
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    assert out.argmax(axis=1).tolist() == [0, 0, 0, 2]  # beat 1's lone V call is gone


def _beats(shape_of_row: list[int], rng) -> np.ndarray:
    """Rows of 187 samples: shape 0 a narrow spike, shape 1 a wide wave, with a little noise."""
    t = np.arange(187)
    shapes = [np.exp(-((t - 3) / 2.0) ** 2), np.exp(-((t - 15) / 10.0) ** 2)]
    return np.array([shapes[s] + 0.01 * rng.standard_normal(187) for s in shape_of_row],
                    dtype=np.float32)


def test_templates_group_shapes_within_a_record_and_never_across_records():
    rng = np.random.default_rng(0)
    shape = [0, 0, 0, 1, 1, 0, 0, 1]
    X = _beats(shape, rng)
    records = np.array(["a"] * 5 + ["b"] * 3)
    labels = beat_templates.template_labels(X, records, n_clusters=2)
    a, b = labels[:5], labels[5:]
    assert not set(a) & set(b)  # ids unique across records
    assert len(set(a[:3])) == 1 and len(set(a[3:])) == 1 and a[0] != a[3]
    assert b[0] == b[1] != b[2]
    # more clusters than a record's beats: one template per beat, no error
    one_each = beat_templates.template_labels(X[:2], np.array(["c", "c"]), n_clusters=10)
    assert len(set(one_each)) == 2
    assert beat_templates.template_labels(X[:1], np.array(["d"]), n_clusters=10).tolist() == [0]


def test_templates_are_clustered_once_per_set_of_beats(monkeypatch):
    rng = np.random.default_rng(2)
    X, records = _beats([0, 0, 1, 1], rng), np.array(["a"] * 4)
    calls = []
    cluster = beat_templates._cluster_by_record
    monkeypatch.setattr(beat_templates, "_cluster_by_record",
                        lambda *a: calls.append(1) or cluster(*a))
    first = beat_templates.template_labels(X, records, 2)
    again = beat_templates.template_labels(X.copy(), records, 2)  # every epoch's validation
    assert np.array_equal(first, again) and len(calls) == 1
    beat_templates.template_labels(X[::-1].copy(), records, 2)  # other beats: clustered anew
    beat_templates.template_labels(X, np.array(["a", "a", "b", "b"]), 2)  # other records
    assert len(calls) == 3


class _FixedModel:
    """Stands in for a Keras model: returns the given probabilities, whatever it is fed."""

    def __init__(self, probs):
        self.probs = np.asarray(probs, dtype=np.float64)

    def predict(self, inputs, **_):
        return self.probs


def test_predict_proba_drops_a_lone_v_call_among_normal_beats_and_keeps_a_v_template():
    rng = np.random.default_rng(1)
    X = _beats([0] * 6 + [1] * 3, rng)  # six normal-shaped beats, three wide ones
    y = np.array([0] * 6 + [2] * 3)
    n_call, v_call = [0.9, 0.05, 0.05, 0.0], [0.3, 0.0, 0.7, 0.0]
    probs = [n_call] * 5 + [v_call] + [v_call] * 3  # the sixth normal beat called V
    split = Split(X, y, records=np.array(["r"] * 9))
    config = resolve({"classes": "aami4", "v_template_clusters": 2})
    shared = training.predict_proba(_FixedModel(probs), split, config)
    assert shared.argmax(axis=1).tolist() == y.tolist()
    plain = training.predict_proba(_FixedModel(probs), split, resolve({"classes": "aami4"}))
    assert plain.argmax(axis=1).tolist() == [0] * 5 + [2] * 4  # off by default
    with pytest.raises(ValueError, match="needs each beat's record"):
        training.predict_proba(_FixedModel(probs), Split(X, y), config)


def test_v_templates_refuse_data_without_v_or_without_records():
    from ecgsweep.run_start import check_classes, check_sidecar as _check_sidecar

    config = resolve({"v_template_clusters": 10})
    with_records = Split(np.zeros((2, 187)), np.zeros(2, int), records=np.array(["a", "b"]))
    ptb = SimpleNamespace(class_names=["normal", "abnormal"], files={}, name="ptbdb")
    with pytest.raises(UserError, match="'v_template_clusters': 10 .*classes are normal, abnormal"):
        check_classes(config, ptb.class_names)
    kaggle = SimpleNamespace(class_names=["N", "S", "V", "F", "Q"],
                             files={"train": "mitbih_train.csv"}, name="mitbih")
    with pytest.raises(UserError, match="'v_template_clusters': 10 shares the V probability .*"
                                        "needs each beat's record.*mitbih_train.csv"):
        _check_sidecar(config, Split(np.zeros((2, 187)), np.zeros(2, int)), kaggle)
    check_classes(config, kaggle.class_names)
    _check_sidecar(config, with_records, kaggle)


def test_eval_refuses_a_template_model_on_beats_without_records(tmp_path):
    from ecgsweep import evaluation
    from ecgsweep.model_record import ModelRecord

    member = SimpleNamespace(model=_FixedModel([[1, 0, 0, 0]]), path=tmp_path / "m.keras",
                             record=ModelRecord(config=resolve({"v_template_clusters": 10})))
    with pytest.raises(UserError, match="m.keras runs with v_template_clusters=10, which shares the V "
                                        "probability.*beat sidecar"):
        evaluation.predict_proba([member], np.zeros((1, 187), dtype=np.float32))
