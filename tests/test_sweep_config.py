"""Sweep YAML validation: W&B's schema with field paths, and the lints for common mistakes."""

import subprocess
import sys
from pathlib import Path

import pytest

from ecgsweep.sweep import config as sc
from ecgsweep.sweep_hooks import ECG_PROGRAM

REPO = Path(__file__).resolve().parents[1]
SWEEP_CONFS = sorted((REPO / "sweep_conf").glob("*.yaml"))

BASE = """\
program: code/train.py
method: {method}
metric: {{name: val_macro_f1, goal: maximize}}
parameters:
  model: {{value: cnn}}
{params}
"""


def problems_for(params: str, method: str = "bayes", extra: str = "") -> list[sc.Problem]:
    base = BASE if "  model:" not in params else BASE.replace("  model: {{value: cnn}}\n", "")
    cfg = sc.loads(base.format(method=method, params=params) + extra)
    return sc.check(cfg, program=ECG_PROGRAM, cwd=REPO)


def test_there_are_sweep_confs():
    assert len(SWEEP_CONFS) >= 5


@pytest.mark.parametrize("path", SWEEP_CONFS, ids=lambda p: p.name)
def test_every_shipped_yaml_passes_check(path):
    problems = sc.check(sc.load(path), program=ECG_PROGRAM, cwd=REPO)
    assert problems == [], "\n".join(map(str, problems))


@pytest.mark.slow
def test_check_cli_accepts_every_shipped_yaml_and_rejects_a_bad_one(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE.format(method="bayes", params="  learning_rate: {min: 1e-4, max: 0.01}"))
    res = subprocess.run([sys.executable, "code/sweep.py", "check", *map(str, SWEEP_CONFS),
                          str(bad)], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 2, res.stdout + res.stderr
    for path in SWEEP_CONFS:
        assert f"{path}: ok (" in res.stdout
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith(str(bad))]
    assert len(lines) == 1 and "parameters.learning_rate.min" in lines[0], res.stdout
    assert "1.0e-4" in lines[0]


@pytest.mark.parametrize("params, method, field, words", [
    # numbers YAML reads as strings
    ("  learning_rate: {min: 1e-4, max: 0.01}", "bayes", "parameters.learning_rate.min",
     ["string", "1.0e-4"]),
    ("  learning_rate: {values: [0.001, 1e-3]}", "grid", "parameters.learning_rate.values[1]",
     ["string", "1.0e-3"]),
    ("  batch_size: {values: ['32', 64]}", "grid", "parameters.batch_size.values[0]",
     ["quoted"]),
    # log_uniform bounds written as values
    ("  learning_rate: {distribution: log_uniform, min: 0.0001, max: 0.01}", "bayes",
     "parameters.learning_rate", ["exponents", "log_uniform_values"]),
    ("  layer_1_size: {distribution: log_uniform, min: 16, max: 256}", "bayes",
     "parameters.layer_1_size", ["exponents", "log_uniform_values"]),
    ("  learning_rate: {distribution: log_uniform_values, min: -9.2, max: -4.6}", "bayes",
     "parameters.learning_rate.min", ["exponent", "log_uniform"]),
    # int bounds where floats were meant / floats for an int parameter
    ("  dropout_rate: {min: 0, max: 1}", "bayes", "parameters.dropout_rate",
     ["int_uniform", "0.0"]),
    ("  layer_1_size: {min: 16.0, max: 128.0}", "bayes", "parameters.layer_1_size",
     ["integer", "min: 16"]),
    ("  layer_1_size: {distribution: uniform, min: 16, max: 128}", "bayes",
     "parameters.layer_1_size", ["integer", "int_uniform"]),
    # parameters the training program does not know, bad values
    ("  learnig_rate: {values: [0.1, 0.01]}", "bayes", "parameters.learnig_rate",
     ["not a parameter", "learning_rate"]),
    ("  optimizer: {values: [adam, adamm]}", "bayes", "parameters.optimizer.values[1]",
     ["adamm", "adamw"]),
    ("  n_conv_blocks: {min: 1, max: 9}", "bayes", "parameters.n_conv_blocks.max", ["maximum 6"]),
    ("  epochs: 5\n  learning_rate: {values: [0.1, 0.01]}", "bayes", "parameters.epochs",
     ["{value: 5}"]),
    # schema errors, by field
    ("  learning_rate: {distribution: loguniform, min: 0.001, max: 0.1}", "bayes",
     "parameters.learning_rate", ["unknown distribution", "log_uniform"]),
    ("  learning_rate: {min: 0.1, max: 0.01}", "bayes", "parameters.learning_rate",
     ["not less than"]),
    ("  learning_rate: {distribution: uniform, max: 0.01}", "bayes",
     "parameters.learning_rate", ["'min' is a required property"]),
    ("  learning_rate: {vals: [0.1, 0.01]}", "bayes", "parameters.learning_rate.vals",
     ["values"]),
    ("  learning_rate: {values: [0.1, 0.01]}", "bayesian", "method", ["'bayes'"]),
    ("  learning_rate: {min: 0.001, max: 0.01}", "grid", "parameters.learning_rate",
     ["grid", "values"]),
    ("  model: {value: cnnn}", "bayes", "parameters.model", ["cnn"]),
])
def test_bad_yaml_reports_the_field(params, method, field, words):
    problems = problems_for(params, method)
    hits = [p for p in problems if p.field == field]
    assert hits, f"no problem for {field}: {[str(p) for p in problems]}"
    text = " ".join(p.message for p in hits)
    for w in words:
        assert w in text, (w, text)


def test_warnings_do_not_block_but_are_reported():
    problems = problems_for("  learning_rate: {distribution: log_uniform, min: -9.2, max: -4.6}")
    assert sc.errors(problems) == []
    assert any(p.level == "warning" and "log_uniform_values" in p.message for p in problems)
    cfg = sc.loads("program: code/train.py\nmethod: random\nmetric: {name: val_macro_f1}\n"
                   "parameters: {learning_rate: {values: [0.1, 0.01]}}\n")
    goal = [p for p in sc.check(cfg, program=ECG_PROGRAM, cwd=REPO) if p.field == "metric.goal"]
    assert goal and goal[0].level == "warning" and "maximize" in goal[0].message


def test_top_level_mistakes_and_command_macros():
    cfg = sc.loads("method: grid\nmetrc: {name: val_macro_f1}\n"
                   "parameters: {epochs: {value: 1}}\n"
                   "command:\n  - ${env}\n  - ${interpretor}\n  - ${program}\n  - ${args}\n")
    by_field = {p.field: p.message for p in sc.check(cfg, program=ECG_PROGRAM, cwd=REPO)}
    assert "metric" in by_field["metrc"]
    assert "interpreter" in by_field["command[1]"]
    assert "program: code/train.py" in by_field["program"]


def test_program_must_exist_relative_to_cwd(tmp_path):
    cfg = sc.loads("program: train.py\nmethod: random\nparameters: {epochs: {value: 1}}\n")
    assert [p for p in sc.check(cfg, cwd=tmp_path) if p.field == "program"]
    (tmp_path / "train.py").write_text("")
    assert not [p for p in sc.check(cfg, cwd=tmp_path) if p.field == "program"]


def test_our_program_away_from_the_clone_runs_as_installed(tmp_path):
    """code/train.py missing from the current folder: our hooks name the program's own copy
    (run_as), so the check passes; any other program's missing file is an error."""
    cfg = sc.loads("program: code/train.py\nmethod: random\nparameters: {epochs: {value: 1}}\n")
    assert not [p for p in sc.check(cfg, program=ECG_PROGRAM, cwd=tmp_path)
                if p.field == "program"]
    assert not [p for p in sc.check(cfg, program=ECG_PROGRAM, cwd=REPO) if p.field == "program"]
    assert [p for p in sc.check(cfg, cwd=tmp_path) if p.field == "program"]


def test_yaml_syntax_error_names_the_line():
    with pytest.raises(sc.ConfigError, match="line 3"):
        sc.loads("method: grid\nparameters:\n  a: {values: [1, 2}\n")


def test_unknown_parameter_uses_the_current_params_schema(monkeypatch):
    from ecgsweep import params

    problems = problems_for("  transformer_heads: {values: [2, 4]}")
    assert [p for p in problems if p.field == "parameters.transformer_heads"]
    # a family added to params.py later is known at once
    family = (params.Param("transformer_heads", 4, int, "attention heads", low=1, high=16),)
    monkeypatch.setitem(params.FAMILY_PARAMS, "transformer", family)
    cfg = sc.loads(BASE.format(method="bayes", params="  transformer_heads: {values: [2, 4]}")
                   .replace("{value: cnn}", "{value: transformer}"))
    assert sc.errors(sc.check(cfg, program=ECG_PROGRAM, cwd=REPO)) == []


def test_grid_size_and_searched_params():
    cfg = sc.load(REPO / "sweep_conf" / "cnn_grid.yaml")
    assert sc.grid_size(cfg) == 18
    assert set(sc.searched_params(cfg)) == {"n_conv_blocks", "layer_1_size", "learning_rate"}


@pytest.mark.slow
def test_running_a_bad_yaml_exits_2_naming_the_field_and_starts_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE.format(method="bayes", params="  dropout_rate: {min: '0.1', max: 0.5}"))
    res = subprocess.run([sys.executable, "code/sweep.py", str(bad), "--store",
                          str(tmp_path / "store")], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 2
    assert "parameters.dropout_rate.min" in res.stderr
    assert not (tmp_path / "store").exists()


def test_duplicate_yaml_keys_are_reported_with_their_lines():
    """PyYAML keeps the last of two equal keys silently; check must say so."""
    text = ("program: p.py\nmethod: grid\nmethod: random\nparameters:\n"
            "  lr: {values: [1, 2]}\n  lr: {values: [3]}\n")
    with pytest.raises(sc.ConfigError) as e:
        sc.loads(text, source="s.yaml")
    lines = str(e.value).splitlines()
    assert any("line 3" in ln and ": method:" in ln for ln in lines), str(e.value)
    assert any("line 6" in ln and "parameters.lr" in ln for ln in lines), str(e.value)


def test_lints_w_and_bs_validator_lets_through():
    """value: given a list, duplicated values, a command without any args macro."""
    cfg = sc.loads("program: p.py\nmethod: grid\nmetric: {name: acc, goal: maximize}\n"
                   "command: [python, \"${program}\"]\n"
                   "parameters:\n  lr: {value: [0.1, 0.01]}\n  bs: {values: [32, 64, 32]}\n")
    by_field = {p.field: p.message for p in sc.check(cfg, program=ECG_PROGRAM, cwd=REPO)}
    assert "values:" in by_field["parameters.lr.value"], by_field
    assert "32" in by_field["parameters.bs.values[2]"], by_field
    assert "${args}" in by_field["command"], by_field


def test_a_yaml_for_another_program_gets_only_the_w_and_b_checks(tmp_path):
    """W&B's own examples: program train.py, its own parameters and metric."""
    (tmp_path / "train.py").write_text("import wandb\n")
    cfg = sc.loads("program: train.py\nmethod: bayes\nmetric: {name: val_loss, goal: minimize}\n"
                   "parameters:\n  dropout: {values: [0.1, 0.3]}\n"
                   "  learn_rate: {distribution: log_uniform_values, min: 0.0001, max: 0.01}\n"
                   "  optimizer: {parameters: {beta: {values: [0.9, 0.99]}}}\n")
    assert sc.check(cfg, program=ECG_PROGRAM, cwd=tmp_path) == []


def test_the_known_parameters_are_listed_once():
    problems = problems_for("  learnig_rate: {values: [0.1, 0.01]}\n  dropout: {value: 0.1}")
    lines = [str(p) for p in problems]
    assert sum("epochs" in ln for ln in lines) == 1, lines
    assert len([p for p in sc.errors(problems) if "not a parameter" in p.message]) == 2


def test_runs_that_keep_their_last_epoch_need_the_kept_metric():
    searched = "  learning_rate: {values: [0.001, 0.01]}\n"
    last = searched + "  keep_epoch: {value: last}\n"
    warned = [p for p in problems_for(last) if p.field == "metric.name"]
    assert len(warned) == 1 and "kept_val_macro_f1" in warned[0].message
    assert warned[0].level == "warning"
    assert not [p for p in problems_for(searched) if p.field == "metric.name"]  # keeps best
    kept = BASE.replace("name: val_macro_f1", "name: kept_val_macro_f1")
    assert sc.check(sc.loads(kept.format(method="bayes", params=last)), program=ECG_PROGRAM,
                    cwd=REPO) == []
    hyperband = "early_terminate: {type: hyperband, min_iter: 2}\n"
    problems = sc.check(sc.loads(kept.format(method="bayes", params=last) + hyperband),
                        program=ECG_PROGRAM, cwd=REPO)
    assert [p.field for p in problems] == ["early_terminate"]
    assert "stop none" in problems[0].message


@pytest.mark.parametrize("section, field, says", [
    ("{type: hyperband, min_iter: 0, eta: 2}", "early_terminate.min_iter", "less than the minimum of 1"),
    ("{type: hyperband, min_iter: 2, eta: 1}", "early_terminate.eta", "minimum of 1"),
    ("{type: envelope}", "early_terminate.type", "by hyperband only"),
    ("{type: hyperband, min_iter: 3, max_iter: 2}", "early_terminate.min_iter",
     "3 is above max_iter 2"),
    ("{type: hyperband}", "early_terminate", "needs min_iter"),
    ("hyperband", "early_terminate", "'hyperband' is not a mapping"),
    ("{min_iter: 2}", "early_terminate.type", "missing"),
])
def test_a_wrong_early_terminate_is_named_by_its_field(section, field, says):
    text = ("program: p.py\nmethod: random\nmetric: {name: acc, goal: maximize}\n"
            f"parameters: {{x: {{min: 0.1, max: 0.2}}}}\nearly_terminate: {section}\n")
    problems = sc.check(sc.loads(text), check_program=False)
    assert [(p.field, p.level) for p in problems] == [(field, "error")], [str(p) for p in problems]
    assert says in problems[0].message
