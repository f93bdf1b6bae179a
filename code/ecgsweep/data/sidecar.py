"""The per-beat sidecar of a Kaggle-format CSV: which record each beat comes from, where
its R peak is, and its RR-interval features.

The CSV stays exactly the Kaggle format (187 samples + label), so everything that reads
it keeps working; ``<name>.beats.csv`` beside ``<name>.csv`` holds one row per beat, in the
same order, with a header:

    record, r_peak, pre_rr, post_rr, local_rr, record_rr, pre_ratio, post_ratio,
    local_ratio, pre_local_ratio, local_spread, local_irregularity

RR intervals (seconds) come from the reference annotations, every QRS annotation counted
(also beats whose class is not kept): ``pre_rr`` and ``post_rr`` to the previous and next
beat, ``local_rr`` the mean of the ``LOCAL_RR_BEATS`` intervals around the beat,
``record_rr`` the record's mean RR. The ratios divide by the record mean (and pre by
local): the per-patient normalization of the inter-patient literature (de Chazal et al.
2004; Mar et al. 2011; Zhang et al. 2014), which makes a premature beat stand out
whatever the patient's heart rate. Two measures of how irregular the rhythm around the
beat is, both over the local mean: ``local_spread``, the standard deviation of the local
intervals, and ``local_irregularity``, the median absolute difference between successive
intervals among the ``IRREGULARITY_RR_BEATS`` around the beat. Both are high all along
atrial fibrillation, whose short intervals are not premature beats; the median ignores
an occasional premature beat's own two differences, so in sinus rhythm it stays near 0
at the premature beat too, where the standard deviation rises.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .kaggle_csv import DataFormatError

LOCAL_RR_BEATS = 10  # intervals averaged for local_rr, centred on the beat
IRREGULARITY_RR_BEATS = 20  # intervals whose successive differences give local_irregularity
RR_SECONDS = ("pre_rr", "post_rr", "local_rr", "record_rr")
RR_RATIOS = ("pre_ratio", "post_ratio", "local_ratio", "pre_local_ratio", "local_spread",
             "local_irregularity")
RR_FEATURES = RR_SECONDS + RR_RATIOS
COLUMNS = ("record", "r_peak") + RR_FEATURES
SUFFIX = ".beats.csv"


def sidecar_path(csv_path: str | os.PathLike) -> Path:
    """data/mitbih_train.csv -> data/mitbih_train.beats.csv"""
    path = Path(csv_path)
    name = path.name
    for ext in (".csv.gz", ".csv"):
        if name.endswith(ext):
            return path.with_name(name[: -len(ext)] + SUFFIX)
    return path.with_name(name + SUFFIX)


def rr_features(qrs_samples: np.ndarray, fs: float) -> np.ndarray:
    """RR features (n x len(RR_FEATURES), seconds and ratios) of every QRS annotation.

    The first beat has no previous interval and the last no next one: each borrows its
    other interval. A record of one beat has no rhythm: its features are 0 and ratios 1.
    """
    samples = np.asarray(qrs_samples, dtype=np.float64)
    n = len(samples)
    if n < 2:
        return np.column_stack([np.zeros((n, len(RR_SECONDS))), np.ones((n, len(RR_RATIOS)))])
    rr = np.diff(samples) / fs  # rr[i] is between beat i and i+1
    pre = np.concatenate([[rr[0]], rr])
    post = np.concatenate([rr, [rr[-1]]])
    half = LOCAL_RR_BEATS // 2
    cumulative = np.concatenate([[0.0], np.cumsum(rr)])
    squares = np.concatenate([[0.0], np.cumsum(rr ** 2)])
    # intervals rr[i-half .. i+half-1] around beat i (clipped at the record's ends)
    lo = np.clip(np.arange(n) - half, 0, len(rr) - 1)
    hi = np.clip(np.arange(n) + half, lo + 1, len(rr))
    local = (cumulative[hi] - cumulative[lo]) / (hi - lo)
    local_var = (squares[hi] - squares[lo]) / (hi - lo) - local ** 2
    spread = np.sqrt(np.maximum(local_var, 0.0)) / local
    record = np.full(n, rr.mean())
    irregularity = _successive_difference_median(rr) / local
    return np.column_stack([pre, post, local, record, pre / record, post / record,
                            local / record, pre / local, spread, irregularity])


def _successive_difference_median(rr: np.ndarray) -> np.ndarray:
    """Per beat (len(rr) + 1 of them), the median of |rr[j+1] - rr[j]| over the
    ``IRREGULARITY_RR_BEATS`` intervals around it (fewer at a record's ends; 0 with fewer
    than two intervals)."""
    n = len(rr) + 1
    diffs = np.abs(np.diff(rr))
    if len(diffs) == 0:
        return np.zeros(n)
    half = IRREGULARITY_RR_BEATS // 2
    # beat i has intervals rr[i-half .. i+half-1], whose differences are diffs[i-half .. i+half-2]
    padded = np.concatenate([np.full(half, np.nan), diffs, np.full(half, np.nan)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, IRREGULARITY_RR_BEATS - 1)[:n]
    return np.nanmedian(windows, axis=1)


def write(path: str | os.PathLike, records: np.ndarray, r_peaks: np.ndarray,
          rr: np.ndarray) -> Path:
    """Write the sidecar atomically (a temp file in the same folder, then rename)."""
    import pandas as pd

    path = Path(path)
    frame = pd.DataFrame(np.asarray(rr, dtype=np.float64), columns=list(RR_FEATURES))
    frame.insert(0, "r_peak", np.asarray(r_peaks, dtype=np.int64))
    frame.insert(0, "record", np.asarray(records).astype(str))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.to_csv(tmp, index=False, float_format="%.6f")
    os.replace(tmp, path)
    return path


def read(path: str | os.PathLike, n_beats: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(records str, r_peaks int64, rr float32 n x len(RR_FEATURES)) of a sidecar, checked
    against the CSV it belongs to: same number of rows, every column, finite values."""
    import pandas as pd

    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype={"record": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataFormatError(f"{path}: not a beat sidecar ({e})") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataFormatError(f"{path}: missing column(s) {', '.join(missing)}; a beat sidecar "
                              f"has {', '.join(COLUMNS)}: convert the records again with "
                              "`code/data.py wfdb`")
    if len(frame) != n_beats:
        raise DataFormatError(f"{path}: {len(frame)} rows but its CSV has {n_beats} beats; the "
                              "sidecar is out of step with the CSV: convert again with "
                              "`code/data.py wfdb`, or delete the sidecar")
    rr = frame[list(RR_FEATURES)].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(rr)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataFormatError(f"{path}, row {row + 2}, column {RR_FEATURES[col]}: "
                              f"{frame.iat[row, col + 2]!r} is not a finite number")
    if frame["record"].isna().any():
        row = int(np.argmax(frame["record"].isna().to_numpy()))
        raise DataFormatError(f"{path}, row {row + 2}, column record: empty record name")
    return (frame["record"].to_numpy(dtype=str), frame["r_peak"].to_numpy(dtype=np.int64),
            rr.astype(np.float32))


def rr_columns(normalization: str) -> list[int]:
    """Columns of RR_FEATURES a model sees: ratios to the record's mean (record), seconds
    (none), or both."""
    chosen = {"record": RR_RATIOS, "none": RR_SECONDS, "both": RR_FEATURES}[normalization]
    return [RR_FEATURES.index(name) for name in chosen]
