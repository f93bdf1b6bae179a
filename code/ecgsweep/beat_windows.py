"""Windows of consecutive beats of one record: the input of the sequence families (seq2seq).

A sequence model reads ``seq_window`` consecutive beats of one record and predicts each
beat of the window. Here the beats of a ``Split`` are put in record order (by record, then
by R-peak sample from the beat sidecar; a split without R peaks keeps its row order within
a record) and cut into windows that start every ``seq_stride`` beats. One more window ends
at each record's last beat, so a record's tail is covered even when its length is not a
multiple of the stride, and no window spans two records. A record shorter than a window
fills the rest of it with ``PAD`` rows: zero beats that weigh nothing in the loss and get
no prediction.

Training reads the windows in shuffled batches (``WindowBatches``, augmented like single
beats). Prediction (``predict_beats``) gives each beat the mean probabilities of the
windows that hold it: one row per beat, in the split's own order, so validation,
``code/eval.py`` and the EC57 table treat a sequence model like any other.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import keras
import numpy as np

from . import augment, params
from .cli import UserError
from .data.datasets import Split
from .model_inputs import rr_input

PAD = -1  # the row of a padding beat in a window
PREDICT_CHUNK_WINDOWS = 4096  # windows gathered at once for prediction (bounds memory)


def is_sequence(config: Mapping[str, Any]) -> bool:
    """Does the config's model read windows of beats (not single beats)?"""
    return config.get("model") in params.SEQUENCE_FAMILIES


def record_runs(split: Split) -> list[np.ndarray]:
    """The rows of ``split``, one array per record, each in time order."""
    if split.records is None:
        raise UserError(f"model {', '.join(params.SEQUENCE_FAMILIES)} needs each beat's record "
                        "(the beat sidecar <name>.beats.csv beside the CSV); this data has none: "
                        "convert WFDB records with `python code/data.py wfdb`")
    _, record = np.unique(split.records, return_inverse=True)
    rows = np.arange(len(split))
    time = rows if split.r_peak is None else np.asarray(split.r_peak)
    order = np.lexsort((rows, time, record))  # the last key sorts first
    cuts = np.flatnonzero(np.diff(record[order])) + 1
    return [run for run in np.split(order, cuts) if len(run)]


def windows_of(rows: np.ndarray, window: int, stride: int) -> np.ndarray:
    """Windows (k, window) over one record's ``rows``: starts every ``stride`` beats plus one
    window ending at the last beat; a record shorter than ``window`` is padded with PAD."""
    n = len(rows)
    if n <= window:
        return np.concatenate([rows, np.full(window - n, PAD)])[None].astype(np.int64)
    starts = np.arange(0, n - window + 1, stride)
    if starts[-1] != n - window:
        starts = np.append(starts, n - window)
    return rows[starts[:, None] + np.arange(window)].astype(np.int64)


def window_rows(split: Split, config: Mapping[str, Any]) -> np.ndarray:
    """Every window of ``split`` as rows of it, (n_windows, seq_window); PAD for padding."""
    window, stride = config["seq_window"], config["seq_stride"]
    if stride > window:
        raise UserError(f"config key 'seq_stride': {stride} is above seq_window ({window}); "
                        "use seq_stride <= seq_window")
    windows = [windows_of(run, window, stride) for run in record_runs(split)]
    return np.concatenate(windows) if windows else np.empty((0, window), dtype=np.int64)


def windows_per_batch(config: Mapping[str, Any]) -> int:
    """Windows per training batch: about ``batch_size`` beats."""
    return max(1, round(config["batch_size"] / config["seq_window"]))


def gather(split: Split, rows: np.ndarray, config: Mapping[str, Any],
           rng: np.random.Generator | None = None) -> Any:
    """Model inputs of the windows ``rows``: beats (w, seq_window, width, 1), and with
    ``rr_features`` also RR vectors (w, seq_window, k) as {"beat", "rr"}. Padding is zero;
    with ``rng`` the beats are augmented as ``augment.augment_beats`` does."""
    pad = rows == PAD
    safe = np.where(pad, 0, rows)
    beats = np.asarray(split.X, dtype=np.float32)[safe]
    if rng is not None:
        width = beats.shape[-1]
        beats = augment.augment_beats(beats.reshape(-1, width), rng, config).reshape(beats.shape)
    beats[pad] = 0.0
    x = beats[..., None]
    if not config.get("rr_features"):
        return x
    rr = rr_input(split, config, safe)  # only the window's rows, not the whole split
    rr[pad] = 0.0
    return {"beat": x, "rr": rr}


def predict_beats(model, split: Split, config: Mapping[str, Any],
                  batch_size: int = 1024) -> np.ndarray:
    """Class probabilities (n, k) float64, one row per beat of ``split`` in its order: the
    mean over the windows that hold the beat."""
    rows = window_rows(split, config)
    per_batch = max(1, batch_size // config["seq_window"])
    total = np.zeros((len(split), int(model.output_shape[-1])))
    count = np.zeros(len(split))
    for start in range(0, len(rows), PREDICT_CHUNK_WINDOWS):
        chunk = rows[start:start + PREDICT_CHUNK_WINDOWS]
        probs = np.asarray(model.predict(gather(split, chunk, config), batch_size=per_batch,
                                         verbose=0), dtype=np.float64)
        real = chunk != PAD
        np.add.at(total, chunk[real], probs[real])
        np.add.at(count, chunk[real], 1.0)
    return total / np.maximum(count, 1.0)[:, None]


class WindowBatches(keras.utils.PyDataset):
    """Training batches of windows, shuffled every epoch: (inputs, labels, sample weights).

    About ``batch_size`` beats per batch (``batch_size / seq_window`` windows). A beat's
    weight is its class weight (1 without), padding weighs 0. With ``aug_*`` keys the beats
    are augmented afresh in every batch.
    """

    def __init__(self, split: Split, config: Mapping[str, Any],
                 class_weight: Mapping[int, float] | None, seed: int):
        super().__init__()
        self.split, self.config = split, config
        self.rows = window_rows(split, config)
        self.per_batch = windows_per_batch(config)
        self.weight_of = _weight_table(split.y, class_weight)
        self.rng = np.random.default_rng(seed)
        self.augmented = params.augment_on(config)
        self.order = self.rng.permutation(len(self.rows))

    def __len__(self) -> int:
        return math.ceil(len(self.rows) / self.per_batch)

    def __getitem__(self, index: int):
        rows = self.rows[self.order[index * self.per_batch:(index + 1) * self.per_batch]]
        x = gather(self.split, rows, self.config, self.rng if self.augmented else None)
        y = np.asarray(self.split.y)[np.where(rows == PAD, 0, rows)].astype(np.int32)
        weights = (self.weight_of[y] * (rows != PAD)).astype(np.float32)
        return x, y, weights

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.rows))


def _weight_table(y: np.ndarray, class_weight: Mapping[int, float] | None) -> np.ndarray:
    """Loss weight by label; 1 for a label the mapping leaves out."""
    top = max([int(np.max(y)) if len(y) else 0, *(int(c) for c in (class_weight or {}))])
    table = np.ones(top + 1, dtype=np.float32)
    for label, weight in (class_weight or {}).items():
        table[int(label)] = float(weight)
    return table
