"""One YAML drives W&B and the offline runner. What W&B runs as written, `check` passes with
warnings and the runner runs as W&B would, printing them; what the runner refuses, `check`
refuses first with the same lines, and the runner refuses before it makes a store.

The YAMLs are shaped like W&B's own examples (sweep-grid-hyperband.yaml,
sweep-bayes-hyperband.yaml, sweep.yaml), with the fast stand-in program."""

import io
import math
from pathlib import Path

import pytest
from rich.console import Console

from ecgsweep import sweep_cli
from ecgsweep.cli import EXIT_USAGE, run_main
from ecgsweep.sweep import commands
from ecgsweep.sweep import config as sc
from ecgsweep.sweep.bookkeeping import create_or_join
from ecgsweep.sweep.runner import Options
from ecgsweep.sweep_hooks import ECG_PROGRAM

REPO = Path(__file__).resolve().parents[1]
CURVE = "tests/fake_programs/curve.py"

GRID_HYPERBAND = f"""\
program: {CURVE}
method: grid
metric:
  name: val_loss
  goal: minimize
parameters:
  learning_rate:
    values: [0.9, 0.5]
  weight_decay:
    values: [1e-5, 1e-6, 1e-7]
early_terminate:
  type: hyperband
  min_iter: 3
"""

BAYES_HYPERBAND = f"""\
program: {CURVE}
method: bayes
metric:
  name: val_loss
  goal: minimize
parameters:
  learning_rate:
    min: 0.1
    max: 0.9
  weight_decay:
    values: [1e-5, 1e-6, 1e-7]
early_terminate:
  type: hyperband
  s: 2
  eta: 3
  max_iter: 27
"""

# W&B's sweep.yaml: log_uniform, whose bounds W&B reads as exponents of e
LOG_UNIFORM = f"""\
program: {CURVE}
method: random
metric:
  name: val_loss
  goal: minimize
parameters:
  learning-rate:
    distribution: log_uniform
    min: {{lo}}
    max: {{hi}}
  optimizer:
    values: ["adam", "sgd"]
"""

# wandb agent without ${{args}}: the program reads wandb.config; `value:` a list
NO_ARGS = f"""\
program: {CURVE}
method: grid
metric: {{name: val_loss, goal: minimize}}
command: ["${{env}}", "${{interpreter}}", "${{program}}"]
parameters:
  learning_rate: {{values: [0.9, 0.5]}}
  layers: {{value: [16, 32]}}
"""


def check_lines(tmp_path, text, capsys, name="s.yaml"):
    path = tmp_path / name
    path.write_text(text)
    rc = run_main(lambda: sweep_cli.main(["check", str(path)]))
    out, err = capsys.readouterr()
    return rc, path, out.splitlines(), err


def run(tmp_path, path, count=None):
    buf = io.StringIO()
    rc = commands.run_sweep(yaml_path=str(path), store_root=str(tmp_path / "store"),
                            console=Console(file=buf, width=400),
                            opts=Options(poll_s=0.05, cwd=str(REPO), kill_delay_s=5, gpus=[],
                                         live=False, count=count))
    from ecgsweep.sweep.store import list_sweeps, open_store

    [sid] = list_sweeps(tmp_path / "store")
    return rc, buf.getvalue(), open_store(tmp_path / "store", sid)


# ----------------------------------------------------------------------------- W&B runs it


@pytest.mark.slow
@pytest.mark.parametrize("text", [GRID_HYPERBAND, BAYES_HYPERBAND],
                         ids=["grid-hyperband", "bayes-hyperband"])
def test_values_yaml_reads_as_strings_run_as_on_w_and_b(tmp_path, capsys, monkeypatch, text):
    monkeypatch.setenv("FAKE_EPOCH_S", "0.01")
    monkeypatch.chdir(REPO)
    rc, path, lines, _ = check_lines(tmp_path, text, capsys)
    warned = [ln for ln in lines if "weight_decay.values" in ln]
    assert rc == 0 and len(warned) == 3, lines
    assert all(ln.startswith(f"{path}: warning: ") for ln in warned)
    assert lines[-1].startswith(f"{path}: ok (")

    rc, out, store = run(tmp_path, path, count=2)
    assert rc == 0, out
    for line in warned:  # check's own lines, printed as the sweep starts
        assert line in out, out
    assert (f"{path}: `python code/sweep.py check --fix {path}` writes "
            f"{tmp_path / 's.fixed.yaml'} with the mechanical fixes") in out
    rows = store.runs()
    assert len(rows) == 2 and {r["state"] for r in rows} <= {"finished", "stopped"}  # hyperband
    # the program gets the strings, as W&B's server hands them over
    assert {r["params"]["weight_decay"]["value"] for r in rows} <= {"1e-5", "1e-6", "1e-7"}


@pytest.mark.slow
@pytest.mark.parametrize("lo, hi", [(0.0001, 0.1), (-9.2, -2.3)],
                         ids=["bounds-like-values", "exponents"])
def test_log_uniform_runs_as_w_and_b_samples_it(tmp_path, capsys, monkeypatch, lo, hi):
    monkeypatch.setenv("FAKE_EPOCH_S", "0.01")
    monkeypatch.chdir(REPO)
    rc, path, lines, _ = check_lines(tmp_path, LOG_UNIFORM.format(lo=lo, hi=hi), capsys)
    [warned] = [ln for ln in lines if "learning-rate" in ln]
    assert rc == 0 and warned.startswith(f"{path}: warning: parameters.learning-rate: "), lines

    rc, out, store = run(tmp_path, path, count=2)
    assert rc == 0 and warned in out, out
    for row in store.runs():
        assert math.exp(lo) <= row["params"]["learning-rate"]["value"] <= math.exp(hi)


@pytest.mark.slow
def test_a_command_without_args_and_a_list_value_run_with_their_warnings(tmp_path, capsys,
                                                                         monkeypatch):
    monkeypatch.setenv("FAKE_EPOCH_S", "0.01")
    monkeypatch.chdir(REPO)
    rc, path, lines, _ = check_lines(tmp_path, NO_ARGS, capsys)
    warned = [ln for ln in lines if ": warning: " in ln]
    assert rc == 0 and {ln.split(": ")[2] for ln in warned} == {"command",
                                                                "parameters.layers.value"}
    rc, out, store = run(tmp_path, path)
    assert rc == 0 and all(ln in out for ln in warned), out
    assert [r["params"]["layers"]["value"] for r in store.runs()] == [[16, 32], [16, 32]]


# ----------------------------------------------------------------------------- W&B refuses it


REFUSED = {
    # names outside W&B's schema pattern (a program that is not ours: only W&B's rules apply)
    "names": f"program: {CURVE}\nmethod: grid\nparameters:\n  --models_dir: {{value: m}}\n"
             "  ../x: {values: [1, 2]}\n",
    "nested-name": f"program: {CURVE}\nmethod: grid\n"
                   "parameters:\n  opt: {parameters: {-lr: {value: 1}}}\n",
    "not-text": f"program: {CURVE}\nmethod: grid\nparameters:\n  1: {{values: [1, 2]}}\n",
    # the engine's own check, which the schema cannot express
    "scheduler-and-hyperband": f"program: {CURVE}\nmethod: random\nmetric: {{name: val_loss}}\n"
                               "scheduler: {engine: wandb}\n"
                               "early_terminate: {type: hyperband, min_iter: 2}\n"
                               "parameters:\n  learning_rate: {values: [0.1, 0.2]}\n",
    "string-bound": f"program: {CURVE}\nmethod: random\n"
                    "parameters:\n  learning_rate: {min: 1e-4, max: 0.1}\n",
}


@pytest.mark.parametrize("name", REFUSED)
def test_what_the_runner_refuses_check_refuses_first_with_the_same_lines(tmp_path, capsys,
                                                                        monkeypatch, name):
    monkeypatch.chdir(REPO)
    rc, path, lines, _ = check_lines(tmp_path, REFUSED[name], capsys)
    assert rc == EXIT_USAGE, lines
    rc = run_main(lambda: sweep_cli.main([str(path), "--store", str(tmp_path / "store"),
                                          "--plain"]))
    err = capsys.readouterr().err
    assert rc == EXIT_USAGE and "Traceback" not in err
    assert err.splitlines()[1:] == lines, err
    assert not (tmp_path / "store").exists()  # refused before any store is made


def test_w_and_b_s_parameter_names_are_checked_with_its_own_pattern():
    cfg = sc.loads(REFUSED["names"])
    refused = {p.field: p.message for p in sc.errors(sc.check(cfg, program=ECG_PROGRAM, cwd=REPO))}
    assert set(refused) == {"parameters.--models_dir", "parameters.../x"}, refused
    ok = sc.loads(REFUSED["names"].replace("--models_dir", "models_dir")
                  .replace("../x", "x.y-z_1"))
    assert sc.errors(sc.check(ok, program=ECG_PROGRAM, cwd=REPO)) == []


def test_the_engine_view_refuses_in_words_not_with_a_jsonschema_error():
    with pytest.raises(sc.ConfigError, match="'--models_dir' does not match"):
        sc.engine_config(sc.loads(REFUSED["names"]))


def test_resuming_a_stored_config_the_engine_refuses_is_an_error_not_a_traceback(tmp_path,
                                                                                 capsys):
    """A store written before its config was refused, or by hand: the runner says why."""
    text = REFUSED["names"]
    create_or_join(tmp_path / "store", sc.loads(text), text, "s.yaml", sweep_id="old00001")
    rc = run_main(lambda: sweep_cli.main(["--resume", "old00001", "--store",
                                          str(tmp_path / "store"), "--plain"]))
    err = capsys.readouterr().err
    assert rc == EXIT_USAGE
    assert err.startswith("error: W&B's sweep schema refuses it: '--models_dir' does not "
                          "match"), err


# ----------------------------------------------------------------------------- the table


@pytest.mark.parametrize("params, field, kind", [
    ("  a: {values: [1e-5, 0.1]}", "parameters.a.values[0]", "string_value"),
    ("  a: {value: '32'}", "parameters.a.value", "string_value"),
    ("  a: {value: [1, 2]}", "parameters.a.value", "value_list"),
    ("  a: {values: [1, 1]}", "parameters.a.values[1]", "repeated_value"),
    ("  a: {distribution: log_uniform, min: 0.001, max: 0.1}", "parameters.a", "log_exponents"),
    ("  a: {min: 1e-4, max: 0.1}", "parameters.a.min", "schema"),
    ("  a: {min: 0.5, max: 0.1}", "parameters.a", "schema"),
    ("  a: {distribution: log_uniform_values, min: 0, max: 1}", "parameters.a.min", "schema"),
    ("  -a: {value: 1}", "parameters.-a", "schema"),
])
def test_each_finding_has_its_level_from_one_table(params, field, kind):
    cfg = sc.loads(f"program: {CURVE}\nmethod: random\nparameters:\n{params}\n")
    found = {p.field: p for p in sc.check(cfg, program=ECG_PROGRAM, cwd=REPO)}
    assert found[field].kind == kind, [str(p) for p in found.values()]
    assert found[field].level == sc.LEVELS[kind]
    assert (sc.errors(found.values()) != []) == (sc.LEVELS[kind] == "error")


def test_a_macro_wandb_agent_drops_is_a_warning():
    cfg = sc.loads(f"program: {CURVE}\nmethod: grid\nparameters: {{a: {{values: [1, 2]}}}}\n"
                   "command: [\"${env}\", \"${interpretor}\", \"${program}\", \"${args}\"]\n")
    [problem] = sc.check(cfg, program=ECG_PROGRAM, cwd=REPO)
    assert problem.field == "command[1]" and problem.level == "warning"
    assert "interpreter" in problem.message
