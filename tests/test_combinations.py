"""Settings that cannot run together: one table in ``params``, read by the run's start (before
any data is loaded) and by ``sweep.py check``."""

import pytest

from ecgsweep import params, run
from ecgsweep.cli import UserError
from ecgsweep.config import resolve

from test_kfold import FakeRun


@pytest.mark.parametrize("setting, keys, message", [
    ({"model": "seq2seq", "resample": "smote"}, ("model", "resample"),
     "config key 'model': seq2seq is not supported together with resample (beats of no "
     "record); turn those off"),
    # each setting that clashes gives its own reason, and only it
    ({"model": "seq2seq", "val_split": "random", "beat_dropout": 0.3,
      "beat_normalization": "record_median"},
     ("model", "val_split", "beat_normalization", "beat_dropout"),
     "config key 'model': seq2seq is not supported together with val_split=random, "
     "beat_normalization, beat_dropout (gaps in a record's beats; a channel its windows do "
     "not carry); turn those off"),
    ({"rr_features": True, "augment_synthetic": 0.5, "pretrained": "base.keras"},
     ("rr_features", "augment_synthetic", "pretrained"),
     "config key 'rr_features': not supported together with augment_synthetic, pretrained "
     "(added beats and a pretrained beat-only model have no RR features); set "
     "rr_features=false or turn those off"),
    ({"beat_normalization": "record_median", "augment_synthetic": 0.2, "aug_noise": 0.1},
     ("beat_normalization", "augment_synthetic"),
     "config key 'beat_normalization': record_median: not supported together with "
     "augment_synthetic; set beat_normalization=none or turn those off"),
])
def test_each_rule_names_its_keys_and_says_what_to_do(setting, keys, message):
    for config in (setting, resolve(setting)):  # a sweep's fixed values, or a whole run config
        (problem,) = params.combination_problems(config)
        assert problem.keys == keys and problem.message == message


def test_settings_that_go_together_have_no_problem():
    assert params.combination_problems({}) == []
    assert params.combination_problems(resolve({"model": "seq2seq", "rr_features": True})) == []
    assert params.combination_problems({"resample": "smote", "max_train_beats": 100}) == []
    assert params.combination_problems({"model": "seq2seq", "pretrained": "none"}) == []


def test_a_config_breaking_several_rules_gets_each_in_the_tables_order():
    config = {"model": "seq2seq", "rr_features": True, "resample": "smote"}
    assert [p.keys for p in params.combination_problems(config)] == [
        ("model", "resample"), ("rr_features", "resample")]


def test_a_run_refuses_a_combination_before_it_reads_any_data(tmp_path):
    config = resolve({"model": "seq2seq", "resample": "smote",
                      "dataset": str(tmp_path / "absent.csv"),
                      "models_dir": str(tmp_path / "models")})
    with pytest.raises(UserError, match="^config key 'model': seq2seq is not supported together "
                                        "with resample"):
        run._train(FakeRun(tmp_path, "combo1"), config)
    assert not (tmp_path / "models").exists()


# A value that turns each option of params.OPTION_NEEDS on.
ON = {"s_gate_irregularity": 0.1, "s_run_tolerance": 0.15, "prior_adaptation": 0.5,
      "s_premature_ratio": 0.85, "s_premature_spread": 5.0, "v_template_clusters": 10,
      "v_novel_templates": 3.0}


@pytest.mark.parametrize("need", [n for n in params.OPTION_NEEDS if n.classes],
                         ids=lambda n: n.key)
def test_an_option_refuses_data_without_the_classes_it_acts_on(need):
    from ecgsweep.run_start import check_classes

    config = resolve({need.key: ON[need.key]})
    assert params.option_on(config, need.key)
    with pytest.raises(UserError, match=f"'{need.key}': {ON[need.key]} {need.does}, but the "
                                        "data's classes are normal, abnormal"):
        check_classes(config, ("normal", "abnormal"))
    check_classes(config, ("N", "S", "V", "F"))


def test_sweep_check_warns_of_a_fixed_value_read_only_with_a_setting_left_off():
    from ecgsweep.sweep_hooks import combination_findings

    section = {"final_model": {"value": "refit"}, "beat_dropout": {"value": 0.3},
               "rr_features": {"values": [True, False]}, "folds": {"value": 0}}
    findings = [(p.field, p.message, p.level) for p in combination_findings(section)]
    assert findings == [("parameters.final_model", "read only with folds >= 2, which the "
                         "fixed values rule out: it changes no run", "warning")]
    # beat_dropout is not named: rr_features is searched, so some runs read it
    section["folds"] = {"value": 4}
    assert combination_findings(section) == []
