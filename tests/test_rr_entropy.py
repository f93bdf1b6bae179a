"""rr_entropy: the entropy of the intervals around each beat tells fibrillation from ectopy."""

import numpy as np
import pytest

from ecgsweep import rr_entropy, training
from ecgsweep.config import resolve
from ecgsweep.data import sidecar
from ecgsweep.data.datasets import Split

RNG = np.random.default_rng(0)
BEATS = 200


def _sinus():
    return 0.8 * (1 + RNG.uniform(-0.02, 0.02, BEATS))


def _fibrillation():
    return RNG.uniform(0.4, 1.2, BEATS)


def _bigeminy():
    return np.tile([0.5, 1.1], BEATS // 2)  # coupling interval, then the pause after it


def _runs_of_tachycardia():
    return np.tile(np.r_[np.full(20, 0.8), np.full(20, 0.42)], BEATS // 40)


def _entropy(pre_rr):
    return rr_entropy.rr_entropy(pre_rr, np.array(["r"] * len(pre_rr)))


@pytest.mark.parametrize("rhythm, most", [(_sinus, 1.0), (_bigeminy, 1.0),
                                          (_runs_of_tachycardia, 1.0)])
def test_regular_rhythms_and_patterns_of_ectopy_fill_few_bins(rhythm, most):
    assert _entropy(rhythm()).max() <= most


def test_fibrillation_fills_many_bins():
    assert np.median(_entropy(_fibrillation())) > 3.0


def test_two_equally_filled_bins_are_one_bit_and_one_bin_is_zero():
    assert _entropy(np.tile([0.5, 1.0], 40))[40] == pytest.approx(1.0)
    assert _entropy(np.full(80, 0.8)) == pytest.approx(np.zeros(80))


def test_the_window_is_the_intervals_centred_on_the_beat(monkeypatch):
    monkeypatch.setattr(rr_entropy, "WINDOW_BEATS", 4)
    # beat 4 sees intervals 2..5: 0.5, 0.5, 1.0, 1.0 -> 1 bit; beat 1 sees 0..2: all 0.5
    pre_rr = np.array([0.5, 0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0])
    entropy = _entropy(pre_rr)
    assert entropy[4] == pytest.approx(1.0)
    assert entropy[1] == pytest.approx(0.0)
    assert entropy[7] == pytest.approx(0.0)


def test_each_record_is_measured_on_its_own_beats():
    pre_rr = np.r_[np.full(BEATS, 0.8), _fibrillation()]
    records = np.array(["sinus"] * BEATS + ["af"] * BEATS)
    entropy = rr_entropy.rr_entropy(pre_rr, records)
    assert entropy[:BEATS] == pytest.approx(np.zeros(BEATS))
    assert np.median(entropy[BEATS:]) > 3.0


def _split_of(records_and_intervals):
    """A split whose sidecar columns come from beat times with the given intervals."""
    names, rows = [], []
    for name, intervals in records_and_intervals:
        samples = np.round(np.cumsum(np.r_[0.0, intervals]) * 360).astype(int)
        rows.append(sidecar.rr_features(samples, 360.0))
        names += [name] * len(samples)
    rr = np.vstack(rows).astype(np.float32)
    return Split(np.zeros((len(rr), 187), dtype=np.float32), np.zeros(len(rr), int),
                 records=np.array(names), rr=rr)


def test_the_s_gate_on_entropy_spares_bigeminy_where_successive_intervals_do_not():
    split = _split_of([("bigeminy", _bigeminy()), ("af", _fibrillation())])
    called_s = np.tile([0.1, 0.8, 0.05, 0.05], (len(split), 1))
    bigeminy = split.records == "bigeminy"
    by_successive = resolve({"classes": "aami4", "s_gate_irregularity": 0.1})
    by_entropy = resolve({"classes": "aami4", "s_gate_irregularity": 2.75,
                          "s_gate_measure": "rr_entropy"})
    successive = training.gate_s_in_irregular_rhythm(called_s, split, by_successive)
    entropy = training.gate_s_in_irregular_rhythm(called_s, split, by_entropy)
    assert (successive[bigeminy].argmax(axis=1) == 0).all()
    assert (entropy[bigeminy].argmax(axis=1) == 1).all()
    assert (entropy[~bigeminy].argmax(axis=1) == 0).mean() > 0.9  # fibrillation: no S call
    assert entropy.sum(axis=1) == pytest.approx(np.ones(len(split)))


def test_the_entropy_gate_needs_each_beats_record():
    split = _split_of([("af", _fibrillation())])
    bare = Split(split.X, split.y, rr=split.rr)
    config = resolve({"classes": "aami4", "s_gate_irregularity": 2.75,
                      "s_gate_measure": "rr_entropy"})
    with pytest.raises(ValueError, match="rr_entropy needs each beat's record"):
        training.gate_s_in_irregular_rhythm(np.full((len(split), 4), 0.25), bare, config)


def test_a_run_refuses_data_without_records_for_the_entropy_gate(tmp_path):
    from types import SimpleNamespace

    from ecgsweep.cli import UserError
    from ecgsweep.run_start import check_sidecar

    split = _split_of([("af", _fibrillation())])
    rr_only = Split(split.X, split.y, rr=split.rr)
    source = SimpleNamespace(files={"train": str(tmp_path / "x.csv")}, name="mitbih")
    config = resolve({"s_gate_irregularity": 2.75, "s_gate_measure": "rr_entropy"})
    with pytest.raises(UserError, match="config key 's_gate_measure': rr_entropy measures the "
                                        "rhythm's entropy over each record's beats and needs "
                                        "each beat's record"):
        check_sidecar(config, rr_only, source)
    check_sidecar(resolve({"s_gate_irregularity": 0.1}), rr_only, source)
