"""The Kaggle heartbeat CSV format: load, validate, cache, write.

Each row is one beat: 187 samples (125 Hz, scaled to [0, 1], zero-padded) then the class
label, no header, written by the original authors as ``%.18e``. The real
``mitbih_train.csv`` is ~400 MB of text; parsing it takes tens of seconds, so the parsed
arrays are cached in a ``.npz`` beside it (or in the user cache when the folder is
read-only), keyed on the CSV's size, mtime and a hash of its first and last MiB, so an
edited file is parsed again even when an edit keeps its size and mtime (``touch -r``,
``rsync -a``, tar). Compressed CSVs (gzip, bz2, xz, zip: told by their first bytes, not
their name) are read as pandas reads them.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import hashlib
import io
import lzma
import os
import zipfile
from pathlib import Path

import numpy as np

from ..cli import DataFormatError
from ..sweep.files import replaced_whole

BEAT_LENGTH = 187
SAMPLE_RATE_HZ = 125  # every row's sampling rate
# A row's window: from the R peak, this many median RR intervals (Kachuee et al. 2018).
WINDOW_RR = 1.2
N_COLUMNS = BEAT_LENGTH + 1
CACHE_VERSION = 2
HASHED_EDGE_BYTES = 1 << 20  # the cache key hashes this much of the file's start and end
FLOAT32_MAX = float(np.finfo(np.float32).max)
# First bytes of the compressed formats pandas reads, and how to open each as text.
COMPRESSION_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz", b"PK\x03\x04": "zip"}


def _located(path: Path, row: int | None = None, column: int | None = None) -> str:
    where = str(path)
    if row is not None:
        where += f", row {row}"
    if column is not None:
        where += f", column {column}"
    return where


def compression_of(path: Path) -> str | None:
    """The compression of a file, told by its first bytes (a gzip named .csv is gzip)."""
    with open(path, "rb") as f:
        head = f.read(8)
    return next((kind for magic, kind in COMPRESSION_MAGIC.items() if head.startswith(magic)),
                None)


def _open_text(path: Path, compression: str | None):
    if compression == "zip":
        archive = zipfile.ZipFile(path)
        return io.TextIOWrapper(archive.open(archive.namelist()[0]), encoding="utf-8",
                                errors="replace")
    opener = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}.get(compression, open)
    return opener(path, "rt", encoding="utf-8", errors="replace")


def check_readable_file(path: Path) -> None:
    """One clear error for a path that is not a readable file (missing, folder, no access)."""
    if path.is_dir():
        raise DataFormatError(f"{path}: is a directory, not a CSV file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise DataFormatError(f"{path}: permission denied; make the file readable "
                              f"(chmod a+r {path}) or copy it somewhere you can read") from None


def _raw_line(path: Path, row: int) -> str:
    with _open_text(path, compression_of(path)) as f:
        for i, line in enumerate(f, start=1):
            if i == row:
                return line.rstrip("\r\n")
    return ""


def _explain_bad_row(path: Path, row: int) -> str:
    """Re-read one line of the file to say exactly what is wrong with it."""
    fields = next(csv.reader([_raw_line(path, row)]), [])
    if len(fields) != N_COLUMNS:
        return (f"{_located(path, row)}: {len(fields)} values, expected {N_COLUMNS} "
                f"({BEAT_LENGTH} samples then the label)")
    for col, text in enumerate(fields, start=1):
        try:
            value = float(text)
        except ValueError:
            return f"{_located(path, row, col)}: {text.strip()!r} is not a number"
        if not np.isfinite(value):
            return f"{_located(path, row, col)}: {text.strip()!r} is not a finite number"
    return f"{_located(path, row)}: unreadable row"


def _read_frame(path: Path, compression: str | None):
    """The CSV as a float64 frame; DataFormatError naming the row (and column) that keeps
    it from being one."""
    import pandas as pd  # imported here: error paths of every CLI import this module

    try:
        return pd.read_csv(path, header=None, dtype=np.float64, engine="c",
                           skip_blank_lines=False, compression=compression)
    except UnicodeDecodeError:
        raise DataFormatError(f"{path}: not a text CSV (binary content at the start); a Kaggle "
                              "heartbeat CSV is plain text, or gzip/bz2/xz/zip of it") from None
    except (EOFError, OSError, zipfile.BadZipFile, lzma.LZMAError) as e:
        raise DataFormatError(f"{path}: damaged {compression or 'file'} ({e})") from None
    except pd.errors.EmptyDataError:
        raise DataFormatError(f"{path}: the file is empty") from None
    except pd.errors.ParserError as e:
        raise DataFormatError(_parser_problem(path, str(e))) from None
    except ValueError:
        raise DataFormatError(_first_non_number(path, compression)) from None


def _parser_problem(path: Path, msg: str) -> str:
    """pandas says "Expected 188 fields in line 12, saw 190": say what is wrong in that row."""
    row = None
    if " line " in msg:
        try:
            row = int(msg.split(" line ")[1].split(",")[0])
        except ValueError:
            row = None
    return _explain_bad_row(path, row) if row else f"{path}: {msg}"


def _first_non_number(path: Path, compression: str | None) -> str:
    """Where the first cell that is not a number is, and what it holds."""
    import pandas as pd

    frame = pd.read_csv(path, header=None, dtype=str, engine="c", skip_blank_lines=False,
                        compression=compression)
    numeric = frame.apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna() & frame.notna()
    row_idx, col_idx = np.argwhere(bad.to_numpy())[0]
    return (f"{_located(path, int(row_idx) + 1, int(col_idx) + 1)}: "
            f"{frame.iat[row_idx, col_idx].strip()!r} is not a number")


def _check_finite(path: Path, values: np.ndarray) -> None:
    """Every cell is a finite number: name the first missing or non-finite one."""
    finite = np.isfinite(values)
    if finite.all():
        return
    row_idx, col_idx = np.argwhere(~finite)[0]
    raw = next(csv.reader([_raw_line(path, int(row_idx) + 1)]), [])
    if len(raw) != N_COLUMNS:
        raise DataFormatError(_explain_bad_row(path, int(row_idx) + 1))
    raise DataFormatError(
        f"{_located(path, int(row_idx) + 1, int(col_idx) + 1)}: "
        f"{repr(raw[col_idx].strip()) if raw[col_idx].strip() else 'an empty cell'} "
        "is missing or not a finite number")


def _labels(path: Path, values: np.ndarray, n_classes: int | None) -> np.ndarray:
    """The last column as integer labels, checked."""
    labels = values[:, -1]
    not_integral = labels != np.round(labels)
    if not_integral.any():
        row_idx = int(np.argmax(not_integral))
        raise DataFormatError(f"{_located(path, row_idx + 1, N_COLUMNS)}: label "
                              f"{labels[row_idx]!r} is not an integer")
    y = labels.astype(np.int64)
    check_labels(path, y, n_classes)
    return y


def parse_csv(path: str | os.PathLike, n_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Parse and validate one Kaggle-format CSV (no cache). Returns (X float32 n×187, y int64)."""
    path = Path(path)
    check_readable_file(path)
    frame = _read_frame(path, compression_of(path))
    if frame.shape[1] != N_COLUMNS:
        raise DataFormatError(
            f"{path}: {frame.shape[1]} columns, expected {N_COLUMNS} "
            f"({BEAT_LENGTH} samples then the label). Is this a Kaggle heartbeat CSV?")
    values = frame.to_numpy()
    _check_finite(path, values)
    y = _labels(path, values, n_classes)
    with np.errstate(over="ignore"):  # reported below, with its row and column
        X = np.ascontiguousarray(values[:, :BEAT_LENGTH], dtype=np.float32)
    check_float32_finite(path, values[:, :BEAT_LENGTH], X)
    return X, y


def check_float32_finite(path: Path, values: np.ndarray, X: np.ndarray) -> None:
    """Values finite in float64 may overflow the float32 that training uses (e.g. 1e39)."""
    finite = np.isfinite(X)
    if not finite.all():
        row_idx, col_idx = np.argwhere(~finite)[0]
        raise DataFormatError(
            f"{_located(path, int(row_idx) + 1, int(col_idx) + 1)}: {values[row_idx, col_idx]!r} "
            f"overflows float32 (largest {FLOAT32_MAX:.3e}); beats are scaled to [0, 1]")


def check_labels(path: Path, y: np.ndarray, n_classes: int | None) -> None:
    """The one label check of every loader path: parse, cache, test file. Labels are never
    negative; with ``n_classes`` known they are below it."""
    bad = (y < 0) if n_classes is None else (y < 0) | (y >= n_classes)
    if bad.any():
        row = int(np.argmax(bad)) + 1
        allowed = (f"this data set has classes 0..{n_classes - 1}" if n_classes is not None
                   else "labels are class numbers 0, 1, 2, ...")
        raise DataFormatError(f"{_located(path, row, N_COLUMNS)}: label {int(y[row - 1])} is out "
                              f"of range; {allowed}")


def content_digest(path: Path, edge: int = HASHED_EDGE_BYTES) -> str:
    """blake2b of the file's size, first and last ``edge`` bytes: a few ms for 400 MB, and
    it changes with any edit that touches the ends or the length (row edits shift the end)."""
    digest = hashlib.blake2b(digest_size=16)
    size = path.stat().st_size
    digest.update(str(size).encode())
    with open(path, "rb") as f:
        digest.update(f.read(edge))
        if size > edge:
            f.seek(max(edge, size - edge))
            digest.update(f.read(edge))
    return digest.hexdigest()


def _cache_key(path: Path) -> str:
    st = path.stat()
    ident = (f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{content_digest(path)}"
             f"|v{CACHE_VERSION}")
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


def _cache_candidates(path: Path) -> list[Path]:
    name = f"{path.name}.{_cache_key(path)}.npz"
    user_cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ecg-sweeps"
    return [path.parent / ".cache" / name, user_cache / name]


def parse_cache_files(path: str | os.PathLike) -> list[Path]:
    """The parse caches ``load_csv`` has written for the CSV at ``path`` (beside it, or in the
    user cache), for tools that time a cold load or free the space."""
    return [c for c in _cache_candidates(Path(path)) if c.is_file()]


def _atomic_save_npz(target: Path, X: np.ndarray, y: np.ndarray) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with replaced_whole(target) as tmp, open(tmp, "wb") as f:
        np.savez(f, X=X, y=y)


def load_csv(path: str | os.PathLike, n_classes: int | None = None,
             use_cache: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Load a Kaggle-format CSV, parsing it once and reusing a validated cache afterwards.

    Labels are checked against ``n_classes`` on every load (the cache stores raw labels),
    so the same file can serve data sets with different class counts.
    """
    path = Path(path)
    check_readable_file(path)
    if use_cache:
        for candidate in _cache_candidates(path):
            if candidate.is_file():
                try:
                    with np.load(candidate) as cached:
                        X, y = cached["X"], cached["y"]
                except (OSError, ValueError, KeyError):
                    continue  # a damaged cache is ignored and rebuilt
                check_labels(path, y, n_classes)
                return X, y
    X, y = parse_csv(path, n_classes)
    if use_cache:
        for candidate in _cache_candidates(path):
            try:
                _atomic_save_npz(candidate, X, y)
                break
            except OSError:
                continue  # read-only folder: try the user cache
    return X, y


def write_csv(path: str | os.PathLike, X: np.ndarray, y: np.ndarray) -> Path:
    """Write beats in the exact Kaggle format (``%.18e``, no header), atomically."""
    path = Path(path)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != BEAT_LENGTH:
        raise ValueError(f"beats must be n×{BEAT_LENGTH}, got {X.shape}")
    if len(X) != len(y):
        raise ValueError(f"{len(X)} beats but {len(y)} labels")
    table = np.column_stack([X, np.asarray(y, dtype=np.float64)])
    path.parent.mkdir(parents=True, exist_ok=True)
    with replaced_whole(path) as tmp, open(tmp, "w", newline="") as f:
        buf = io.StringIO()
        np.savetxt(buf, table, delimiter=",", fmt="%.18e")
        f.write(buf.getvalue())
    return path
