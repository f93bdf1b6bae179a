"""Config resolution: defaults, type coercion, and errors that say what is allowed."""

import re

import pytest

from ecgsweep import params
from ecgsweep.config import ConfigError, defaults, resolve


def test_defaults_fill_every_key_of_the_family():
    cfg = resolve({"model": "rnn"})
    assert set(cfg) == set(params.params_for("rnn"))
    assert cfg["rnn_cell"] == "lstm" and cfg["epochs"] == defaults("rnn")["epochs"]


def test_unknown_key_stops_with_known_keys_and_suggestion():
    with pytest.raises(ConfigError) as e:
        resolve({"model": "cnn", "learnig_rate": 0.01})
    msg = str(e.value)
    assert "'learnig_rate' is not read" in msg
    assert "Did you mean: learning_rate" in msg
    assert "Known keys for model 'cnn':" in msg and "layer_FC_size" in msg


def test_other_family_key_only_warns():
    with pytest.warns(UserWarning, match="'rnn_units' is not read by model 'cnn'"):
        cfg = resolve({"model": "cnn", "rnn_units": 32})
    assert "rnn_units" not in cfg


@pytest.mark.parametrize("raw, says", [
    ({"final_model": "refit"}, "'final_model' is read only with folds >= 2"),
    ({"freeze_epochs": 2}, "'freeze_epochs' is read only with pretrained"),
    ({"fine_tune_lr_factor": 0.5}, "'fine_tune_lr_factor' is read only with pretrained"),
    ({"beat_dropout": 0.3}, "'beat_dropout' is read only with rr_features"),
])
def test_a_key_whose_needed_setting_is_off_warns_that_it_is_ignored(raw, says):
    with pytest.warns(UserWarning, match=says):
        resolve(raw)


def test_an_architecture_key_given_with_pretrained_warns_that_it_is_ignored():
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resolve({"pretrained": "models/cnn/best.keras", "n_conv_blocks": 4,
                 "kernel_size": 7, "rnn_units": 8, "layer_FC_size": 16, "dropout_rate": 0.1})
    said = sorted(str(w.message) for w in caught)
    without = "is read only without pretrained (the pretrained model's feature layers stand in"
    assert said == [f"config key 'kernel_size' {without} for the family's); ignored",
                    f"config key 'n_conv_blocks' {without} for the family's); ignored",
                    "config key 'rnn_units' is not read by model 'cnn'; ignored"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the head's keys, and defaults no one chose
        resolve({"pretrained": "models/cnn/best.keras", "layer_FC_size": 16})
        resolve({"model": "rnn", "rnn_units": 8})
        # a sequence family refuses pretrained at the run's start; its window keys shape the
        # data, so they are not called ignored
        resolve({"model": "seq2seq", "pretrained": "models/cnn/best.keras", "seq_window": 8})


def test_a_key_with_its_needed_setting_on_or_left_to_its_default_says_nothing():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve({"final_model": "refit", "folds": 3})
        resolve({"beat_dropout": 0.3, "rr_features": True})
        resolve({"folds": 0})  # final_model not given: its default is no one's choice


@pytest.mark.parametrize("raw,expected", [
    ({"model": "transformer"}, "not a known model family; choose one of: "),
    ({"optimizer": "adagrad"}, "'optimizer': 'adagrad' is not allowed; choose one of: adam"),
    ({"batch_size": 0}, "'batch_size': 0 is below the minimum 1"),
    ({"dropout_rate": 0.95}, "'dropout_rate': 0.95 is above the maximum 0.9"),
    ({"epochs": 2.5}, "'epochs': 2.5 is not an integer"),
    ({"batch_norm": "yes"}, "'batch_norm': 'yes' is not a boolean"),
    ({"learning_rate": "fast"}, "'learning_rate': 'fast' is not a number"),
    ({"models_dir": None}, "'models_dir': empty; give a value (default 'models')"),
    ({"dataset": " "}, "'dataset': empty; give a value (default 'mitbih')"),
])
def test_invalid_values_name_key_and_allowed(raw, expected):
    with pytest.raises(ConfigError, match=re.escape(expected)):
        resolve(raw)


def test_coercions_of_what_yaml_and_cli_produce():
    cfg = resolve({"learning_rate": "1e-4", "epochs": 3.0, "batch_norm": "false",
                   "class_weight": "sqrt", "_wandb": {"internal": 1}})
    assert cfg["learning_rate"] == pytest.approx(1e-4)
    assert cfg["epochs"] == 3 and isinstance(cfg["epochs"], int)
    assert cfg["batch_norm"] is False
    assert "_wandb" not in cfg


def test_a_path_value_has_its_tilde_expanded_and_an_off_value_may_be_empty(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = resolve({"models_dir": "~/m", "data_dir": "~", "pretrained": None})
    assert cfg["models_dir"] == f"{tmp_path}/m" and cfg["data_dir"] == str(tmp_path)
    assert cfg["pretrained"] == ""  # '': off, as its default
    assert resolve({"model": "cnn"})["model"] == "cnn"  # not a path: left as it is


def test_train_without_a_wandb_login_is_one_line_naming_the_offline_way(monkeypatch, capsys):
    import wandb

    from ecgsweep import run

    def no_login(**kwargs):
        raise wandb.errors.UsageError("No API key configured. Use `wandb login` to log in.")

    monkeypatch.setattr(wandb, "init", no_login)
    assert run.main(["--epochs=1", "--dataset=synthetic"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: train: could not start a W&B run (UsageError: No API key")
    assert "WANDB_MODE=offline" in err and "\n" not in err


def test_a_key_given_twice_on_the_command_line_is_refused():
    from ecgsweep.cli import UserError
    from ecgsweep.run_args import parse_cli

    assert parse_cli(["--epochs=2", "--model", "cnn"]) == {"epochs": 2, "model": "cnn"}
    with pytest.raises(UserError, match=r"--epochs is given twice \(the second time as '3'\)"):
        parse_cli(["--epochs=2", "--model=cnn", "--epochs", "3"])
