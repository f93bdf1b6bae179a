"""The best-model slot: keeps the better model per data set, survives kills mid-swap,
serialises writers, and never destroys a model it cannot account for."""

import json
import multiprocessing as mp
from pathlib import Path

import pytest

from ecgsweep.artifacts import BestModelSlot, DamagedRecord, ModelPair, dataset_key, sha256_file
from ecgsweep.cli import UserError
from ecgsweep.model_record import ModelRecord


def _candidate(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / f"{name}.keras"
    path.write_bytes(content)
    return path


def _record(value: float, run_id: str, fingerprint: str = "data-a") -> ModelRecord:
    return ModelRecord.from_json({"metric": "val_macro_f1", "value": value, "run_id": run_id,
                                  "dataset": {"name": "mitbih", "fingerprint": fingerprint}})


def test_keeps_the_better_of_two_runs(tmp_path):
    slot = BestModelSlot(tmp_path / "models", "cnn")
    assert slot.read() is None
    ok, _ = slot.promote_if_better(_candidate(tmp_path, "a", b"model-a"), _record(0.70, "a"))
    assert ok
    ok, reason = slot.promote_if_better(_candidate(tmp_path, "b", b"model-b"), _record(0.60, "b"))
    assert not ok and "does not beat the recorded 0.7000" in reason
    assert slot.read().run_id == "a" and slot.model_path.read_bytes() == b"model-a"
    ok, _ = slot.promote_if_better(_candidate(tmp_path, "c", b"model-c"), _record(0.80, "c"))
    assert ok and slot.read().run_id == "c" and slot.model_path.read_bytes() == b"model-c"


def test_other_data_gets_its_own_slot_and_never_displaces_a_best(tmp_path):
    slot = BestModelSlot(tmp_path / "models", "cnn")
    slot.promote_if_better(_candidate(tmp_path, "a", b"A"), _record(0.99, "a", "real"))
    ok, reason = slot.promote_if_better(_candidate(tmp_path, "b", b"B"), _record(0.50, "b", "junk"))
    assert ok and "first model on this data" in reason
    # the link follows the data trained on last; the real data's best is untouched
    assert slot.read().run_id == "b" and slot.model_path.read_bytes() == b"B"
    real = ModelPair(slot.folder / dataset_key(_record(0, "", "real")))
    assert real.read().run_id == "a" and real.model_path.read_bytes() == b"A"
    ok, _ = slot.promote_if_better(_candidate(tmp_path, "c", b"C"), _record(0.90, "c", "real"))
    assert not ok and real.read().run_id == "a"
    # not promoted, the link still follows the data trained on last: to that data's best
    assert slot.current().folder == real.folder and slot.model_path.read_bytes() == b"A"


def test_a_model_without_its_record_is_archived_not_overwritten(tmp_path):
    # best.json removed by hand: a weak run must not destroy the unrecorded model
    slot = BestModelSlot(tmp_path / "models", "cnn")
    slot.promote_if_better(_candidate(tmp_path, "good", b"GOOD"), _record(0.95, "good"))
    pair = slot.current()
    pair.record_path.unlink()
    ok, reason = slot.promote_if_better(_candidate(tmp_path, "weak", b"WEAK"), _record(0.1, "weak"))
    assert ok and "archived" in reason
    archived = [p.read_bytes() for p in (pair.folder / "archive").iterdir()]
    assert archived == [b"GOOD"]


def test_a_hand_placed_best_keras_is_archived_not_overwritten(tmp_path):
    # a plain best.keras with no record at the family level (older layout or copied by hand)
    folder = tmp_path / "models" / "cnn"
    folder.mkdir(parents=True)
    (folder / "best.keras").write_bytes(b"HAND")
    slot = BestModelSlot(tmp_path / "models", "cnn")
    ok, reason = slot.promote_if_better(_candidate(tmp_path, "w", b"WEAK"), _record(0.1, "w"))
    assert ok and "archived" in reason
    assert [p.read_bytes() for p in (folder / "archive").iterdir()] == [b"HAND"]
    assert slot.model_path.is_symlink() and slot.model_path.read_bytes() == b"WEAK"


def test_a_non_finite_value_is_never_promoted(tmp_path):
    slot = BestModelSlot(tmp_path / "models", "cnn")
    ok, reason = slot.promote_if_better(_candidate(tmp_path, "n", b"N"), _record(float("nan"), "n"))
    assert not ok and "not a finite number" in reason and slot.read() is None


def test_reading_needs_no_write_access(tmp_path, monkeypatch):
    slot = BestModelSlot(tmp_path / "models", "cnn")
    slot.promote_if_better(_candidate(tmp_path, "a", b"A"), _record(0.5, "a"))

    def no_lock(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(slot.folder / ".best.lock"))

    # root ignores chmod, so the read-only folder is simulated where the lock file is made
    monkeypatch.setattr("filelock.FileLock.acquire", no_lock)
    assert slot.read().run_id == "a"


def _kill_after(slot: ModelPair, stage: str, candidate: Path, record: ModelRecord) -> None:
    """Replay the promotion's steps by hand up to a kill point."""
    import shutil

    shutil.copyfile(candidate, slot._model_tmp)
    if stage == "model_tmp_written":
        return
    slot._record_tmp.write_text(json.dumps({**record.to_json(), "sha256": sha256_file(candidate),
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
    _kill_after(slot.current(), stage, _candidate(tmp_path, "new", b"new-model"), _record(0.9, "new"))
    record = slot.read()  # recovers, then verifies sha256 of the pair
    assert record.run_id == expected_run
    assert sha256_file(slot.model_path) == record.sha256
    pair = slot.current()
    assert not pair._model_tmp.exists() and not pair._record_tmp.exists()


def test_hand_edited_pair_is_reported(tmp_path):
    slot = BestModelSlot(tmp_path / "models", "cnn")
    slot.promote_if_better(_candidate(tmp_path, "a", b"A"), _record(0.5, "a"))
    slot.current().model_path.write_bytes(b"something else")
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
    assert record.value == 0.90 and record.run_id == "run3"
    assert (tmp_path / "models" / "cnn" / "best.keras").read_bytes() == b"model-3" * 1000


DAMAGED_RECORDS = {
    "truncated": ('{"metric": "val_macro_f1", "value": 0.9', "not a readable model record"),
    "a list": ("[1, 2]", "it holds a JSON list, not an object"),
    "a text value": (None, "its 'value' 'abc' is not a number"),
    "a NaN value": (None, "its 'value' nan is not a finite number"),
}


def _damage(pair: ModelPair, how: str) -> None:
    text, _ = DAMAGED_RECORDS[how]
    if text is None:
        record = json.loads(pair.record_path.read_text())
        record["value"] = "abc" if how == "a text value" else float("nan")
        text = json.dumps(record)  # json writes NaN as the bare word NaN, which it reads back
    pair.record_path.write_text(text)


@pytest.mark.parametrize("how", DAMAGED_RECORDS)
def test_a_damaged_record_is_archived_with_its_model_and_the_new_model_takes_the_slot(tmp_path, how):
    slot = BestModelSlot(tmp_path / "models", "cnn")
    slot.promote_if_better(_candidate(tmp_path, "old", b"OLD"), _record(0.95, "old"))
    pair = slot.current()
    _damage(pair, how)
    damaged_text = pair.record_path.read_text()
    ok, reason = slot.promote_if_better(_candidate(tmp_path, "new", b"NEW"), _record(0.1, "new"))
    assert ok and "\n" not in reason
    assert f"{pair.record_path}: " in reason and DAMAGED_RECORDS[how][1] in reason
    assert f"archived best.keras and best.json in {pair.folder}/archive/" in reason
    archived = {p.suffix: p.read_text() for p in (pair.folder / "archive").iterdir()}
    assert archived == {".keras": "OLD", ".json": damaged_text}
    assert slot.read().run_id == "new" and slot.model_path.read_bytes() == b"NEW"


@pytest.mark.parametrize("how", DAMAGED_RECORDS)
def test_reading_a_damaged_record_names_the_file_and_the_fault(tmp_path, how):
    slot = BestModelSlot(tmp_path / "models", "cnn")
    slot.promote_if_better(_candidate(tmp_path, "old", b"OLD"), _record(0.95, "old"))
    _damage(slot.current(), how)
    with pytest.raises(DamagedRecord) as info:
        slot.read()
    message = str(info.value)
    assert message.startswith(f"{slot.current().record_path}: ")
    assert DAMAGED_RECORDS[how][1] in message and "\n" not in message


def test_a_record_without_its_model_is_archived(tmp_path):
    slot = BestModelSlot(tmp_path / "models", "cnn")
    slot.promote_if_better(_candidate(tmp_path, "old", b"OLD"), _record(0.95, "old"))
    pair = slot.current()
    pair.model_path.unlink()
    ok, reason = slot.promote_if_better(_candidate(tmp_path, "new", b"NEW"), _record(0.1, "new"))
    assert ok and f"{pair.record_path} had no best.keras; archived it" in reason
    assert [p.suffix for p in (pair.folder / "archive").iterdir()] == [".json"]


def test_a_half_written_pending_record_rolls_the_swap_back(tmp_path):
    slot = BestModelSlot(tmp_path / "models", "cnn")
    slot.promote_if_better(_candidate(tmp_path, "old", b"OLD"), _record(0.5, "old"))
    pair = slot.current()
    pair._model_tmp.write_bytes(b"NEW")
    pair._record_tmp.write_text("[1, 2]")
    assert slot.read().run_id == "old" and not pair._record_tmp.exists()
