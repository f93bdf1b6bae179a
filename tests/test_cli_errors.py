"""Bad flags and output folders of code/sweep.py, code/eval.py and code/data.py: refused in
one `error:` line before any work starts, never with a traceback after it."""

from pathlib import Path

import pytest

from ecgsweep import sweep_cli
import unprivileged
from ecgsweep import evaluation
from ecgsweep.cli import EXIT_USAGE, UserError, run_main
from ecgsweep.model_record import ModelRecord
from ecgsweep.sweep import report
from test_sweep_store_errors import YAML, cli, make_sweep, one_error_line

REPO = Path(__file__).resolve().parents[1]


def data_cli():
    """The data command's module."""
    from ecgsweep import data_cli as module

    return module


@pytest.mark.parametrize("flag, value", [("--poll", "-1"), ("--poll", "nan"), ("--poll", "inf"),
                                         ("--poll", "0"), ("--kill-delay", "-1"),
                                         ("--kill-delay", "nan"), ("--kill-delay", "inf")])
def test_a_bad_poll_or_kill_delay_is_refused_before_the_sweep_starts(tmp_path, capsys,
                                                                    monkeypatch, flag, value):
    monkeypatch.chdir(REPO)  # where the YAML's program is found
    yaml_path = tmp_path / "s.yaml"
    yaml_path.write_text(YAML.replace("[0.9, 0.5, 0.3]", "[0.9]").replace("2}", "1}"))
    with pytest.raises(SystemExit) as stop:
        sweep_cli.main([str(yaml_path), "--store", str(tmp_path / "sweeps"), "--plain",
                        "--poll", "0.05", flag, value])
    assert stop.value.code == EXIT_USAGE
    assert f"argument {flag}: {value}: must be a number" in capsys.readouterr().err
    assert not (tmp_path / "sweeps").exists()  # no sweep made, no run launched


def test_report_out_that_is_a_file_is_one_error_line_before_drawing(tmp_path, capsys,
                                                                      monkeypatch):
    make_sweep(tmp_path / "sweeps", "rep00001")
    a_file = tmp_path / "taken"
    a_file.write_text("keep me")
    monkeypatch.setattr(report, "build_figures", lambda sweep: pytest.fail("drew the figures"))
    rc, _, err = cli(["report", "rep00001", "--store", str(tmp_path / "sweeps"),
                      "--out", str(a_file)], capsys)
    assert rc == EXIT_USAGE and "is a file, not a folder" in one_error_line(err)
    assert a_file.read_text() == "keep me"


@pytest.mark.slow
def test_report_out_in_a_read_only_folder_is_one_error_line(tmp_path):
    make_sweep(tmp_path / "sweeps", "rep00001")
    locked = tmp_path / "locked"
    locked.mkdir()
    with unprivileged.read_only(locked):
        (rc, _, err), = unprivileged.sweep_cli(["report", "rep00001", "--store",
                                               str(tmp_path / "sweeps"), "--out",
                                               str(locked / "rep")])
    assert rc == EXIT_USAGE, err
    line = one_error_line(err)
    assert f"--out {locked / 'rep'}: cannot write in {locked}" in line
    assert list(locked.iterdir()) == []


def test_eval_out_that_cannot_be_written_is_refused_before_evaluating(tmp_path, monkeypatch):
    a_file = tmp_path / "taken"
    a_file.write_text("keep me")
    model = evaluation.LoadedModel(tmp_path / "m.keras", None, ModelRecord(class_names=["N", "S"]))
    monkeypatch.setattr(evaluation, "load_model", lambda path: model)
    monkeypatch.setattr(evaluation, "test_data_for",
                        lambda *a, **k: pytest.fail("evaluated before checking --out"))
    for out in (a_file, a_file / "report"):
        with pytest.raises(UserError, match="is a file, not a folder"):
            evaluation.evaluate([model.path], out_dir=out)
    assert a_file.read_text() == "keep me"


def test_synth_refuses_a_negative_count_and_an_out_that_is_a_file(tmp_path, capsys):
    data = data_cli()
    with pytest.raises(SystemExit) as stop:
        data.main(["synth", "--out", str(tmp_path / "d"), "--train", "-5"])
    assert stop.value.code == EXIT_USAGE
    assert "argument --train: -5: must be 0 or more" in capsys.readouterr().err
    a_file = tmp_path / "taken"
    a_file.write_text("keep me")
    rc = run_main(lambda: data.main(["synth", "--out", str(a_file), "--train", "5",
                                     "--test", "5", "--ptb", "4"]))
    assert rc == EXIT_USAGE and "is a file, not a folder" in one_error_line(
        capsys.readouterr().err)
    assert a_file.read_text() == "keep me" and not (tmp_path / "d").exists()


def test_eval_cv_run_refuses_the_options_only_a_model_file_reads(tmp_path, monkeypatch):
    from ecgsweep import cv_report, eval_cli

    monkeypatch.setattr(cv_report, "report_run_folder",
                        lambda *a, **k: pytest.fail("ran before refusing an option"))
    run = str(tmp_path / "run")
    with pytest.raises(UserError, match=r"^--test goes with --model \(scoring a model file\); "
                                        r"--cv-run scores a k-fold run's models"):
        eval_cli.main(["--cv-run", run, "--test", "data/mitbih_test.csv"])
    with pytest.raises(UserError, match=r"^--out --bootstrap go with --model"):
        eval_cli.main(["--cv-run", run, "--out", "reports/x", "--bootstrap", "10"])
    called = []
    monkeypatch.setattr(cv_report, "report_run_folder", lambda *a, **k: called.append(a))
    eval_cli.main(["--cv-run", run, "--bootstrap", "1000"])  # the default: nothing ignored
    assert called == [(run, None)]


def test_a_reader_that_stops_reading_ends_a_command_quietly(tmp_path):
    """`code/sweep.py status ID --json | head`: no traceback when head exits first."""
    import subprocess
    import sys

    script = ("import sys; sys.path.insert(0, 'code')\n"
              "from ecgsweep.cli import run_main\n"
              "sys.exit(run_main(lambda: [print('x' * 1000) for _ in range(10000)]))\n")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert err == ""


def test_eval_refuses_the_wandb_options_without_wandb(tmp_path):
    from ecgsweep import eval_cli

    with pytest.raises(UserError, match=r"^--wandb-new-run goes with --wandb"):
        eval_cli.main(["--model", str(tmp_path / "m.keras"), "--wandb-new-run"])


def test_a_count_agrees_with_its_noun():
    from ecgsweep.cli import counted

    assert [counted(n, "fold") for n in (0, 1, 2)] == ["0 folds", "1 fold", "2 folds"]
