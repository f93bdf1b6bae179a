"""The ``objective`` key: which validation metric keeps epochs, stops early, ranks runs for
the best model, and what the sweep YAML check says when the sweep ranks by another."""


import numpy as np
import pytest

from ecgsweep import artifacts, ec57, model_inputs, models, training
from ecgsweep.cli import UserError
from ecgsweep.config import resolve
from ecgsweep.data import datasets
from ecgsweep.data.datasets import Split
from ecgsweep.model_record import ModelRecord
from ecgsweep.sweep import config as sweep_config
from ecgsweep.sweep_hooks import ECG_PROGRAM

AAMI4 = datasets.CLASS_SETS["aami4"]


def test_sveb_veb_f1_is_the_mean_of_the_ec57_rows():
    cm = np.array([  # rows true N S V F, columns called
        [90, 6, 4, 0],
        [2, 8, 0, 0],
        [1, 0, 9, 0],
        [0, 0, 5, 5],  # F called V: not counted against VEB (EC57)
    ])
    s_f1 = 2 * 8 / (2 * 8 + 2 + 6)  # Se 8/10, +P 8/14
    v_f1 = 2 * 9 / (2 * 9 + 1 + 4)  # Se 9/10, +P 9/13 (the 5 F calls left out)
    assert ec57.sveb_veb_f1(cm, AAMI4) == pytest.approx((s_f1 + v_f1) / 2)
    # a fold with no S beats and no S calls: the VEB row alone
    no_s = cm.copy()
    no_s[1] = 0
    no_s[:, 1] = 0
    assert ec57.sveb_veb_f1(no_s, AAMI4) == pytest.approx(
        ec57.ec57_table(no_s, AAMI4)["V"]["f1"])
    assert ec57.has_ec57_rows(AAMI4) and not ec57.has_ec57_rows(datasets.PTBDB_CLASSES)


def test_a_class_never_called_scores_zero_not_left_out():
    never_s = np.array([[100, 0, 0, 0], [5, 0, 0, 0], [0, 0, 10, 0], [0, 0, 0, 0]])
    four_of_five = np.array([[100, 0, 0, 0], [1, 4, 0, 0], [0, 0, 10, 0], [0, 0, 0, 0]])
    assert ec57.ec57_table(never_s, AAMI4)["S"]["f1"] == 0.0
    assert ec57.sveb_veb_f1(never_s, AAMI4) == pytest.approx(0.5)
    assert ec57.sveb_veb_f1(never_s, AAMI4) < ec57.sveb_veb_f1(four_of_five, AAMI4)
    assert ec57.macro_f1(never_s) < ec57.macro_f1(four_of_five)
    # calls of a class with no beats are all false: F1 0, not left out
    s_without_beats = np.array([[98, 2, 0, 0], [0, 0, 0, 0], [0, 0, 10, 0], [0, 0, 0, 0]])
    assert ec57.ec57_table(s_without_beats, AAMI4)["S"]["f1"] == 0.0
    # neither beats nor calls: undefined, and left out of the means
    assert ec57.ec57_table(never_s, AAMI4)["F"]["f1"] is None


def _tiny_split(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return Split(rng.random((n, 187), dtype=np.float32), rng.integers(0, 4, n))


@pytest.mark.parametrize("objective, kept", [("macro_f1", 1), ("sveb_veb_f1", 3)])
def test_the_objective_picks_the_kept_epoch(monkeypatch, objective, kept):
    config = resolve({"n_conv_blocks": 1, "layer_1_size": 4, "layer_FC_size": 0, "epochs": 3,
                      "batch_size": 16, "keep_epoch": "best", "objective": objective})
    model = models.build(config, (187, 1), 4)
    epochs = iter([(0.9, 0.1), (0.5, 0.2), (0.1, 0.8)])  # the two metrics disagree

    def stand_in_validation(fitted, val, cfg, class_names, class_prior):
        macro, sveb_veb = next(epochs)
        return {"val_loss": 1.0, "val_accuracy": 0.5, "val_macro_f1": macro,
                "val_sveb_veb_f1": sveb_veb}

    monkeypatch.setattr(training, "_validation_metrics", stand_in_validation)
    result = training.fit(model, config, _tiny_split(), _tiny_split(seed=1), AAMI4,
                          lambda m: None, training.StopRequest())
    assert result.kept_epoch == kept
    assert result.kept_value == result.kept_metrics[training.objective_metric(config)]


def test_validation_logs_sveb_veb_f1_only_with_s_and_v():
    config = resolve({"n_conv_blocks": 1, "layer_1_size": 4, "layer_FC_size": 0})
    model = models.build(config, (187, 1), 4)
    with_rows = training._validation_metrics(model, _tiny_split(), config, AAMI4,
                                              [0.25] * 4)
    pred = model.predict(model_inputs.as_model_input(_tiny_split().X), verbose=0).argmax(axis=1)
    cm = np.zeros((4, 4), dtype=int)
    np.add.at(cm, (_tiny_split().y, pred), 1)
    assert with_rows["val_sveb_veb_f1"] == pytest.approx(ec57.sveb_veb_f1(cm, AAMI4))
    ptb = Split(_tiny_split().X, _tiny_split().y % 2)
    ptb_model = models.build(config, (187, 1), 2)
    assert "val_sveb_veb_f1" not in training._validation_metrics(
        ptb_model, ptb, config, datasets.PTBDB_CLASSES, [0.5, 0.5])


def test_sveb_veb_objective_refuses_data_without_s_and_v():
    from ecgsweep.run_start import check_objective

    config = resolve({"objective": "sveb_veb_f1"})
    ptb = datasets.PTBDB_CLASSES
    with pytest.raises(UserError, match="'objective': sveb_veb_f1 .*classes are normal, abnormal"):
        check_objective(config, ptb)
    check_objective(config, AAMI4)
    check_objective(resolve({}), ptb)  # macro_f1 fits any classes
    model = models.build(config, (187, 1), 2)
    with pytest.raises(ValueError, match="needs classes S and V"):
        training.fit(model, config, _tiny_split(), _tiny_split(), datasets.PTBDB_CLASSES,
                     lambda m: None, training.StopRequest())


def test_a_model_ranked_by_another_metric_is_not_replaced(tmp_path):
    pair = artifacts.ModelPair(tmp_path / "slot")
    first, second = tmp_path / "a.keras", tmp_path / "b.keras"
    first.write_bytes(b"first")
    second.write_bytes(b"second")
    assert pair.promote_if_better(first, ModelRecord(metric="val_macro_f1", value=0.5))[0]
    promoted, reason = pair.promote_if_better(second, ModelRecord(metric="val_sveb_veb_f1", value=0.9))
    assert not promoted and "ranked by val_macro_f1" in reason and "models_dir" in reason
    assert pair.model_path.read_bytes() == b"first"
    assert pair.promote_if_better(second, ModelRecord(metric="val_macro_f1", value=0.6))[0]


SWEEP = """program: code/train.py
method: bayes
metric: {{name: {metric}, goal: maximize}}
parameters:
  learning_rate: {{values: [0.001, 0.01]}}
  keep_epoch: {{value: last}}
{objective}"""


def _warnings(metric, objective=""):
    cfg = sweep_config.loads(SWEEP.format(metric=metric, objective=objective))
    return [p for p in sweep_config.check(cfg, program=ECG_PROGRAM) if p.level == "warning"]


def test_the_sweep_check_wants_the_metric_the_runs_objective_keeps():
    objective = "  objective: {value: sveb_veb_f1}\n"
    assert _warnings("kept_val_sveb_veb_f1", objective) == []
    assert _warnings("kept_val_macro_f1") == []
    mismatch = _warnings("kept_val_sveb_veb_f1")  # runs keep their default, macro_f1
    assert [p.field for p in mismatch] == ["parameters.objective"]
    assert "objective: {value: sveb_veb_f1}" in mismatch[0].message
    best_epoch = _warnings("val_sveb_veb_f1", objective)  # keep_epoch last: kept_ key
    assert [p.field for p in best_epoch] == ["metric.name"]
    assert "kept_val_sveb_veb_f1" in best_epoch[0].message


def test_hyperband_on_a_summary_only_metric_is_flagged():
    hyperband = "early_terminate: {type: hyperband, min_iter: 2}\n"
    for name in ("kept_val_sveb_veb_f1", "best_val_macro_f1"):
        cfg = sweep_config.loads(SWEEP.format(metric=name, objective="").replace(
            "  keep_epoch: {value: last}\n", "") + hyperband)
        found = sweep_config.check(cfg, program=ECG_PROGRAM)
        assert "early_terminate" in [p.field for p in found], name
    cfg = sweep_config.loads(SWEEP.format(metric="val_macro_f1", objective="").replace(
        "  keep_epoch: {value: last}\n", "") + hyperband)
    found = sweep_config.check(cfg, program=ECG_PROGRAM)
    assert "early_terminate" not in [p.field for p in found]
