"""WFDB records -> Kaggle-format beats: the real record 100, synthetic signals, splits."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import copy_records
from ecgsweep.cli import UserError
from ecgsweep.data import records as R
from ecgsweep.data import wfdb_beats as W
from ecgsweep.data.kaggle_csv import load_csv

FS = 360


@pytest.fixture(scope="module")
def record100():
    from conftest import SHARED_DATA

    path = SHARED_DATA / "mitdb" / "100"
    if not path.with_suffix(".hea").is_file():
        pytest.fail(f"real fixture missing: {path}.hea")
    return W.record_beats(path)


def _link_record(src: Path, names: list[str], dest: Path) -> Path:
    """A WFDB folder whose records ``names`` are all record 100: each header is 100's with
    the record's own name; signal and annotations are symlinks (the header names 100.dat)."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "100.dat").symlink_to(src / "100.dat")
    header = (src / "100.hea").read_text()
    for name in names:
        (dest / f"{name}.hea").write_text(name + header[len("100"):])
        (dest / f"{name}.atr").symlink_to(src / "100.atr")
    return dest


# --- record lists --------------------------------------------------------------------


def test_record_lists_are_disjoint_and_complete():
    assert len(R.ALL_RECORDS) == 48
    assert len(R.DS1) == len(R.DS2) == 22
    assert not set(R.DS1) & set(R.DS2)
    assert not set(R.PACED) & (set(R.DS1) | set(R.DS2))
    assert set(R.DS1) | set(R.DS2) | set(R.PACED) == set(R.ALL_RECORDS)
    assert R.CLASS_NAMES == ("N", "S", "V", "F", "Q")
    assert R.SYMBOL_TO_CLASS["A"] == "S" and R.SYMBOL_TO_LABEL["/"] == 4
    assert "+" not in R.SYMBOL_TO_CLASS and "+" not in R.QRS_SYMBOLS


# --- record 100 ----------------------------------------------------------------------


def test_record_100_counts_per_aami_class(record100):
    X, y, info = record100
    # Reference annotations: 2239 N, 33 A (-> S), 1 V, one rhythm '+'. The last two N beats
    # lie within 1.2 x median RR of the end of the signal: dropped, as documented.
    assert info["dropped"] == {"N": 2, "S": 0, "V": 0, "F": 0, "Q": 0}
    assert info["counts"] == {"N": 2239 - 2, "S": 33, "V": 1, "F": 0, "Q": 0}
    kept_plus_dropped = {c: info["counts"][c] + info["dropped"][c] for c in R.CLASS_NAMES}
    assert kept_plus_dropped == {"N": 2239, "S": 33, "V": 1, "F": 0, "Q": 0}
    assert info["skipped"] == {"+": 1}
    assert np.bincount(y, minlength=5).tolist() == [2237, 33, 1, 0, 0]
    assert info["lead"] == "MLII" and info["fs"] == 360


def test_record_100_windows(record100):
    X, y, info = record100
    assert X.shape == (2271, 187) and X.dtype == np.float32 and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert np.allclose(X.max(axis=1), 1.0)  # each beat scaled to [0, 1] on its own
    # ~72 bpm: 1.2 x 0.8 s x 125 Hz ~ 120 samples of content, then zero padding
    assert 0.7 < info["median_rr_s"] < 0.9
    content = np.array([np.flatnonzero(row).max() + 1 for row in X])
    assert (content <= info["window_samples"]["max"]).all()
    assert (X[:, 130:] == 0).all()  # the padding
    assert 100 <= np.median(content) <= 125


# --- synthetic signals with known peaks ----------------------------------------------


def _beat_train(seconds: float, peaks_s) -> tuple[np.ndarray, np.ndarray]:
    """A 360 Hz signal with known R peaks: a narrow R wave (+1) at each peak, an S dip
    (-0.3) 40 ms later and a T wave (+0.3) 300 ms later, on a zero baseline."""
    t = np.arange(int(round(seconds * FS))) / FS
    signal = np.zeros_like(t)
    for p in peaks_s:
        signal += (np.exp(-((t - p) / 0.012) ** 2) - 0.3 * np.exp(-((t - p - 0.04) / 0.015) ** 2)
                   + 0.3 * np.exp(-((t - p - 0.3) / 0.05) ** 2))
    return signal, np.rint(np.asarray(peaks_s) * FS).astype(int)


def test_resample_and_window_known_peaks():
    # RR = 1 s at 360 Hz -> 125 samples at 125 Hz -> windows of 150 samples, then zeros.
    # Peaks on whole seconds: 360 k -> 125 k, so each lands exactly on a 125 Hz sample.
    signal, peaks = _beat_train(10.0, np.arange(1.0, 8.5, 1.0))  # last peak at 8 s
    X, kept, lengths = W.signal_beats(signal, FS, peaks)
    assert kept.all() and (lengths == 150).all()
    assert X.shape == (len(peaks), 187)
    assert np.allclose(X[:, 0], 1.0) and np.allclose(X.max(axis=1), 1.0)  # R peak first
    assert X.min() == 0.0 and X.max() == 1.0
    # the baseline sits above the S dip, so content is > 0 up to 150 samples, then padding
    assert (X[:, :150] > 0.1).sum(axis=1).min() >= 140
    assert (X[:, 150:] == 0).all()
    # 1.2 RR reaches past the next R peak (at 125): identical beats, but the last one
    # has no next beat.
    assert np.allclose(X[:-1], X[0], atol=1e-3)
    assert np.isclose(X[0, 125], 1.0, atol=1e-3) and X[-1, 125] < 0.5
    t_wave = int(0.3 * 125)
    assert X[0, t_wave] > X[0, t_wave - 10] and X[0, t_wave] > X[0, t_wave + 10]


def test_edge_beat_whose_window_runs_past_the_end_is_dropped():
    # The last peak, at 9 s of a 10 s signal, needs 1.2 s: its window does not fit.
    signal, peaks = _beat_train(10.0, np.arange(1.0, 9.5, 1.0))
    X, kept, lengths = W.signal_beats(signal, FS, peaks)
    assert kept[:-1].all() and not kept[-1]
    assert (X[-1] == 0).all()


def test_window_can_start_before_the_r_peak():
    # 0.2 s before R = 25 samples at 125 Hz: the R peak moves from column 0 to column 25,
    # and the content grows by 25 samples (the baseline before the R wave).
    signal, peaks = _beat_train(10.0, np.arange(1.0, 8.5, 1.0))
    plain, _, plain_lengths = W.signal_beats(signal, FS, peaks)
    X, kept, lengths = W.signal_beats(signal, FS, peaks, before_r_s=0.2)
    assert kept.all() and (lengths == plain_lengths + 25).all()
    assert np.allclose(X[:, 25], 1.0) and (X[:, :25] < 1.0).all()
    assert (X[:, 175:] == 0).all() and (X[:, :175] > 0.1).sum(axis=1).min() >= 165
    # a first peak with less than 0.2 s of signal before it is an edge beat: dropped
    early = np.concatenate([[0.1], peaks[1:] / FS])
    _, kept_early, _ = W.signal_beats(signal, FS, np.rint(early * FS).astype(int),
                                      before_r_s=0.2)
    assert not kept_early[0] and kept_early[1:].all()
    with pytest.raises(UserError, match="before the R peak"):
        W.signal_beats(signal, FS, peaks, before_r_s=1.0)


def test_rescale_samples_and_resample_length():
    assert W.rescale_samples(np.array([0, 72, 360, 649991]), 360).tolist() == [0, 25, 125, 225691]
    assert len(W.resample_signal(np.zeros(720), 360)) == 250
    assert len(W.resample_signal(np.zeros(500), 125)) == 500  # same rate: unchanged


def test_median_rr_is_taken_per_10_second_block():
    # 125 Hz peaks: RR 1 s in the first 10 s block, 0.8 s in the next.
    first = np.arange(0, 1250, 125)
    second = 1250 + np.arange(0, 1250, 100)
    lengths = W.window_lengths(np.concatenate([first, second]), 125)
    assert (lengths[:len(first)] == 150).all()
    assert (lengths[len(first):] == 120).all()
    # A block with a single beat uses the record median.
    lone = W.window_lengths(np.array([0, 100, 200, 300, 1300]), 125)
    assert lone.tolist() == [120] * 5


def test_window_longer_than_187_is_cut():
    signal, peaks = _beat_train(30.0, np.arange(1.0, 25.0, 2.0))  # RR 2 s -> 300 samples
    X, kept, lengths = W.signal_beats(signal, FS, peaks)
    assert (lengths == 300).all() and kept.all()
    assert X.shape[1] == 187 and (X[:, -1] != 0).any()  # no padding: content fills all 187


# --- convert and splits --------------------------------------------------------------


def test_convert_intra_loads_back(shared_data, tmp_path):
    summary = W.convert(shared_data / "mitdb", tmp_path, split="intra", test_fraction=0.2, seed=0)
    X_train, y_train = load_csv(tmp_path / "mitbih_train.csv", n_classes=5, use_cache=False)
    X_test, y_test = load_csv(tmp_path / "mitbih_test.csv", n_classes=5, use_cache=False)
    assert X_train.shape[1] == X_test.shape[1] == 187
    assert len(y_train) + len(y_test) == 2271
    assert np.bincount(y_test, minlength=5).tolist() == [447, 7, 0, 0, 0]  # round(0.2 n)
    assert np.bincount(y_train, minlength=5).tolist() == [1790, 26, 1, 0, 0]
    meta = json.loads((tmp_path / "split.json").read_text())
    assert meta["split"] == "intra" and meta["records"] == {"train": ["100"], "test": ["100"]}
    assert meta["counts"]["test"]["S"] == 7 and meta["seed"] == 0
    assert meta["per_record"]["100"]["side"] == "both"
    assert meta["per_record"]["100"]["counts_by_side"]["test"]["N"] == 447
    assert meta == json.loads(json.dumps(summary))
    # the same seed gives the same split
    W.convert(shared_data / "mitdb", tmp_path / "again", split="intra", seed=0)
    assert (tmp_path / "again" / "mitbih_test.csv").read_bytes() == \
        (tmp_path / "mitbih_test.csv").read_bytes()


def test_convert_inter_never_shares_a_record(shared_data, tmp_path):
    train_names, test_names = ["101", "106"], ["100", "103"]
    src = _link_record(shared_data / "mitdb", train_names + test_names + ["102"], tmp_path / "src")
    out = tmp_path / "out"
    summary = W.convert(src, out, split="inter")
    meta = json.loads((out / "split.json").read_text())
    assert meta["split"] == "inter"
    assert meta["records"] == {"train": train_names, "test": test_names}
    assert not set(meta["records"]["train"]) & set(meta["records"]["test"])
    assert set(meta["records"]["train"]) <= set(R.DS1)
    assert set(meta["records"]["test"]) <= set(R.DS2)
    assert "102" not in meta["records"]["train"] + meta["records"]["test"]  # paced: left out
    assert len(meta["missing"]) == 44 - 4 and "101" not in meta["missing"]
    assert meta["counts"]["train"] == {"N": 2 * 2237, "S": 66, "V": 2, "F": 0, "Q": 0}
    _, y_test = load_csv(out / "mitbih_test.csv", n_classes=5, use_cache=False)
    assert len(y_test) == 2 * 2271
    assert summary["per_record"]["101"]["side"] == "train"
    assert summary["per_record"]["103"]["side"] == "test"


def test_convert_inter_records_narrow_the_lists(shared_data, tmp_path):
    src = _link_record(shared_data / "mitdb", ["101", "100", "102"], tmp_path / "src")
    summary = W.convert(src, tmp_path / "out", split="inter", records=["101", "100", "102"])
    assert summary["records"] == {"train": ["101"], "test": ["100"]}
    assert summary["missing"] == [] and summary["ignored"] == ["102"]
    # DS2's record 100 is in the folder but not asked for: the warning says so
    with pytest.warns(UserWarning, match=r"no DS2 \(test\) record among the records asked "
                                         r"for \(101\); wrote the DS1 training file only"):
        summary = W.convert(src, tmp_path / "ds1", split="inter", records=["101"])
    assert summary["records"] == {"train": ["101"], "test": []}


def test_convert_inter_with_only_record_100_explains(shared_data, tmp_path):
    with pytest.raises(UserError) as err:
        W.convert(shared_data / "mitdb", tmp_path, split="inter")
    msg = str(err.value)
    assert "DS1" in msg and "101" in msg and "--download mitdb" in msg
    assert "https://physionet.org/content/mitdb/1.0.0/" in msg
    assert not (tmp_path / "mitbih_train.csv").exists()
    with pytest.raises(UserError, match="records asked for include no DS1"):
        W.convert(shared_data / "mitdb", tmp_path, split="inter", records=["100"])


def test_convert_errors_are_user_errors(shared_data, tmp_path):
    with pytest.raises(UserError, match="no such folder"):
        W.convert(tmp_path / "nope", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no WFDB records"):
        W.convert(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(UserError, match="no record 999") as e:
        W.convert(shared_data / "mitdb", tmp_path / "out", records=["100", "999"])
    # a folder that holds records: they are listed, and no download is advised
    assert "the records there are 100" in str(e.value) and "Download" not in str(e.value)
    with pytest.raises(UserError, match=r"no record 801 .*the records there are 800 802 .* "
                                        r"and 20 more$"):
        W.convert(shared_data / "svdb-even", tmp_path / "out", split="test", records=["801"])
    from ecgsweep.data.records import listed_records

    assert listed_records(" 100, 101 ,", "") == ["100", "101"]
    with pytest.raises(UserError, match="--records '': no record names"):
        listed_records("", "or leave --records out")  # an unset shell variable: not every record
    with pytest.raises(UserError, match="test fraction"):
        W.convert(shared_data / "mitdb", tmp_path / "out", test_fraction=1.5)
    with pytest.raises(UserError, match="before the R peak"):
        W.convert(shared_data / "mitdb", tmp_path / "out", before_r_s=-0.1)


def test_missing_mlii_falls_back_to_first_channel_with_warning(shared_data, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    header = (shared_data / "mitdb" / "100.hea").read_text().replace(" MLII", " II")
    (src / "100.hea").write_text(header)
    (src / "100.dat").symlink_to(shared_data / "mitdb" / "100.dat")
    (src / "100.atr").symlink_to(shared_data / "mitdb" / "100.atr")
    _, y, info = W.record_beats(src / "100")
    assert re.match(r"no MLII lead.*first channel II", info["lead_reason"])
    assert info["lead"] == "II" and len(y) == 2271


@pytest.mark.slow
def test_cli_wfdb_prints_the_table(repo_root, shared_data, tmp_path):
    proc = subprocess.run(
        [sys.executable, "code/data.py", "wfdb", "--src", str(shared_data / "mitdb"),
         "--out", str(tmp_path), "--records", "100"],
        cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "2237" in proc.stdout and "MLII" in proc.stdout and "split.json" in proc.stdout
    assert (tmp_path / "mitbih_train.csv").is_file()

    proc = subprocess.run(
        [sys.executable, "code/data.py", "wfdb", "--src", str(shared_data / "mitdb"),
         "--out", str(tmp_path / "inter"), "--split", "inter"],
        cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "error: inter-patient split" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_wfdb_before_r_moves_the_r_peak_into_the_row(repo_root, shared_data, tmp_path):
    proc = subprocess.run(
        [sys.executable, "code/data.py", "wfdb", "--src", str(shared_data / "mitdb"),
         "--out", str(tmp_path), "--records", "100", "--before-r", "0.2"],
        cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "split.json").read_text())
    assert summary["method"]["before_r_s"] == 0.2
    X, y = load_csv(tmp_path / "mitbih_train.csv", use_cache=False)
    # the R peak sits 0.2 s x 125 Hz = 25 samples into the row (Kaggle layout: column 0)
    assert np.median(np.argmax(X[y == 0], axis=1)) == pytest.approx(25, abs=2)

    proc = subprocess.run(
        [sys.executable, "code/data.py", "wfdb", "--src", str(shared_data / "mitdb"),
         "--out", str(tmp_path / "bad"), "--before-r", "2"],
        cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "before the R peak" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "bad").exists()


# --- records that cannot be converted ------------------------------------------------


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:500_000])


def _swap_atr(src: Path, dest: Path) -> None:
    dest.write_bytes(src.read_bytes())


def _damage_header(path: Path) -> None:
    path.write_bytes(b"\xff\x00 not a header\n")


@pytest.mark.parametrize("damage, says", [
    (lambda d: _truncate(d / "106.dat"), r"106\.dat holds 500000 bytes.*truncated"),
    (lambda d: (d / "106.dat").unlink(), r"106\.dat: no such file"),
    (lambda d: (d / "106.atr").unlink(), r"106\.atr: no such file"),
    (lambda d: _damage_header(d / "106.hea"), r"cannot read .*106\.hea"),
    (lambda d: _swap_atr(d / "100.atr", d / "106.atr"), r"not lie on the signal's QRS"),
    (lambda d: (d / "106.hea").write_text((d / "100.hea").read_text().replace(
        "100.dat", "106.dat")), r"106\.hea is the header of record 100, not 106"),
], ids=["truncated-dat", "missing-dat", "missing-atr", "damaged-hea", "atr-of-100", "hea-of-100"])
def test_a_bad_record_is_named_and_skipped_and_the_others_converted(shared_data, tmp_path,
                                                                   damage, says):
    src = copy_records(tmp_path / "src", shared_data / "mitdb" / "100",
                        shared_data / "mitdb-ds1" / "106")
    damage(src)
    summary = W.convert(src, tmp_path / "out", split="intra")
    assert list(summary["skipped_records"]) == ["106"]
    assert re.search(says, summary["skipped_records"]["106"])
    assert summary["records"] == {"train": ["100"], "test": ["100"]}
    assert list(summary["per_record"]) == ["100"]
    written = json.loads((tmp_path / "out" / "split.json").read_text())
    assert written["skipped_records"] == summary["skipped_records"]
    _, y_train = load_csv(tmp_path / "out" / "mitbih_train.csv", n_classes=5, use_cache=False)
    _, y_test = load_csv(tmp_path / "out" / "mitbih_test.csv", n_classes=5, use_cache=False)
    assert len(y_train) + len(y_test) == 2271  # record 100's beats alone


def test_annotations_past_the_end_of_the_signal_are_refused(shared_data, tmp_path):
    # 100's .atr (650000 samples at 360 Hz) on SVDB record 800 (230400 samples at 128 Hz)
    src = copy_records(tmp_path / "src", shared_data / "svdb-even" / "800")
    _swap_atr(shared_data / "mitdb" / "100.atr", src / "800.atr")
    with pytest.raises(W.RecordError, match=r"record 800: \d+ of 2273 beat annotations lie "
                       r"outside the signal's 230400 samples"):
        W.record_beats(src / "800")


def test_annotation_bounds_allow_the_last_sample_and_no_further():
    signal, peaks = _beat_train(10.0, np.arange(1.0, 9.5, 1.0))
    assert W.annotation_problem(signal, FS, peaks) is None
    assert W.annotation_problem(signal, FS, np.append(peaks, len(signal))) is None
    problem = W.annotation_problem(signal, FS, np.append(peaks, len(signal) + 1))
    assert problem and "1 of 10 beat annotations lie outside" in problem
    assert "outside" in W.annotation_problem(signal, FS, np.insert(peaks, 0, -1))
    assert "too few" in W.annotation_problem(signal, FS, peaks[:1])


def test_annotations_off_the_qrs_are_refused():
    signal, peaks = _beat_train(30.0, np.arange(1.0, 29.0, 0.8))
    assert W.annotation_problem(signal, FS, peaks) is None
    between = peaks + int(0.4 * FS)  # the same rhythm, half a beat late: on no QRS
    assert "do not lie on the signal's QRS" in W.annotation_problem(signal, FS, between)


def _real_records(shared_data: Path) -> list[Path]:
    return [p.with_suffix("") for folder in ("mitdb", "mitdb-ds1", "svdb-even")
            for p in sorted((shared_data / folder).glob("*.hea"))]


def _beat_annotations(base: Path) -> np.ndarray:
    import wfdb

    ann = wfdb.rdann(str(base), "atr")
    return np.sort([s for s, sym in zip(ann.sample, ann.symbol) if sym in R.QRS_SYMBOLS])


def _first_lead(base: Path) -> tuple[np.ndarray, float]:
    import wfdb

    header = wfdb.rdheader(str(base))
    channel, _ = W.choose_lead(header.sig_name)
    record = wfdb.rdrecord(str(base), channels=[channel])
    return record.p_signal[:, 0], float(record.fs)


@pytest.mark.slow
def test_every_real_record_passes_and_another_records_annotations_fail(shared_data):
    bases = _real_records(shared_data)
    assert len(bases) == 1 + 22 + 40
    signals = {b: _first_lead(b) for b in bases}
    beats = {b: _beat_annotations(b) for b in bases}
    problems = {b.name: W.annotation_problem(*signals[b], beats[b]) for b in bases}
    assert {n: p for n, p in problems.items() if p} == {}
    # each record with the annotations of the next record of its database
    for folder in ("mitdb-ds1", "svdb-even"):
        group = [b for b in bases if b.parent.name == folder]
        for b, other in zip(group, group[1:] + group[:1]):
            problem = W.annotation_problem(*signals[b], beats[other])
            assert problem and "QRS" in problem, (b.name, other.name)


def test_svdb_record_at_128_hz_takes_its_first_lead_and_says_why(shared_data):
    X, y, info = W.record_beats(shared_data / "svdb-even" / "800")
    assert info["fs"] == 128 and info["lead"] == "ECG1"
    assert info["lead_reason"] == ("no MLII lead (leads: ECG1, ECG2); using the first channel "
                                   "ECG1")
    assert X.shape[1] == 187 and len(y) > 1500  # a 30-minute record, ~1900 beats
    assert 0.5 < info["median_rr_s"] < 1.2
    assert np.allclose(X.max(axis=1), 1.0)


def test_mlii_is_named_as_the_preferred_lead():
    assert W.choose_lead(["V5", "MLII"]) == (1, "the preferred lead MLII")
    assert W.choose_lead(["ECG1", "ECG2"])[0] == 0


def test_every_record_bad_is_one_error_and_nothing_written(shared_data, tmp_path):
    src = copy_records(tmp_path / "src", shared_data / "mitdb" / "100",
                        shared_data / "mitdb-ds1" / "106")
    _truncate(src / "100.dat")
    _swap_atr(src / "100.atr", src / "106.atr")
    with pytest.raises(UserError, match=r"no record could be converted \(2 skipped: 100: .*"
                       r"truncated; 106: .*QRS"):
        W.convert(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_inter_split_with_every_train_record_bad_names_them(shared_data, tmp_path):
    src = copy_records(tmp_path / "src", shared_data / "mitdb" / "100",
                        shared_data / "mitdb-ds1" / "106")
    _truncate(src / "106.dat")
    with pytest.raises(UserError, match=r"every DS1 \(train\) record .* skipped \(106: "):
        W.convert(src, tmp_path / "out", split="inter")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_cli_wfdb_lists_skipped_records_or_exits_2(repo_root, shared_data, tmp_path):
    src = copy_records(tmp_path / "src", shared_data / "mitdb" / "100",
                        shared_data / "mitdb-ds1" / "106")
    _swap_atr(src / "100.atr", src / "106.atr")
    cmd = [sys.executable, "code/data.py", "wfdb", "--src", str(src)]
    proc = subprocess.run(cmd + ["--out", str(tmp_path / "out")], cwd=repo_root,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("warning: skipped record 106: the beat annotations do not lie")
    assert (tmp_path / "out" / "mitbih_train.csv").is_file()

    _truncate(src / "100.dat")
    proc = subprocess.run(cmd + ["--out", str(tmp_path / "none")], cwd=repo_root,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    assert "100: " in proc.stderr and "106: " in proc.stderr
    assert not (tmp_path / "none").exists()


def test_a_header_without_lead_names_calls_its_channels_by_number(shared_data, tmp_path):
    src = copy_records(tmp_path / "src", shared_data / "mitdb" / "100")
    header = (src / "100.hea").read_text().splitlines()
    unnamed = [" ".join(line.split()[:8]) for line in header[1:3]]  # no description field
    (src / "100.hea").write_text("\n".join([header[0], *unnamed, *header[3:]]) + "\n")
    with pytest.warns(UserWarning, match=r"read from their first channel \(channel 1\)"):
        first = W.convert(src, tmp_path / "first", split="train", two_leads=True)
    info = first["per_record"]["100"]
    assert (info["lead"], info["second_lead"]) == ("channel 1", "channel 2")
    other = W.convert(src, tmp_path / "other", split="train", lead=W.OTHER_LEAD)
    asked = W.convert(src, tmp_path / "asked", split="train", lead="channel 2")
    assert other["per_record"]["100"]["lead"] == asked["per_record"]["100"]["lead"] == "channel 2"
    assert other["counts"] == asked["counts"]
