"""prior_adaptation: each record's balance of N and S re-estimated from the model's outputs
(EM), the other classes' shares kept, the outputs moved part of the way toward it."""

import numpy as np
import pytest

from ecgsweep import evaluation, prior_shift, training
from ecgsweep.cli import UserError
from ecgsweep.config import resolve
from ecgsweep.data.datasets import Split
from ecgsweep.evaluation import LoadedModel
from ecgsweep.model_record import ModelRecord

from test_final_model import StandIn

V, F = 2, 3


def _calibrated(n_per_class: list[int], prior: np.ndarray, seed: int = 0) -> np.ndarray:
    """Posteriors of beats drawn with ``n_per_class`` from unit Gaussians at 0, 2, 4, ...
    (one feature), computed under ``prior``: what a calibrated model trained on that mix
    outputs."""
    rng = np.random.default_rng(seed)
    means = 2.0 * np.arange(len(n_per_class))
    x = np.concatenate([rng.normal(m, 1.0, n) for m, n in zip(means, n_per_class)])
    likelihood = np.exp(-0.5 * (x[:, None] - means[None, :]) ** 2)
    joint = likelihood * prior
    return joint / joint.sum(axis=1, keepdims=True)


def test_the_model_prior_is_the_training_mix_times_the_loss_weights():
    y = np.array([0] * 90 + [1] * 10)
    assert prior_shift.model_prior(y, 2, None) == pytest.approx([0.9, 0.1])
    assert prior_shift.model_prior(y, 2, {0: 1.0, 1: 9.0}) == pytest.approx([0.5, 0.5])
    # a class without a training beat counts as one, so it can still be re-estimated
    assert prior_shift.model_prior(y, 3, None) == pytest.approx(np.array([90, 10, 1]) / 101)


def test_em_finds_a_records_own_mix_from_outputs_calibrated_to_another():
    prior = np.array([0.9, 0.1])
    probs = _calibrated([500, 500], prior)
    mix = prior_shift.estimate_mix(probs, prior)
    assert mix == pytest.approx([0.5, 0.5], abs=0.05)
    same = prior_shift.estimate_mix(_calibrated([900, 100], prior, seed=1), prior)
    assert same == pytest.approx([0.9, 0.1], abs=0.03)


def test_adapting_finds_more_of_a_class_the_record_holds_more_of():
    prior = np.array([0.9, 0.1])
    probs = _calibrated([500, 500], prior)
    truth = np.repeat([0, 1], 500)
    adapted = prior_shift.adapt_record(probs, prior, 1.0)
    found_before = (probs.argmax(axis=1)[truth == 1] == 1).mean()
    found_after = (adapted.argmax(axis=1)[truth == 1] == 1).mean()
    assert found_after > found_before + 0.1
    assert np.allclose(adapted.sum(axis=1), 1.0)


def test_only_n_and_s_are_adapted():
    assert prior_shift.kept_columns(("N", "S", "V", "F")) == [V, F]
    assert prior_shift.kept_columns(("N", "S", "V", "F", "Q")) == [V, F, 4]


def test_the_kept_classes_keep_their_shares_and_strength_moves_part_of_the_way():
    prior = np.array([0.7, 0.1, 0.15, 0.05])
    probs = _calibrated([100, 100, 30, 20], prior)
    full = prior_shift.adapt_record(probs, prior, 1.0, keep=[V, F])
    assert np.allclose(full[:, [V, F]], probs[:, [V, F]])
    assert not np.allclose(full, probs)
    assert np.allclose(prior_shift.adapt_record(probs, prior, 0.0, keep=[V, F]), probs)
    half = prior_shift.adapt_record(probs, prior, 0.5, keep=[V, F])
    geometric = np.sqrt(full * probs)
    assert np.allclose(half, geometric / geometric.sum(axis=1, keepdims=True))


def test_each_record_is_adapted_on_its_own():
    prior = np.array([0.9, 0.1])
    a = _calibrated([300, 20], prior, seed=0)
    b = _calibrated([100, 400], prior, seed=1)
    records = np.array(["a"] * len(a) + ["b"] * len(b))
    together = prior_shift.adapt_by_record(np.vstack([a, b]), records, prior, 1.0)
    assert np.allclose(together[:len(a)], prior_shift.adapt_record(a, prior, 1.0))
    other_b = _calibrated([450, 50], prior, seed=2)
    again = prior_shift.adapt_by_record(np.vstack([a, other_b]), records, prior, 1.0)
    assert np.allclose(again[:len(a)], together[:len(a)])  # b's beats change nothing of a's
    with pytest.raises(ValueError, match="3 shares for 2 classes"):
        prior_shift.adapt_by_record(a, records[:len(a)], [0.5, 0.3, 0.2], 1.0)


def test_the_steps_after_the_model_need_the_records_and_the_models_prior():
    config = resolve({"classes": "aami4", "prior_adaptation": 0.5})
    probs = np.full((4, 4), 0.25)
    with_records = Split(np.zeros((4, 187)), np.zeros(4, int), records=np.array(["a"] * 4))
    with pytest.raises(ValueError, match="needs the class prior"):
        training.per_record_steps(probs, with_records, config)
    with pytest.raises(ValueError, match="needs each beat's record"):
        training.per_record_steps(probs, Split(np.zeros((4, 187)), np.zeros(4, int)), config,
                                  [0.25] * 4)
    off = resolve({"classes": "aami4"})
    assert training.per_record_steps(probs, with_records, off) is probs


def test_eval_adapts_with_the_mean_prior_of_the_models_given_together(tmp_path):
    rng = np.random.default_rng(0)
    beats = Split(rng.random((6, 187), dtype=np.float32), np.zeros(6, int),
                  records=np.array(["a"] * 3 + ["b"] * 3))
    config = resolve({"classes": "aami4", "prior_adaptation": 1.0})
    probs = [rng.dirichlet(np.ones(4), size=6) for _ in range(2)]
    priors = [[0.7, 0.1, 0.1, 0.1], [0.4, 0.3, 0.2, 0.1]]
    members = [LoadedModel(tmp_path / f"m{i}.keras", StandIn(p),
                           ModelRecord(class_names=["N", "S", "V", "F"], config=config,
                                       class_prior=prior))
               for i, (p, prior) in enumerate(zip(probs, priors))]
    expected = training.per_record_steps(np.mean(probs, axis=0), beats, config,
                                         np.mean(priors, axis=0))
    assert np.allclose(evaluation.predict_proba(members, beats), expected, atol=1e-6)

    unrecorded = LoadedModel(tmp_path / "old.keras", StandIn(probs[0]),
                             ModelRecord(class_names=["N", "S", "V", "F"], config=config))
    with pytest.raises(UserError, match=r"old\.keras runs with prior_adaptation=1\.0, "
                                        r".*old\.json\) has no class_prior"):
        evaluation.predict_proba([unrecorded], beats)


def test_a_records_class_prior_survives_writing_and_reading(tmp_path):
    record = ModelRecord(metric="val_macro_f1", value=0.5, class_prior=[0.6, 0.4])
    record.write(tmp_path / "m.json")
    assert ModelRecord.read(tmp_path / "m.json").class_prior == [0.6, 0.4]
    assert "class_prior" not in ModelRecord(metric="m").to_json()
