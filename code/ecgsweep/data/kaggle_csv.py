"""The Kaggle heartbeat CSV format, and beats of any width: load, validate, cache, write.

Each row is one beat: 187 samples (125 Hz, scaled to [0, 1], zero-padded) then the class
label, no header, written by the original authors as ``%.18e``. Other files are read alike:
the beat width is the first row's (every row must have it), a first row of names over a
row of numbers is a header (skipped; a column it names ``label`` holds the labels, else the
last column does). The real
``mitbih_train.csv`` is ~400 MB of text; parsing it takes tens of seconds, so the parsed
arrays are cached in a ``.npz`` in the user cache (``$XDG_CACHE_HOME/ecg-sweeps``, else
``~/.cache/ecg-sweeps``; the data folder is input, never written), keyed on the CSV's
resolved path, size, mtime and a hash of its first and last MiB, so two files never share a
cache and an edited file is parsed again even when an edit keeps its size and mtime
(``touch -r``, ``rsync -a``, tar). Compressed CSVs (gzip, bz2, xz, zip: told by their first
bytes, not their name) are read as pandas reads them.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import hashlib
import io
import itertools
import lzma
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..cli import DataFormatError
from ..sweep.files import replaced_whole

BEAT_LENGTH = 187  # the Kaggle layout's samples per row; other files have their own
SAMPLE_RATE_HZ = 125  # every row's sampling rate
# A row's window: from the R peak, this many median RR intervals (Kachuee et al. 2018).
WINDOW_RR = 1.2
LABEL_HEADER = "label"  # a header column of this name (any case) holds the labels
CACHE_VERSION = 3
HASHED_EDGE_BYTES = 1 << 20  # the cache key hashes this much of the file's start and end
FLOAT32_MAX = float(np.finfo(np.float32).max)
# First bytes of the compressed formats pandas reads, and how to open each as text.
COMPRESSION_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz", b"PK\x03\x04": "zip"}
# A CSV's name: .csv, or .csv and one of these (any case). The loader reads a file whatever
# its name; names count only where no file is there to read, and for the files named after it.
CSV_SUFFIX = ".csv"
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zip")
SHOWN_CELL_CHARS = 40  # a message cuts a cell to this: a line of another separator is one cell
OTHER_SEPARATORS = (";", "\t", "|")


@dataclass(frozen=True)
class Layout:
    """Where the beats are in a CSV: its header row's names (none: no header), the label
    column (0-based) and the number of columns of every row."""

    columns: int
    label_column: int
    header: tuple[str, ...] = ()

    @property
    def skip_rows(self) -> int:
        return 1 if self.header else 0

    def file_row(self, index: int) -> int:
        """The file's row number (1-based, the header counted) of beat ``index``."""
        return index + 1 + self.skip_rows

    @property
    def label_name(self) -> str:
        """The label column as a message names it: its number, and its name in a header."""
        number = self.label_column + 1
        return f"{number} ({self.header[self.label_column]!r})" if self.header else str(number)


def _located(path: Path, row: int | None = None, column: int | None = None) -> str:
    where = str(path)
    if row is not None:
        where += f", row {row}"
    if column is not None:
        where += f", column {column}"
    return where


def csv_name_stem(path: str | os.PathLike) -> str | None:
    """The name of ``path`` less ``.csv`` and a compression suffix, any case (``beats.csv.gz``
    and ``beats.CSV`` give ``beats``); None when it is not named as a CSV."""
    name = Path(path).name
    for ending in (CSV_SUFFIX, *(CSV_SUFFIX + suffix for suffix in COMPRESSED_SUFFIXES)):
        if name.lower().endswith(ending) and len(name) > len(ending):
            return name[: -len(ending)]
    return None


def csv_stem(path: str | os.PathLike) -> str:
    """The name the files beside a CSV are named after (its class names, its beat sidecar):
    ``csv_name_stem``, or the whole name of a file not named as a CSV."""
    return csv_name_stem(path) or Path(path).name


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


def _cell_problem(where: str, text: str, problem: str) -> str:
    """``where: 'text' problem``, the text cut to ``SHOWN_CELL_CHARS``; a cell holding another
    separator is a line of a file that is not comma-separated, and the message says so."""
    text = text.strip()
    shown = repr(text if len(text) <= SHOWN_CELL_CHARS else text[:SHOWN_CELL_CHARS] + "...")
    separator = next((sep for sep in OTHER_SEPARATORS if sep in text), None)
    hint = (f"; separated by {separator!r}? the file must be comma-separated"
            if separator else "")
    return f"{where}: {shown} {problem}{hint}"


def _raw_line(path: Path, row: int) -> str:
    with _open_text(path, compression_of(path)) as f:
        for i, line in enumerate(f, start=1):
            if i == row:
                return line.rstrip("\r\n")
    return ""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_numeric(fields: list[str]) -> bool:
    return bool(fields) and all(_is_number(field) for field in fields)


def _looks_like_header(fields: list[str]) -> bool:
    """Names (no cell a measured value, a number with a fraction or exponent, as a row
    with one damaged cell has), or the column numbers 0, 1, ... that pandas writes."""
    if len(fields) > 1 and [field.strip() for field in fields] == [str(i) for i in
                                                                   range(len(fields))]:
        return True
    return not _is_numeric(fields) and not any(
        _is_number(field) and not field.strip().lstrip("+-").isdigit() for field in fields)


def _first_rows(path: Path, compression: str | None, n: int = 2
                ) -> tuple[list[list[str]], bool]:
    """The first ``n`` rows of the file that are not blank, split at commas (fewer when it
    has fewer, or is not text: the parse names that), and whether a blank line came before
    them."""
    rows: list[list[str]] = []
    blank_before = False
    try:
        with _open_text(path, compression) as f:
            for line in f:
                if not line.strip():
                    blank_before = blank_before or not rows
                    continue
                rows.append(next(csv.reader([line.rstrip("\r\n")]), []))
                if len(rows) == n:
                    break
    except (OSError, EOFError, csv.Error, zipfile.BadZipFile, lzma.LZMAError, IndexError):
        pass
    return rows, blank_before and bool(rows)


def _check_header_names(path: Path, names: tuple[str, ...]) -> None:
    """A header whose first column has no name is pandas' row index (``to_csv`` without
    ``index=False``), which would be read as a sample; two label columns leave the labels in
    doubt. Either is a DataFormatError naming the columns."""
    if len(names) > 1 and names[0] == "":
        raise DataFormatError(f"{_located(path, 1, 1)}: the header gives column 1 no name, as "
                              "pandas does for its row index (to_csv without index=False); "
                              "the row numbers would be read as a sample: drop that column, "
                              "or save the file with index=False")
    labels = [i + 1 for i, name in enumerate(names) if name.lower() == LABEL_HEADER]
    if len(labels) > 1:
        raise DataFormatError(f"{_located(path, 1)}: the header names {len(labels)} columns "
                              f"{LABEL_HEADER!r} (columns {', '.join(map(str, labels))}); "
                              "keep one label column")


def detect_layout(path: Path, compression: str | None = None) -> Layout:
    """The CSV's layout from its first two rows: a header when the first looks like one
    (``_looks_like_header``) and the second is all numbers; the label column is the one
    the header names ``label``, else the last; the width is the first beat's."""
    rows, blank_before = _first_rows(path, compression, 3)
    if blank_before:  # pandas would read the line after it as the first
        raise DataFormatError(f"{_located(path, 1)}: a blank line before the beats; remove it")
    rows, third = rows[:2], rows[2:]
    if len(rows) == 1 and len(rows[0]) > 1 and _looks_like_header(rows[0]) \
            and not _is_numeric(rows[0]):
        raise DataFormatError(f"{path}: holds a header row and no beats; a beat CSV has a row "
                              "per beat (its samples, then its label)")
    if len(rows) == 2 and _looks_like_header(rows[0]) and _is_numeric(rows[1]):
        names = tuple(name.strip() for name in rows[0])
        _check_header_names(path, names)
        lowered = [name.lower() for name in names]
        label = lowered.index(LABEL_HEADER) if LABEL_HEADER in lowered else len(names) - 1
        layout = Layout(len(rows[1]), label, names)
        if len(names) != layout.columns:
            raise DataFormatError(f"{_located(path, 1)}: the header names {len(names)} columns "
                                  f"but row 2 has {layout.columns} values")
    else:
        width = len(rows[0]) if rows else 0
        _check_first_row_width(path, rows + third)
        layout = Layout(width, width - 1)
    return layout


def _check_first_row_width(path: Path, rows: list[list[str]]) -> None:
    """The first row sets the width; when the two rows of numbers after it agree on another,
    the first row is the odd one, and the message names it so."""
    widths = [len(row) for row in rows]
    if len(rows) == 3 and widths[0] != widths[1] == widths[2] \
            and all(_is_numeric(row) for row in rows):
        raise DataFormatError(f"{_located(path, 1)}: {widths[0]} values, but rows 2 and 3 have "
                              f"{widths[1]}; every row is one beat (its samples, then its "
                              "label), all of one width")


def _explain_bad_row(path: Path, row: int, layout: Layout) -> str:
    """Re-read one line of the file to say exactly what is wrong with it."""
    fields = next(csv.reader([_raw_line(path, row)]), [])
    if not "".join(fields).strip():  # nothing, or spaces alone
        return (f"{_located(path, row)}: a blank line among the beats; remove it (blank lines "
                "at the end of the file are ignored)")
    if len(fields) != layout.columns:
        return (f"{_located(path, row)}: {len(fields)} values, but row {layout.file_row(0)} "
                f"has {layout.columns}; every row is one beat (its samples, then its label), "
                "all of one width")
    for col, text in enumerate(fields, start=1):
        try:
            value = float(text)
        except ValueError:
            return _cell_problem(_located(path, row, col), text, "is not a number")
        if not np.isfinite(value):
            return _cell_problem(_located(path, row, col), text, "is not a finite number")
    return f"{_located(path, row)}: unreadable row"


def _read_frame(path: Path, compression: str | None, layout: Layout):
    """The CSV's beats as a float64 frame (the header skipped); DataFormatError naming the
    row (and column) that keeps it from being one."""
    import pandas as pd  # imported here: error paths of every CLI import this module

    try:
        return _fast_read(path, compression, layout)
    except UnicodeDecodeError:
        raise DataFormatError(f"{path}: not a text CSV (binary content at the start); a beat "
                              "CSV is plain text, or gzip/bz2/xz/zip of it") from None
    except (EOFError, OSError, zipfile.BadZipFile, lzma.LZMAError) as e:
        raise DataFormatError(f"{path}: damaged {compression or 'file'} ({e})") from None
    except pd.errors.EmptyDataError:
        raise DataFormatError(_nothing_parsed(path, layout)) from None
    except pd.errors.ParserError as e:
        raise DataFormatError(_parser_problem(path, str(e), layout)) from None
    except ValueError:  # a cell that is not a number, or a line of spaces
        return _read_without_blank_tail(path, compression, layout)


def _fast_read(path: Path, compression: str | None, layout: Layout, rows: int | None = None):
    """The file's beats (its first ``rows`` lines after the header) as a float64 frame, by
    pandas' C parser; ValueError for a cell that is not a number."""
    import pandas as pd

    return pd.read_csv(path, header=None, dtype=np.float64, engine="c",
                       skiprows=layout.skip_rows, skip_blank_lines=False,
                       compression=compression, nrows=rows)


def _read_without_blank_tail(path: Path, compression: str | None, layout: Layout):
    """A file the fast read refused: read fast again without the lines of spaces that end it
    (as editors leave them; a file of millions of beats would take many times the memory as
    text), else by the slow read, which names the cell that is not a number."""
    rows = _rows_before_blank_tail(path, compression, layout)
    if rows is not None:
        try:
            return _fast_read(path, compression, layout, rows)
        except ValueError:
            pass
    return _read_text_frame(path, compression, layout)


def _rows_before_blank_tail(path: Path, compression: str | None, layout: Layout) -> int | None:
    """How many lines after the header come before the blank ones (spaces alone, or nothing)
    that end the file; None when it ends in none."""
    filled, lines = 0, 0
    with _open_text(path, compression) as f:
        for lines, line in enumerate(itertools.islice(f, layout.skip_rows, None), start=1):
            if line.strip():
                filled = lines
    return filled if filled < lines else None


def _nothing_parsed(path: Path, layout: Layout) -> str:
    """pandas found no columns: the file is empty, or the first line it reads is blank."""
    if layout.columns:  # detect_layout found a row, below a blank line
        return _explain_bad_row(path, layout.file_row(0), layout)
    return f"{path}: the file is empty" + (" but for its header" if layout.header else "")


def _parser_problem(path: Path, msg: str, layout: Layout) -> str:
    """pandas says "Expected 188 fields in line 12, saw 190" (a file line, the header
    counted): say what is wrong in that row."""
    row = None
    if " line " in msg:
        try:
            row = int(msg.split(" line ")[1].split(",")[0])
        except ValueError:
            row = None
    return _explain_bad_row(path, row, layout) if row else f"{path}: {msg}"


def _read_text_frame(path: Path, compression: str | None, layout: Layout):
    """The slow read, for a file the fast one refused: its cells as text, a cell of spaces
    alone taken as empty (so a line of spaces is a blank line, ignored at the end of the
    file as blank lines are), then as numbers; DataFormatError naming the first cell that
    is not a number."""
    import pandas as pd

    text = pd.read_csv(path, header=None, dtype=str, engine="c", skip_blank_lines=False,
                       skiprows=layout.skip_rows, compression=compression)
    text = text.apply(lambda column: column.str.strip()).replace("", np.nan)
    numeric = text.apply(pd.to_numeric, errors="coerce")
    bad = np.argwhere((numeric.isna() & text.notna()).to_numpy())
    if len(bad):
        row_idx, col_idx = bad[0]
        raise DataFormatError(_cell_problem(
            _located(path, layout.file_row(int(row_idx)), int(col_idx) + 1),
            text.iat[row_idx, col_idx], "is not a number"))
    return numeric.astype(np.float64)


def _check_finite(path: Path, values: np.ndarray, layout: Layout) -> None:
    """Every cell is a finite number: name the first missing or non-finite one."""
    finite = np.isfinite(values)
    if finite.all():
        return
    row_idx, col_idx = np.argwhere(~finite)[0]
    row = layout.file_row(int(row_idx))
    raw = next(csv.reader([_raw_line(path, row)]), [])
    if len(raw) != layout.columns:
        raise DataFormatError(_explain_bad_row(path, row, layout))
    where = _located(path, row, int(col_idx) + 1)
    if not raw[col_idx].strip():
        raise DataFormatError(f"{where}: an empty cell is missing or not a finite number")
    raise DataFormatError(_cell_problem(where, raw[col_idx], "is missing or not a finite number"))


def _labels(path: Path, values: np.ndarray, n_classes: int | None, layout: Layout) -> np.ndarray:
    """The label column as integer labels, checked."""
    labels = values[:, layout.label_column]
    not_integral = labels != np.round(labels)
    if not_integral.any():
        row_idx = int(np.argmax(not_integral))
        raise DataFormatError(f"{_located(path, layout.file_row(row_idx), layout.label_column + 1)}"
                              f": label {labels[row_idx]!r} is not an integer")
    check_labels(path, labels, n_classes, layout)  # before the cast, which would wrap
    return labels.astype(np.int64)


def parse_csv(path: str | os.PathLike,
              n_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Parse and validate one beat CSV (no cache). Returns (X float32 n×width, y int64)."""
    X, y, _ = parse_csv_layout(Path(path), n_classes)
    return X, y


def parse_csv_layout(path: Path, n_classes: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray, Layout]:
    """``parse_csv``, and the file's ``Layout``."""
    check_readable_file(path)
    compression = compression_of(path)
    layout = detect_layout(path, compression)
    frame = _read_frame(path, compression, layout)
    if layout.columns < 2:
        raise DataFormatError(f"{_located(path, layout.file_row(0))}: {layout.columns} value; "
                              "a row is one beat: its samples, then its label")
    if frame.shape[1] != layout.columns:  # a first row shorter than a later, NaN-filled one
        raise DataFormatError(_explain_bad_row(path, layout.file_row(0), layout))
    values = _without_empty_rows_at_the_end(frame.to_numpy())
    if not len(values):
        raise DataFormatError(f"{path}: holds no beats, only empty rows")
    _check_finite(path, values, layout)
    y = _labels(path, values, n_classes, layout)
    samples = (values[:, :-1] if layout.label_column == layout.columns - 1  # a view: no copy
               else np.delete(values, layout.label_column, axis=1))
    with np.errstate(over="ignore"):  # reported below, with its row and column
        X = np.ascontiguousarray(samples, dtype=np.float32)
    check_float32_finite(path, samples, X, layout)
    return X, y, layout


def _without_empty_rows_at_the_end(values: np.ndarray) -> np.ndarray:
    """The rows before the empty ones (blank lines, or commas alone) that end the file, as
    editors and ``echo >>`` leave them. Only the end is cut, so row numbers stay the file's."""
    filled = ~np.isnan(values).all(axis=1)
    return values[: len(values) - int(np.argmax(filled[::-1]))] if filled.any() else values[:0]


def check_float32_finite(path: Path, values: np.ndarray, X: np.ndarray, layout: Layout) -> None:
    """Values finite in float64 may overflow the float32 that training uses (e.g. 1e39)."""
    finite = np.isfinite(X)
    if not finite.all():
        row_idx, col_idx = np.argwhere(~finite)[0]
        column = int(col_idx) + 1 + int(col_idx >= layout.label_column)  # the file's column
        raise DataFormatError(
            f"{_located(path, layout.file_row(int(row_idx)), column)}: "
            f"{values[row_idx, col_idx]!r} overflows float32 (largest {FLOAT32_MAX:.3e}); "
            "beats are scaled to [0, 1]")


MAX_LABEL = 2**31 - 1  # a class number; larger is another column taken for the labels


def check_labels(path: Path, y: np.ndarray, n_classes: int | None, layout: Layout) -> None:
    """The one label check of every loader path: parse, cache, test file. Labels are never
    negative nor above ``MAX_LABEL``; with ``n_classes`` known they are below it."""
    bad = (y < 0) | (y > MAX_LABEL) if n_classes is None else (y < 0) | (y >= n_classes)
    if bad.any():
        index = int(np.argmax(bad))
        allowed = (f"this data set has classes 0..{n_classes - 1}" if n_classes is not None
                   else "labels are class numbers 0, 1, 2, ...")
        raise DataFormatError(f"{_located(path, layout.file_row(index), layout.label_column + 1)}"
                              f": label {int(y[index])} is out of range; {allowed}")


def announce_header(path: Path, layout: Layout) -> None:
    """One note per file and process that its first row is a header, and where the labels
    are: a header is read by guess, so the user sees the guess."""
    key = str(path.resolve())
    if not layout.header or key in _ANNOUNCED:
        return
    _ANNOUNCED.add(key)
    names = layout.header
    shown = ", ".join(names) if len(names) <= 4 else f"{', '.join(names[:2])}, ..., {names[-1]}"
    print(f"note: {path}: row 1 is a header ({shown}), skipped; labels from column "
          f"{layout.label_name}, {layout.columns - 1} samples per beat", file=sys.stderr,
          flush=True)


_ANNOUNCED: set[str] = set()


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


def user_cache_dir() -> Path:
    """Where parse caches go: ``$XDG_CACHE_HOME/ecg-sweeps``, else ``~/.cache/ecg-sweeps``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ecg-sweeps"


def _cache_file(path: Path) -> Path:
    return user_cache_dir() / f"{path.name}.{_cache_key(path)}.npz"


def parse_cache_files(path: str | os.PathLike) -> list[Path]:
    """The parse cache ``load_csv`` has written for the CSV at ``path`` (none or one), for
    tools that time a cold load or free the space."""
    cache = _cache_file(Path(path))
    return [cache] if cache.is_file() else []


def _atomic_save_npz(target: Path, X: np.ndarray, y: np.ndarray, layout: Layout) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with replaced_whole(target) as tmp, open(tmp, "wb") as f:
        np.savez(f, X=X, y=y, header=np.array(layout.header, dtype=str),
                 layout=np.array([layout.columns, layout.label_column]))


def _read_cache(candidate: Path) -> tuple[np.ndarray, np.ndarray, Layout] | None:
    """A parse cache's beats, labels and layout; None when it is damaged."""
    try:
        with np.load(candidate) as cached:
            X, y = cached["X"], cached["y"]
            columns, label_column = (int(v) for v in cached["layout"])
            header = tuple(str(name) for name in cached["header"])
    except (OSError, ValueError, KeyError):
        return None
    return X, y, Layout(columns, label_column, header)


def load_csv(path: str | os.PathLike, n_classes: int | None = None,
             use_cache: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Load a beat CSV, parsing it once and reusing a validated cache afterwards; a file
    with a header says so once (``announce_header``).

    Labels are checked against ``n_classes`` on every load (the cache stores raw labels),
    so the same file can serve data sets with different class counts.
    """
    path = Path(path)
    check_readable_file(path)
    cached = _load_cached(path) if use_cache else None
    if cached is not None:
        X, y, layout = cached
        check_labels(path, y, n_classes, layout)
    else:
        X, y, layout = parse_csv_layout(path, n_classes)
        if use_cache:
            _save_cache(path, X, y, layout)
    announce_header(path, layout)
    return X, y


def _load_cached(path: Path) -> tuple[np.ndarray, np.ndarray, Layout] | None:
    """The parse cache of ``path``; None when there is none or it is damaged (then rebuilt)."""
    cache = _cache_file(path)
    return _read_cache(cache) if cache.is_file() else None


def _save_cache(path: Path, X: np.ndarray, y: np.ndarray, layout: Layout) -> None:
    try:
        _atomic_save_npz(_cache_file(path), X, y, layout)
    except OSError:
        pass  # no writable cache folder: the next load parses the file again


def write_csv(path: str | os.PathLike, X: np.ndarray, y: np.ndarray) -> Path:
    """Write beats (n×width; the Kaggle layout's width is ``BEAT_LENGTH``) in the exact
    Kaggle format (``%.18e``, labels last, no header), atomically."""
    path = Path(path)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] < 1:
        raise ValueError(f"beats must be n×width, got {X.shape}")
    if len(X) != len(y):
        raise ValueError(f"{len(X)} beats but {len(y)} labels")
    table = np.column_stack([X, np.asarray(y, dtype=np.float64)])
    path.parent.mkdir(parents=True, exist_ok=True)
    with replaced_whole(path) as tmp, open(tmp, "w", newline="") as f:
        buf = io.StringIO()
        np.savetxt(buf, table, delimiter=",", fmt="%.18e")
        f.write(buf.getvalue())
    return path
