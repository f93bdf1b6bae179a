"""The record of a saved model: what it was trained on, how it scored, and where its
files are. It lies beside the model as JSON (``model.json``, ``fold<i>.json``) and, once
promoted, as the slot's ``best.json``.

``ModelRecord`` is the one type of it, read and written in this module only. It carries
``SCHEMA_VERSION``; a record without ``schema_version`` reads as version 1, whose layout
is this one. Keys it does not know are kept (``extra``) and written back unchanged. A
record that is not JSON, not an object, holds a part of the wrong kind, or (``ranked``,
a slot's ``best.json``) lacks the finite value it is ranked by, its metric or its model's
sha256, raises ``DamagedRecord`` naming the file and what is wrong.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from .cli import UserError
from .sweep.files import write_text_whole


class DamagedRecord(UserError):
    """A model's JSON record that cannot be read, or does not hold what a record holds."""


def record_path(model_path: str | Path) -> Path:
    """The JSON record that describes a saved model: best.keras -> best.json."""
    return Path(model_path).with_suffix(".json")


# The parts of a record that must be of one JSON kind when present, and the parts of its
# parts ("dataset.files").
_KINDS: tuple[tuple[str, type], ...] = (
    ("config", dict), ("dataset", dict), ("kfold", dict), ("class_names", list),
    ("metrics", dict), ("transfer", dict), ("val_confusion_by_record", dict),
    ("dataset.files", dict), ("dataset.added", dict), ("kfold.models", list),
    ("kfold.values", list), ("members", list), ("class_prior", list))


def _part(record: dict, dotted: str) -> tuple[bool, Any]:
    """(present, value) of a key or a key of a key."""
    node: Any = record
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return False, None
        node = node[key]
    return True, node


def record_problem(record: Any, *, ranked: bool = True) -> str | None:
    """What makes a parsed record unusable, or None when it is valid. Every record is a JSON
    object whose parts are of the right kind and whose schema this program reads; a
    ``ranked`` one (a slot's ``best.json``) also holds the finite value it is ranked by,
    its metric and its model's sha256."""
    if not isinstance(record, dict):
        return f"it holds a JSON {type(record).__name__}, not an object"
    version = record.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int):
        return f"its 'schema_version' {version!r} is not a whole number"
    if version > ModelRecord.SCHEMA_VERSION:
        return (f"its schema_version {version} is newer than this ecg-sweeps reads "
                f"({ModelRecord.SCHEMA_VERSION}); update ecg-sweeps")
    for key, kind in _KINDS:
        present, value = _part(record, key)
        if present and value is not None and not isinstance(value, kind):
            return f"its {key!r} is a {type(value).__name__}, not a JSON {kind.__name__}"
    if not ranked:
        return None
    value = record.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"its 'value' {value!r} is not a number"
    if not math.isfinite(value):
        return f"its 'value' {value} is not a finite number"
    for key in ("metric", "sha256"):
        if not isinstance(record.get(key), str):
            return f"it has no {key!r}"
    return None


def _split_known(cls: type, data: dict) -> tuple[dict[str, Any], dict[str, Any]]:
    """``data``'s keys that are fields of ``cls``, and the others."""
    names = {f.name for f in fields(cls)} - {"extra"}
    return ({k: v for k, v in data.items() if k in names},
            {k: v for k, v in data.items() if k not in names})


@dataclass(frozen=True)
class DatasetInfo:
    """The data a model was trained on: its name and files, the fingerprint of its
    development beats (``datasets.fingerprint``), the beats of the model's training and
    validation parts, and the beats added to training per method and class."""

    name: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    fingerprint: str | None = None
    n_train: int | None = None
    n_val: int | None = None
    added: dict[str, dict[str, int]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> DatasetInfo:
        known, extra = _split_known(cls, data or {})
        known["files"] = dict(known.get("files") or {})
        return cls(**known, extra=extra)

    def to_json(self) -> dict[str, Any]:
        out = {**self.extra, "name": self.name, "files": dict(self.files),
               "fingerprint": self.fingerprint}
        out.update({k: v for k, v in (("n_train", self.n_train), ("n_val", self.n_val),
                                      ("added", self.added)) if v is not None})
        return out

    def recorded(self) -> bool:
        """Whether the record says anything of its data."""
        return any(v for v in (self.name, self.files, self.fingerprint, self.n_train,
                               self.n_val, self.added, self.extra))


@dataclass(frozen=True)
class KFoldSummary:
    """A k-fold run's folds: each one's kept value and epoch, their mean and spread, the
    pooled cross-validated EC57 table (``cv_report.pooled_ec57``), and the fold models
    with the eval command that scores them as an ensemble."""

    folds: int = 0
    completed: int = 0
    values: list[float] = field(default_factory=list)
    mean: float | None = None
    std: float | None = None
    best_epochs: list[int] = field(default_factory=list)
    confusion: list[list[int]] | None = None
    ec57: dict[str, Any] | None = None
    pooled_macro_f1: float | None = None
    val_records: list[Any] | None = None
    record_errors: list[dict[str, Any]] | None = None
    models: list[str] = field(default_factory=list)
    eval_command: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    _OPTIONAL: ClassVar[frozenset[str]] = frozenset({"record_errors"})

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KFoldSummary:
        known, extra = _split_known(cls, data)
        return cls(**known, extra=extra)

    def to_json(self) -> dict[str, Any]:
        return _fields_json(self, self._OPTIONAL)


def _fields_json(obj: Any, optional: frozenset[str]) -> dict[str, Any]:
    """The dataclass ``obj`` as JSON: its ``extra`` keys, then every field (those in
    ``optional`` only when set)."""
    out = dict(obj.extra)
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name == "extra" or (f.name in optional and value is None):
            continue
        out[f.name] = value.to_json() if hasattr(value, "to_json") else value
    return out


@dataclass(frozen=True)
class ModelRecord:
    """The record of one saved model (see the module's text). ``value`` is the kept value of
    ``metric`` (``goal``: maximize) by which the best-model slot ranks it; ``sha256`` and
    ``model_file`` are set once it is a slot's model. A k-fold run's own model says what it
    is in ``final_model`` (``ensemble``: the fold models averaged, listed in ``members``;
    ``refit``: one model trained on every development beat) and carries the k-fold mean.
    ``class_prior`` is the class mix its outputs are calibrated to
    (``prior_shift.model_prior``; an ensemble: its members' mean)."""

    SCHEMA_VERSION: ClassVar[int] = 1
    _OPTIONAL: ClassVar[frozenset[str]] = frozenset({
        "val_confusion_by_record", "transfer", "fold", "folds", "kfold", "final_model",
        "members", "sha256", "model_file", "class_prior"})

    metric: str | None = None
    goal: str = "maximize"
    value: float | None = None
    best_epoch: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    project: str | None = None
    sweep_id: str | None = None
    run_dir: str | None = None
    class_names: list[str] = field(default_factory=list)
    n_classes: int | None = None
    input_shape: list[int] | None = None
    dataset: DatasetInfo = field(default_factory=DatasetInfo)
    created: str | None = None
    device: str | None = None
    keras_version: str | None = None
    backend: str | None = None
    stopped: bool = False
    val_confusion: list[list[int]] | None = None
    val_records: list[str] | None = None
    val_confusion_by_record: dict[str, Any] | None = None
    transfer: dict[str, Any] | None = None
    fold: int | None = None
    folds: int | None = None
    kfold: KFoldSummary | None = None
    final_model: str | None = None
    members: list[str] | None = None
    class_prior: list[float] | None = None
    sha256: str | None = None
    model_file: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any, *, ranked: bool = False,
                  source: str = "the record") -> ModelRecord:
        """The record a parsed JSON value holds; DamagedRecord (naming ``source``) when it
        is not a valid one (``record_problem``)."""
        problem = record_problem(data, ranked=ranked)
        if problem:
            raise DamagedRecord(f"{source}: not a valid model record: {problem}")
        known, extra = _split_known(cls, data)
        extra.pop("schema_version", None)
        for key, default in (("metrics", {}), ("config", {}), ("class_names", [])):
            if known.get(key) is None:
                known[key] = default
        known["dataset"] = DatasetInfo.from_json(known.get("dataset"))
        if known.get("kfold") is not None:
            known["kfold"] = KFoldSummary.from_json(known["kfold"])
        known["stopped"] = bool(known.get("stopped", False))
        return cls(**known, extra=extra)

    def to_json(self) -> dict[str, Any]:
        """The record as the JSON object written to disk, with its schema version."""
        return {**_fields_json(self, self._OPTIONAL), "schema_version": self.SCHEMA_VERSION}

    def to_text(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True, default=str)

    @classmethod
    def read(cls, path: str | Path, *, ranked: bool = False) -> ModelRecord:
        """The record in the JSON file ``path``; DamagedRecord names the file and what is
        wrong when it cannot be read or is not valid."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DamagedRecord(f"{path}: not a readable model record ({e})") from None
        return cls.from_json(data, ranked=ranked, source=str(path))

    def write(self, path: str | Path) -> None:
        """Write the record so that readers see the old file or the new one, never half."""
        write_text_whole(path, self.to_text(), durable=True)

    @property
    def family(self) -> str | None:
        """The model family it was trained as (its config's ``model``)."""
        return self.config.get("model")
