"""Only a run that ends by itself offers its model to the best-model slot: a run stopped from
outside (SIGTERM, as hyperband and the sweep runner stop runs; SIGINT, Ctrl-C; SIGHUP, its
terminal closed) keeps its model in its run folder, marked stopped, and neither it nor the
coordinator promotes it."""

import itertools
import json
import os
import signal
from pathlib import Path

import pytest

from ecgsweep import fold_training, run
from ecgsweep.contract import PROMOTE_BY_COORDINATOR, PROMOTE_ENV
from ecgsweep.sweep_models import promote_shipped

from test_kfold import FakeArtifact, FakeRun, _config


@pytest.fixture(autouse=True)
def fake_wandb(monkeypatch):
    import wandb

    monkeypatch.setattr(wandb, "Artifact", FakeArtifact)
    monkeypatch.delenv(PROMOTE_ENV, raising=False)


def _single(synth_dir, tmp_path, **over):
    return _config(synth_dir, tmp_path, folds=0, **over)


@pytest.fixture
def hangup_not_ignored():
    """SIGHUP as a terminal's process has it, though the suite may run under nohup."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGHUP, previous)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_run_stopped_from_outside_keeps_its_model_but_is_not_promoted(synth_dir, tmp_path,
                                                                          capsys, stop,
                                                                          hangup_not_ignored):
    fake = FakeRun(tmp_path, "stopped1")
    fake.on_log = lambda metrics: os.kill(os.getpid(), stop)  # during epoch 1
    assert run._train(fake, _single(synth_dir, tmp_path, epochs=3)) == 0
    run_dir = Path(fake.dir).parent
    assert (run_dir / "model.keras").stat().st_size > 0
    assert json.loads((run_dir / "model.json").read_text())["stopped"] is True
    assert fake.summary["stopped"] is True and fake.summary["promoted"] is False
    assert not (tmp_path / "models" / "cnn").exists()
    out = capsys.readouterr().out
    assert "best model: not promoted: the run was stopped before it finished" in out
    assert f"python code/eval.py --model {run_dir / 'model.keras'}" in out


def test_a_hangup_ignored_from_the_start_stays_ignored():
    """Started under nohup, a run, a runner and a protocol keep running when their terminal
    closes: SIGHUP is left ignored, and the other stop signals are taken."""
    from ecgsweep.cli import stop_signals_interrupt
    from ecgsweep.sweep.guard import STOP_SIGNALS, handled_stop_signals
    from ecgsweep.training import StopRequest

    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    try:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        assert handled_stop_signals() == (signal.SIGTERM, signal.SIGINT)
        stop_signals_interrupt()
        request = StopRequest()
        request.install()
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)
        request.uninstall()
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        assert signal.SIGHUP in handled_stop_signals()
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def test_a_run_stopped_within_an_epoch_logs_it_as_cut_short_and_keeps_a_whole_one(
        synth_dir, tmp_path, monkeypatch, capsys):
    import keras

    from ecgsweep import training

    class SigtermInEpoch2(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 0:
                os.kill(os.getpid(), signal.SIGTERM)

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

    monkeypatch.setattr(training, "epoch_bars", lambda steps, epochs: [SigtermInEpoch2()])
    fake = FakeRun(tmp_path, "midepoch")
    assert run._train(fake, _single(synth_dir, tmp_path, epochs=3)) == 0
    rows = [m for m in fake.logged if "epoch" in m]
    assert [m["epoch"] for m in rows] == [1, 2] and rows[1]["stopped_after_batch"] == 1
    assert "val_macro_f1" in rows[0] and "val_macro_f1" not in rows[1]  # no sweep ranks by it
    assert "cut_short/val_macro_f1" in rows[1]
    summary = fake.summary
    assert summary["stopped_mid_epoch"] is True and summary["best_epoch"] == 1
    out = capsys.readouterr().out
    assert "epoch 2/3  " in out and f"(stopped after batch 1 of {rows[1]['epoch_batches']})" in out
    assert "done: best val_macro_f1" in out and "at epoch 1 (stopped early by request)" in out


def test_a_run_ended_by_its_own_early_stopping_is_promoted(synth_dir, tmp_path, monkeypatch,
                                                           capsys):
    from ecgsweep import training

    scores = itertools.chain([0.5], itertools.repeat(0.1))  # no gain after epoch 1
    monkeypatch.setattr(training, "_validation_metrics", lambda model, val, config, names, prior: {
        "val_loss": 1.0, "val_accuracy": 0.5, "val_macro_f1": next(scores)})
    fake = FakeRun(tmp_path, "early1")
    config = _single(synth_dir, tmp_path, epochs=6, early_stopping_patience=1)
    assert run._train(fake, config) == 0
    assert len([m for m in fake.logged if "val_macro_f1" in m]) < 6  # it stopped itself
    assert fake.summary["stopped"] is False and fake.summary["promoted"] is True
    assert json.loads((tmp_path / "models" / "cnn" / "best.json").read_text())["run_id"] == "early1"
    assert ("early stopping: val_macro_f1 did not improve for 1 epoch; these epochs ended "
            "at 2 of 6") in capsys.readouterr().out


def test_a_stop_after_training_reaches_the_record_the_coordinator_reads(synth_dir, tmp_path,
                                                                         monkeypatch):
    scored = fold_training.validation_confusion

    def sigterm_after_fit(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return scored(*args, **kwargs)

    monkeypatch.setattr(fold_training, "validation_confusion", sigterm_after_fit)
    monkeypatch.setenv(PROMOTE_ENV, PROMOTE_BY_COORDINATOR)
    fake = FakeRun(tmp_path, "shipped1")
    assert run._train(fake, _single(synth_dir, tmp_path)) == 0
    run_dir = Path(fake.dir).parent
    assert json.loads((run_dir / "model.json").read_text())["stopped"] is True
    note = promote_shipped(run_dir, tmp_path)
    assert note.startswith("best model: not offered by the coordinator: ")
    assert "stopped before it finished" in note
    assert not (tmp_path / "models" / "cnn").exists()


def test_the_coordinator_promotes_a_shipped_run_that_finished(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "model.keras").write_bytes(b"model")
    record = {"metric": "val_macro_f1", "value": 0.5, "run_id": "r1", "stopped": False,
              "config": {"models_dir": "models", "model": "cnn"},
              "dataset": {"name": "d.csv", "fingerprint": "0" * 12}}
    (run_dir / "model.json").write_text(json.dumps(record))
    note = promote_shipped(run_dir, tmp_path)
    assert note.startswith("best model updated by the coordinator")
    assert (tmp_path / "models" / "cnn" / "best.keras").read_bytes() == b"model"

    (run_dir / "model.json").write_text(json.dumps({**record, "value": 0.9, "stopped": True}))
    note = promote_shipped(run_dir, tmp_path)
    assert "not offered" in note
    assert json.loads((tmp_path / "models" / "cnn" / "best.json").read_text())["value"] == 0.5


def test_a_model_kept_is_named_by_its_data_sets_slot_and_the_family_link_follows_it(
        synth_dir, tmp_path, monkeypatch, capsys):
    """best.keras points at the data set trained on last; a run that does not beat its own
    data set's slot names that slot's model, the one it was compared with, and the link
    follows it there."""
    from ecgsweep import training

    scores = iter([0.5, 0.3, 0.1])  # run 1, run 2 (other classes), run 3 (run 1's data)
    monkeypatch.setattr(training, "_validation_metrics", lambda model, val, config, names, prior: {
        "val_loss": 1.0, "val_accuracy": 0.5, "val_macro_f1": next(scores)})
    for run_id, over in (("slot1", {}), ("slot2", {"classes": "aami4"}), ("slot3", {})):
        assert run._train(FakeRun(tmp_path, run_id), _single(synth_dir, tmp_path, epochs=1,
                                                             **over)) == 0
    family = tmp_path / "models" / "cnn"
    slots = [p for p in family.iterdir() if p.is_dir() and p.name != "archive"
             and (p / "best.keras").exists()]
    first = (family / "best.keras").resolve().parent  # run 3's data set, trained on last
    assert len(slots) == 2 and first in slots
    out = capsys.readouterr().out
    assert f"best model kept: {first / 'best.keras'} (val_macro_f1 0.1000 does not beat" in out
