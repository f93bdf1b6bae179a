"""``train_outside_s_gate``: training leaves out the beats whose S call the gate makes."""

import numpy as np
import pytest

from ecgsweep import folds, params, training
from ecgsweep.cli import UserError
from ecgsweep.config import resolve
from ecgsweep.data.datasets import MITBIH_CLASSES

from test_rr_entropy import _bigeminy, _fibrillation, _split_of

ENTROPY_GATE = {"classes": "aami4", "s_gate_irregularity": 2.75, "s_gate_measure": "rr_entropy"}


def test_training_keeps_the_beats_the_gate_leaves_to_the_model():
    split = _split_of([("bigeminy", _bigeminy()), ("af", _fibrillation())])
    af = np.flatnonzero(split.records == "af")
    split.y[af[100:110]] = MITBIH_CLASSES.index("V")
    kept = training.beats_outside_s_gate(split, resolve({**ENTROPY_GATE,
                                                         "train_outside_s_gate": True}))
    bigeminy = int((split.records == "bigeminy").sum())
    assert (kept.records == "bigeminy").sum() == bigeminy  # ectopy is the model's to learn
    # fibrillation's beats go whatever their class: V ones kept alone would tie V to the rhythm
    assert (kept.records == "af").sum() < 0.1 * len(af)
    assert (kept.y == MITBIH_CLASSES.index("V")).sum() <= 1
    assert len(kept.rr) == len(kept.X) == len(kept.records) == len(kept)


def test_training_keeps_every_beat_with_the_key_off():
    split = _split_of([("af", _fibrillation())])
    assert training.beats_outside_s_gate(split, resolve(ENTROPY_GATE)) is split


def test_the_folds_train_without_the_beats_the_gate_clears(capsys):
    dev = _split_of([("bigeminy", _bigeminy()), ("af", _fibrillation()),
                     ("sinus", np.full(200, 0.8))])
    config = resolve({**ENTROPY_GATE, "train_outside_s_gate": True, "folds": 3,
                      "val_split": "record"})
    by_held_out = {str(fold.val.records[0]): fold
                   for fold, _ in folds.development_folds(config, ("N", "S", "V", "F"), dev)}
    beats = {name: int((dev.records == name).sum()) for name in ("bigeminy", "af", "sinus")}
    # the folds that train on the fibrillation record keep few of its beats; the other all
    trained_on_af = by_held_out["bigeminy"].train
    assert (trained_on_af.records == "sinus").sum() == beats["sinus"]
    assert (trained_on_af.records == "af").sum() < 0.1 * beats["af"]
    assert len(by_held_out["af"].train) == beats["bigeminy"] + beats["sinus"]
    # validation is scored on every beat, as the gate then acts on them
    assert len(by_held_out["af"].val) == beats["af"]
    assert "training beats the S gate clears left out" in capsys.readouterr().out


def test_leaving_out_the_gates_beats_needs_the_gate():
    (problem,) = params.combination_problems({"train_outside_s_gate": True})
    assert problem.keys == ("train_outside_s_gate", "s_gate_irregularity")
    assert problem.message == (
        "config key 'train_outside_s_gate': true leaves out of training the beats the S gate "
        "clears, and the gate is off (s_gate_irregularity=0); set s_gate_irregularity above 0 "
        "or train_outside_s_gate=false")
    with pytest.raises(ValueError, match="needs the S gate on"):
        training.beats_outside_s_gate(_split_of([("af", _fibrillation())]),
                                      resolve({"train_outside_s_gate": True}))


def test_a_sequence_model_refuses_gaps_the_gate_would_leave_in_a_record():
    config = {"model": "seq2seq", "train_outside_s_gate": True, "s_gate_irregularity": 2.75}
    (problem,) = params.combination_problems(config)
    assert problem.keys == ("model", "train_outside_s_gate")


def test_a_fold_left_without_training_beats_says_which_setting_did_it():
    dev = _split_of([("af", _fibrillation()), ("af2", _fibrillation())])
    config = resolve({**ENTROPY_GATE, "s_gate_irregularity": 0.5, "train_outside_s_gate": True,
                      "folds": 2, "val_split": "record"})
    with pytest.raises(UserError, match=r"fold 1: train_outside_s_gate leaves no training beat "
                                        r"\(the rr_entropy of every one is above "
                                        r"s_gate_irregularity=0.5\)"):
        list(folds.development_folds(config, ("N", "S", "V", "F"), dev))
