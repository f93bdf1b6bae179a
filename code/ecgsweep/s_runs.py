"""Runs of supraventricular beats: a premature S beat that starts a fast regular run makes
the beats of that run S too.

A run of supraventricular tachycardia is labelled beat by beat (every beat of it is S in
MIT-BIH's annotations), but only its first beat is premature: the ones after it come at
the run's own rate, so a model that judges each beat by its timing against the record's
usual rhythm, or against its neighbours, calls them N once runs are a large share of a
record. What marks them is how the run began: its first beat comes abruptly, its interval
much shorter than the one before, where sinus tachycardia speeds up gradually. So, within
each record, in beat order: a beat called S whose interval is at most ``1 - tolerance``
of the interval before it starts a run, and each following beat whose interval stays
within ``1 + tolerance`` of the first one's is called S (its N probability added to S).
The run ends at the first beat whose interval is longer, or that is called V or F: a
premature atrial beat followed by a compensatory pause starts no run, and the gate on
irregular rhythm, which runs before this step, has already taken the S calls out of
atrial fibrillation.
"""

from __future__ import annotations

import numpy as np

from .beat_calls import N_INDEX, S_INDEX, move_probability


def run_members(calls: np.ndarray, pre_rr: np.ndarray, records: np.ndarray,
                tolerance: float) -> np.ndarray:
    """Per beat, whether it continues a run begun by an abrupt beat called S (the beats of
    each record taken in their order); the beat that begins a run is not marked."""
    calls, pre_rr = np.asarray(calls), np.asarray(pre_rr, dtype=np.float64)
    records = np.asarray(records).astype(str)
    member = np.zeros(len(calls), dtype=bool)
    for record in np.unique(records):
        rows = np.flatnonzero(records == record)
        member[rows] = _runs_in_record(calls[rows], pre_rr[rows], tolerance)
    return member


def _runs_in_record(calls: np.ndarray, pre_rr: np.ndarray, tolerance: float) -> np.ndarray:
    member = np.zeros(len(calls), dtype=bool)
    onset_rr = None  # the interval of the beat that began the current run
    for i in range(len(calls)):
        if (onset_rr is not None and calls[i] in (N_INDEX, S_INDEX)
                and pre_rr[i] <= onset_rr * (1.0 + tolerance)):
            member[i] = True
            continue
        abrupt = i > 0 and pre_rr[i] <= pre_rr[i - 1] * (1.0 - tolerance)
        onset_rr = pre_rr[i] if calls[i] == S_INDEX and abrupt else None
    return member


def extend_s_runs(probs: np.ndarray, pre_rr: np.ndarray, records: np.ndarray,
                  tolerance: float) -> np.ndarray:
    """``probs`` (n, k) with the N probability of each beat that continues a run
    (``run_members``) added to its S probability; rows still sum to 1."""
    member = run_members(np.asarray(probs).argmax(axis=1), pre_rr, records, tolerance)
    return move_probability(probs, member, S_INDEX, (N_INDEX,))
