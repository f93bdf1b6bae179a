"""PhysioNet WFDB records -> heartbeats in the Kaggle CSV format, with honest splits.

Beat extraction follows Kachuee, Fazeli & Sarrafzadeh, "ECG Heartbeat Classification: A
Deep Transferable Representation", IEEE ICHI 2018 (arXiv:1805.00794), the method behind
the Kaggle "ECG Heartbeat Categorization Dataset", with the reference annotations in
place of their R-peak detector:

0. Each record is checked first: its header names it, its signal file holds every sample
   the header announces, its beat annotations lie inside the signal and on its QRS
   complexes (:func:`annotation_problem`). A record that fails is skipped and named.
1. The lead asked for (``lead``; a record without it is an error naming its leads), else
   MLII when the record has it, else (with a reference beat, ``--lead-like``) the lead
   whose beats look most like the reference's (:mod:`.lead_choice`), else the first
   channel; ``info`` says which and why, and a conversion warns once, naming the records
   read from their first channel. Any sampling rate from 50 Hz.
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
   187 is the Kaggle layout's row width; ``beat_samples`` sets another (cut and padding
   alike), for rows that are no longer the Kaggle layout.

Edge beats: a beat is dropped when its window (after the cut to 187) runs past the end of
the signal; a half-window would look unlike every other row. Windows start at the R
peak, so only the last one or two beats of a record can be dropped. Record 100 keeps
2237 N, 33 S, 1 V of its 2239 N, 33 S, 1 V: its last two N beats lie within 1.2 T of
the end. A beat whose window is flat (max == min) is dropped too. Both are counted in
``info["dropped"]``.

Splits (:func:`convert`): ``intra`` is a stratified beat-level split like Kaggle's (the
same patients on both sides, which flatters every score); ``inter`` is the inter-patient
split of de Chazal et al. 2004 (DS1 train, DS2 test, paced records left out, see
:mod:`ecgsweep.data.records`); ``train`` and ``test`` put every beat of every record in
that one file: a database for development, or a whole database held out as a test set.
"""

from __future__ import annotations

import json
import os
import warnings
from collections import Counter
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..cli import UserError, counted
from ..sweep.files import write_text_whole
from ..sweep.progress import Progress
from . import lead_choice
from . import records as R
from . import sidecar
from .classes import MITBIH_FILES
from .kaggle_csv import BEAT_LENGTH, SAMPLE_RATE_HZ, WINDOW_RR, write_csv

if TYPE_CHECKING:
    from wfdb import Record

TARGET_FS = SAMPLE_RATE_HZ  # the Kaggle rows' rate
RR_WINDOW_S = 10.0  # median RR per 10 s block (Kachuee et al. 2018)
PREFERRED_LEAD = "MLII"
# --lead other: the first lead besides the one read by default, the same beats seen from
# another lead (training data for config key other_lead_data)
OTHER_LEAD = "other"
TWO_LEADS = 2  # leads per row of --two-leads (config key beat_leads)
PART_SIDES = ("train", "test")  # the files a conversion writes: mitbih_<side>.csv
SUMMARY_FILE = "split.json"  # what a conversion wrote, and how (``convert``'s summary)
# A narrower row would not hold a QRS complex (about 0.1 s, 13 samples at 125 Hz).
MIN_BEAT_SAMPLES = 16
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


def window_lengths(peaks: np.ndarray, fs: float, factor: float = WINDOW_RR,
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
                 target_fs: float = TARGET_FS, before_r_s: float = 0.0,
                 beat_samples: int = BEAT_LENGTH) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resample ``signal`` and window it at ``peaks`` (sample indexes at ``fs``).

    ``before_r_s`` > 0 starts each window that long before its R peak (and makes it that
    much longer), so the P wave is in view; 0 is the Kaggle format (window from the R peak).
    Each row is ``beat_samples`` long (the Kaggle format's 187 by default).
    Returns (X for every peak, ``kept`` mask, window content lengths at ``target_fs``).
    ``kept`` is False for beats dropped at the edges or flat (their rows are zero).
    """
    resampled = resample_signal(signal, fs, target_fs)
    peaks_rs = rescale_samples(peaks, fs, target_fs)
    before = before_r_samples(before_r_s, target_fs, beat_samples)
    lengths = window_lengths(peaks_rs, target_fs) + before
    X, fits, flat = cut_beats(resampled, peaks_rs - before, lengths, beat_samples)
    return X, fits & ~flat, lengths


def before_r_samples(before_r_s: float, target_fs: float = TARGET_FS,
                     beat_samples: int = BEAT_LENGTH) -> int:
    """Samples of window before the R peak; a clear error outside [0, half a beat row)."""
    before = int(round(before_r_s * target_fs))
    if not 0 <= before < beat_samples // 2:
        raise UserError(f"window start {before_r_s} s before the R peak: expected 0 to "
                        f"{max(0, beat_samples // 2 - 1) / target_fs:.2f} s (a row is "
                        f"{beat_samples} samples at {target_fs} Hz)")
    return before


def check_beat_samples(beat_samples: int) -> None:
    """A row holds at least ``MIN_BEAT_SAMPLES`` samples: a clear error otherwise."""
    if not MIN_BEAT_SAMPLES <= beat_samples:
        raise UserError(f"beat samples {beat_samples}: expected at least {MIN_BEAT_SAMPLES} "
                        f"(the Kaggle layout is {BEAT_LENGTH} at {SAMPLE_RATE_HZ} Hz)")


# --- record level --------------------------------------------------------------------


class RecordError(UserError):
    """A record that cannot be converted: a file is unreadable, or the header, signal and
    annotations do not belong together. :func:`convert` names it and skips it."""

    def __init__(self, record: str, reason: str) -> None:
        self.record = record
        self.reason = " ".join(reason.split())  # one line, whatever a parser put in it
        super().__init__(f"record {record}: {self.reason}")


# Bytes per sample of the WFDB signal formats whose file size follows from the header.
FORMAT_BYTES = {"8": 1, "16": 2, "24": 3, "32": 4, "61": 2, "80": 1, "160": 2,
                "212": 1.5, "310": 4 / 3, "311": 4 / 3}
MIN_FS_HZ = 50.0  # below this no QRS complex is resolved, so annotations cannot be checked

# Whether the beat annotations lie on the signal's QRS complexes. The slope of the
# band-passed signal peaks at each QRS; an annotation is "on a QRS" when a slope of at
# least QRS_STRONG times the record's typical QRS slope lies within QRS_SEARCH_S of it.
# The same share is taken at the midpoints between consecutive annotations: with the
# record's own annotations those lie between beats (off the QRS), with another record's
# both shares are the chance of hitting a QRS, so their difference is near 0. Measured on
# MIT-BIH DS1 and record 100 (360 Hz) and the even SVDB records (128 Hz): 0.85 (record
# 207) to 1.0 with their own annotations, at most 0.06 with another record's (every pair
# within each database).
QRS_BAND_HZ = (5.0, 20.0)
QRS_SMOOTH_S = 0.04
QRS_SEARCH_S = 0.05
QRS_BLOCK_S = 2.0  # typical QRS slope: median over blocks this long of their largest slope
QRS_STRONG = 0.3
MIN_QRS_CONTRAST = 0.5

# A record's QRS polarity: at each beat annotation, whether the largest deflection within
# QRS_HALF_S of it, from the median of the signal within BASELINE_S of it, points up. The
# Kaggle rows start at the R peak, the row's maximum in MLII; a lead whose QRS points down
# (SVDB's ECG1 in 12 of its 40 even records, DS1's V1 in 17 of 19) starts its rows at a
# minimum. A record is turned when fewer than QRS_UP_MIN_SHARE of its beats point up.
QRS_HALF_S = 0.06
BASELINE_S = 0.3
QRS_UP_MIN_SHARE = 0.5
# A day-long Holter record has about 100,000 beats: the share is read from this many of them,
# evenly spaced, which bounds the memory the windows take (a 30-minute record has fewer).
QRS_UP_MAX_BEATS = 10_000


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
        raise RecordError(name, "the signal has no valid samples")
    warnings.warn(f"record {name}: {int(bad.sum())} invalid samples, filled by linear "
                  "interpolation", stacklevel=3)
    idx = np.arange(len(x))
    x = x.copy()
    x[bad] = np.interp(idx[bad], idx[~bad], x[~bad])
    return x


def _class_counts(labels: np.ndarray) -> dict[str, int]:
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(R.CLASS_NAMES))
    return {c: int(n) for c, n in zip(R.CLASS_NAMES, counts)}


def choose_lead(names: list[str], lead: str | None = None) -> tuple[int, str]:
    """(channel, why): ``lead`` when given (None when the record lacks it: the caller
    refuses), else the preferred lead when the record has it, else the first channel.
    ``lead`` ``OTHER_LEAD``: the first channel other than the one read without ``lead``
    (None for a record of one channel)."""
    if lead == OTHER_LEAD:
        usual, _ = choose_lead(names)
        return (first_other_channel(len(names), usual),
                f"the first lead other than {names[usual] if names else 'the one read'}")
    if lead:
        return (names.index(lead) if lead in names else None), f"the lead asked for, {lead}"
    if PREFERRED_LEAD in names:
        return names.index(PREFERRED_LEAD), f"the preferred lead {PREFERRED_LEAD}"
    leads = ", ".join(names) or "unnamed"
    return 0, (f"no {PREFERRED_LEAD} lead (leads: {leads}); using the first channel "
               f"{names[0] if names else ''}").rstrip()


def _parser_error(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def _read_header(base: Path) -> Record:
    """The record's header; RecordError when unreadable or written for another record."""
    import wfdb

    name = base.name
    try:
        header = wfdb.rdheader(str(base))
    except Exception as e:  # wfdb raises many kinds on a damaged file; each means the same
        raise RecordError(name, f"cannot read {base}.hea ({_parser_error(e)})") from e
    if header.record_name != name:
        raise RecordError(name, f"{base}.hea is the header of record {header.record_name}, "
                          f"not {name}: give each record its own .hea")
    if not header.fs or header.fs < MIN_FS_HZ:
        raise RecordError(name, f"sampling rate {header.fs} Hz in {base}.hea: a QRS needs at "
                          f"least {MIN_FS_HZ:g} Hz")
    return header


def signal_file_shortfall(header: Record, sizes: dict[str, int]) -> str | None:
    """Why the signal files (``sizes``: file name -> bytes, absent when missing) cannot
    hold the samples the header announces, or None when they can (or it cannot be told)."""
    needed: dict[str, float] = {}
    for i, file_name in enumerate(getattr(header, "file_name", None) or []):
        if file_name not in sizes:
            return f"{file_name}: no such file"
        per_sample = FORMAT_BYTES.get(str(header.fmt[i]))
        if per_sample is None or header.sig_len is None:
            return None
        frame = (header.samps_per_frame or [1] * header.n_sig)[i] or 1
        offset = (header.byte_offset or [None] * header.n_sig)[i] or 0
        needed[file_name] = needed.get(file_name, offset) + header.sig_len * frame * per_sample
    for file_name, n_bytes in needed.items():
        if sizes[file_name] < np.ceil(n_bytes):
            return (f"{file_name} holds {sizes[file_name]} bytes, the header's "
                    f"{header.sig_len} samples need {int(np.ceil(n_bytes))}: the file is "
                    "truncated")
    return None


def _read_signal(base: Path, header: Record, channel: int) -> tuple[np.ndarray, float]:
    """The samples of ``channel`` and the sampling rate; RecordError when the .dat is
    missing, short or unreadable."""
    import wfdb

    name = base.name
    sizes = {f: (base.parent / f).stat().st_size
             for f in set(getattr(header, "file_name", None) or [])
             if (base.parent / f).is_file()}
    shortfall = signal_file_shortfall(header, sizes)
    if shortfall:
        raise RecordError(name, shortfall)
    try:
        record = wfdb.rdrecord(str(base), channels=[channel])
    except Exception as e:  # wfdb raises many kinds on a damaged file; each means the same
        raise RecordError(name, f"cannot read the signal of {base} ({_parser_error(e)})") from e
    signal = _fill_gaps(np.asarray(record.p_signal[:, 0], dtype=np.float64), name)
    return signal, float(record.fs)


def _read_annotations(base: Path, annotator: str) -> tuple[np.ndarray, np.ndarray]:
    """(sample indexes, symbols) of every annotation; RecordError when unreadable."""
    import wfdb

    try:
        ann = wfdb.rdann(str(base), annotator)
    except Exception as e:  # wfdb raises many kinds on a damaged file; each means the same
        raise RecordError(base.name, f"cannot read {base}.{annotator} "
                          f"({_parser_error(e)})") from e
    return (np.asarray(ann.sample, dtype=np.int64),
            np.asarray(ann.symbol, dtype=object))


def _slope_energy(signal: np.ndarray, fs: float) -> np.ndarray:
    """The smoothed absolute slope of the QRS band: high on each QRS complex."""
    from scipy.ndimage import uniform_filter1d
    from scipy.signal import butter, sosfiltfilt

    sos = butter(2, QRS_BAND_HZ, btype="band", fs=fs, output="sos")
    slope = np.abs(np.gradient(sosfiltfilt(sos, signal)))
    return uniform_filter1d(slope, max(1, int(round(QRS_SMOOTH_S * fs))))


def qrs_contrast(signal: np.ndarray, fs: float, beats: np.ndarray) -> float:
    """Share of ``beats`` (sorted sample indexes inside the signal, at least two) on a QRS
    complex of ``signal`` minus the share of the midpoints between them; see QRS_STRONG."""
    energy = _slope_energy(signal, fs)
    block = max(1, int(round(QRS_BLOCK_S * fs)))
    n_blocks = max(1, len(energy) // block)
    typical = np.median(np.maximum.reduceat(energy, np.arange(n_blocks) * block))
    reach = int(round(QRS_SEARCH_S * fs))
    # the largest energy within ``reach`` of each point, taken at the points alone
    near = np.lib.stride_tricks.sliding_window_view(
        np.pad(energy, reach, mode="edge"), 2 * reach + 1)

    def share_on_qrs(points: np.ndarray) -> float:
        return float((near[points].max(axis=1) >= QRS_STRONG * typical).mean())

    return share_on_qrs(beats) - share_on_qrs((beats[:-1] + beats[1:]) // 2)


def qrs_up_share(signal: np.ndarray, fs: float, beats: np.ndarray) -> float:
    """Share of ``beats`` (sample indexes) whose QRS complex points up: its largest
    deflection from the local baseline is positive (see QRS_HALF_S)."""
    beats = np.asarray(beats, dtype=np.int64)
    beats = beats[(beats >= 0) & (beats < len(signal))]
    if len(beats) == 0:
        return 1.0
    beats = beats[::-(-len(beats) // QRS_UP_MAX_BEATS)]
    half = max(1, int(round(QRS_HALF_S * fs)))
    reach = max(half, int(round(BASELINE_S * fs)))
    # each beat's samples within ``reach``, the signal's first or last sample past its ends
    offsets = np.arange(-reach, reach + 1)
    around = np.asarray(signal, dtype=np.float64)[
        np.clip(beats[:, None] + offsets[None, :], 0, len(signal) - 1)]
    baseline = np.median(around, axis=1)
    qrs = around[:, reach - half:reach + half + 1]
    return float(np.mean(qrs.max(axis=1) - baseline > baseline - qrs.min(axis=1)))


def upright(signal: np.ndarray, fs: float, beats: np.ndarray, qrs_up: bool
            ) -> tuple[np.ndarray, float, bool]:
    """(signal, share of ``beats`` pointing up as recorded, turned): the signal turned
    upside down when ``qrs_up`` and fewer than QRS_UP_MIN_SHARE of its beats point up."""
    share = qrs_up_share(signal, fs, beats)
    turned = qrs_up and share < QRS_UP_MIN_SHARE
    return (-signal if turned else signal), share, turned


def annotation_problem(signal: np.ndarray, fs: float, beats: np.ndarray,
                       annotator: str = "atr") -> str | None:
    """Why the beat annotations ``beats`` (sorted sample indexes) do not belong to
    ``signal``, or None when they do: every index inside the signal, and the beats on
    its QRS complexes (:func:`qrs_contrast`)."""
    # An annotation may sit at the record's very end (svdb 860 marks its last beat at
    # sample == signal length); the beat window check drops it as an edge beat.
    outside = (beats < 0) | (beats > len(signal))
    if outside.any():
        first = int(beats[outside][0])
        return (f"{int(outside.sum())} of {len(beats)} beat annotations lie outside the "
                f"signal's {len(signal)} samples (first at sample {first}): the .{annotator} "
                "of another record?")
    inside = beats[beats < len(signal)]
    if len(inside) < 2:
        return f"{len(inside)} beat annotations: too few to check against the signal"
    contrast = qrs_contrast(signal, fs, inside)
    if contrast < MIN_QRS_CONTRAST:
        return (f"the beat annotations do not lie on the signal's QRS complexes (share on a "
                f"QRS minus share between beats: {contrast:.2f}, at least "
                f"{MIN_QRS_CONTRAST} expected): the .{annotator} of another record?")
    return None


def record_beats(record_path: str | os.PathLike, target_fs: float = TARGET_FS,
                 annotator: str = "atr", before_r_s: float = 0.0, lead: str | None = None,
                 qrs_up: bool = False) -> tuple[np.ndarray, np.ndarray, dict]:
    """Beats of one WFDB record (X, y, info): ``record_beats_and_rhythm`` without the rhythm."""
    X, y, info, _ = record_beats_and_rhythm(record_path, target_fs, annotator, before_r_s,
                                            lead=lead, qrs_up=qrs_up)
    return X, y, info


def record_beats_and_rhythm(record_path: str | os.PathLike, target_fs: float = TARGET_FS,
                            annotator: str = "atr", before_r_s: float = 0.0,
                            beat_samples: int = BEAT_LENGTH, lead: str | None = None,
                            qrs_up: bool = False, two_leads: bool = False
                            ) -> tuple[np.ndarray, np.ndarray, dict, dict]:
    """Beats of one WFDB record at its reference annotations, labelled with AAMI classes.

    ``record_path`` is the record without extension (``.../mitdb/100``; a ``.hea`` path is
    accepted). Returns (X float32 n×``beat_samples`` in [0, 1], y int64 in 0..4, info)
    where info is a JSON-ready dict: record, lead, lead_reason, fs, target_fs, counts (kept
    beats per class), dropped (per class: edge or flat windows), skipped (non-beat and
    unmapped beat symbols), median_rr_s. The fourth value is the kept beats' rhythm:
    ``r_peak`` (sample index at the record's own rate) and ``rr`` (``sidecar.RR_FEATURES``,
    from every QRS annotation). ``before_r_s``, ``beat_samples``: see :func:`signal_beats`.
    ``lead``: the channel of that name (else MLII, else the first: :func:`choose_lead`);
    ``info`` says which it took and why (``lead``, ``lead_reason``). ``qrs_up``: a record
    whose QRS complexes mostly point down in that lead is turned upside down
    (``info["inverted"]``; ``info["qrs_up_share"]`` is the share of its beats pointing up
    as recorded, :func:`qrs_up_share`). ``two_leads``: each row goes on with the beat in
    the record's second lead (:func:`second_lead_rows`, ``info["second_lead"]``).

    Raises :class:`RecordError` for a record whose files are missing, damaged or do not
    belong together (header of another record, annotations off the signal's QRS), and
    UserError when it has no channel named ``lead``, or no second lead for ``two_leads``.
    """
    base = _record_base(record_path)
    name = base.name
    for ext in ("hea", annotator):
        if not base.with_name(f"{name}.{ext}").is_file():
            raise RecordError(name, f"{base.with_name(f'{name}.{ext}')}: no such file "
                              f"(a record needs .hea, .dat and .{annotator})")
    header = _read_header(base)
    names = lead_names(header)
    channel, lead_reason = _channel_asked(name, names, lead)
    second_channel = _second_channel(header, channel) if two_leads else None
    signal, fs = _read_signal(base, header, channel)
    samples, symbols = _read_annotations(base, annotator)
    is_qrs = np.array([s in R.QRS_SYMBOLS for s in symbols], dtype=bool)
    order = np.argsort(samples[is_qrs], kind="stable")
    qrs_samples, qrs_symbols = samples[is_qrs][order], symbols[is_qrs][order]
    problem = annotation_problem(signal, fs, qrs_samples, annotator)
    if problem:
        raise RecordError(name, problem)
    signal, up_share, inverted = upright(signal, fs, qrs_samples, qrs_up)

    X, kept, lengths = signal_beats(signal, fs, qrs_samples, target_fs, before_r_s, beat_samples)
    second = {}
    if second_channel is not None:  # one row of both leads; a beat flat in either is dropped
        X2, kept2, second = second_lead_rows(base, header, second_channel, qrs_samples,
                                             target_fs, before_r_s, beat_samples)
        X, kept = np.hstack([X, X2]), kept & kept2
    labels = np.array([R.SYMBOL_TO_LABEL.get(s, -1) for s in qrs_symbols], dtype=np.int64)
    take = (labels >= 0) & kept
    info = {"record": name, "lead": names[channel],
            "lead_reason": lead_reason, "qrs_up_share": round(up_share, 3),
            "inverted": inverted, **second, "fs": fs, "target_fs": float(target_fs),
            **_beat_counts(labels, kept, symbols[~is_qrs], qrs_symbols),
            **_rhythm_info(qrs_samples, fs, lengths)}
    rhythm = {"r_peak": qrs_samples[take], "rr": sidecar.rr_features(qrs_samples, fs)[take]}
    return X[take], labels[take], info, rhythm


def _channel_asked(name: str, names: list[str], lead: str | None) -> tuple[int, str]:
    """:func:`choose_lead`'s (channel, why); UserError naming record ``name`` when it has
    no such lead."""
    channel, lead_reason = choose_lead(names, lead)
    if channel is None and lead == OTHER_LEAD:
        raise UserError(f"record {name} has one lead ({', '.join(names) or 'unnamed'}), no "
                        f"other; --lead {OTHER_LEAD} needs records of two leads or more")
    if channel is None:
        raise UserError(f"record {name} has no lead {lead} (its leads: "
                        f"{', '.join(names) or 'unnamed'}); pass a --lead every record has, "
                        f"or none to take {PREFERRED_LEAD}, else each record's first channel")
    return channel, lead_reason


def records_without_lead(src: Path, names: list[str], lead: str) -> dict[str, list[str]]:
    """The records of ``names`` whose header lacks ``lead``, with the leads they have (a
    record whose header cannot be read is left to the conversion, which skips it)."""
    lacking: dict[str, list[str]] = {}
    for name in names:
        try:
            leads = lead_names(_read_header(src / name))
        except RecordError:
            continue
        if lead not in leads:
            lacking[name] = leads
    return lacking


def leads_had(lacking: dict[str, list[str]]) -> str:
    """``records_without_lead``'s records, each with the leads it has, in words."""
    return "; ".join(f"{name} has {', '.join(leads) or 'unnamed channels'}"
                     for name, leads in lacking.items())


def check_lead_everywhere(src: Path, names: list[str], lead: str | None) -> None:
    """Before any record is converted: a UserError naming every record of ``names`` whose
    header lacks the lead asked for, with the ``--records`` that would convert the others."""
    if not lead or lead == OTHER_LEAD:
        return
    lacking = records_without_lead(src, names, lead)
    if not lacking:
        return
    which = leads_had(lacking)
    others = [name for name in names if name not in lacking]
    hint = (f"To convert the {counted(len(others), 'other record')} in {lead}: --records "
            f"{','.join(others)}. " if others else "")
    raise UserError(f"no lead {lead} in {counted(len(lacking), 'record')} of {src}: {which}. "
                    f"{hint}Else pass a --lead every record has, or none to take "
                    f"{PREFERRED_LEAD}, else each record's first channel")


def lead_names(header: Record) -> list[str]:
    """Each channel's lead name as the header gives it; ``channel N`` (from 1) for a channel
    the header leaves unnamed, so ``--lead`` and ``split.json`` can still name it."""
    given = header.sig_name or [None] * int(header.n_sig)
    return [name or f"channel {i + 1}" for i, name in enumerate(given)]


def first_other_channel(channels: int, channel: int) -> int | None:
    """The first of ``channels`` channels other than ``channel`` (None when there is none):
    the other lead of ``--lead other`` and the second lead of ``--two-leads``."""
    return next((c for c in range(channels) if c != channel), None)


def _second_channel(header: Record, channel: int) -> int:
    """The record's first channel other than ``channel``; UserError for a one-lead record."""
    second = first_other_channel(int(header.n_sig), channel)
    if second is None:
        names = ", ".join(lead_names(header)) or "unnamed"
        raise UserError(f"record {header.record_name} has one lead ({names}); --two-leads "
                        "needs records of two leads or more")
    return second


def second_lead_rows(base: Path, header: Record, channel: int, qrs_samples: np.ndarray,
                     target_fs: float, before_r_s: float, beat_samples: int
                     ) -> tuple[np.ndarray, np.ndarray, dict]:
    """(rows, kept mask, info) of the record's ``channel``, its second lead, cut at the same
    R peaks as the lead read. It is turned upright whatever ``--qrs-up`` says, on every side
    alike: a second lead (V1 in most of MIT-BIH, unnamed in other databases) points down in
    some patients and up in others, and the model should judge its shape rather than its
    polarity."""
    signal, fs = _read_signal(base, header, channel)
    signal, _, inverted = upright(signal, fs, qrs_samples, qrs_up=True)
    X, kept, _ = signal_beats(signal, fs, qrs_samples, target_fs, before_r_s, beat_samples)
    return X, kept, {"second_lead": lead_names(header)[channel],
                     "second_lead_inverted": inverted}


def record_in_likest_lead(record_path: str | os.PathLike, reference: np.ndarray,
                          before_r_s: float = 0.0, beat_samples: int = BEAT_LENGTH,
                          qrs_up: bool = False, two_leads: bool = False
                          ) -> tuple[np.ndarray, np.ndarray, dict, dict]:
    """``record_beats_and_rhythm`` in the record's MLII when it has one, else in the lead
    whose median beat looks most like ``reference`` (:func:`lead_choice.most_alike`);
    ``info["lead_likeness"]`` gives every lead's likeness. A lead whose annotations do not
    lie on its QRS complexes is left out; RecordError when no lead can be read. With
    ``two_leads`` the likeness is judged on the first lead of each row."""
    def read(lead: str | None) -> tuple[np.ndarray, np.ndarray, dict, dict]:
        return record_beats_and_rhythm(record_path, before_r_s=before_r_s,
                                       beat_samples=beat_samples, lead=lead, qrs_up=qrs_up,
                                       two_leads=two_leads)

    base = _record_base(record_path)
    names = lead_names(_read_header(base)) \
        if base.with_name(f"{base.name}.hea").is_file() else []
    if PREFERRED_LEAD in names or len(names) < 2:
        return read(None)
    leads, problems = {}, []
    for lead in names:
        try:
            leads[lead] = read(lead)
        except RecordError as e:
            problems.append(e)
    if not leads:
        raise problems[0]
    window = lead_choice.shape_window(before_r_samples(before_r_s, beat_samples=beat_samples),
                                      TARGET_FS)
    best, scores = lead_choice.most_alike(
        {lead: lead_choice.median_beat(X[:, :beat_samples]) for lead, (X, *_) in leads.items()},
        reference, window)
    X, y, info, rhythm = leads[best]
    others = "".join(f"; {lead} {r:.2f}" for lead, r in scores.items() if lead != best)
    reason = (f"no {PREFERRED_LEAD} lead; {best} looks most like the reference beats "
              f"(correlation {scores[best]:.2f}{others})")
    return X, y, {**info, "lead_reason": reason, "lead_likeness": scores}, rhythm


def _beat_counts(labels: np.ndarray, kept: np.ndarray, other_symbols: np.ndarray,
                 qrs_symbols: np.ndarray) -> dict:
    """Kept beats per class, beats dropped (edge or flat windows) per class, and the symbols
    that gave no row (annotations that are not beats, and beats of no AAMI class)."""
    mapped = labels >= 0
    skipped = Counter(str(s) for s in other_symbols)
    skipped.update(str(s) for s in qrs_symbols[~mapped])
    return {"counts": _class_counts(labels[mapped & kept]),
            "dropped": _class_counts(labels[mapped & ~kept]),
            "skipped": dict(sorted(skipped.items()))}


def _rhythm_info(qrs_samples: np.ndarray, fs: float, lengths: np.ndarray) -> dict:
    """The record's median RR interval and the range of its beats' window lengths."""
    rr = np.diff(qrs_samples) / fs
    return {"median_rr_s": float(np.median(rr)) if len(rr) else None,
            "window_samples": ({"min": int(lengths.min()), "max": int(lengths.max())}
                               if len(lengths) else None)}


# --- folders and splits --------------------------------------------------------------


def find_records(src: str | os.PathLike, annotator: str = "atr") -> list[str]:
    """Names of the records in ``src`` that have a header and reference annotations."""
    return [name for name in record_headers(src)
            if (Path(src) / f"{name}.{annotator}").is_file()]


def record_headers(src: str | os.PathLike) -> list[str]:
    """Names of every header in ``src``: what a conversion reads, so a record without its
    signal or reference annotations is skipped by name, not passed over in silence."""
    src = Path(src)
    if not src.is_dir():
        return []
    return sorted(p.stem for p in src.glob("*.hea"))


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


def _stack_rhythm(names: list[str], beats: dict, rhythms: dict) -> dict[str, np.ndarray]:
    """The sidecar columns of the records ``names``, in the order their beats are stacked."""
    return {"record": np.concatenate([np.full(len(beats[n][1]), n) for n in names]),
            "r_peak": np.concatenate([rhythms[n]["r_peak"] for n in names]),
            "rr": np.concatenate([rhythms[n]["rr"] for n in names])}


# What each split writes (``convert``), as split.json describes it.
SPLIT_DESCRIPTIONS = {
    "intra": ("intra-patient: beats of every record split at random, stratified by class "
              "(like the Kaggle files); the same patients are on both sides"),
    "inter": ("inter-patient: de Chazal et al. 2004 DS1 train / DS2 test, paced records "
              "102 104 107 217 left out (AAMI EC57)"),
    "train": "every beat of every record to the training file (development data)",
    "test": ("every beat of every record to the test file, a whole database held out "
             "(code/eval.py --test)"),
}
SPLITS = tuple(SPLIT_DESCRIPTIONS)


def _sides(split: str, src: Path, available: list[str],
           requested: list[str] | None) -> tuple[dict, list[str], list[str]]:
    """(sides, ignored, missing): the records of each side of ``split``."""
    if split == "inter":
        return _inter_sides(src, available, requested)
    sides = _intra_sides(src, available, requested)
    if split in PART_SIDES:
        sides = {side: sides[side] if side == split else [] for side in PART_SIDES}
    return sides, [], []


def _warn_first_channels(per_record: dict) -> None:
    """One warning naming every record read from its first channel for want of MLII."""
    fallback = {name: info["lead"] for name, info in per_record.items()
                if info["lead_reason"].startswith(f"no {PREFERRED_LEAD} lead")
                and "lead_likeness" not in info}
    if fallback:
        leads = ", ".join(sorted(set(fallback.values())))
        warnings.warn(f"{len(fallback)} record(s) have no {PREFERRED_LEAD} lead and were read "
                      f"from their first channel ({leads}): {' '.join(fallback)}; take another "
                      "lead with --lead NAME", stacklevel=3)


LISTED_RECORDS = 20  # records a "no such record" message lists before "and N more"


def _intra_sides(src: Path, available: list[str], requested: list[str] | None) -> dict:
    names = requested if requested is not None else available
    absent = [r for r in names if r not in available]
    if absent and available:  # a name mistyped, or of another database: say what is there
        shown = " ".join(available[:LISTED_RECORDS]) + (
            f" and {len(available) - LISTED_RECORDS} more"
            if len(available) > LISTED_RECORDS else "")
        raise UserError(f"{src}: no record {', '.join(absent)} (each needs .hea, .dat and "
                        f".atr); the records there are {shown}")
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
        where = (f"among the records asked for ({', '.join(requested)})"
                 if requested is not None else f"in {src}")
        warnings.warn(f"inter-patient split: no DS2 (test) record {where}; wrote the DS1 "
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


def part_file(out: str | os.PathLike, side: str) -> Path:
    """The Kaggle-format CSV a conversion writes into ``out`` for ``side`` (train, test)."""
    return Path(out) / MITBIH_FILES[side]


def earlier_parts(out: str | os.PathLike, summary: dict) -> list[Path]:
    """The part files in ``out`` that the conversion of ``summary`` did not write: left by an
    earlier one, and not what its ``split.json`` describes."""
    return [part_file(out, side) for side in PART_SIDES
            if side not in summary["files"] and part_file(out, side).is_file()]


def _write_parts(out: Path, parts: dict, part_meta: dict) -> dict[str, Path]:
    """Each side's Kaggle-format CSV and its beat sidecar; returns the CSV paths."""
    out.mkdir(parents=True, exist_ok=True)
    files = {side: part_file(out, side) for side in parts}
    for side, path in files.items():
        write_csv(path, *parts[side])
        m = part_meta[side]
        sidecar.write(sidecar.sidecar_path(path), m["record"], m["r_peak"], m["rr"])
    return files


def _bad_list(bad: dict[str, str]) -> str:
    return "; ".join(f"{name}: {reason}" for name, reason in bad.items())


def _without_bad_records(src: Path, split: str, sides: dict, bad: dict[str, str]) -> dict:
    """``sides`` less the records in ``bad``; a UserError naming them all when no record
    (or, for the inter-patient split, no training record) is left."""
    left = {side: [n for n in names if n not in bad] for side, names in sides.items()}
    if not left["train"] and not left["test"]:
        raise UserError(f"{src}: no record could be converted ({len(bad)} skipped: "
                        f"{_bad_list(bad)})")
    if split == "inter" and not left["train"]:
        raise UserError(f"inter-patient split: every DS1 (train) record in {src} was skipped "
                        f"({_bad_list({n: bad[n] for n in sides['train']})})")
    return left


def _read_records(src: Path, names: list[str], before_r_s: float, beat_samples: int,
                  lead: str | None = None, qrs_up: bool = False,
                  reference: np.ndarray | None = None, two_leads: bool = False
                  ) -> tuple[dict, dict, dict, dict[str, str]]:
    """(beats, per_record info, rhythms, bad) of the records ``names`` in ``src``; a record
    that cannot be converted is left out and its reason kept in ``bad``. ``reference``:
    a record without MLII is read in its lead most like it (:func:`record_in_likest_lead`).
    A ``lead`` some records lack is refused before any is read (:func:`check_lead_everywhere`)."""
    check_lead_everywhere(src, names, lead)
    beats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    per_record: dict[str, dict] = {}
    rhythms: dict[str, dict] = {}
    bad: dict[str, str] = {}
    with Progress("converting", len(names)) as progress:
        for name in names:
            progress.step(f"record {name}")
            try:
                if reference is not None and not lead:
                    X, y, info, rhythm = record_in_likest_lead(src / name, reference, before_r_s,
                                                               beat_samples, qrs_up, two_leads)
                else:
                    X, y, info, rhythm = record_beats_and_rhythm(
                        src / name, before_r_s=before_r_s, beat_samples=beat_samples,
                        lead=lead, qrs_up=qrs_up, two_leads=two_leads)
            except RecordError as e:
                bad[name] = e.reason
                continue
            beats[name], per_record[name], rhythms[name] = (X, y), info, rhythm
    return beats, per_record, rhythms, bad


def _check_arguments(src: Path, split: str, test_fraction: float, before_r_s: float,
                     beat_samples: int) -> None:
    """Refuse a bad split, test fraction, window or source folder before reading a record."""
    if split not in SPLITS:
        raise UserError(f"split {split!r}: expected one of {', '.join(SPLITS)}")
    if not 0.0 < test_fraction < 1.0:
        raise UserError(f"test fraction {test_fraction}: expected a number between 0 and 1")
    check_beat_samples(beat_samples)
    before_r_samples(before_r_s, beat_samples=beat_samples)
    if not src.is_dir():
        raise UserError(f"{src}: no such folder. {_manual_hint(src)}")


def _lead_reference(lead: str | None, lead_like: str | os.PathLike | None,
                    beat_samples: int, before_r_s: float, two_leads: bool = False
                    ) -> np.ndarray | None:
    """The reference beat of ``--lead-like`` (None without it); UserError beside ``--lead``
    or when the reference was converted with another row layout (``ROW_LAYOUT_KEYS``)."""
    if not lead_like:
        return None
    leads = leads_per_row(two_leads)
    if lead:
        raise UserError(f"--lead {lead} and --lead-like {lead_like}: give one (a lead every "
                        "record has, or the data whose beats the lead should look like)")
    csv = lead_choice.reference_csv(lead_like)
    method = conversion_method(csv.parent)
    differences = layout_differences(method, row_layout(beat_samples, before_r_s, leads)) \
        if method else []
    if differences:
        raise UserError(f"--lead-like {lead_like}: converted with other rows than this "
                        f"conversion ({'; '.join(differences)}, reference / this); convert "
                        "both with the same --before-r, --beat-samples and --two-leads")
    return lead_choice.reference_beat(csv, beat_samples, leads)


def convert(src_dir: str | os.PathLike, out_dir: str | os.PathLike, split: str = "intra",
            test_fraction: float = 0.2, seed: int = 0,
            records: list[str] | None = None, before_r_s: float = 0.0,
            beat_samples: int = BEAT_LENGTH, lead: str | None = None,
            qrs_up: bool = False, lead_like: str | os.PathLike | None = None,
            two_leads: bool = False) -> dict:
    """Turn the WFDB records in ``src_dir`` into ``mitbih_train.csv``, ``mitbih_test.csv``
    (each with its beat sidecar) and ``split.json`` in ``out_dir``.

    ``split="intra"``: every record (or ``records``), beats split at random, stratified by
    class, ``test_fraction`` to test. ``split="inter"``: de Chazal DS1 records train, DS2
    records test, paced records left out; ``records`` narrows both lists. Records of DS1 or
    DS2 absent from ``src_dir`` are listed under ``missing``; no DS1 record is an error, no
    DS2 record writes the training file alone (with a warning). ``split="train"`` or
    ``"test"``: every beat of every record (or ``records``) to that one file, e.g. a whole
    database as development data, or as a test set for ``code/eval.py --test``. ``lead``
    takes that channel of every record (see :func:`choose_lead`). ``before_r_s`` > 0 starts
    each beat's window that long before its R peak (see :func:`signal_beats`);
    ``beat_samples`` is the width of every row (187, the Kaggle layout, by default).
    ``qrs_up`` turns each record whose QRS complexes mostly point down upside down (see
    :func:`record_beats_and_rhythm`). ``lead_like``: a beat CSV (or a folder holding
    ``mitbih_train.csv``), the data a model trained on; a record without MLII is read in its
    lead whose beats look most like that data's (:func:`record_in_likest_lead`).
    ``two_leads``: rows of two leads (:func:`record_beats_and_rhythm`; ``beat_leads: 2``).

    A record that cannot be converted (:class:`RecordError`: a damaged file, another
    record's header or annotations) is skipped and listed, with the reason, under
    ``skipped_records``; when no record is left (for ``inter``: no DS1 record) nothing is
    written and a UserError names every skipped record.

    Returns the summary also written to ``split.json``, with ``per_record`` details.
    """
    src, out = Path(src_dir), Path(out_dir)
    _check_arguments(src, split, test_fraction, before_r_s, beat_samples)
    reference = _lead_reference(lead, lead_like, beat_samples, before_r_s, two_leads)
    available = record_headers(src)
    requested = list(dict.fromkeys(str(r).strip() for r in records)) if records else None
    sides, ignored, missing = _sides(split, src, available, requested)
    beats, per_record, rhythms, bad = _read_records(
        src, list(dict.fromkeys(sides["train"] + sides["test"])), before_r_s, beat_samples, lead,
        qrs_up, reference, two_leads)
    _warn_first_channels(per_record)
    sides = _without_bad_records(src, split, sides, bad)
    if split == "intra":
        parts, part_meta, side_records = _intra_parts(sides["train"], beats, rhythms, per_record,
                                                      test_fraction, seed)
    else:
        parts, part_meta, side_records = _inter_parts(sides, beats, rhythms, per_record)
    side = split if split in PART_SIDES else "train"  # the side that must hold beats
    if len(parts[side][1]) == 0:
        raise UserError(f"{split} split of {src}: the {side} side has no beats; "
                        "add records or change --test-fraction")
    files = _write_parts(out, parts, part_meta)
    summary = _summary(split, src, side_records, missing, ignored, bad, parts, files,
                       per_record, before_r_s, beat_samples, lead, qrs_up, lead_like, two_leads)
    if split == "intra":
        summary["test_fraction"] = test_fraction
        summary["seed"] = seed
    write_text_whole(out / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    return summary


# The conversion settings a beat's row depends on (split.json's "method"): rows converted
# otherwise look unlike the rows a model trained on. ``qrs_up`` is not one of them: turning
# test records that point down upright is what makes them look like the training rows.
ROW_LAYOUT_KEYS = ("target_fs", "beat_length", "before_r_s", "leads")
# what a method written before a key existed means by its absence
ROW_LAYOUT_DEFAULTS = {"leads": 1}


def leads_per_row(two_leads: bool) -> int:
    """Leads side by side in each row of a conversion with or without ``--two-leads``."""
    return TWO_LEADS if two_leads else 1


def row_layout(beat_samples: int, before_r_s: float, leads: int = 1) -> dict:
    """A conversion's ROW_LAYOUT_KEYS, as its ``split.json`` method gives them."""
    return {"target_fs": TARGET_FS, "beat_length": beat_samples, "before_r_s": before_r_s,
            "leads": leads}


def conversion_method(folder: str | os.PathLike) -> dict | None:
    """The ``method`` of the conversion that wrote ``folder`` (its ``split.json``), or None
    when the folder holds no readable one (data that was not converted from WFDB here)."""
    try:
        method = json.loads((Path(folder) / SUMMARY_FILE).read_text()).get("method")
    except (OSError, ValueError, AttributeError):
        return None
    return method if isinstance(method, dict) else None


def layout_differences(trained: dict, test: dict) -> list[str]:
    """The row-layout settings (ROW_LAYOUT_KEYS) two conversions' methods disagree on, each
    as ``key training-value / test-value``."""
    return [f"{key} {layout_value(trained, key)} / {layout_value(test, key)}"
            for key in ROW_LAYOUT_KEYS if layout_value(trained, key) != layout_value(test, key)]


def layout_value(method: dict, key: str):
    """A conversion method's ``key`` of ROW_LAYOUT_KEYS, its default where the method was
    written before the key existed."""
    return method.get(key, ROW_LAYOUT_DEFAULTS.get(key))


def _summary(split: str, src: Path, side_records: dict, missing: list[str], ignored: list[str],
             bad: dict[str, str], parts: dict, files: dict[str, Path], per_record: dict,
             before_r_s: float = 0.0, beat_samples: int = BEAT_LENGTH,
             lead: str | None = None, qrs_up: bool = False,
             lead_like: str | os.PathLike | None = None, two_leads: bool = False) -> dict:
    """What ``split.json`` says of a conversion."""
    return {
        "split": split,
        "description": SPLIT_DESCRIPTIONS[split],
        "source": str(src.resolve()),
        "records": side_records,
        "missing": missing,
        "ignored": ignored,
        "skipped_records": bad,
        "counts": {side: _class_counts(y_side) for side, (_, y_side) in parts.items()},
        "classes": list(R.CLASS_NAMES),
        "files": {side: path.name for side, path in files.items()},
        "sidecars": {side: sidecar.sidecar_path(path).name for side, path in files.items()},
        "method": {**row_layout(beat_samples, before_r_s, leads_per_row(two_leads)),
                   "window": (f"{WINDOW_RR} x median RR from the R peak" if not before_r_s
                              else f"{before_r_s} s before the R peak to {WINDOW_RR} x "
                                   "median RR after it"),
                   "median_rr_block_s": RR_WINDOW_S,
                   "lead": lead or (f"{PREFERRED_LEAD}, else the lead most like the beats "
                                    f"of {lead_like}" if lead_like else
                                    f"{PREFERRED_LEAD}, else each record's first channel"),
                   "lead_like": str(lead_like) if lead_like else None,
                   "qrs_up": qrs_up,
                   "reference": "Kachuee et al. 2018, arXiv:1805.00794"},
        "per_record": per_record,
    }
