"""The best model of a family, one per data set: ``models/<model>/<data-key>/best.keras``
and ``best.json``, kept as a pair; ``models/<model>/best.keras`` (and ``best.json``) are
links to the pair of the data set a run finished on last, promoted or not, so that
``code/eval.py --model models/<model>/best.keras`` after a run or a sweep scores the best
model of the data just trained on.

Scores compare only on the same data, so each data set (its name and content fingerprint:
``dataset_key``) has its own pair, and a run on other data never displaces another data
set's best. Several agents may finish at once, and any of them may be killed mid-write:
the swap is done under a file lock and journaled: the new model and record are fully
written to temp files first, then moved into place one after the other. ``best.json``
holds the sha256 of ``best.keras``, so a reader can tell a matching pair, and recovery
completes (or discards) a swap that a kill interrupted. A model file with no record, one
that no longer matches its record, or one whose record is damaged (not JSON, not an object,
no finite value: ``model_record.record_problem``) is archived before anything replaces it: nothing is
ever deleted. Reading needs no write access (eval of a model in a read-only folder).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
import shutil
import time
from pathlib import Path

from filelock import FileLock

from .cli import UserError
from .model_record import DamagedRecord, ModelRecord
from .sweep.files import flush_to_disk

LOCK_TIMEOUT_S = 600
MODEL_FILE = "best.keras"
RECORD_FILE = "best.json"


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dataset_key(record: ModelRecord) -> str:
    """The folder name of a data set's pair: its readable name and content fingerprint."""
    name = Path(str(record.dataset.name or "data")).name.removesuffix(".csv")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "data"
    return f"{name}-{str(record.dataset.fingerprint or 'unknown')[:12]}"


def _archive(folder: Path, files: list[Path], stem: str) -> list[Path]:
    """Copy ``files`` into ``folder/archive/<time>-<stem><suffix>``; returns the copies."""
    archive = folder / "archive"
    archive.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    copies = []
    for f in files:
        target = archive / f"{stamp}-{stem}{f.suffix}"
        shutil.copyfile(f, target)
        copies.append(target)
    return copies


class ModelPair:
    """One best.keras/best.json pair in ``folder``, swapped under a lock with a journal."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.model_path = self.folder / MODEL_FILE
        self.record_path = self.folder / RECORD_FILE
        self._model_tmp = self.folder / f".{MODEL_FILE}.tmp"
        self._record_tmp = self.folder / f".{RECORD_FILE}.tmp"
        self._lock = FileLock(str(self.folder / ".best.lock"), timeout=LOCK_TIMEOUT_S)

    def _recover_unlocked(self) -> None:
        """Finish or roll back a swap a kill interrupted (caller holds the lock)."""
        if self._record_tmp.exists():
            try:
                pending = ModelRecord.read(self._record_tmp, ranked=True)
            except (OSError, DamagedRecord):
                pending = None  # the record was being written: the swap had not started
            if pending is not None:
                if self._model_tmp.exists() and sha256_file(self._model_tmp) == pending.sha256:
                    os.replace(self._model_tmp, self.model_path)
                if self.model_path.exists() and sha256_file(self.model_path) == pending.sha256:
                    os.replace(self._record_tmp, self.record_path)
                    flush_to_disk(self.folder)
        for leftover in (self._model_tmp, self._record_tmp):
            leftover.unlink(missing_ok=True)

    def _verified_unlocked(self) -> ModelRecord | None:
        if not self.record_path.exists():
            return None
        try:
            record = ModelRecord.read(self.record_path, ranked=True)
        except DamagedRecord as e:
            raise DamagedRecord(f"{e}; the next model promoted here archives it with its "
                                f"{MODEL_FILE} (or move both away)") from None
        if not self.model_path.exists() or sha256_file(self.model_path) != record.sha256:
            raise UserError(f"{self.model_path} does not match {self.record_path} (edited or "
                            "copied by hand?); move both away to start afresh")
        return record

    def read(self) -> ModelRecord | None:
        """The current record, or None when there is none. Verifies the pair; recovers an
        interrupted swap when the folder is writable, and reads as it is when it is not."""
        if not self.folder.is_dir():
            return None
        try:
            with self._lock:
                self._recover_unlocked()
                return self._verified_unlocked()
        except OSError:  # a read-only folder or file system: nobody can be swapping in it
            return self._verified_unlocked()

    def _unrecorded_unlocked(self) -> str | None:
        """Archive a model with no record, a damaged record with its model, or a pair that
        does not match; say what was done."""
        if self.record_path.exists():
            try:
                record = ModelRecord.read(self.record_path, ranked=True)
            except DamagedRecord as e:
                kept = [p for p in (self.model_path, self.record_path) if p.exists()]
                _archive(self.folder, kept, "damaged")
                return (f"{e}; archived {' and '.join(p.name for p in kept)} in "
                        f"{self.folder}/archive/")
            if not self.model_path.exists():
                _archive(self.folder, [self.record_path], "modelless")
                return (f"{self.record_path} had no {MODEL_FILE}; archived it in "
                        f"{self.folder}/archive/")
        if not self.model_path.exists():
            return None
        if not self.record_path.exists():
            _archive(self.folder, [self.model_path], "unrecorded")
            return f"{self.model_path} had no {RECORD_FILE}; archived it in {self.folder}/archive/"
        if sha256_file(self.model_path) != record.sha256:
            _archive(self.folder, [self.model_path, self.record_path], "mismatched")
            return (f"{self.model_path} did not match its {RECORD_FILE} (replaced by hand?); "
                    f"archived both in {self.folder}/archive/")
        return None

    def promote_if_better(self, candidate: str | Path, record: ModelRecord,
                          goal: str = "maximize") -> tuple[bool, str]:
        """Make ``candidate`` this pair's model if its ``record.value`` beats the current
        one (a model with no matching record is archived first). Returns (promoted, reason)."""
        if not math.isfinite(float(record.value)):
            return False, f"{record.metric} {record.value} is not a finite number"
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._recover_unlocked()
            archived = self._unrecorded_unlocked()
            current = self._verified_unlocked() if archived is None else None
            if current is not None and current.metric != record.metric:
                return False, (f"the best model here was ranked by {current.metric}, "
                               f"this run by {record.metric} (its objective): values of "
                               "two metrics do not compare; give the run another models_dir")
            if current is not None:
                old, new = float(current.value), float(record.value)
                if not (new > old if goal == "maximize" else new < old):
                    return False, (f"{record.metric} {new:.4f} does not beat the recorded "
                                   f"{old:.4f} (run {current.run_id})")
            self._swap_unlocked(candidate, record)
        if archived:
            return True, archived
        return True, ("first model on this data" if current is None
                      else f"beats the previous best {current.value:.4f}")

    def _swap_unlocked(self, candidate: str | Path, record: ModelRecord) -> None:
        shutil.copyfile(candidate, self._model_tmp)
        flush_to_disk(self._model_tmp)
        record = dataclasses.replace(record, sha256=sha256_file(self._model_tmp),
                                     model_file=MODEL_FILE)
        record.write(self._record_tmp)
        os.replace(self._model_tmp, self.model_path)
        os.replace(self._record_tmp, self.record_path)
        flush_to_disk(self.folder)


class BestModelSlot:
    """The best models of one family under ``models_dir``: a pair per data set, and
    ``best.keras``/``best.json`` links to the pair of the data set a run finished on last."""

    def __init__(self, models_dir: str | Path, model: str):
        self.folder = Path(models_dir) / model
        self.model_path = self.folder / MODEL_FILE
        self.record_path = self.folder / RECORD_FILE
        self._lock = FileLock(str(self.folder / ".links.lock"), timeout=LOCK_TIMEOUT_S)

    def pair_for(self, record: ModelRecord) -> ModelPair:
        return ModelPair(self.folder / dataset_key(record))

    def current(self) -> ModelPair | None:
        """The pair the links point at (None: no links yet)."""
        if self.model_path.is_symlink():
            return ModelPair(self.model_path.resolve().parent)
        return None

    def read(self) -> ModelRecord | None:
        """The record of the pair the links point at, verified (None when there is none)."""
        pair = self.current()
        if pair is None:
            return ModelPair(self.folder).read() if self.model_path.exists() else None
        return pair.read()

    def promote_if_better(self, candidate: str | Path, record: ModelRecord,
                          goal: str = "maximize") -> tuple[bool, str]:
        """Promote ``candidate`` within its data set's pair; then the family's links point at
        that pair whenever it holds a model, promoted now or before. Returns (promoted,
        reason)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            notes = self._adopt_legacy_unlocked()
        pair = self.pair_for(record)
        promoted, reason = pair.promote_if_better(candidate, record, goal)
        if promoted or pair.read() is not None:
            with self._lock:
                self._link_unlocked(pair)
        return promoted, "; ".join([*notes, reason])

    def _adopt_legacy_unlocked(self) -> list[str]:
        """A best.keras that is a plain file (an older layout, or copied in by hand) moves
        into its data set's pair, or to the archive when it has no matching record."""
        if self.model_path.is_symlink() or not self.model_path.exists():
            return []
        legacy = ModelPair(self.folder)
        note = legacy._unrecorded_unlocked()
        if note is None:
            record = legacy._verified_unlocked() or ModelRecord()
            target = self.pair_for(record)
            target.folder.mkdir(parents=True, exist_ok=True)
            if target.read() is None:
                target._swap_unlocked(self.model_path, record)
                note = f"moved the earlier {MODEL_FILE} to {target.folder}/"
            else:
                _archive(self.folder, [self.model_path, self.record_path],
                         str(record.run_id or "earlier"))
                note = f"archived the earlier {MODEL_FILE} in {self.folder}/archive/"
        self.model_path.unlink()
        self.record_path.unlink(missing_ok=True)
        return [note]

    def _link_unlocked(self, pair: ModelPair) -> None:
        for link, target in ((self.model_path, pair.model_path), (self.record_path, pair.record_path)):
            tmp = link.with_name(f".{link.name}.link.tmp")
            tmp.unlink(missing_ok=True)
            os.symlink(os.path.relpath(target, self.folder), tmp)
            os.replace(tmp, link)
        flush_to_disk(self.folder)


def unloadable_model(path: Path, error: Exception) -> UserError:
    """Why the model file at ``path`` did not load (``error``, from Keras), in one line:
    Keras says "File not found" for a damaged archive, so say what is wrong instead."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return UserError(f"{path}: not a Keras model file (a .keras file is a zip archive; this "
                         "one is damaged, truncated or of another format)")
    return UserError(f"{path}: not a loadable Keras model ({type(error).__name__}: "
                     f"{str(error).splitlines()[0] if str(error) else 'no detail'})")
