"""The Kaggle CSV loader: real format, every kind of malformed file, the parse cache."""

import os
import re
from pathlib import Path

import numpy as np
import pytest

from ecgsweep.data import kaggle_csv
from ecgsweep.data.kaggle_csv import DataFormatError, load_csv, parse_csv, write_csv


def test_real_sample_loads(shared_data):
    X, y = load_csv(shared_data / "kaggle_format_sample.csv", n_classes=5, use_cache=False)
    assert X.shape == (10, 187) and X.dtype == np.float32
    assert y.tolist() == [0] * 10 and y.dtype == np.int64
    assert X.min() >= 0.0 and X.max() <= 1.0
    assert np.allclose(X[:, 0], 1.0, atol=0.05) or X[:, 0].max() == 1.0


def _sample_lines(shared_data) -> list[str]:
    return (shared_data / "kaggle_format_sample.csv").read_text().splitlines()


def _corrupt(shared_data, tmp_path, row: int, column: int | None, value: str | None,
             truncate: int | None = None) -> Path:
    lines = _sample_lines(shared_data)
    fields = lines[row - 1].split(",")
    if truncate is not None:
        fields = fields[:truncate]
    if column is not None:
        fields[column - 1] = value
    lines[row - 1] = ",".join(fields)
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("column,value,expected", [
    (41, "abc", r"row 4, column 41: 'abc' is not a number"),
    (41, "nan", r"row 4, column 41: 'nan' is missing or not a finite number"),
    (7, "inf", r"row 4, column 7: 'inf' is missing or not a finite number"),
    (41, "", r"row 4, column 41: an empty cell is missing"),
    (188, "1.5", r"row 4, column 188: label 1.5 is not an integer"),
    (188, "7", r"row 4, column 188: label 7 is out of range; this data set has classes 0..4"),
    (188, "-1", r"row 4, column 188: label -1 is out of range"),
])
def test_malformed_cell_is_named(shared_data, tmp_path, column, value, expected):
    path = _corrupt(shared_data, tmp_path, row=4, column=column, value=value)
    with pytest.raises(DataFormatError, match=re.escape(str(path)) + ", " + expected):
        parse_csv(path, n_classes=5)


def test_a_label_too_large_for_a_class_number_is_named_as_written(shared_data, tmp_path):
    path = _corrupt(shared_data, tmp_path, row=4, column=188, value="1e20")
    with pytest.raises(DataFormatError, match=r"row 4, column 188: label "
                                              r"100000000000000000000 is out of range"):
        parse_csv(path)  # no class count known: still no wrapped integer


def test_short_and_long_rows_are_named(shared_data, tmp_path):
    path = _corrupt(shared_data, tmp_path, row=4, column=None, value=None, truncate=100)
    with pytest.raises(DataFormatError, match=r"row 4: 100 values, but row 1 has 188"):
        parse_csv(path, n_classes=5)
    lines = _sample_lines(shared_data)
    lines[6] += ",0.5,0.5"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"row 7: 190 values, but row 1 has 188"):
        parse_csv(path, n_classes=5)
    lines = _sample_lines(shared_data)
    lines[0] += ",0.5"  # the first row is the odd one: named, not the row after it
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"row 1: 189 values, but rows 2 and 3 have 188"):
        parse_csv(path, n_classes=5)


def test_blank_lines_at_the_end_are_ignored_and_one_among_the_beats_is_named(shared_data,
                                                                            tmp_path):
    lines = _sample_lines(shared_data)
    path = tmp_path / "trailing.csv"
    path.write_text("\n".join(lines) + "\n\n\r\n" + "," * 187 + "\n\n")
    X, y = parse_csv(path, n_classes=5)
    assert X.shape == (10, 187) and len(y) == 10
    path.write_text("\n".join(lines[:4] + [""] + lines[4:]) + "\n\n")
    with pytest.raises(DataFormatError, match=r"trailing.csv, row 5: a blank line among the "
                                              r"beats; remove it"):
        parse_csv(path, n_classes=5)


def test_a_line_of_spaces_is_a_blank_line(shared_data, tmp_path, monkeypatch):
    lines = _sample_lines(shared_data)
    path = tmp_path / "spaces.csv"
    path.write_text("\n".join(lines) + "\n   \n\t\n")
    X, y = parse_csv(path, n_classes=5)
    assert X.shape == (10, 187) and len(y) == 10
    # read fast again without them, not cell by cell as text
    monkeypatch.setattr(kaggle_csv, "_read_text_frame", None)
    assert parse_csv(path, n_classes=5)[0].shape == (10, 187)
    monkeypatch.undo()
    path.write_text("\n".join(lines[:4] + ["   "] + lines[4:]) + "\n")
    with pytest.raises(DataFormatError, match=r"spaces.csv, row 5: a blank line among the "
                                              r"beats; remove it"):
        parse_csv(path, n_classes=5)
    # a cell that is not a number is still named, spaces or not around it
    fields = lines[2].split(",")
    lines[2] = ",".join(fields[:1] + [" x "] + fields[2:])
    path.write_text("\n".join(lines) + "\n   \n")
    with pytest.raises(DataFormatError, match=r"spaces.csv, row 3, column 2: 'x' is not a number"):
        parse_csv(path, n_classes=5)


def test_a_header_without_beats_says_so(tmp_path):
    path = tmp_path / "header_only.csv"
    for tail in ("", "\n\n"):
        path.write_text(",".join(f"s{i}" for i in range(187)) + ",label\n" + tail)
        with pytest.raises(DataFormatError, match=r"header_only.csv: holds a header row and no "
                                                  r"beats"):
            parse_csv(path)


def test_a_file_of_another_separator_is_named_in_a_short_message(shared_data, tmp_path):
    path = tmp_path / "semicolons.csv"
    path.write_text("\n".join(line.replace(",", ";") for line in _sample_lines(shared_data)))
    with pytest.raises(DataFormatError) as e:
        parse_csv(path)
    message = str(e.value)
    assert re.search(r"semicolons.csv, row 1, column 1: '[^']{40}\.\.\.' is not a number; "
                     r"separated by ';'\? the file must be comma-separated$", message), message
    path.write_text("\n" + "\n".join(_sample_lines(shared_data)))  # a blank first line
    with pytest.raises(DataFormatError, match=r"semicolons.csv, row 1: a blank line before"):
        parse_csv(path)
    width = len(_sample_lines(shared_data)[0].split(","))
    header = ",".join([f"s{i}" for i in range(width - 1)] + ["label"])
    path.write_text("\n" + header + "\n" + "\n".join(_sample_lines(shared_data)))
    with pytest.raises(DataFormatError, match=r"semicolons.csv, row 1: a blank line before"):
        parse_csv(path)


def test_one_column_file_and_empty_file(tmp_path):
    narrow = tmp_path / "narrow.csv"
    narrow.write_text("0\n1\n")
    with pytest.raises(DataFormatError, match=r"narrow.csv, row 1: 1 value; a row is one beat"):
        parse_csv(narrow)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataFormatError, match=r"empty.csv: the file is empty"):
        parse_csv(empty)
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        load_csv(tmp_path / "missing.csv")


def test_write_matches_kaggle_format_and_round_trips(shared_data, tmp_path):
    X, y = load_csv(shared_data / "kaggle_format_sample.csv", use_cache=False)
    out = write_csv(tmp_path / "copy.csv", X.astype(np.float64), y)
    first = out.read_text().splitlines()[0].split(",")
    real_first = _sample_lines(shared_data)[0].split(",")
    assert len(first) == 188
    assert all(re.fullmatch(r"-?\d\.\d{18}e[+-]\d{2}", f) for f in first)
    assert first[-1] == real_first[-1] == "0.000000000000000000e+00"
    X2, y2 = load_csv(out, use_cache=False)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)


def test_cache_is_used_and_invalidated(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "usercache"))
    rng = np.random.default_rng(0)
    path = write_csv(tmp_path / "d" / "train.csv", rng.random((20, 187)), rng.integers(0, 5, 20))
    X1, y1 = load_csv(path, n_classes=5)
    caches = list((tmp_path / "usercache" / "ecg-sweeps").glob("train.csv.*.npz"))
    assert len(caches) == 1
    # The cache, not the CSV, answers the second load: prove it by poisoning the cache.
    np.savez(caches[0], X=np.zeros((1, 187), np.float32), y=np.zeros(1, np.int64),
             header=np.array([], dtype=str), layout=np.array([188, 187]))
    X2, _ = load_csv(path, n_classes=5)
    assert X2.shape == (1, 187)
    # Editing the CSV changes size/mtime, so it is parsed again.
    write_csv(path, rng.random((5, 187)), rng.integers(0, 5, 5))
    os.utime(path, ns=(1, 10**18))
    X3, _ = load_csv(path, n_classes=5)
    assert X3.shape == (5, 187)
    # Labels are checked against the class count even when served from cache.
    with pytest.raises(DataFormatError, match="out of range"):
        load_csv(path, n_classes=1)


def test_the_parse_cache_goes_to_the_user_cache_never_beside_the_data(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    folder = tmp_path / "ro"
    path = write_csv(folder / "train.csv", rng.random((8, 187)), rng.integers(0, 2, 8))
    other = write_csv(tmp_path / "elsewhere" / "train.csv", rng.random((8, 187)),
                      rng.integers(0, 2, 8))
    folder.chmod(0o555)  # as a shared data folder is; root writes there all the same
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "usercache"))
    try:
        load_csv(path, n_classes=2)
        load_csv(other, n_classes=2)
    finally:
        folder.chmod(0o755)
    assert [p.name for p in folder.iterdir()] == ["train.csv"]
    # two files of one name: a cache each, told apart by the key
    assert len(list((tmp_path / "usercache" / "ecg-sweeps").glob("train.csv.*.npz"))) == 2
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    load_csv(path, n_classes=2)
    assert list((tmp_path / "home" / ".cache" / "ecg-sweeps").glob("train.csv.*.npz"))


# ---- hostile files ------------------------------------------------------------------------


def test_a_value_that_overflows_float32_is_named(shared_data, tmp_path):
    path = _corrupt(shared_data, tmp_path, row=3, column=20, value="1e39")
    with pytest.raises(DataFormatError, match=re.escape(f"{path}, row 3, column 20: 1e+39 "
                                                        "overflows float32")):
        parse_csv(path, n_classes=5)


def test_negative_label_is_refused_even_when_classes_are_unknown(shared_data, tmp_path):
    path = _corrupt(shared_data, tmp_path, row=2, column=188, value="-1")
    with pytest.raises(DataFormatError, match="row 2, column 188: label -1 is out of range"):
        load_csv(path, n_classes=None, use_cache=False)


def test_gzip_is_read_whatever_its_name(shared_data, tmp_path):
    import gzip

    text = (shared_data / "kaggle_format_sample.csv").read_bytes()
    for name in ("train.csv.gz", "train.csv"):  # a gzip named .csv too
        path = tmp_path / name
        path.write_bytes(gzip.compress(text))
        X, y = load_csv(path, n_classes=5, use_cache=False)
        assert X.shape == (10, 187)


def test_binary_file_named_csv_is_a_clear_error(tmp_path):
    path = tmp_path / "model.csv"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(DataFormatError, match="not a text CSV"):
        load_csv(path, use_cache=False)


def test_a_folder_given_as_csv_says_so(tmp_path):
    (tmp_path / "train.csv").mkdir()
    with pytest.raises(DataFormatError, match="is a directory, not a CSV file"):
        load_csv(tmp_path / "train.csv")


def test_unreadable_file_is_one_clear_error(shared_data, tmp_path, monkeypatch):
    path = tmp_path / "locked.csv"
    path.write_bytes((shared_data / "kaggle_format_sample.csv").read_bytes())
    real_open = open

    def refuse(file, *args, **kwargs):  # root ignores chmod: refuse where the file is opened
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", refuse)
    with pytest.raises(DataFormatError, match="permission denied"):
        load_csv(path, use_cache=False)


def test_cache_sees_an_edit_that_keeps_size_and_mtime(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "usercache"))
    rng = np.random.default_rng(2)
    path = write_csv(tmp_path / "train.csv", rng.random((6, 187)), np.zeros(6, int))
    load_csv(path, n_classes=5)
    stat = path.stat()
    text = path.read_text().replace("0.000000000000000000e+00\n", "1.000000000000000000e+00\n", 1)
    assert len(text) == stat.st_size
    path.write_text(text)  # one label 0 -> 1, same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as `touch -r` / rsync -a do
    _, y = load_csv(path, n_classes=5)
    assert y.sum() == 1


def test_data_check_reads_the_file_not_the_cache(tmp_path, monkeypatch):
    import subprocess
    import sys

    from conftest import REPO_ROOT

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "usercache"))
    rng = np.random.default_rng(3)
    path = write_csv(tmp_path / "train.csv", rng.random((9, 187)), np.zeros(9, int))
    load_csv(path, n_classes=5)
    (cache,) = (tmp_path / "usercache" / "ecg-sweeps").glob("train.csv.*.npz")
    np.savez(cache, X=np.zeros((1, 187), np.float32), y=np.zeros(1, np.int64))
    proc = subprocess.run([sys.executable, "code/data.py", "check", str(path)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "9 beats" in proc.stdout


def test_parse_cache_files_lists_the_caches_load_csv_wrote(tmp_path, monkeypatch):
    from ecgsweep.data.kaggle_csv import parse_cache_files

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "usercache"))
    rng = np.random.default_rng(0)
    path = write_csv(tmp_path / "train.csv", rng.random((5, 187), dtype=np.float32),
                     np.zeros(5, np.int64))
    assert parse_cache_files(path) == []
    load_csv(path)
    assert parse_cache_files(path) == list(
        (tmp_path / "usercache" / "ecg-sweeps").glob("train.csv.*.npz"))
