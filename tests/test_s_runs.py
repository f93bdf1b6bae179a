"""s_run_tolerance: the beats of a run begun by an abrupt beat called S are called S too."""

import numpy as np
import pytest

from ecgsweep import s_runs, training
from ecgsweep.config import resolve
from ecgsweep.data import sidecar
from ecgsweep.data.datasets import Split

N, S, V = 0, 1, 2


def test_a_run_after_an_abrupt_s_beat_is_called_s_until_the_rhythm_slows():
    #        sinus     | abrupt S, then the run at its rate | sinus again
    pre_rr = [0.8, 0.8, 0.5, 0.52, 0.48, 0.55, 0.8, 0.8]
    calls = [N, N, S, N, N, N, N, N]
    member = s_runs.run_members(np.array(calls), np.array(pre_rr), np.array(["a"] * 8), 0.15)
    assert member.tolist() == [False, False, False, True, True, True, False, False]


@pytest.mark.parametrize("pre_rr, calls, why", [
    ([0.8, 0.5, 1.1, 0.8], [N, S, N, N], "a premature beat and its compensatory pause"),
    ([0.8, 0.75, 0.74, 0.74], [N, S, N, N], "a rate that speeds up gradually: not abrupt"),
    ([0.8, 0.8, 0.8, 0.8], [N, N, N, N], "no beat called S"),
])
def test_no_run_without_an_abrupt_s_beat_followed_by_its_rate(pre_rr, calls, why):
    member = s_runs.run_members(np.array(calls), np.array(pre_rr), np.array(["a"] * 4), 0.15)
    assert not member.any(), why


def test_a_run_ends_at_a_v_call_and_never_crosses_into_another_record():
    pre_rr = [0.8, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    calls = [N, S, N, V, N, N, N]
    member = s_runs.run_members(np.array(calls), np.array(pre_rr), np.array(["a"] * 7), 0.15)
    assert member.tolist() == [False, False, True, False, False, False, False]
    records = np.array(["a", "a", "a", "b", "b", "b", "b"])
    calls = [N, N, S, N, N, N, N]
    member = s_runs.run_members(np.array(calls), np.array(pre_rr), records, 0.15)
    assert member.tolist() == [False, False, False, False, False, False, False]


def test_run_beats_get_their_n_probability_added_to_s():
    probs = np.array([[0.9, 0.05, 0.05, 0.0],
                      [0.3, 0.6, 0.1, 0.0],     # the abrupt S beat
                      [0.7, 0.2, 0.05, 0.05],   # in its run
                      [0.8, 0.1, 0.1, 0.0]])    # after the run
    out = s_runs.extend_s_runs(probs, np.array([0.8, 0.5, 0.5, 0.9]), np.array(["a"] * 4), 0.1)
    np.testing.assert_allclose(out[2], [0.0, 0.9, 0.05, 0.05])
    np.testing.assert_allclose(out[[0, 1, 3]], probs[[0, 1, 3]])
    np.testing.assert_allclose(out.sum(axis=1), 1.0)


def test_the_step_runs_after_the_gate_and_needs_the_sidecar():
    pre_rr = np.array([0.8, 0.8, 0.5, 0.5, 0.5, 0.8])
    rr = np.zeros((6, len(sidecar.RR_FEATURES)))
    rr[:, sidecar.RR_FEATURES.index("pre_rr")] = pre_rr
    split = Split(np.zeros((6, 187), np.float32), np.zeros(6, int), records=np.array(["a"] * 6),
                  rr=rr)
    probs = np.tile([0.8, 0.1, 0.1, 0.0], (6, 1))
    probs[2] = [0.2, 0.7, 0.1, 0.0]
    on = resolve({"s_run_tolerance": 0.15})
    calls = training.per_record_steps(probs, split, on).argmax(axis=1)
    assert calls.tolist() == [N, N, S, S, S, N]
    off = training.per_record_steps(probs, split, resolve({}))
    np.testing.assert_allclose(off, probs)
    # the gate, first, takes the S call out of an irregular rhythm: then no run begins
    rr[:, sidecar.RR_FEATURES.index("local_irregularity")] = 0.5
    gated = resolve({"s_run_tolerance": 0.15, "s_gate_irregularity": 0.1})
    assert (training.per_record_steps(probs, split, gated).argmax(axis=1) == N).all()
    with pytest.raises(ValueError, match="s_run_tolerance needs"):
        training.per_record_steps(probs, Split(split.X, split.y), on)

