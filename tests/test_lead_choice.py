"""lead_choice: a record's lead most like a reference beat, without labels."""

import numpy as np

from ecgsweep.data import lead_choice


def test_the_shape_window_starts_at_the_r_peak_and_covers_the_qrs():
    assert lead_choice.shape_window(0, 125.0) == slice(0, 20)
    assert lead_choice.shape_window(31, 125.0) == slice(31, 51)  # --before-r 0.25


def test_the_median_beat_weighs_each_record_once():
    X = np.array([[0.0, 1.0]] * 9 + [[1.0, 0.0]] * 2 + [[1.0, 1.0]])
    records = np.array(["a"] * 9 + ["b"] * 2 + ["c"])
    np.testing.assert_array_equal(lead_choice.median_beat(X), [0.0, 1.0])
    np.testing.assert_array_equal(lead_choice.median_beat(X, records), [1.0, 1.0])


def test_the_lead_most_like_the_reference_wins_and_a_flat_lead_never_does():
    t = np.linspace(0, 1, 40)
    reference = np.exp(-((t - 0.1) / 0.03) ** 2)  # an R peak, then flat
    window = slice(0, 20)
    leads = {"ECG1": 1 - reference, "ECG2": 0.9 * reference + 0.05, "flat": np.zeros(40)}
    best, scores = lead_choice.most_alike(leads, reference, window)
    assert best == "ECG2" and scores["ECG2"] == 1.0
    assert scores["ECG1"] == -1.0 and scores["flat"] == -1.0
    assert lead_choice.most_alike({"a": reference, "b": reference}, reference, window)[0] == "a"
