"""Progress on long work: a bar on a terminal (nothing in logs), each epoch's bar in a run,
the steps of the report, eval and the WFDB conversion, and the runs table's epoch read
from each live run's own output."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from ecgsweep.sweep import progress as P
from ecgsweep.sweep.program import ANY_PROGRAM, program_items
from ecgsweep.sweep.run_progress import with_progress
from ecgsweep.sweep_hooks import ECG_PROGRAM, epoch_progress, train_program


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class Steps:
    """Stands in for progress.Progress and keeps the steps it hears."""
    heard: list[list[str]] = []

    def __init__(self, what, total, **kwargs):
        self.total, self.steps = total, []
        Steps.heard.append(self.steps)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def step(self, text):
        self.steps.append(text)


def test_a_terminal_gets_a_bar_naming_the_step(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    out = Terminal()
    with P.Progress("report", 3, stream=out, delay_s=0) as p:
        p._timer.join()  # the bar is up
        p.step("drawing curves.png")
        p.step("writing report.html")
        assert p.done == 1 and p.label() == "report: writing report.html"
        p._bar.refresh()
    assert "report: writing report.html" in out.getvalue()


def test_work_within_the_delay_shows_nothing():
    out = Terminal()
    with P.Progress("report", 3, stream=out, delay_s=600) as p:
        p.step("drawing curves.png")
    assert out.getvalue() == "" and p._bar is None


def test_off_a_terminal_nothing_is_shown_however_long():
    out = io.StringIO()
    with P.Progress("eval", 2, stream=out, delay_s=0) as p:
        p.step("predicting")
        p.step("scoring")
    assert out.getvalue() == "" and p._timer is None


def test_the_report_names_each_of_its_steps(tmp_path):
    from ecgsweep.sweep import report
    from test_sweep_report import _synthetic_runs

    sweep = {"id": "s", "metric": "val_macro_f1", "goal": "maximize",
             "runs": _synthetic_runs(6), "searched": ["learning_rate", "optimizer"],
             "early_terminate": None}
    heard = []
    report.write_sweep_report(sweep, tmp_path, heard.append)
    assert len(heard) == report.STEPS
    assert heard[0] == "computing parameter importance" and heard[-1] == "drawing wall_time.png"


@pytest.mark.slow
def test_eval_names_each_of_its_steps(tmp_path, synth_dir, monkeypatch):
    from ecgsweep import evaluation
    from ecgsweep.config import resolve
    from ecgsweep.data import datasets
    from ecgsweep.sweep.store import Store, db_path
    from test_sweep_ensemble import _saved_run

    config = resolve({"model": "cnn", "dataset": "mitbih", "data_dir": str(synth_dir),
                      "n_conv_blocks": 1, "layer_1_size": 4, "layer_FC_size": 8})
    dev = datasets.load_development(datasets.resolve_source("mitbih", synth_dir))
    store = Store(db_path(tmp_path / "store", "p1"), create=True)
    _saved_run(store, tmp_path / "run", "r0", 0.5, config, dev, seed=0)
    monkeypatch.setattr(evaluation, "Progress", Steps)
    Steps.heard = []
    evaluation.evaluate([tmp_path / "run" / "model.keras"], out_dir=tmp_path / "out",
                        bootstrap=50)
    assert Steps.heard == [["loading model.keras", "reading the test data",
                            "predicting 500 beats", "scoring, 50 bootstrap draws",
                            "writing the report files"]]


def test_the_wfdb_conversion_names_each_record(shared_data, tmp_path, monkeypatch):
    from ecgsweep.data import wfdb_beats

    monkeypatch.setattr(wfdb_beats, "Progress", Steps)
    Steps.heard = []
    wfdb_beats.convert(shared_data / "mitdb", tmp_path, split="intra", records=["100"])
    assert Steps.heard == [["record 100"]]


def test_each_epoch_gets_a_bar_on_a_terminal_only(monkeypatch):
    from ecgsweep.training import epoch_bars

    monkeypatch.setenv("TERM", "xterm")
    assert epoch_bars(10, 3, stream=io.StringIO()) == []
    out = Terminal()
    [bar] = epoch_bars(4, 3, stream=out)
    bar.on_epoch_begin(0)
    bar.bar._timer.join()
    for batch in range(4):
        bar.on_train_batch_end(batch)
    assert bar.bar.done == 4
    bar.bar._bar.refresh()
    bar.on_epoch_end(0)
    assert bar.bar is None and "epoch 1/3" in out.getvalue()


@pytest.mark.parametrize("output, shown", [
    ("run x: cnn\nepoch 1/10  accuracy 0.5\nepoch 2/10  accuracy 0.6\n", "2/10"),
    ("fold 1: held-out records 100\nfold 2/4 epoch 5/10  loss 0.3", "5/10 f2/4"),
    ("mean of 4 folds, epoch 3/10  val_macro_f1 0.7\nrefit epoch 1/6  loss 0.2", "refit 1/6"),
    ("wandb: Tracking run with wandb version 0.31.0\n", None),
    ("", None),
])
def test_a_runs_progress_is_its_last_epoch_line(output, shown):
    assert epoch_progress(output) == shown
    assert ANY_PROGRAM.progress(output) is None  # a W&B user's program: its logged rows


def test_runs_take_their_epoch_from_their_own_output(tmp_path):
    from ecgsweep.folds import folds_done_text

    log = tmp_path / "r1.log"
    log.write_text("data: 900 training beats\nepoch 1/4  loss 0.9\nepoch 2/4  loss 0.5\n")
    kfold = tmp_path / "r4.log"  # its rows count every fold's epochs: 8 for 2 folds of 4
    kfold.write_text("fold 2/2 epoch 4/4  loss 0.5\nmean of 2 folds, epoch 4/4  loss 0.5\n"
                     f"done: val_macro_f1 0.5000 +- 0.0100 {folds_done_text(2, 2)}\n"
                     "evaluate the 2 fold models as an ensemble on the test data:\n")
    rows = [{"run_id": "r1", "state": "running", "log_path": str(log), "epochs": 0},
            {"run_id": "r2", "state": "finished", "log_path": str(log), "epochs": 2},
            {"run_id": "r3", "state": "running", "log_path": None, "epochs": 1},
            {"run_id": "r4", "state": "finished", "log_path": str(kfold), "epochs": 8},
            {"run_id": "r5", "state": "pending", "log_path": str(log), "epochs": 0}]
    assert [r.get("progress") for r in with_progress(rows, ECG_PROGRAM)] == [
        "2/4", "2/4", None, "2/2 folds", None]
    assert [r.get("progress") for r in with_progress(rows, ANY_PROGRAM)] == [None] * 5
    kfold.write_text("fold 1/2 epoch 3/4  loss 0.5\n")  # a changed log is read again
    assert with_progress(rows[3:4], ECG_PROGRAM)[0]["progress"] == "3/4 f1/2"


def test_our_program_away_from_the_clone_runs_its_own_copy(tmp_path, monkeypatch):
    cfg = {"program": "code/train.py"}
    assert program_items(cfg, REPO_ROOT, ECG_PROGRAM) is None  # wandb agent's reading
    assert program_items(cfg, tmp_path, ECG_PROGRAM) == [str(REPO_ROOT / "code" / "train.py")]
    assert program_items(cfg, tmp_path, ANY_PROGRAM) is None
    assert program_items({"program": "other.py"}, tmp_path, ECG_PROGRAM) is None
    from ecgsweep import sweep_hooks

    monkeypatch.setattr(sweep_hooks, "CLONE_SCRIPTS", ("no_such_script.py",))
    assert train_program() == ["-m", "ecgsweep.run"]  # installed: no scripts beside it


@pytest.mark.slow
def test_a_sweep_runs_from_another_folder(tmp_path, synth_dir):
    """The installed form of the main job: the YAML names code/train.py, the sweep starts in
    a folder without it; the runs train there, on its data/, into its models/."""
    (tmp_path / "data").symlink_to(synth_dir)
    yaml = tmp_path / "tiny.yaml"
    yaml.write_text("program: code/train.py\nmethod: random\nmetric: {name: val_macro_f1, "
                    "goal: maximize}\nparameters:\n  model: {value: cnn}\n  epochs: {value: 1}\n"
                    "  n_conv_blocks: {value: 1}\n  layer_1_size: {values: [4, 8]}\n"
                    "  layer_FC_size: {value: 8}\n  max_train_beats: {value: 600}\n")
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "code" / "ecg_sweeps.py"), "sweep",
                           str(yaml), "--count", "1", "--store", "st", "--plain",
                           "--sweep-id", "away1"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 run (1 finished)" in proc.stdout
    assert list((tmp_path / "models" / "cnn").glob("*/best.keras"))
