"""What the sweep tells the user when something is off: the advice fits the cause."""

from pathlib import Path

import pytest

from ecgsweep import sweep_cli
from ecgsweep.cli import EXIT_USAGE, UserError
from ecgsweep.sweep import config as sc
from ecgsweep import sweep_ensemble as ens
from ecgsweep.sweep.bookkeeping import create_or_join
from ecgsweep.sweep.runner import EXIT_SWEEP_FAILED, Options, Runner
from test_sweep_store_errors import cli, make_sweep, one_error_line

FAKE_PROGRAMS = Path(__file__).resolve().parent / "fake_programs"

# Writes one history row with the sweep's metric, then damages that record's checksum.
DAMAGING_PROGRAM = f"""\
import os, sys
from pathlib import Path
sys.path.insert(0, {str(FAKE_PROGRAMS)!r})
from wandb_record import RecordWriter

run_id = os.environ["WANDB_RUN_ID"]
folder = Path(os.environ["WANDB_DIR"]) / "wandb" / f"offline-run-20260101_000000-{{run_id}}"
(folder / "files").mkdir(parents=True)
path = folder / f"run-{{run_id}}.wandb"
log = RecordWriter(path)
log.history({{"val_macro_f1": 0.5}}, 0)
log.close()
data = bytearray(path.read_bytes())
data[-2] ^= 0xFF
path.write_bytes(bytes(data))
"""


@pytest.mark.slow
def test_a_damaged_run_record_is_named_not_blamed_on_the_metric_name(tmp_path):
    (tmp_path / "damaging.py").write_text(DAMAGING_PROGRAM)
    yaml_text = ("program: damaging.py\nmethod: grid\n"
                 "metric: {name: val_macro_f1, goal: maximize}\n"
                 "parameters:\n  learning_rate: {values: [0.1, 0.2]}\n")
    cfg = sc.loads(yaml_text)
    assert not sc.errors(sc.check(cfg, cwd=tmp_path))
    store, _ = create_or_join(tmp_path / "sweeps", cfg, yaml_text, "s.yaml")
    rc = Runner(store, Options(poll_s=0.05, cwd=str(tmp_path), gpus=[])).run()
    failure = store.get("failure")
    record = next((tmp_path / "sweeps").glob("*/wandb/*/run-*.wandb"))
    assert rc == EXIT_SWEEP_FAILED
    assert "W&B record is damaged" in failure and str(record) in failure
    assert "checksum mismatch" in failure and "metric.name" not in failure
    assert "damaged" in store.runs()[0]["error"]


def test_an_ensemble_of_a_sweep_without_finished_runs_does_not_suggest_top_1():
    crashed = {"run_id": "r1", "state": "crashed", "metric_best": None}
    with pytest.raises(UserError) as refused:
        ens.pick_members([crashed], "maximize", 1)
    assert "no finished runs" in str(refused.value) and "--top" not in str(refused.value)


@pytest.mark.parametrize("word, says", [
    ("stauts", "unknown command 'stauts'; did you mean 'status'?"),
    ("ensmble", "unknown command 'ensmble'; did you mean 'ensemble'?"),
    ("frobnicate", "unknown command 'frobnicate' (commands: check, status, report, ensemble"),
])
def test_a_mistyped_command_is_named_with_the_known_ones(tmp_path, capsys, word, says):
    make_sweep(tmp_path / "sweeps", "abc00001")
    rc, _, err = cli([word, "abc00001", "--store", str(tmp_path / "sweeps")], capsys)
    assert rc == EXIT_USAGE and says in one_error_line(err)


def test_a_first_word_that_is_a_file_or_a_yaml_path_is_still_the_sweep_to_run(tmp_path,
                                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("mysweep").write_text("method: grid\n")
    sweep_cli.refuse_unknown_command("mysweep")  # an existing file without a suffix
    sweep_cli.refuse_unknown_command("missing.yaml")  # refused later as a missing YAML
    sweep_cli.refuse_unknown_command("missing.YML")
    with pytest.raises(UserError, match="unknown command 'missing'"):
        sweep_cli.refuse_unknown_command("missing")
