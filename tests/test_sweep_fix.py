"""`code/sweep.py check --fix`: the mechanical fixes of a sweep YAML."""

from pathlib import Path

import pytest
import yaml

from ecgsweep import sweep_cli
from ecgsweep.sweep import config as sc
from ecgsweep.sweep import engine
from ecgsweep.sweep import fix as sf
from ecgsweep.sweep_hooks import ECG_PROGRAM

REPO = Path(__file__).resolve().parents[1]

# W&B's own example shape (program train.py, its own parameters and metric) with the
# mistakes users make.
WANDB_EXAMPLE = """\
# a comment the fixed file does not keep
program: train.py
method: {method}
metric:
  name: val_loss
  goal: minimize
parameters:
  dropout:
    values: [0.1, 0.2, 0.3, 0.2]
  learning_rate: {{distribution: log_uniform_values, min: 1e-4, max: 1e-2}}
  decay:
    values: [1e-5, 1e-6]
  momentum: {{distribution: log_uniform, min: 0.0001, max: 0.1}}
  opt:
    parameters:
      lr: {{value: 1e-3}}
      beta: {{values: [0.9, 0.99]}}
"""


@pytest.fixture
def example(tmp_path, monkeypatch) -> Path:
    """The example YAML in a folder that also holds its program, as the working directory."""
    (tmp_path / "train.py").write_text("import wandb\n")
    path = tmp_path / "sweep.yaml"
    path.write_text(WANDB_EXAMPLE.format(method="bayes"))
    monkeypatch.chdir(tmp_path)
    return path


def test_check_reports_fix_writes_and_the_fixed_file_passes(example, capsys):
    assert sweep_cli.main(["check", "sweep.yaml"]) == 2
    out = capsys.readouterr().out
    for field in ("learning_rate.min", "learning_rate.max", "decay.values[0]",
                  "decay.values[1]", "parameters.momentum:", "opt.parameters.lr.value",
                  "dropout.values[3]"):
        line = next(ln for ln in out.splitlines() if field in ln)
        assert line.endswith("`check --fix` does this"), line

    assert sweep_cli.main(["check", "--fix", "sweep.yaml"]) == 0
    out = capsys.readouterr().out
    assert "sweep.fixed.yaml: ok (" in out, out
    for line in ("parameters.learning_rate.min: '1e-4' -> 0.0001",
                 "parameters.learning_rate.max: '1e-2' -> 0.01",
                 "parameters.decay.values[0]: '1e-5' -> 1e-05",
                 "parameters.momentum.distribution: 'log_uniform' -> 'log_uniform_values'",
                 "parameters.opt.parameters.lr.value: '1e-3' -> 0.001",
                 "parameters.dropout.values: [0.1, 0.2, 0.3, 0.2] -> [0.1, 0.2, 0.3]"):
        assert f"sweep.yaml: {line} (" in out, (line, out)

    assert (example.parent / "sweep.fixed.yaml").is_file()
    assert sweep_cli.main(["check", "sweep.fixed.yaml"]) == 0
    assert "sweep.fixed.yaml: ok (" in capsys.readouterr().out


def test_the_fixed_yaml_keeps_order_and_nesting_and_reads_back(example, capsys):
    sweep_cli.main(["check", "--fix", "sweep.yaml"])
    capsys.readouterr()
    fixed = sc.load("sweep.fixed.yaml")
    assert list(fixed) == ["program", "method", "metric", "parameters"]
    assert list(fixed["parameters"]) == ["dropout", "learning_rate", "decay", "momentum", "opt"]
    assert fixed["parameters"]["learning_rate"] == {"distribution": "log_uniform_values",
                                                     "min": 0.0001, "max": 0.01}
    assert fixed["parameters"]["decay"] == {"values": [1e-5, 1e-6]}
    assert fixed["parameters"]["momentum"]["distribution"] == "log_uniform_values"
    assert fixed["parameters"]["opt"] == {"parameters": {"lr": {"value": 0.001},
                                                         "beta": {"values": [0.9, 0.99]}}}
    assert fixed == sf.fix(sc.load("sweep.yaml"), program=ECG_PROGRAM)[0]


def test_the_engine_loads_the_fixed_yaml_and_samples_the_value_ranges(tmp_path, monkeypatch,
                                                                        capsys):
    """What code/sweep.py does before running: load, check, engine_config; then propose."""
    (tmp_path / "train.py").write_text("import wandb\n")
    (tmp_path / "sweep.yaml").write_text(WANDB_EXAMPLE.format(method="random"))
    monkeypatch.chdir(tmp_path)
    assert sweep_cli.main(["check", "--fix", "sweep.yaml"]) == 0
    capsys.readouterr()
    cfg = sc.load("sweep.fixed.yaml")
    assert sc.errors(sc.check(cfg, program=ECG_PROGRAM)) == []
    engine_cfg = sc.engine_config(cfg)
    for _ in range(30):
        params, _info = engine.propose(engine_cfg, [], {})
        assert 1e-4 <= params["learning_rate"]["value"] <= 1e-2, params
        assert 1e-4 <= params["momentum"]["value"] <= 0.1, params  # not e^0.0001..e^0.1
        assert params["decay"]["value"] in (1e-5, 1e-6)


def test_nothing_to_fix_writes_nothing(tmp_path, monkeypatch, capsys):
    (tmp_path / "train.py").write_text("import wandb\n")
    (tmp_path / "clean.yaml").write_text(
        "program: train.py\nmethod: random\nmetric: {name: val_loss, goal: minimize}\n"
        "parameters: {dropout: {values: [0.1, 0.3]}, learn_rate: {min: 0.0001, max: 0.01}}\n")
    monkeypatch.chdir(tmp_path)
    assert sweep_cli.main(["check", "--fix", "clean.yaml"]) == 0
    out = capsys.readouterr().out
    assert "clean.yaml: nothing to fix" in out and "clean.yaml: ok (" in out, out
    assert not (tmp_path / "clean.fixed.yaml").exists()


def test_what_is_not_mechanical_stays_and_check_still_reports_it(tmp_path, monkeypatch, capsys):
    """Bounds 16..256 may be exponents or values: reported, never rewritten; exit code 2."""
    path = tmp_path / "cnn.yaml"
    path.write_text("program: code/train.py\nmethod: bayes\n"
                    "metric: {name: val_macro_f1, goal: maximize}\n"
                    "parameters:\n  model: {value: cnn}\n"
                    "  learning_rate: {min: 1e-4, max: 0.01}\n"
                    "  layer_1_size: {distribution: log_uniform, min: 16, max: 256}\n")
    monkeypatch.chdir(REPO)
    assert sweep_cli.main(["check", "--fix", str(path)]) == 2
    out = capsys.readouterr().out
    assert "parameters.learning_rate.min: '1e-4' -> 0.0001" in out, out
    assert "layer_1_size.distribution" not in out, out
    remaining = [ln for ln in out.splitlines() if ln.startswith(f"{tmp_path / 'cnn.fixed.yaml'}:")]
    exponents = [ln for ln in remaining if "parameters.layer_1_size: log_uniform takes" in ln]
    assert len(exponents) == 1 and "check --fix" not in exponents[0], out
    assert any("layer_1_size, an integer, rejects" in ln for ln in remaining), out
    fixed = sc.load(tmp_path / "cnn.fixed.yaml")
    assert fixed["parameters"]["layer_1_size"]["distribution"] == "log_uniform"


@pytest.mark.parametrize("spec, fixed_dist", [
    ({"distribution": "log_uniform", "min": 0.0001, "max": 0.01}, "log_uniform_values"),
    ({"distribution": "log_uniform", "min": "1e-4", "max": "1e-2"}, "log_uniform_values"),
    ({"distribution": "inv_log_uniform", "min": 0.001, "max": 1}, "inv_log_uniform_values"),
    ({"distribution": "q_log_uniform", "min": 0.01, "max": 0.5, "q": 0.01},
     "q_log_uniform_values"),
    # exponents (e^-9.2..e^-4.6), bounds beyond 1, or min >= max: left alone
    ({"distribution": "log_uniform", "min": -9.2, "max": -4.6}, "log_uniform"),
    ({"distribution": "log_uniform", "min": 16, "max": 256}, "log_uniform"),
    ({"distribution": "log_uniform", "min": 0.5, "max": 0.1}, "log_uniform"),
    ({"distribution": "log_uniform_values", "min": 0.0001, "max": 0.01}, "log_uniform_values"),
])
def test_old_style_log_distributions_are_renamed_only_when_the_bounds_are_values(spec,
                                                                                 fixed_dist):
    cfg = {"program": "train.py", "method": "random", "parameters": {"x": spec}}
    fixed, changes = sf.fix(cfg, program=ECG_PROGRAM)
    assert fixed["parameters"]["x"]["distribution"] == fixed_dist
    renamed = [c for c in changes if c.field == "parameters.x.distribution"]
    assert len(renamed) == (fixed_dist != spec["distribution"])
    assert cfg["parameters"]["x"] == spec, "fix must not change its input"


def test_string_numbers_in_every_numeric_key_become_floats():
    cfg = {"program": "train.py", "method": "random", "parameters": {
        "w": {"distribution": "normal", "mu": "1e-3", "sigma": "5e-4"},
        "q": {"distribution": "q_uniform", "min": 0, "max": 1, "q": "1e-1"},
        "c": {"value": "2E3"},
        "name": {"values": ["adam", "1e-3x"]}}}
    fixed, changes = sf.fix(cfg, program=ECG_PROGRAM)
    p = fixed["parameters"]
    assert (p["w"]["mu"], p["w"]["sigma"], p["q"]["q"], p["c"]["value"]) == (0.001, 0.0005,
                                                                            0.1, 2000.0)
    assert p["name"]["values"] == ["adam", "1e-3x"]
    assert [c.field for c in changes] == ["parameters.w.mu", "parameters.w.sigma",
                                          "parameters.q.q", "parameters.c.value"]


def test_an_exponent_without_its_sign_is_a_string_too_and_is_fixed():
    """YAML 1.1 wants a dot and a sign: 1.0e5 is the string '1.0e5', as 1e5 is."""
    cfg = sc.loads("program: train.py\nmethod: grid\nparameters:\n"
                   "  steps: {values: [1e5, 1.0e5, 1.0e+5]}\n")
    assert cfg["parameters"]["steps"]["values"] == ["1e5", "1.0e5", 100000.0]
    said = {p.field: p.message for p in sc.check(cfg, program=ECG_PROGRAM, check_program=False)}
    assert "write 1.0e+5 or 100000" in said["parameters.steps.values[0]"], said
    assert "write 1.0e+5 or 100000" in said["parameters.steps.values[1]"], said
    fixed, changes = sf.fix(cfg, program=ECG_PROGRAM)
    assert [c.field for c in changes][:2] == ["parameters.steps.values[0]",
                                              "parameters.steps.values[1]"]
    assert sc.loads(sf.to_yaml(fixed, "s.yaml"))["parameters"]["steps"]["values"] == [100000.0]


def test_text_parameters_of_train_py_keep_their_strings():
    """code/train.py's data_dir takes text: a folder named 1e3 is not a number."""
    cfg = {"program": "code/train.py", "method": "random",
           "parameters": {"data_dir": {"value": "1e3"}, "learning_rate": {"value": "1e-3"}}}
    fixed, changes = sf.fix(cfg, program=ECG_PROGRAM)
    assert fixed["parameters"]["data_dir"]["value"] == "1e3"
    assert [c.field for c in changes] == ["parameters.learning_rate.value"]


def test_repeated_values_are_dropped_but_not_next_to_probabilities():
    cfg = {"method": "random", "parameters": {
        "bs": {"values": [32, 64, 32, 32.0, "32"]},
        "lr": {"values": [0.001, "1e-3"]},
        "opt": {"values": ["adam", "sgd", "adam"], "probabilities": [0.25, 0.5, 0.25]}}}
    fixed, changes = sf.fix(cfg, program=ECG_PROGRAM)
    assert fixed["parameters"]["bs"]["values"] == [32, 64, 32.0, "32"]
    assert fixed["parameters"]["lr"]["values"] == [0.001]  # once '1e-3' is a number
    assert fixed["parameters"]["opt"]["values"] == ["adam", "sgd", "adam"]
    assert "parameters.opt.values" not in [c.field for c in changes]
    warning = [p for p in sc.check(cfg, program=ECG_PROGRAM, check_program=False)
               if p.field == "parameters.opt.values[2]"]
    assert warning and "check --fix" not in warning[0].message


def test_an_unreadable_file_is_reported_and_nothing_is_written(tmp_path, capsys):
    bad = tmp_path / "dup.yaml"
    bad.write_text("method: grid\nmethod: random\nparameters: {lr: {values: [1e-3]}}\n")
    assert sweep_cli.main(["check", "--fix", str(bad)]) == 2
    assert "given twice" in capsys.readouterr().out
    assert not (tmp_path / "dup.fixed.yaml").exists()


def test_fixed_path_is_beside_the_file():
    assert sf.fixed_path("conf/x.yaml") == Path("conf/x.fixed.yaml")
    assert sf.fixed_path("x.yml") == Path("x.fixed.yml")
    assert sf.fixed_path("x") == Path("x.fixed.yaml")


def test_to_yaml_round_trips():
    cfg = {"method": "grid", "command": ["${env}", "python", "${program}", "${args}"],
           "parameters": {"flag": {"values": [True, "yes", "1e-3", 1e-05]}}}
    assert yaml.safe_load(sf.to_yaml(cfg, source="x.yaml")) == cfg
