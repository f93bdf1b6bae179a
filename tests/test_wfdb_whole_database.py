"""A whole database as one file: `code/data.py wfdb --split test` (a test set for
`code/eval.py --test`) and `--split train` (development data), any lead by name."""

import json
import shutil
import subprocess
import sys
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import copy_records, run_env
from ecgsweep.cli import UserError
from ecgsweep.data import datasets, sidecar
from ecgsweep.data import wfdb_beats as W


@pytest.fixture
def svdb_two(shared_data, tmp_path) -> Path:
    return copy_records(tmp_path / "svdb", shared_data / "svdb-even" / "800",
                         shared_data / "svdb-even" / "802")


def test_split_test_writes_every_beat_to_the_test_file(svdb_two, tmp_path):
    out = tmp_path / "out"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = W.convert(svdb_two, out, split="test")
    assert sorted(p.name for p in out.iterdir()) == [
        "mitbih_test.beats.csv", "mitbih_test.csv", "split.json"]  # no training file
    assert summary["records"] == {"train": [], "test": ["800", "802"]}
    test = datasets.load_test(datasets.resolve_source("mitbih", out), out / "mitbih_test.csv")
    per_record = summary["per_record"]
    assert len(test) == sum(sum(info["counts"].values()) for info in per_record.values())
    assert sorted(set(test.records.tolist())) == ["800", "802"] and test.rr is not None
    assert {info["side"] for info in per_record.values()} == {"test"}
    # which lead and why, per record; one warning names every record without MLII
    assert {info["lead"] for info in per_record.values()} == {"ECG1"}
    assert all(info["fs"] == 128 for info in per_record.values())
    [warning] = [str(w.message) for w in caught if "MLII" in str(w.message)]
    assert "2 record(s) have no MLII lead" in warning and "800 802" in warning
    assert "--lead" in warning
    assert json.loads((out / "split.json").read_text())["split"] == "test"


def test_split_train_writes_every_beat_to_the_training_file(shared_data, tmp_path):
    src = copy_records(tmp_path / "mitdb", shared_data / "mitdb" / "100")
    summary = W.convert(src, tmp_path / "out", split="train")
    assert summary["files"] == {"train": "mitbih_train.csv"}
    assert summary["counts"]["train"] == {"N": 2237, "S": 33, "V": 1, "F": 0, "Q": 0}
    assert not (tmp_path / "out" / "mitbih_test.csv").exists()
    assert sidecar.sidecar_path(tmp_path / "out" / "mitbih_train.csv").is_file()


def test_lead_takes_the_named_channel_and_refuses_one_a_record_lacks(svdb_two, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a lead asked for warns of nothing
        summary = W.convert(svdb_two, tmp_path / "ecg2", split="test", lead="ECG2")
    infos = summary["per_record"].values()
    assert {i["lead"] for i in infos} == {"ECG2"}
    assert {i["lead_reason"] for i in infos} == {"the lead asked for, ECG2"}
    assert summary["method"]["lead"] == "ECG2"
    with pytest.warns(UserWarning, match="no MLII lead"):
        first = W.convert(svdb_two, tmp_path / "ecg1", split="test")
    X1 = np.loadtxt(tmp_path / "ecg1" / "mitbih_test.csv", delimiter=",", max_rows=5)
    X2 = np.loadtxt(tmp_path / "ecg2" / "mitbih_test.csv", delimiter=",", max_rows=5)
    assert not np.allclose(X1, X2)  # another channel's waveform
    assert first["counts"] == summary["counts"]  # the same annotated beats
    with pytest.raises(UserError, match=r"no lead MLII in 2 records of .*: 800 has ECG1, "
                                        r"ECG2; 802 has ECG1, ECG2\. Else pass a --lead"):
        W.convert(svdb_two, tmp_path / "none", split="test", lead="MLII")
    assert not (tmp_path / "none").exists()


def test_a_lead_some_records_lack_is_refused_before_any_is_converted(shared_data, tmp_path):
    src = copy_records(tmp_path / "src", *(shared_data / "mitdb-ds1" / name
                                           for name in ("114", "106", "124")))
    with pytest.raises(UserError) as refused:
        W.convert(src, tmp_path / "v1", split="train", lead="V1")
    message = str(refused.value)
    assert "114 has V5, MLII; 124 has MLII, V4" in message
    assert "To convert the 1 other record in V1: --records 106." in message
    assert not (tmp_path / "v1").exists()
    # the records it names convert
    summary = W.convert(src, tmp_path / "v1", split="train", lead="V1", records=["106"])
    assert summary["records"]["train"] == ["106"]


@pytest.mark.slow
def test_cli_split_test_says_which_lead_once(repo_root, svdb_two, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "code/data.py", "wfdb", "--src", str(svdb_two), "--out", str(out),
         "--split", "test"],
        cwd=repo_root, env=run_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "lead ECG1 (no MLII lead): 2 record(s), 800 802" in proc.stdout
    assert [line for line in proc.stderr.splitlines() if "MLII" in line] == [
        "warning: 2 record(s) have no MLII lead and were read from their first channel "
        "(ECG1): 800 802; take another lead with --lead NAME"]
    assert f"wrote {out / 'mitbih_test.csv'}" in proc.stdout
    assert not (out / "mitbih_train.csv").exists()
    assert "turned upside down" not in proc.stdout  # as recorded unless asked

    proc = subprocess.run(
        [sys.executable, "code/data.py", "wfdb", "--src", str(svdb_two), "--out",
         str(tmp_path / "up"), "--split", "test", "--qrs-up"],
        cwd=repo_root, env=run_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert ("turned upside down (QRS pointing down in the lead read): 1 record(s), 802"
            in proc.stdout)

    proc = subprocess.run(
        [sys.executable, "code/data.py", "wfdb", "--src", str(svdb_two), "--out",
         str(tmp_path / "v1"), "--split", "test", "--lead", "V1"],
        cwd=repo_root, env=run_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(
        f"error: no lead V1 in 2 records of {svdb_two}: 800 has ECG1, ECG2; 802 has")


def test_cli_names_a_file_given_as_out_and_an_earlier_conversions_file_left_there(
        repo_root, svdb_two, tmp_path):
    def wfdb(*args):
        return subprocess.run([sys.executable, "code/data.py", "wfdb", "--src", str(svdb_two),
                               *args], cwd=repo_root, env=run_env(tmp_path),
                              capture_output=True, text=True, timeout=300)

    a_file = tmp_path / "beats.csv"
    a_file.write_text("0.1,0.2,0\n")
    proc = wfdb("--out", str(a_file))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"error: --out {a_file} is a file, not a folder; give a "
                                   "folder (it is made if missing)")
    assert "record" not in proc.stdout  # refused before any record was read

    out = tmp_path / "out"
    assert wfdb("--out", str(out), "--split", "train", "--records", "800").returncode == 0
    proc = wfdb("--out", str(out), "--split", "test", "--records", "802")
    assert proc.returncode == 0, proc.stderr
    assert (f"warning: {out / 'mitbih_train.csv'} is left from an earlier conversion: this "
            "one wrote mitbih_test.csv only") in proc.stderr
    assert (out / "mitbih_train.csv").is_file()  # the user's file is theirs to remove
    assert W.earlier_parts(out, json.loads((out / "split.json").read_text())) == [
        out / "mitbih_train.csv"]


def _upside_down_copy(base: Path, dest: Path) -> Path:
    """Record ``base`` written again upside down (its samples mirrored about each channel's
    baseline, exactly in integers) with its annotations, in ``dest``."""
    import wfdb

    record = wfdb.rdrecord(str(base), physical=False)
    mirrored = 2 * np.asarray(record.baseline)[None, :] - record.d_signal
    dest.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(base.name, fs=record.fs, units=record.units, sig_name=record.sig_name,
                d_signal=mirrored, fmt=["16"] * record.n_sig, adc_gain=record.adc_gain,
                baseline=record.baseline, write_dir=str(dest))
    shutil.copyfile(base.with_suffix(".atr"), dest / f"{base.name}.atr")
    return dest


def test_qrs_up_share_counts_the_beats_whose_largest_deflection_points_up():
    fs, beats = 125.0, np.arange(100, 2400, 100)
    signal = np.zeros(2500)
    signal[beats] = 1.0  # an R peak
    signal[beats + 3] = -0.3  # a smaller S wave after it
    assert W.qrs_up_share(signal, fs, beats) == 1.0
    assert W.qrs_up_share(-signal, fs, beats) == 0.0
    half = -signal
    half[: len(signal) // 2] *= -1
    assert W.qrs_up_share(half, fs, beats) == pytest.approx(12 / 23)
    # a day-long record: read from beats spread over all of it, not from its first hours,
    # in memory bounded by the beats read (their windows) rather than the record's length
    many = np.arange(100, 100 * 30_001, 100)
    day = np.zeros(many[-1] + 100)
    day[many] = 1.0
    day[len(day) // 4:] *= -1
    tracemalloc.start()
    share = W.qrs_up_share(day, fs, many)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert share == pytest.approx(0.25, abs=0.01)
    assert peak < 0.8 * day.nbytes  # less than one copy of the record


def _rows(folder: Path) -> np.ndarray:
    return np.loadtxt(folder / "mitbih_train.csv", delimiter=",", max_rows=300)[:, :-1]


def test_qrs_up_turns_only_a_record_whose_qrs_points_down(shared_data, tmp_path):
    record = shared_data / "mitdb" / "100"
    upright = copy_records(tmp_path / "upright", record)
    upside_down = _upside_down_copy(record, tmp_path / "upside_down")
    as_recorded = W.convert(upright, tmp_path / "a", split="train")
    down_as_recorded = W.convert(upside_down, tmp_path / "b", split="train")
    turned = W.convert(upside_down, tmp_path / "c", split="train", qrs_up=True)
    left = W.convert(upright, tmp_path / "d", split="train", qrs_up=True)

    def info(summary: dict) -> dict:
        return summary["per_record"]["100"]

    assert info(as_recorded)["qrs_up_share"] > 0.9 and not info(as_recorded)["inverted"]
    assert info(down_as_recorded)["qrs_up_share"] < 0.1
    assert not info(down_as_recorded)["inverted"]  # without qrs_up nothing is turned
    assert info(turned)["inverted"] and not info(left)["inverted"]
    assert turned["method"]["qrs_up"] and not as_recorded["method"]["qrs_up"]
    rows = _rows(tmp_path / "a")
    np.testing.assert_allclose(_rows(tmp_path / "c"), rows, atol=1e-6)  # turned back up
    np.testing.assert_array_equal(_rows(tmp_path / "d"), rows)  # an upright record: unchanged
    assert np.abs(_rows(tmp_path / "b") - rows).max() > 0.5  # upside down, rows start low


def _unnamed_leads_copy(base: Path, dest: Path) -> Path:
    """Record ``base`` (MLII, V5) written again with its channels swapped and named as SVDB
    names its leads: ECG1 is V5, ECG2 is MLII."""
    import wfdb

    record = wfdb.rdrecord(str(base), physical=False)
    dest.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(base.name, fs=record.fs, units=record.units[::-1], sig_name=["ECG1", "ECG2"],
                d_signal=record.d_signal[:, ::-1], fmt=["16"] * record.n_sig,
                adc_gain=record.adc_gain[::-1], baseline=record.baseline[::-1],
                write_dir=str(dest))
    shutil.copyfile(base.with_suffix(".atr"), dest / f"{base.name}.atr")
    return dest


def test_lead_like_reads_a_record_without_mlii_in_its_lead_most_like_the_reference(
        repo_root, shared_data, tmp_path):
    record = shared_data / "mitdb" / "100"
    reference = tmp_path / "reference"
    W.convert(copy_records(tmp_path / "named", record), reference, split="train")
    unnamed = _unnamed_leads_copy(record, tmp_path / "unnamed")

    with pytest.warns(UserWarning, match="read from their first channel"):
        first = W.convert(unnamed, tmp_path / "first", split="train")
    liked = W.convert(unnamed, tmp_path / "liked", split="train", lead_like=reference)
    info = liked["per_record"]["100"]
    assert first["per_record"]["100"]["lead"] == "ECG1"  # without a reference: the first
    assert info["lead"] == "ECG2" and set(info["lead_likeness"]) == {"ECG1", "ECG2"}
    assert info["lead_likeness"]["ECG2"] > info["lead_likeness"]["ECG1"]
    assert info["lead_reason"].startswith(
        "no MLII lead; ECG2 looks most like the reference beats (correlation ")
    assert liked["method"]["lead_like"] == str(reference)
    np.testing.assert_allclose(_rows(tmp_path / "liked"), _rows(reference), atol=1e-6)

    named = W.convert(copy_records(tmp_path / "again", record), tmp_path / "named_out",
                      split="train", lead_like=reference)
    assert named["per_record"]["100"]["lead"] == "MLII"  # a named MLII is taken as it is
    assert "lead_likeness" not in named["per_record"]["100"]

    proc = subprocess.run(
        [sys.executable, "code/data.py", "wfdb", "--src", str(unnamed), "--out",
         str(tmp_path / "cli"), "--split", "test", "--lead-like", str(reference)],
        cwd=repo_root, env=run_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert ("lead ECG2 (no MLII lead; ECG2 looks most like the reference beats): 1 "
            "record(s), 100") in proc.stdout
    assert "MLII" not in proc.stderr  # no warning of a record read from its first channel


def test_lead_like_refuses_a_lead_beside_it_and_a_reference_of_other_rows(
        shared_data, tmp_path):
    record = copy_records(tmp_path / "named", shared_data / "mitdb" / "100")
    reference = tmp_path / "reference"
    W.convert(record, reference, split="train")
    with pytest.raises(UserError, match="--lead V5 and --lead-like"):
        W.convert(record, tmp_path / "both", split="train", lead="V5", lead_like=reference)
    other_rows = r"--lead-like .*: converted with other rows than this conversion \("
    with pytest.raises(UserError, match=other_rows + r"beat_length 187 / 200, reference / this"):
        W.convert(record, tmp_path / "wide", split="train", beat_samples=200,
                  lead_like=reference)
    with pytest.raises(UserError, match=r"before_r_s 0.0 / 0.25"):
        W.convert(record, tmp_path / "p_wave", split="train", before_r_s=0.25,
                  lead_like=reference / "mitbih_train.csv")
    (reference / W.SUMMARY_FILE).unlink()  # a CSV from elsewhere: its width still checked
    with pytest.raises(UserError, match=r"--lead-like .*mitbih_train.csv: its rows are 187 "
                                        r"samples wide, the conversion's 200"):
        W.convert(record, tmp_path / "wide", split="train", beat_samples=200,
                  lead_like=reference)
    for refused in ("both", "wide", "p_wave"):
        assert not (tmp_path / refused).exists()
