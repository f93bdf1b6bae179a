"""sweep/wandb_log.py reads W&B's run record (run-<id>.wandb) incrementally: records across
32 KiB blocks, records split into chunks, a chunk written half-way, damage."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fake_programs"))
from wandb_record import BLOCK, RecordWriter  # noqa: E402

from ecgsweep.sweep.executor import RunMetrics  # noqa: E402
from ecgsweep.sweep.wandb_log import LogError, RunLog  # noqa: E402


def test_rows_come_back_as_written_across_blocks_and_split_records(tmp_path):
    path = tmp_path / "run-x.wandb"
    writer = RecordWriter(path)
    log = RunLog(path)
    sent = []
    for step in range(40):
        # every 10th row is larger than a block: written as FIRST, MIDDLE..., LAST chunks
        row = {"loss": 1.0 / (step + 1), "note": "x" * (40_000 if step % 10 == 3 else 2_000)}
        writer.history(row, step)
        sent.append({**row, "_step": step})
        assert log.read() == [sent[-1]]  # each read returns exactly what is new
    assert path.stat().st_size > 5 * BLOCK
    writer.summary({"best": 0.5})
    writer.exit(0)
    assert log.read() == [] and log.summary == {"best": 0.5} and log.exit_code == 0
    again = RunLog(path)  # a fresh reader (a resumed runner) gets everything at once
    assert again.read() == sent


def test_a_chunk_written_half_way_is_read_once_complete(tmp_path):
    path = tmp_path / "run-x.wandb"
    writer = RecordWriter(path)
    writer.history({"loss": 0.5}, 0)
    writer.f.close()
    whole = path.read_bytes()
    path.write_bytes(whole[:-3])  # the writer has not finished the chunk yet
    log = RunLog(path)
    assert log.read() == []
    path.write_bytes(whole)
    assert log.read() == [{"loss": 0.5, "_step": 0}]


def test_damage_and_other_files_are_named(tmp_path):
    path = tmp_path / "run-x.wandb"
    writer = RecordWriter(path)
    writer.history({"loss": 0.5}, 0)
    writer.f.close()
    data = bytearray(path.read_bytes())
    data[-2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(LogError, match="checksum mismatch in the chunk at byte 7"):
        RunLog(path).read()
    other = tmp_path / "notes.txt"
    other.write_text("hello, this is not a run record")
    with pytest.raises(LogError, match="not a W&B run record"):
        RunLog(other).read()
    assert RunLog(tmp_path / "missing.wandb").read() == []


def test_rows_before_damage_are_kept_and_the_runner_is_not_stopped_by_it(tmp_path):
    run_folder = tmp_path / "wandb" / "offline-run-20260101_000000-abc"
    (run_folder / "files").mkdir(parents=True)
    writer = RecordWriter(run_folder / "run-abc.wandb")
    writer.history({"loss": 0.5}, 0)
    writer.history({"loss": 0.4}, 1)
    writer.f.close()
    data = bytearray((run_folder / "run-abc.wandb").read_bytes())
    data[-2] ^= 0xFF  # the second record is damaged
    (run_folder / "run-abc.wandb").write_bytes(bytes(data))
    log = RunLog(run_folder / "run-abc.wandb")
    with pytest.raises(LogError, match="checksum mismatch"):
        log.read()
    assert log.history == [{"loss": 0.5, "_step": 0}]
    metrics = RunMetrics(str(tmp_path), "abc", str(tmp_path))  # what the runner reads through
    assert metrics.new_rows() == [{"loss": 0.5, "_step": 0}]
    assert "checksum mismatch" in metrics.damage and metrics.new_rows() == []
