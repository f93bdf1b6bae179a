"""What a model is fed for a split of beats: its beat channels and, with ``rr_features``,
the RR vectors of the config's ``rr_normalization``. The single-beat families (training)
and the windows of the sequence families (beat_windows) both read them from here."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from . import params
from .data.datasets import Split


def as_model_input(X: np.ndarray) -> np.ndarray:
    """(n, width) beats -> (n, width, 1), the channel axis Conv1D and RNN layers expect."""
    return np.asarray(X, dtype=np.float32)[..., None]


def model_inputs(split: Split, config: Mapping[str, Any]):
    """What the model is fed for ``split``: the beats (n, width, 1; with ``beat_leads`` 2 a
    channel per lead; with ``beat_normalization`` record_median one more per lead, the beat
    minus its record's median beat), and with
    ``rr_features`` also the RR vector of the config's ``rr_normalization``, as {"beat",
    "rr"}. Plain arrays: Keras' own data adapters batch and shuffle them on every backend."""
    from .data import beatnorm

    beats = beatnorm.beat_channels(split.X, split.records,
                                   config.get("beat_normalization", "none"),
                                   int(config.get("beat_leads", 1)))
    if not config.get("rr_features"):
        return beats
    return {"beat": beats, "rr": rr_input(split, config)}


def rr_input(split: Split, config: Mapping[str, Any], rows: Any = None) -> np.ndarray:
    """The RR vectors the model reads (the config's ``rr_normalization`` columns) for every
    beat of ``split``, or for ``rows`` of it (any NumPy index), float32."""
    from .data import sidecar

    if split.rr is None:
        raise ValueError("rr_features needs the beats' RR features (the data's beat sidecar)")
    normalization = config.get("rr_normalization", "record")
    if normalization in params.RECORD_FED_RR:
        return _with_fed_rr(split, normalization, rows)
    if normalization in params.RECORD_SCALED_RR:
        # the reference is a statistic of each record's beats in the split, not of ``rows``
        if split.records is None:
            raise ValueError(f"rr_normalization={normalization} needs each beat's record "
                             "(the beat sidecar)")
        rr = sidecar.reference_scaled(split.rr, split.records, normalization, rows)
        return np.ascontiguousarray(rr, dtype=np.float32)
    rr = split.rr if rows is None else split.rr[rows]
    columns = sidecar.rr_columns(normalization)
    return np.ascontiguousarray(rr[..., columns], dtype=np.float32)


def _with_fed_rr(split: Split, normalization: str, rows: Any) -> np.ndarray:
    """The sidecar columns of ``normalization`` and after them its inputs computed from each
    record's intervals (``sidecar.FED_RR``: rr_entropy), for every beat or for ``rows``."""
    from . import rr_entropy
    from .data import sidecar

    fed = rr_entropy.split_entropy(split, f"rr_normalization={normalization}")
    columns = np.concatenate([split.rr[:, sidecar.rr_columns(normalization)], fed[:, None]],
                             axis=1)
    chosen = columns if rows is None else columns[rows]
    return np.ascontiguousarray(chosen, dtype=np.float32)
