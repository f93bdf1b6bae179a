"""``s_premature_ratio``: beats called N that come early against the intervals around them
are called S, before the S gate."""

import numpy as np
import pytest

from ecgsweep import params, training
from ecgsweep.config import resolve
from ecgsweep.data import sidecar
from ecgsweep.data.datasets import Split

from test_rr_entropy import _fibrillation, _split_of

N_CALL = [0.7, 0.2, 0.05, 0.05]


def _premature_every_tenth(beats: int = 200) -> np.ndarray:
    intervals = np.full(beats, 0.8)
    intervals[5::10] = 0.5  # the premature beat
    intervals[6::10] = 1.1  # the pause after it
    return intervals


def test_a_beat_called_n_that_comes_early_is_called_s():
    split = _split_of([("ectopy", _premature_every_tenth())])
    probs = np.tile(N_CALL, (len(split), 1))
    called = training.per_record_steps(probs, split, resolve({"classes": "aami4",
                                                               "s_premature_ratio": 0.85}))
    premature = np.zeros(len(split), dtype=bool)
    premature[6::10] = True  # beat i ends interval i - 1
    assert (called[premature].argmax(axis=1) == 1).all()
    assert (called[~premature].argmax(axis=1) == 0).all()
    assert called[premature, 1] == pytest.approx(0.9)  # N's share moved to S
    assert called.sum(axis=1) == pytest.approx(np.ones(len(split)))


def test_a_beat_called_v_keeps_its_call_and_the_key_off_changes_nothing():
    split = _split_of([("ectopy", _premature_every_tenth())])
    probs = np.tile([0.3, 0.1, 0.6, 0.0], (len(split), 1))
    config = resolve({"classes": "aami4", "s_premature_ratio": 0.85})
    assert np.array_equal(training.call_premature_beats_s(probs, split, config), probs)
    n_probs = np.tile(N_CALL, (len(split), 1))
    assert np.array_equal(training.call_premature_beats_s(n_probs, split,
                                                          resolve({"classes": "aami4"})),
                          n_probs)


def test_the_gate_takes_the_call_back_in_fibrillation():
    split = _split_of([("af", _fibrillation())])
    probs = np.tile(N_CALL, (len(split), 1))
    config = resolve({"classes": "aami4", "s_premature_ratio": 0.85, "s_gate_irregularity": 2.75,
                      "s_gate_measure": "rr_entropy"})
    early = training.call_premature_beats_s(probs, split, config).argmax(axis=1) == 1
    assert early.mean() > 0.2  # fibrillation makes many beats early
    assert (training.per_record_steps(probs, split, config).argmax(axis=1) == 1).mean() < 0.05


def test_it_is_a_step_after_the_model_that_needs_the_rr_features():
    assert "s_premature_ratio" in params.PER_RECORD_KEYS
    beats_only = Split(np.zeros((3, 187), dtype=np.float32), np.zeros(3, dtype=int))
    need = params.missing_sidecar_need(resolve({"s_premature_ratio": 0.85}), beats_only)
    assert need.key == "s_premature_ratio" and need.field == "rr"
    with pytest.raises(ValueError, match="s_premature_ratio needs the beats' RR features"):
        training.call_premature_beats_s(np.tile(N_CALL, (3, 1)), beats_only,
                                        resolve({"s_premature_ratio": 0.85}))


def _sinus_with_mild_premature_beats(jitter: float, beats: int = 400) -> np.ndarray:
    rng = np.random.default_rng(3)
    intervals = 0.8 * (1 + rng.uniform(-jitter, jitter, beats))
    intervals[5::20] = 0.72  # 10% early: plainly premature against a steady rhythm
    return intervals


def test_a_steady_record_calls_mildly_early_beats_s_by_its_own_rhythm():
    split = _split_of([("steady", _sinus_with_mild_premature_beats(0.005)),
                       ("arrhythmic", _sinus_with_mild_premature_beats(0.12))])
    probs = np.tile(N_CALL, (len(split), 1))
    premature = np.zeros(len(split), dtype=bool)
    premature[6:401:20] = premature[401 + 6::20] = True
    steady = split.records == "steady"
    fixed = training.call_premature_beats_s(probs, split, resolve({"s_premature_ratio": 0.85}))
    assert not (fixed.argmax(axis=1) == 1).any()  # 0.9 of the intervals around: above 0.85
    own = training.call_premature_beats_s(
        probs, split, resolve({"s_premature_ratio": 0.85, "s_premature_spread": 5}))
    called_s = own.argmax(axis=1) == 1
    assert (called_s[steady] == premature[steady]).all()
    # sinus arrhythmia: normal beats come 10% early too, so that record keeps the fixed share
    assert not called_s[~steady].any()


def test_a_record_threshold_stays_between_the_fixed_share_and_the_cap():
    from ecgsweep import prematurity

    records = np.array(["steady"] * 100 + ["wild"] * 100 + ["few"] * 5)
    ratios = np.r_[np.full(100, 1.0), np.linspace(0.5, 1.5, 100), np.full(5, 1.0)]
    called_n = np.ones(len(records), dtype=bool)
    thresholds = prematurity.premature_thresholds(ratios, records, called_n, 0.85, 5)
    assert thresholds[records == "steady"] == pytest.approx(prematurity.RATIO_CAP)
    assert thresholds[records == "wild"] == pytest.approx(0.85)
    assert thresholds[records == "few"] == pytest.approx(0.85)  # too few beats of its own
    assert prematurity.premature_thresholds(ratios, records, called_n, 0.85, 0) == \
        pytest.approx(np.full(len(records), 0.85))


def test_the_record_threshold_needs_each_beats_record():
    assert "s_premature_spread" in params.PER_RECORD_KEYS
    without_records = Split(np.zeros((3, 187), dtype=np.float32), np.zeros(3, dtype=int),
                            rr=np.ones((3, len(sidecar.RR_FEATURES)), dtype=np.float32))
    config = resolve({"s_premature_spread": 5})
    assert params.missing_sidecar_need(config, without_records).field == "records"
    with pytest.raises(ValueError, match="s_premature_spread needs each beat's record"):
        training.call_premature_beats_s(np.tile(N_CALL, (3, 1)), without_records, config)
