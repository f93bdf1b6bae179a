"""Live metrics of any W&B program, read from the run's own offline record.

wandb writes every run, online or offline, to ``<run folder>/run-<id>.wandb``: a LevelDB-style
log of ``wandb_internal_pb2.Record`` messages that ``wandb sync`` uploads later. Each
``wandb.log`` call becomes a history record there, and ``run.summary`` updates summary
records. Reading that file is how the engine sees a run's metrics without the program
knowing about ecg-sweeps. wandb-core flushes it every few seconds (about 15 s in wandb 0.31),
so a reader sees a running program's steps with that delay, and everything once it exits.

Format (the LevelDB log format with W&B's own 7-byte file header): the file is cut into
32 KiB blocks; each block holds chunks ``crc32 (4, little endian) | length (2) | type (1) |
data``; a record is one FULL chunk or FIRST, MIDDLE..., LAST; the CRC (IEEE) covers the
type byte and the data; a block tail too short for a chunk header is zero padding.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FILE_HEADER = b":W&B"
FILE_HEADER_LEN = 7  # ident (4) + magic 0xBEE1 (2) + version (1)
BLOCK = 32 * 1024
CHUNK_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


class LogError(ValueError):
    """The file is not a W&B run record, or is damaged before its end."""


def run_log_path(run_folder: str | Path) -> Path | None:
    """``run-<id>.wandb`` in a wandb run folder (``offline-run-<time>-<id>``), if written yet."""
    found = sorted(Path(run_folder).glob("run-*.wandb"))
    return found[0] if found else None


def _chunks(data: bytes, start: int) -> tuple[list[tuple[int, bytes]], int, str | None]:
    """Complete chunks from ``start`` on, where the first incomplete one begins, and what
    is damaged there (None when nothing is): the chunks before the damage still count."""
    out: list[tuple[int, bytes]] = []
    pos = start
    while True:
        in_block = pos % BLOCK
        if BLOCK - in_block < CHUNK_HEADER:  # zero padding at a block's end
            pos += BLOCK - in_block
            continue
        if pos + CHUNK_HEADER > len(data):
            return out, pos, None
        crc, length, kind = struct.unpack_from("<IHB", data, pos)
        if crc == 0 and length == 0 and kind == 0:
            # Zeros: the writer has not filled this block yet (or pre-allocated it).
            return out, pos, None
        end = pos + CHUNK_HEADER + length
        if in_block + CHUNK_HEADER + length > BLOCK:
            return out, pos, "length past the block's end"
        if end > len(data):
            return out, pos, None  # written half-way: read it on the next call
        if zlib.crc32(data[pos + 6:end]) != crc:
            return out, pos, "checksum mismatch"
        out.append((kind, data[pos + CHUNK_HEADER:end]))
        pos = end


def _value(item: Any) -> Any:
    try:
        return json.loads(item.value_json)
    except ValueError:
        return item.value_json


def _key(item: Any) -> str:
    # A nested key (wandb.log({"a": {"b": 1}})) is shown as W&B shows it: "a.b".
    return ".".join(item.nested_key) if item.nested_key else item.key


@dataclass
class RunLog:
    """Incremental reader of one run's ``.wandb`` file: call ``read()`` as often as you like.

    ``history`` gets one dict per ``wandb.log`` step (W&B's own ``_step``, ``_runtime`` and
    ``_timestamp`` included); ``summary`` is the run summary as last written; ``exit_code``
    is set once the run's exit record is there.
    """

    path: Path
    offset: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None
    _pending: list[bytes] = field(default_factory=list)

    def read(self) -> list[dict[str, Any]]:
        """The history rows written since the last call; LogError where the file is damaged
        (after taking every row before the damage into ``history``)."""
        # Read from the start of the block we stopped in: blocks are what chunks align to,
        # and a long run's file is not read again from its beginning every turn.
        base = self.offset - self.offset % BLOCK
        try:
            with open(self.path, "rb") as f:
                f.seek(base)
                data = f.read()
        except FileNotFoundError:
            return []
        if self.offset == 0:
            if len(data) < FILE_HEADER_LEN:
                return []
            if not data.startswith(FILE_HEADER):
                raise LogError(f"{self.path}: not a W&B run record (no :W&B header)")
            self.offset = FILE_HEADER_LEN
        chunks, end, damage = _chunks(data, self.offset - base)
        self.offset = base + end
        new: list[dict[str, Any]] = []
        for kind, payload in chunks:
            record = self._assemble(kind, payload)
            if record is not None:
                self._apply(record, new)
        if damage:  # the rows before it are kept in ``history``
            raise LogError(f"{self.path}: {damage} in the chunk at byte {self.offset}")
        return new

    def _assemble(self, kind: int, payload: bytes) -> bytes | None:
        if kind == FULL:
            self._pending = []
            return payload
        if kind == FIRST:
            self._pending = [payload]
            return None
        self._pending.append(payload)
        if kind == LAST:
            record, self._pending = b"".join(self._pending), []
            return record
        return None

    def _apply(self, raw: bytes, new: list[dict[str, Any]]) -> None:
        from wandb.proto import wandb_internal_pb2 as pb

        record = pb.Record()
        try:
            record.ParseFromString(raw)
        except Exception as e:  # protobuf's DecodeError: a record we cannot read is skipped
            del e
            return
        which = record.WhichOneof("record_type")
        if which == "history":
            row = {_key(item): _value(item) for item in record.history.item}
            self.history.append(row)
            new.append(row)
        elif which == "summary":
            for item in record.summary.update:
                self.summary[_key(item)] = _value(item)
            for item in record.summary.remove:
                self.summary.pop(_key(item), None)
        elif which == "exit":
            self.exit_code = record.exit.exit_code


def finite_number(value: Any) -> float | None:
    """A logged value as a float when it is a finite number (bools and strings are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None
