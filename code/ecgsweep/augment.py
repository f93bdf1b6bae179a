"""Training-time augmentation of beats: amplitude scaling, a small time shift, baseline
wander and Gaussian noise, drawn afresh for every batch of every epoch.

Only the training split passes through here (``training.fit`` builds the batches); the
validation and test beats are fed as they are. The transforms are numpy on host memory, so
they run the same on every Keras backend.
"""

from __future__ import annotations

from typing import Any, Mapping

import keras
import numpy as np

from .data.kaggle_csv import SAMPLE_RATE_HZ

def augment_beats(X: np.ndarray, rng: np.random.Generator, config: Mapping[str, Any]) -> np.ndarray:
    """A transformed copy of beats ``X`` (n, length): ``aug_scale`` s multiplies each beat by
    U(1-s, 1+s); ``aug_shift`` k moves it by up to k samples (zeros fill in); ``aug_wander`` w
    adds a 0.1-0.5 Hz sine of amplitude up to w; ``aug_noise`` sd adds N(0, sd) noise."""
    out = np.array(X, dtype=np.float32, copy=True)
    n, length = out.shape
    scale, shift = float(config.get("aug_scale", 0)), int(config.get("aug_shift", 0))
    wander, noise = float(config.get("aug_wander", 0)), float(config.get("aug_noise", 0))
    if scale > 0:
        out *= rng.uniform(1 - scale, 1 + scale, size=(n, 1)).astype(np.float32)
    if shift > 0:
        out = _shift_rows(out, rng.integers(-shift, shift + 1, size=n))
    if wander > 0:
        t = np.arange(length, dtype=np.float32) / SAMPLE_RATE_HZ
        freq = rng.uniform(0.1, 0.5, size=(n, 1))
        phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
        amp = rng.uniform(0, wander, size=(n, 1))
        out += (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)
    if noise > 0:
        out += rng.normal(0, noise, size=out.shape).astype(np.float32)
    return out


def augment_channels(beats: np.ndarray, rng: np.random.Generator,
                     config: Mapping[str, Any]) -> np.ndarray:
    """The model's beat input (n, length, channels) with its beat channel augmented. A second
    channel (``beat_normalization: record_median``, the beat minus its record's median beat)
    is taken again against the augmented beat: the record's median beat is a property of the
    record and stays as it is, so whatever the augmentation adds to a beat shows in both."""
    augmented = augment_beats(beats[:, :, 0], rng, config)
    if beats.shape[-1] == 1:
        return augmented[..., None]
    record_median = beats[:, :, 0] - beats[:, :, 1]
    return np.stack([augmented, augmented - record_median], axis=-1)


def _shift_rows(X: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Row i moved right by offsets[i] samples (left when negative), zeros where it left."""
    n, length = X.shape
    source = np.arange(length)[None, :] - offsets[:, None]
    valid = (source >= 0) & (source < length)
    out = np.zeros_like(X)
    rows = np.broadcast_to(np.arange(n)[:, None], source.shape)
    out[valid] = X[rows[valid], source[valid]]
    return out


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled training batches with freshly augmented beats: (inputs, labels, weights)."""

    def __init__(self, inputs: Any, labels: np.ndarray, sample_weights: np.ndarray | None,
                 config: Mapping[str, Any], batch_size: int, seed: int):
        super().__init__()
        self.inputs, self.labels, self.weights = inputs, labels, sample_weights
        self.config, self.batch_size = config, batch_size
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(labels))

    def __len__(self) -> int:
        return int(np.ceil(len(self.labels) / self.batch_size))

    def __getitem__(self, index: int):
        idx = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        beats = self.inputs["beat"] if isinstance(self.inputs, dict) else self.inputs
        augmented = augment_channels(beats[idx], self.rng, self.config)
        x = ({**{k: v[idx] for k, v in self.inputs.items()}, "beat": augmented}
             if isinstance(self.inputs, dict) else augmented)
        if self.weights is None:
            return x, self.labels[idx]
        return x, self.labels[idx], self.weights[idx]

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.labels))
