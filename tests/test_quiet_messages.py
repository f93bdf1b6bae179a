"""One line per message: no TensorFlow start-up notes, no raw Python warnings with a source
line, and errors that name the right folder and give advice that fits."""

import io
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from rich.console import Console

from conftest import REPO_ROOT
from ecgsweep import cli
from ecgsweep.cli import UserError
from ecgsweep.sweep.store import Store, db_path
from test_download import closed_port  # noqa: F401  (a fixture)
from test_sweep_ensemble import SWEEP_CFG, _saved_run

PACKAGE = str(REPO_ROOT / "code")
# TensorFlow's and absl's start-up lines: "WARNING: All log messages before absl::...",
# "W0000 00:00:...", "I0000 ... cpu_feature_guard.cc"
NOISE = re.compile(r"^(WARNING|[WIEF]\d{4} )")


def noise(text: str) -> list[str]:
    """The lines of a command's output that are not its own one-line messages."""
    return [line for line in text.splitlines()
            if NOISE.match(line) or line.startswith(PACKAGE) or "Traceback" in line
            or "Warning:" in line]


def user_env(tmp_path: Path) -> dict:
    """A shell's environment: no TF_CPP_MIN_LOG_LEVEL (the Makefile sets it, a user not)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DIR=str(tmp_path))
    return env


@pytest.fixture(scope="module")
def saved_sweep(tmp_path_factory, synth_dir):
    """A finished sweep of three runs, each with a saved (untrained) model and record."""
    from ecgsweep.config import resolve
    from ecgsweep.data import datasets

    root = tmp_path_factory.mktemp("quiet")
    config = resolve({"model": "cnn", "dataset": "mitbih", "data_dir": str(synth_dir),
                      "n_conv_blocks": 1, "layer_1_size": 4, "layer_FC_size": 8, "epochs": 1,
                      "seed": 3, "val_fraction": 0.2})
    dev = datasets.load_development(datasets.resolve_source("mitbih", synth_dir))
    store = Store(db_path(root / "store", "quiet1"), create=True)
    store.set("config", SWEEP_CFG)
    store.set("sweep_id", "quiet1")
    for i, value in enumerate([0.5, 0.9, 0.7]):
        _saved_run(store, root / f"run{i}", f"r{i}", value, config, dev, seed=i)
    return root


@pytest.mark.slow
def test_sweep_ensemble_prints_no_tensorflow_notes(saved_sweep, tmp_path):
    proc = subprocess.run([sys.executable, "code/sweep.py", "ensemble", "quiet1", "--top", "2",
                           "--store", str(saved_sweep / "store")], cwd=REPO_ROOT,
                          env=user_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "ensemble of r1, r2" in proc.stdout
    assert noise(proc.stdout + proc.stderr) == []


@pytest.mark.slow
def test_eval_prints_no_tensorflow_notes(saved_sweep, tmp_path):
    proc = subprocess.run([sys.executable, "code/eval.py", "--model",
                           str(saved_sweep / "run1" / "model.keras"), "--out",
                           str(tmp_path / "report"), "--bootstrap", "50"], cwd=REPO_ROOT,
                          env=user_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "wrote " in proc.stdout
    assert noise(proc.stdout + proc.stderr) == []


@pytest.mark.slow
def test_a_key_of_another_family_is_one_warning_line(tmp_path):
    """The run stops at its data (a missing file) right after reading its config: the
    warning is one `warning:` line, with no file, line or source of ours."""
    proc = subprocess.run([sys.executable, "code/train.py", "--model=cnn", "--rnn_units=8",
                           f"--dataset={tmp_path / 'none.csv'}"], cwd=REPO_ROOT,
                          env=user_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == cli.EXIT_USAGE, proc.stderr
    lines = proc.stderr.splitlines()
    assert "warning: config key 'rnn_units' is not read by model 'cnn'; ignored" in lines
    assert noise(proc.stdout + proc.stderr) == []


def test_python_warnings_become_one_line(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        cli.one_line_warnings()
        warnings.warn("a class has fewer than 2 beats", UserWarning)
    assert capsys.readouterr().err == "warning: a class has fewer than 2 beats\n"


def test_the_entry_shell_prints_warnings_as_one_line(capsys):
    def main():
        warnings.warn("config key 'x' is not read by model 'cnn'; ignored", stacklevel=2)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert cli.run_main(main) == 0
    assert capsys.readouterr().err == ("warning: config key 'x' is not read by model 'cnn'; "
                                       "ignored\n")


def test_tensorflow_is_quiet_unless_the_user_asks(monkeypatch):
    import logging

    from ecgsweep import backend

    logger = logging.getLogger("tensorflow")
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    env = {"TF_CPP_MIN_LOG_LEVEL": "0"}
    backend.quiet_tensorflow(env)
    assert env == {"TF_CPP_MIN_LOG_LEVEL": "0"} and logger.level == logging.NOTSET
    env = {}
    backend.quiet_tensorflow(env)
    assert env == {"TF_CPP_MIN_LOG_LEVEL": "2"}
    assert logger.level == logging.ERROR  # its Python warnings too (tf.function retracing)


@pytest.mark.slow
def test_download_goes_beside_the_out_folder_and_says_so(tmp_path, closed_port):  # noqa: F811
    out = tmp_path / "mine"
    env = {**os.environ, "ECGSWEEPS_NET_PROBE": closed_port}
    proc = subprocess.run([sys.executable, "code/data.py", "wfdb", "--download", "mitdb",
                           "--out", str(out)], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == cli.EXIT_USAGE
    assert proc.stdout == f"downloading mitdb from PhysioNet into {out / 'mitdb'} ...\n"
    assert f"put the record files directly in {out / 'mitdb'}/" in proc.stderr
    assert f"--src {out / 'mitdb'} --out {out}`" in proc.stderr
    assert "data/mitdb" not in proc.stdout + proc.stderr


def test_a_missing_test_file_is_named_without_advice_for_another_one(tmp_path, monkeypatch):
    from ecgsweep.data import datasets

    source = datasets.resolve_source("mitbih", tmp_path)
    with pytest.raises(UserError) as e:
        datasets.load_test(source, "/nonexistent/x.csv")
    assert str(e.value) == "/nonexistent/x.csv: no such file; check the path"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=rf"x\.csv: no such file \(looked for from {tmp_path}\)"):
        datasets.load_test(source, "x.csv")
    with pytest.raises(UserError, match=r"mitbih_test.csv: no such file \(data set 'mitbih', "
                                        r"looked for from .*\); put the Kaggle test CSV in "):
        datasets.load_test(datasets.resolve_source("mitbih", "data"))  # the data set's own


QUICKSTART = ["class_weight", "dropout_rate", "kernel_size", "layer_1_size", "layer_2_size",
              "layer_3_size", "layer_FC_size", "learning_rate", "n_conv_blocks"]


def _rows(searched: list[str], note: str | None) -> list[dict]:
    values = [0.0012345678, 32, "sqrt", 0.2345678, 3, 64, 0.004, 7, 128]
    return [{"run_id": f"abcd{i:04d}", "state": "finished" if i else "running", "seq": i,
             "params": {n: {"value": values[(i + j) % len(values)]}
                        for j, n in enumerate(searched)},
             "epochs": 3, "progress": "3/10 f2/4" if i == 0 else None,
             "metric_best": 0.912345, "started_at": 1000.0, "ended_at": 1100.0,
             "error": note if i == 1 else None} for i in range(3)]


@pytest.mark.parametrize("searched", [QUICKSTART, QUICKSTART[:4], QUICKSTART[:2]])
@pytest.mark.parametrize("note", [None, "hyperband: below the band's threshold at epoch 2"])
def test_the_runs_table_at_80_columns_splits_no_value(searched, note):
    from ecgsweep.sweep.table import leaderboard, runs_table

    rows = _rows(searched, note)
    buf = io.StringIO()
    console = Console(file=buf, width=80)
    console.print(runs_table(rows, metric="val_macro_f1", searched=searched, width=80,
                             now=1100.0))
    console.print(leaderboard(rows, metric="val_macro_f1", goal="maximize", searched=searched,
                              width=80))
    text = buf.getvalue()
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "…" not in text
    assert "0.9123" in text and "3/10 f2/4" in text and "val_macro_f1" in text
    shown = ["0.001235", "32", "sqrt", "0.2346"][:len(searched)]
    assert all(value in text for value in shown)
    if "params" in text.splitlines()[1]:  # folded: each value whole, beside its name
        assert all(f"{n}={v}" in text for n, v in zip(searched, shown))
    if note:
        assert "hyperband:" in text


def test_tensorflows_load_notes_are_told_from_other_lines():
    from ecgsweep.backend import without_load_notes

    notes = ("WARNING: All log messages before absl::InitializeLog() is called are written to "
             "STDERR\n"
             "I0000 00:00:1796313070.984157    5272 port.cc:153] oneDNN custom operations are "
             "on. You may see slightly different numerical results\n")
    others = ("error: data/x.csv: not found\n"
              "E0000 00:00:1.0 1 cuda.cc:1] failed call to cuInit\n"
              "Illegal instruction")
    assert without_load_notes(notes + others) == others


def test_what_a_failing_tensorflow_import_writes_still_reaches_stderr(tmp_path):
    """A stand-in tensorflow module writes a load note and an error of its own to file
    descriptor 2, then fails to import: the error and the failure are shown, the note not."""
    (tmp_path / "tensorflow.py").write_text(
        "import os\n"
        "os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are "
        "written to STDERR\\n')\n"
        "os.write(2, b'cannot load libtensorflow_framework.so.2\\n')\n"
        "raise ImportError('stand-in tensorflow')\n")
    code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "from ecgsweep import backend\n"
            "try:\n    backend.import_tensorflow_quietly()\n"
            "except ImportError as e:\n    print('raised:', e)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO_ROOT,
                          env={**user_env(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "2"},
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "raised: stand-in tensorflow"
    assert proc.stderr == "cannot load libtensorflow_framework.so.2\n"
