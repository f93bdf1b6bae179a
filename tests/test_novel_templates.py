"""``v_novel_templates``: a record's templates that look unlike its dominant beat and come
early are called V, before the prematurity step could call them S."""

import dataclasses

import numpy as np
import pytest

from ecgsweep import beat_templates, params, training
from ecgsweep.config import resolve
from ecgsweep.data.datasets import Split

from test_premature_s import N_CALL, _premature_every_tenth
from test_rr_entropy import _split_of

S_CALL = [0.2, 0.7, 0.05, 0.05]
ON = {"classes": "aami4", "v_template_clusters": 2, "s_premature_ratio": 0.85,
      "v_novel_templates": 3.0, "v_novel_premature_share": 0.7}


def _shapes(wide: np.ndarray, rng) -> np.ndarray:
    """Rows of 187 samples: a narrow spike (the record's usual beat) or, where ``wide``, a
    wide wave, with a little noise."""
    t = np.arange(187)
    narrow, broad = np.exp(-((t - 3) / 2.0) ** 2), np.exp(-((t - 15) / 10.0) ** 2)
    rows = np.where(wide[:, None], broad, narrow) + 0.01 * rng.standard_normal((len(wide), 187))
    return rows.astype(np.float32)


def _ectopy_split(wide: np.ndarray) -> Split:
    """One record, one premature beat in ten (``_premature_every_tenth``); beat shapes as
    ``wide`` says."""
    split = _split_of([("ectopy", _premature_every_tenth())])
    return dataclasses.replace(split, X=_shapes(wide, np.random.default_rng(0)))


def _premature_mask(n: int) -> np.ndarray:
    premature = np.zeros(n, dtype=bool)
    premature[6::10] = True  # beat i ends interval i - 1
    return premature


def test_premature_beats_of_a_novel_shape_are_called_v_not_s():
    premature = _premature_mask(201)
    split = _ectopy_split(premature)
    probs = np.tile(N_CALL, (len(split), 1))  # the model calls every beat N
    called = training.per_record_steps(probs, split, resolve(ON)).argmax(axis=1)
    assert (called[premature] == 2).all()
    assert (called[~premature] == 0).all()
    # without the step, timing alone calls them S
    off = training.per_record_steps(probs, split, resolve({**ON, "v_novel_templates": 0}))
    assert (off.argmax(axis=1)[premature] == 1).all()


def test_premature_beats_of_the_usual_shape_stay_s_and_a_novel_shape_on_time_stays_n():
    premature = _premature_mask(201)
    usual = _ectopy_split(np.zeros(201, dtype=bool))
    probs = np.tile(N_CALL, (len(usual), 1))
    called = training.per_record_steps(probs, usual, resolve(ON)).argmax(axis=1)
    assert (called[premature] == 1).all()  # atrial premature beats look like the others
    on_time = np.zeros(201, dtype=bool)
    on_time[2::10] = True  # a wide shape, never early: a bundle branch block comes and goes
    novel_on_time = _ectopy_split(on_time)
    called = training.per_record_steps(probs, novel_on_time, resolve(ON)).argmax(axis=1)
    assert (called[on_time] == 0).all()


def test_a_template_is_novel_only_beyond_the_threshold_and_the_share():
    rng = np.random.default_rng(1)
    wide = np.r_[np.zeros(20, dtype=bool), np.ones(5, dtype=bool)]
    X, records, labels = _shapes(wide, rng), np.array(["a"] * 25), wide.astype(int)
    early = wide.copy()
    chosen = beat_templates.novel_premature_templates(X, records, labels, early, 3.0, 0.7)
    assert (chosen == wide).all()
    far_enough = beat_templates.novel_premature_templates(X, records, labels, early, 1e6, 0.7)
    assert not far_enough.any()
    some_early = early & (np.arange(25) < 23)  # 3 of the 5 wide beats early: 0.6 < 0.7
    assert not beat_templates.novel_premature_templates(X, records, labels, some_early,
                                                        3.0, 0.7).any()
    assert (beat_templates.novel_premature_templates(X, records, labels, some_early,
                                                     3.0, 0.6) == wide).all()


def test_each_record_is_judged_against_its_own_dominant_template():
    rng = np.random.default_rng(2)
    # record a: mostly narrow beats; record b: mostly wide ones (its usual beat)
    wide = np.r_[np.zeros(20, dtype=bool), np.ones(5, dtype=bool),
                 np.ones(20, dtype=bool), np.zeros(5, dtype=bool)]
    records = np.array(["a"] * 25 + ["b"] * 25)
    labels = np.r_[wide[:25].astype(int), 2 + (~wide[25:]).astype(int)]
    early = np.r_[wide[:25], ~wide[25:]]  # each record's minority shape comes early
    chosen = beat_templates.novel_premature_templates(_shapes(wide, rng), records, labels,
                                                      early, 3.0, 0.7)
    assert (chosen == early).all()


def test_moving_n_and_s_to_v_keeps_rows_summing_to_one():
    from ecgsweep.beat_calls import move_probability

    probs = np.array([S_CALL, N_CALL])
    out = move_probability(probs, np.array([True, False]), 2, (0, 1))
    np.testing.assert_allclose(out, [[0.0, 0.0, 0.95, 0.05], N_CALL])


def test_it_is_a_step_after_the_model_that_needs_templates_and_prematurity():
    assert {"v_novel_templates", "v_novel_premature_share"} <= set(params.PER_RECORD_KEYS)
    problems = params.combination_problems({"v_novel_templates": 3.0})
    assert [p.keys for p in problems] == [("v_novel_templates", "v_template_clusters",
                                           "s_premature_ratio")]
    assert "set v_template_clusters and s_premature_ratio (or s_premature_spread) above 0" in \
        problems[0].message
    assert params.combination_problems(
        {"v_novel_templates": 3.0, "v_template_clusters": 10, "s_premature_spread": 5}) == []
    beats_only = Split(np.zeros((3, 187), dtype=np.float32), np.zeros(3, dtype=int))
    need = params.missing_sidecar_need(resolve({"v_novel_templates": 3.0}), beats_only)
    assert need.key == "v_novel_templates" and need.field == "rr"
    with pytest.raises(ValueError, match="v_novel_templates needs each beat's record and RR"):
        training.call_novel_premature_templates_v(np.tile(N_CALL, (3, 1)), beats_only,
                                                  resolve(ON))
