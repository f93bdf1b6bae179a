"""The best-model slot: keeps the better model, survives kills mid-swap, serialises writers."""

import json
import multiprocessing as mp
from pathlib import Path

import pytest

from ecgsweep.artifacts import BestModelSlot, sha256_file
from ecgsweep.cli import UserError


def _candidate(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / f"{name}.keras"
    path.write_bytes(content)
    return path


def _record(value: float, run_id: str, fingerprint: str = "data-a") -> dict:
    return {"metric": "val_macro_f1", "value": value, "run_id": run_id,
            "dataset": {"name": "mitbih", "fingerprint": fingerprint}}


def test_keeps_the_better_of_two_runs(tmp_path):
    slot = BestModelSlot(tmp_path / "models", "cnn")
    assert slot.read() is None
    ok, _ = slot.promote_if_better(_candidate(tmp_path, "a", b"model-a"), _record(0.70, "a"))
    assert ok
    ok, reason = slot.promote_if_better(_candidate(tmp_path, "b", b"model-b"), _record(0.60, "b"))
    assert not ok and "does not beat the recorded 0.7000" in reason
    assert slot.read()["run_id"] == "a" and slot.model_path.read_bytes() == b"model-a"
    ok, _ = slot.promote_if_better(_candidate(tmp_path, "c", b"model-c"), _record(0.80, "c"))
    assert ok and slot.read()["run_id"] == "c" and slot.model_path.read_bytes() == b"model-c"


def test_other_data_is_archived_not_compared(tmp_path):
    slot = BestModelSlot(tmp_path / "models", "cnn")
    slot.promote_if_better(_candidate(tmp_path, "a", b"A"), _record(0.99, "a", "synthetic"))
    ok, reason = slot.promote_if_better(_candidate(tmp_path, "b", b"B"), _record(0.50, "b", "real"))
    assert ok and "archived" in reason
    archived = sorted(p.name for p in (slot.folder / "archive").iterdir())
    assert len(archived) == 2 and archived[0].endswith("-a.json") and archived[1].endswith("-a.keras")


def _kill_after(slot: BestModelSlot, stage: str, candidate: Path, record: dict) -> None:
    """Replay the promotion's steps by hand up to a kill point."""
    import shutil

    shutil.copyfile(candidate, slot._model_tmp)
    if stage == "model_tmp_written":
        return
    slot._record_tmp.write_text(json.dumps({**record, "sha256": sha256_file(candidate),
                                            "model_file": "best.keras"}))
    if stage == "record_tmp_written":
        return
    slot._model_tmp.replace(slot.model_path)  # stage == "model_swapped"


@pytest.mark.parametrize("stage,expected_run", [
    ("model_tmp_written", "old"),  # nothing was committed: the old pair stays
    ("record_tmp_written", "new"),  # both halves complete on disk: roll forward
    ("model_swapped", "new"),  # model in place, record pending: roll forward
])
def test_a_kill_mid_swap_never_leaves_a_torn_pair(tmp_path, stage, expected_run):
    slot = BestModelSlot(tmp_path / "models", "cnn")
    slot.promote_if_better(_candidate(tmp_path, "old", b"old-model"), _record(0.5, "old"))
    _kill_after(slot, stage, _candidate(tmp_path, "new", b"new-model"), _record(0.9, "new"))
    record = slot.read()  # recovers, then verifies sha256 of the pair
    assert record["run_id"] == expected_run
    assert sha256_file(slot.model_path) == record["sha256"]
    assert not slot._model_tmp.exists() and not slot._record_tmp.exists()


def test_hand_edited_pair_is_reported(tmp_path):
    slot = BestModelSlot(tmp_path / "models", "cnn")
    slot.promote_if_better(_candidate(tmp_path, "a", b"A"), _record(0.5, "a"))
    slot.model_path.write_bytes(b"something else")
    with pytest.raises(UserError, match="does not match"):
        slot.read()


def _promote_worker(args):
    models_dir, i, value = args
    slot = BestModelSlot(models_dir, "cnn")
    cand = Path(models_dir).parent / f"cand{i}.keras"
    cand.write_bytes(f"model-{i}".encode() * 1000)
    return slot.promote_if_better(cand, _record(value, f"run{i}"))[0]


def test_concurrent_agents_end_with_the_best_and_a_matching_pair(tmp_path):
    values = [0.41, 0.77, 0.52, 0.90, 0.63, 0.88, 0.12, 0.89]
    with mp.get_context("spawn").Pool(4) as pool:
        pool.map(_promote_worker, [(str(tmp_path / "models"), i, v) for i, v in enumerate(values)])
    record = BestModelSlot(tmp_path / "models", "cnn").read()
    assert record["value"] == 0.90 and record["run_id"] == "run3"
    assert (tmp_path / "models" / "cnn" / "best.keras").read_bytes() == b"model-3" * 1000
