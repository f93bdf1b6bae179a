"""A stand-in for wandb's own writer of ``run-<id>.wandb``, for fast stand-in programs.

It writes the same format wandb-core writes (the W&B file header, then LevelDB-log chunks
in 32 KiB blocks, each record a ``wandb_internal_pb2.Record``), one record at a time and
flushed at once, so a stand-in program that does not start wandb is read by the runner
exactly as a real run is. Tests also use it to put records across block boundaries.
"""

import json
import struct
import zlib
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

BLOCK = 32 * 1024
HEADER = b":W&B" + struct.pack("<H", 0xBEE1) + b"\x00"
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


class RecordWriter:
    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(self.path, "wb")
        self.f.write(HEADER)
        self.pos = len(HEADER)
        self.num = 0

    def _chunk(self, kind, data):
        self.f.write(struct.pack("<IHB", zlib.crc32(bytes([kind]) + data), len(data), kind) + data)
        self.pos += 7 + len(data)

    def write_bytes(self, payload):
        first = True
        while True:
            room = BLOCK - self.pos % BLOCK
            if room < 7:
                self.f.write(b"\x00" * room)
                self.pos += room
                continue
            piece, payload = payload[:room - 7], payload[room - 7:]
            last = not payload
            kind = FULL if first and last else FIRST if first else LAST if last else MIDDLE
            self._chunk(kind, piece)
            first = False
            if last:
                break
        self.f.flush()

    def write(self, record):
        self.num += 1
        record.num = self.num
        self.write_bytes(record.SerializeToString())

    def history(self, row, step):
        r = pb.Record()
        for k, v in row.items():
            r.history.item.add(key=k, value_json=json.dumps(v))
        r.history.item.add(key="_step", value_json=json.dumps(step))
        self.write(r)

    def summary(self, values):
        r = pb.Record()
        for k, v in values.items():
            r.summary.update.add(key=k, value_json=json.dumps(v))
        self.write(r)

    def exit(self, code):
        r = pb.Record()
        r.exit.exit_code = code
        self.write(r)

    def close(self):
        self.f.close()
