"""PhysioNet WFDB records -> heartbeats in the Kaggle CSV format, with honest splits.

Beat extraction follows Kachuee, Fazeli & Sarrafzadeh, "ECG Heartbeat Classification: A
Deep Transferable Representation", IEEE ICHI 2018 (arXiv:1805.00794), the method behind
the Kaggle "ECG Heartbeat Categorization Dataset", with the reference annotations in
place of their R-peak detector:

1. Lead MLII when the record has it; otherwise the first channel, with a warning that
   names the record.
2. Resample to 125 Hz with a polyphase filter (``scipy.signal.resample_poly``; 360 Hz ->
   125 Hz is up 25, down 72). Annotation sample indexes are rescaled and rounded.
3. R peaks are the reference beat annotations. Non-beat annotations (rhythm ``+``,
   noise ``~``, comments ...) are skipped; beat symbols outside the AAMI map (B, r, n,
   ?, !) give no row but still count as heartbeats for the RR interval.
4. The nominal beat period T is the median RR interval of the 10-second window the beat
   lies in, as in Kachuee et al. (section III-A: the signal is split into 10 s windows
   and T is found per window). Windows are fixed 10 s blocks from the record start; an
   RR interval counts for a window when both its beats lie in it. A window with no such
   interval uses the record's median RR.
5. Each beat is the ``round(1.2 T)`` samples that start at its R peak, cut to 187
   (``before_r_s`` > 0, not the Kaggle layout: the window starts that long before the R
   peak and grows by as much, so the P wave is in the row; a first beat without that much
   signal before it is dropped as an edge beat).
6. The beat is scaled to [0, 1] by its own minimum and maximum (the published CSVs do
   this: every row has maximum 1 and a 0 before the padding), then zero-padded to 187.

Edge beats: a beat is dropped when its window (after the cut to 187) runs past the end of
the signal; a half-window would look unlike every other row. Windows start at the R
peak, so only the last one or two beats of a record can be dropped. Record 100 keeps
2237 N, 33 S, 1 V of its 2239 N, 33 S, 1 V: its last two N beats lie within 1.2 T of
the end. A beat whose window is flat (max == min) is dropped too. Both are counted in
``info["dropped"]``.

Splits (:func:`convert`): ``intra`` is a stratified beat-level split like Kaggle's (the
same patients on both sides, which flatters every score); ``inter`` is the inter-patient
split of de Chazal et al. 2004 (DS1 train, DS2 test, paced records left out, see
:mod:`ecgsweep.data.records`).
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..cli import UserError
from . import records as R
from . import sidecar
from .kaggle_csv import BEAT_LENGTH, SAMPLE_RATE_HZ, write_csv

TARGET_FS = SAMPLE_RATE_HZ  # the Kaggle rows' rate
WINDOW_FACTOR = 1.2  # window = 1.2 x median RR (Kachuee et al. 2018)
RR_WINDOW_S = 10.0  # median RR per 10 s block (Kachuee et al. 2018)
PREFERRED_LEAD = "MLII"
MITDB_URL = "https://physionet.org/content/mitdb/1.0.0/"


# --- signal level --------------------------------------------------------------------


def resample_signal(signal: np.ndarray, fs: float, target_fs: float = TARGET_FS) -> np.ndarray:
    """Resample a 1-D signal from ``fs`` to ``target_fs`` with a polyphase filter."""
    from scipy.signal import resample_poly

    signal = np.asarray(signal, dtype=np.float64)
    ratio = Fraction(target_fs) / Fraction(fs).limit_denominator(1000)
    ratio = ratio.limit_denominator(1000)
    if ratio == 1:
        return signal.copy()
    return resample_poly(signal, ratio.numerator, ratio.denominator)


def rescale_samples(samples: np.ndarray, fs: float, target_fs: float = TARGET_FS) -> np.ndarray:
    """Map sample indexes at ``fs`` to the nearest index at ``target_fs``."""
    return np.rint(np.asarray(samples, dtype=np.float64) * (target_fs / fs)).astype(np.int64)


def window_lengths(peaks: np.ndarray, fs: float, factor: float = WINDOW_FACTOR,
                   rr_window_s: float = RR_WINDOW_S) -> np.ndarray:
    """Content length in samples of each beat: ``round(factor * T)`` with T the median RR
    of the ``rr_window_s`` block the beat lies in (record median where a block has none).

    ``peaks`` are sorted sample indexes of every heartbeat, at sampling rate ``fs``.
    With fewer than two beats there is no RR interval: every window is the full length.
    """
    peaks = np.asarray(peaks, dtype=np.int64)
    if len(peaks) < 2:
        return np.full(len(peaks), BEAT_LENGTH, dtype=np.int64)
    rr = np.diff(peaks).astype(np.float64)
    block = peaks // max(1, int(round(rr_window_s * fs)))
    inside = block[:-1] == block[1:]
    period = np.full(len(peaks), np.median(rr))
    for b in np.unique(block):
        in_block = inside & (block[1:] == b)
        if in_block.any():
            period[block == b] = np.median(rr[in_block])
    return np.maximum(1, np.rint(factor * period)).astype(np.int64)


def cut_beats(signal: np.ndarray, peaks: np.ndarray, lengths: np.ndarray,
              beat_length: int = BEAT_LENGTH) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut ``lengths[i]`` samples (at most ``beat_length``) from each peak, scale each to
    [0, 1] and zero-pad. Returns (X n×beat_length float32 for every peak, ``fits``: the
    window lies inside the signal, ``flat``: it fits but is constant). Rows that do not
    fit or are flat are left all zero."""
    signal = np.asarray(signal, dtype=np.float64)
    peaks = np.asarray(peaks, dtype=np.int64)
    needed = np.minimum(np.asarray(lengths, dtype=np.int64), beat_length)
    X = np.zeros((len(peaks), beat_length), dtype=np.float32)
    fits = (peaks >= 0) & (peaks + needed <= len(signal))
    flat = np.zeros(len(peaks), dtype=bool)
    for i in np.flatnonzero(fits):
        seg = signal[peaks[i]:peaks[i] + needed[i]]
        lo, hi = seg.min(), seg.max()
        if hi <= lo:
            flat[i] = True
            continue
        X[i, :needed[i]] = (seg - lo) / (hi - lo)
    return X, fits, flat


def signal_beats(signal: np.ndarray, fs: float, peaks: np.ndarray,
                 target_fs: float = TARGET_FS,
                 before_r_s: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resample ``signal`` and window it at ``peaks`` (sample indexes at ``fs``).

    ``before_r_s`` > 0 starts each window that long before its R peak (and makes it that
    much longer), so the P wave is in view; 0 is the Kaggle format (window from the R peak).
    Returns (X for every peak, ``kept`` mask, window content lengths at ``target_fs``).
    ``kept`` is False for beats dropped at the edges or flat (their rows are zero).
    """
    resampled = resample_signal(signal, fs, target_fs)
    peaks_rs = rescale_samples(peaks, fs, target_fs)
    before = before_r_samples(before_r_s, target_fs)
    lengths = window_lengths(peaks_rs, target_fs) + before
    X, fits, flat = cut_beats(resampled, peaks_rs - before, lengths)
    return X, fits & ~flat, lengths


def before_r_samples(before_r_s: float, target_fs: float = TARGET_FS) -> int:
    """Samples of window before the R peak; a clear error outside [0, half a beat row)."""
    before = int(round(before_r_s * target_fs))
    if not 0 <= before < BEAT_LENGTH // 2:
        raise UserError(f"window start {before_r_s} s before the R peak: expected 0 to "
                        f"{(BEAT_LENGTH // 2 - 1) / target_fs:.2f} s (a row is "
                        f"{BEAT_LENGTH} samples at {target_fs} Hz)")
    return before


# --- record level --------------------------------------------------------------------


def _record_base(record_path: str | os.PathLike) -> Path:
    path = Path(record_path)
    if path.suffix in (".hea", ".dat", ".atr"):
        path = path.with_suffix("")
    return path


def _fill_gaps(x: np.ndarray, name: str) -> np.ndarray:
    bad = ~np.isfinite(x)
    if not bad.any():
        return x
    if bad.all():
        raise UserError(f"record {name}: the signal has no valid samples")
    warnings.warn(f"record {name}: {int(bad.sum())} invalid samples, filled by linear "
                  "interpolation", stacklevel=3)
    idx = np.arange(len(x))
    x = x.copy()
    x[bad] = np.interp(idx[bad], idx[~bad], x[~bad])
    return x


def _class_counts(labels: np.ndarray) -> dict[str, int]:
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(R.CLASS_NAMES))
    return {c: int(n) for c, n in zip(R.CLASS_NAMES, counts)}


def record_beats(record_path: str | os.PathLike, target_fs: float = TARGET_FS,
                 annotator: str = "atr", before_r_s: float = 0.0
                 ) -> tuple[np.ndarray, np.ndarray, dict]:
    """Beats of one WFDB record (X, y, info): ``record_beats_and_rhythm`` without the rhythm."""
    X, y, info, _ = record_beats_and_rhythm(record_path, target_fs, annotator, before_r_s)
    return X, y, info


def record_beats_and_rhythm(record_path: str | os.PathLike, target_fs: float = TARGET_FS,
                            annotator: str = "atr", before_r_s: float = 0.0
                            ) -> tuple[np.ndarray, np.ndarray, dict, dict]:
    """Beats of one WFDB record at its reference annotations, labelled with AAMI classes.

    ``record_path`` is the record without extension (``.../mitdb/100``; a ``.hea`` path is
    accepted). Returns (X float32 n×187 in [0, 1], y int64 in 0..4, info) where info is a
    JSON-ready dict: record, lead, fs, target_fs, counts (kept beats per class), dropped
    (per class: edge or flat windows), skipped (non-beat and unmapped beat symbols),
    median_rr_s. The fourth value is the kept beats' rhythm: ``r_peak`` (sample index at
    the record's own rate) and ``rr`` (``sidecar.RR_FEATURES``, from every QRS annotation).
    ``before_r_s``: see :func:`signal_beats`.
    """
    import wfdb

    base = _record_base(record_path)
    name = base.name
    for ext in ("hea", annotator):
        if not base.with_name(f"{name}.{ext}").is_file():
            raise FileNotFoundError(f"{base.with_name(f'{name}.{ext}')}: no such file "
                                    f"(record {name} needs .hea, .dat and .{annotator})")
    header = wfdb.rdheader(str(base))
    names = list(header.sig_name or [])
    if PREFERRED_LEAD in names:
        channel = names.index(PREFERRED_LEAD)
    else:
        channel = 0
        warnings.warn(f"record {name}: no {PREFERRED_LEAD} lead (leads: "
                      f"{', '.join(names) or 'unnamed'}); using the first channel "
                      f"{names[0] if names else ''}".rstrip(), stacklevel=2)
    record = wfdb.rdrecord(str(base), channels=[channel])
    fs = float(record.fs)
    signal = _fill_gaps(np.asarray(record.p_signal[:, 0], dtype=np.float64), name)

    ann = wfdb.rdann(str(base), annotator)
    symbols = np.asarray(ann.symbol, dtype=object)
    samples = np.asarray(ann.sample, dtype=np.int64)
    is_qrs = np.array([s in R.QRS_SYMBOLS for s in symbols], dtype=bool)
    qrs_samples, qrs_symbols = samples[is_qrs], symbols[is_qrs]
    order = np.argsort(qrs_samples, kind="stable")
    qrs_samples, qrs_symbols = qrs_samples[order], qrs_symbols[order]

    X, kept, lengths = signal_beats(signal, fs, qrs_samples, target_fs, before_r_s)
    labels = np.array([R.SYMBOL_TO_LABEL.get(s, -1) for s in qrs_symbols], dtype=np.int64)
    mapped = labels >= 0
    take = mapped & kept

    skipped = Counter(str(s) for s in symbols[~is_qrs])
    skipped.update(str(s) for s in qrs_symbols[~mapped])
    rr = np.diff(qrs_samples) / fs
    info = {
        "record": name,
        "lead": names[channel] if names else f"channel {channel}",
        "fs": fs,
        "target_fs": float(target_fs),
        "counts": _class_counts(labels[take]),
        "dropped": _class_counts(labels[mapped & ~kept]),
        "skipped": dict(sorted(skipped.items())),
        "median_rr_s": float(np.median(rr)) if len(rr) else None,
        "window_samples": {"min": int(lengths.min()), "max": int(lengths.max())}
        if len(lengths) else None,
    }
    rhythm = {"r_peak": qrs_samples[take], "rr": sidecar.rr_features(qrs_samples, fs)[take]}
    return X[take], labels[take], info, rhythm


# --- folders and splits --------------------------------------------------------------


def find_records(src: str | os.PathLike, annotator: str = "atr") -> list[str]:
    """Names of the records in ``src`` that have a header and reference annotations."""
    src = Path(src)
    if not src.is_dir():
        return []
    return sorted(p.stem for p in src.glob("*.hea")
                  if p.with_suffix(f".{annotator}").is_file())


def _manual_hint(src: Path) -> str:
    return (f"Download the MIT-BIH Arrhythmia Database with `python code/data.py wfdb "
            f"--download mitdb --src {src}`, or by hand from {MITDB_URL} (the .hea, .dat "
            f"and .atr files) into {src}/.")


def _stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of test beats: round(test_fraction * n) of each class, at random."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        n_test = int(round(test_fraction * len(idx)))
        test[rng.permutation(idx)[:n_test]] = True
    return test


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual file mode
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _stack_rhythm(names: list[str], beats: dict, rhythms: dict) -> dict[str, np.ndarray]:
    """The sidecar columns of the records ``names``, in the order their beats are stacked."""
    return {"record": np.concatenate([np.full(len(beats[n][1]), n) for n in names]),
            "r_peak": np.concatenate([rhythms[n]["r_peak"] for n in names]),
            "rr": np.concatenate([rhythms[n]["rr"] for n in names])}


def _intra_sides(src: Path, available: list[str], requested: list[str] | None) -> dict:
    names = requested if requested is not None else available
    absent = [r for r in names if r not in available]
    if absent:
        raise UserError(f"{src}: no record {', '.join(absent)} (each needs .hea, .dat "
                        f"and .atr). {_manual_hint(src)}")
    if not names:
        raise UserError(f"{src}: no WFDB records (.hea with .atr). {_manual_hint(src)}")
    return {"train": names, "test": names}


def _inter_sides(src: Path, available: list[str],
                 requested: list[str] | None) -> tuple[dict, list[str], list[str]]:
    """(sides, ignored, missing) of the de Chazal split; DS1 is required, DS2 optional."""
    pool = requested if requested is not None else list(R.DS1 + R.DS2)
    ignored = [r for r in pool if r not in R.DS1 and r not in R.DS2]
    missing = [r for r in R.DS1 + R.DS2 if r in pool and r not in available]
    train = [r for r in R.DS1 if r in pool and r in available]
    test = [r for r in R.DS2 if r in pool and r in available]
    if not train:
        wanted = [r for r in R.DS1 if r in pool]
        problem = (f"no DS1 (train) record in {src} (missing: {', '.join(wanted)})" if wanted
                   else "the records asked for include no DS1 (train) record")
        raise UserError(
            f"inter-patient split: {problem}"
            + (f"; found only {', '.join(available)}" if 0 < len(available) <= 10 else "")
            + ". The de Chazal split trains on DS1 and tests on DS2 "
            f"(see ecgsweep/data/records.py). {_manual_hint(src)} Or use --split intra.")
    if not test:
        warnings.warn(f"inter-patient split: no DS2 (test) record in {src}; wrote the DS1 "
                      "training file only. Measure on held-out DS1 records with record-"
                      "grouped cross-validation (val_split: record, folds: k)", stacklevel=3)
    return {"train": train, "test": test}, ignored, missing


def _intra_parts(names: list[str], beats: dict, rhythms: dict, per_record: dict,
                 test_fraction: float, seed: int) -> tuple[dict, dict, dict]:
    """(parts, part_meta, side_records): every record's beats split at random by class."""
    X = np.concatenate([beats[n][0] for n in names])
    y = np.concatenate([beats[n][1] for n in names])
    origin = np.concatenate([np.full(len(beats[n][1]), i) for i, n in enumerate(names)])
    is_test = _stratified_split(y, test_fraction, seed)
    meta = _stack_rhythm(names, beats, rhythms)
    parts = {"train": (X[~is_test], y[~is_test]), "test": (X[is_test], y[is_test])}
    part_meta = {"train": {k: v[~is_test] for k, v in meta.items()},
                 "test": {k: v[is_test] for k, v in meta.items()}}
    side_records = {"train": [names[i] for i in np.unique(origin[~is_test])],
                    "test": [names[i] for i in np.unique(origin[is_test])]}
    for i, n in enumerate(names):
        per_record[n]["side"] = "both"
        per_record[n]["counts_by_side"] = {
            "train": _class_counts(y[~is_test & (origin == i)]),
            "test": _class_counts(y[is_test & (origin == i)])}
    return parts, part_meta, side_records


def _inter_parts(sides: dict, beats: dict, rhythms: dict,
                 per_record: dict) -> tuple[dict, dict, dict]:
    """(parts, part_meta, side_records): whole records on each side (an empty side: none)."""
    parts, part_meta = {}, {}
    for side, names in sides.items():
        if not names:
            continue
        parts[side] = (np.concatenate([beats[n][0] for n in names]),
                       np.concatenate([beats[n][1] for n in names]))
        part_meta[side] = _stack_rhythm(names, beats, rhythms)
        for n in names:
            per_record[n]["side"] = side
    return parts, part_meta, dict(sides)


def _write_parts(out: Path, parts: dict, part_meta: dict) -> dict[str, Path]:
    """Each side's Kaggle-format CSV and its beat sidecar; returns the CSV paths."""
    out.mkdir(parents=True, exist_ok=True)
    files = {side: out / f"mitbih_{side}.csv" for side in parts}
    for side, path in files.items():
        write_csv(path, *parts[side])
        m = part_meta[side]
        sidecar.write(sidecar.sidecar_path(path), m["record"], m["r_peak"], m["rr"])
    return files


def convert(src_dir: str | os.PathLike, out_dir: str | os.PathLike, split: str = "intra",
            test_fraction: float = 0.2, seed: int = 0,
            records: list[str] | None = None, before_r_s: float = 0.0) -> dict:
    """Turn the WFDB records in ``src_dir`` into ``mitbih_train.csv``, ``mitbih_test.csv``
    (each with its beat sidecar) and ``split.json`` in ``out_dir``.

    ``split="intra"``: every record (or ``records``), beats split at random, stratified by
    class, ``test_fraction`` to test. ``split="inter"``: de Chazal DS1 records train, DS2
    records test, paced records left out; ``records`` narrows both lists. Records of DS1 or
    DS2 absent from ``src_dir`` are listed under ``missing``; no DS1 record is an error, no
    DS2 record writes the training file alone (with a warning). ``before_r_s`` > 0 starts
    each beat's window that long before its R peak (see :func:`signal_beats`).

    Returns the summary also written to ``split.json``, with ``per_record`` details.
    """
    src, out = Path(src_dir), Path(out_dir)
    if split not in ("intra", "inter"):
        raise UserError(f"split {split!r}: expected 'intra' or 'inter'")
    if not 0.0 < test_fraction < 1.0:
        raise UserError(f"test fraction {test_fraction}: expected a number between 0 and 1")
    before_r_samples(before_r_s)  # refuse a bad window before reading any record
    if not src.is_dir():
        raise UserError(f"{src}: no such folder. {_manual_hint(src)}")
    available = find_records(src)
    requested = list(dict.fromkeys(str(r).strip() for r in records)) if records else None
    ignored: list[str] = []
    missing: list[str] = []
    if split == "intra":
        sides = _intra_sides(src, available, requested)
    else:
        sides, ignored, missing = _inter_sides(src, available, requested)

    per_record: dict[str, dict] = {}
    beats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    rhythms: dict[str, dict] = {}
    for name in dict.fromkeys(sides["train"] + sides["test"]):
        X, y, info, rhythms[name] = record_beats_and_rhythm(src / name,
                                                             before_r_s=before_r_s)
        beats[name] = (X, y)
        per_record[name] = info
    if split == "intra":
        parts, part_meta, side_records = _intra_parts(sides["train"], beats, rhythms, per_record,
                                                      test_fraction, seed)
    else:
        parts, part_meta, side_records = _inter_parts(sides, beats, rhythms, per_record)
    if len(parts["train"][1]) == 0:
        raise UserError(f"{split} split of {src}: the train side has no beats; "
                        "add records or change --test-fraction")
    files = _write_parts(out, parts, part_meta)
    summary = _summary(split, src, side_records, missing, ignored, parts, files, per_record,
                       before_r_s)
    if split == "intra":
        summary["test_fraction"] = test_fraction
        summary["seed"] = seed
    _atomic_write_text(out / "split.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _summary(split: str, src: Path, side_records: dict, missing: list[str], ignored: list[str],
             parts: dict, files: dict[str, Path], per_record: dict,
             before_r_s: float = 0.0) -> dict:
    """What ``split.json`` says of a conversion."""
    return {
        "split": split,
        "description": (
            "inter-patient: de Chazal et al. 2004 DS1 train / DS2 test, paced records "
            "102 104 107 217 left out (AAMI EC57)" if split == "inter" else
            "intra-patient: beats of every record split at random, stratified by class "
            "(like the Kaggle files); the same patients are on both sides"),
        "source": str(src.resolve()),
        "records": side_records,
        "missing": missing,
        "ignored": ignored,
        "counts": {side: _class_counts(y_side) for side, (_, y_side) in parts.items()},
        "classes": list(R.CLASS_NAMES),
        "files": {side: path.name for side, path in files.items()},
        "sidecars": {side: sidecar.sidecar_path(path).name for side, path in files.items()},
        "method": {"target_fs": TARGET_FS, "beat_length": BEAT_LENGTH,
                   "window": (f"{WINDOW_FACTOR} x median RR from the R peak" if not before_r_s
                              else f"{before_r_s} s before the R peak to {WINDOW_FACTOR} x "
                                   "median RR after it"),
                   "before_r_s": before_r_s,
                   "median_rr_block_s": RR_WINDOW_S, "lead": PREFERRED_LEAD,
                   "reference": "Kachuee et al. 2018, arXiv:1805.00794"},
        "per_record": per_record,
    }
