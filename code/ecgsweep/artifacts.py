"""The best model of a family: ``models/<model>/best.keras`` and ``best.json``, kept as a pair.

Several agents may finish at once, and any of them may be killed mid-write. The swap is
done under a file lock and journaled: the new model and record are fully written to temp
files first, then moved into place one after the other. ``best.json`` holds the sha256
of ``best.keras``, so a reader can tell a matching pair, and ``recover`` completes (or
discards) a swap that a kill interrupted. Every promotion leaves the pair whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from filelock import FileLock

from .cli import UserError

LOCK_TIMEOUT_S = 600


def sidecar_path(model_path: str | Path) -> Path:
    """The JSON record that describes a saved model: best.keras -> best.json."""
    return Path(model_path).with_suffix(".json")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_json_durably(path: Path, record: dict[str, Any]) -> None:
    with open(path, "w") as f:
        json.dump(record, f, indent=2, sort_keys=True, default=str)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_json(path: str | Path, record: dict[str, Any]) -> None:
    """Write JSON so readers see the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    _write_json_durably(tmp, record)
    os.replace(tmp, path)


class BestModelSlot:
    """The best.keras/best.json pair of one model family under ``models_dir``."""

    def __init__(self, models_dir: str | Path, model: str):
        self.folder = Path(models_dir) / model
        self.model_path = self.folder / "best.keras"
        self.record_path = self.folder / "best.json"
        self._model_tmp = self.folder / ".best.keras.tmp"
        self._record_tmp = self.folder / ".best.json.tmp"
        self._lock = FileLock(str(self.folder / ".best.lock"), timeout=LOCK_TIMEOUT_S)

    def _recover_unlocked(self) -> None:
        """Finish or roll back a swap a kill interrupted (caller holds the lock)."""
        if self._record_tmp.exists():
            try:
                pending = json.loads(self._record_tmp.read_text())
            except (OSError, ValueError):
                pending = None  # the record was being written: the swap had not started
            if pending is not None:
                if self._model_tmp.exists() and sha256_file(self._model_tmp) == pending["sha256"]:
                    os.replace(self._model_tmp, self.model_path)
                if self.model_path.exists() and sha256_file(self.model_path) == pending["sha256"]:
                    os.replace(self._record_tmp, self.record_path)
                    _fsync_dir(self.folder)
        for leftover in (self._model_tmp, self._record_tmp):
            leftover.unlink(missing_ok=True)

    def read(self) -> dict[str, Any] | None:
        """The current record, or None when there is no best model yet. Verifies the pair."""
        if not self.folder.is_dir():
            return None
        with self._lock:
            self._recover_unlocked()
            if not self.record_path.exists():
                return None
            record = json.loads(self.record_path.read_text())
            if not self.model_path.exists() or sha256_file(self.model_path) != record.get("sha256"):
                raise UserError(f"{self.model_path} does not match {self.record_path} "
                                "(edited or copied by hand?); delete both to start afresh")
            return record

    def promote_if_better(self, candidate: str | Path, record: dict[str, Any],
                          goal: str = "maximize") -> tuple[bool, str]:
        """Make ``candidate`` the best model if its ``record['value']`` beats the current one.

        Scores are comparable only on the same data: a record from another data set
        (different fingerprint) is archived under ``archive/`` and replaced.
        Returns (promoted, reason).
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._recover_unlocked()
            current = None
            if self.record_path.exists() and self.model_path.exists():
                current = json.loads(self.record_path.read_text())
            if current is not None:
                same_data = (current.get("dataset", {}).get("fingerprint")
                             == record.get("dataset", {}).get("fingerprint"))
                if same_data:
                    old, new = float(current["value"]), float(record["value"])
                    better = new > old if goal == "maximize" else new < old
                    if not better:
                        return False, (f"{record['metric']} {new:.4f} does not beat the "
                                       f"recorded {old:.4f} (run {current.get('run_id')})")
                else:
                    self._archive_unlocked(current)
            shutil.copyfile(candidate, self._model_tmp)
            with open(self._model_tmp, "rb+") as f:
                os.fsync(f.fileno())
            record = {**record, "sha256": sha256_file(self._model_tmp),
                      "model_file": self.model_path.name}
            _write_json_durably(self._record_tmp, record)
            os.replace(self._model_tmp, self.model_path)
            os.replace(self._record_tmp, self.record_path)
            _fsync_dir(self.folder)
            if current is None:
                return True, "first model of this family"
            return True, f"beats the previous best {current['value']:.4f}" if same_data else \
                "previous best was trained on other data; archived it"

    def _archive_unlocked(self, current: dict[str, Any]) -> None:
        archive = self.folder / "archive"
        archive.mkdir(exist_ok=True)
        stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{current.get('run_id', 'unknown')}"
        shutil.copyfile(self.model_path, archive / f"{stem}.keras")
        shutil.copyfile(self.record_path, archive / f"{stem}.json")
