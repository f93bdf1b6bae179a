"""A whole database as one file: `code/data.py wfdb --split test` (a test set for
`code/eval.py --test`) and `--split train` (development data), any lead by name."""

import json
import subprocess
import sys
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
    with pytest.raises(UserError, match=r"record 800 has no lead MLII \(its leads: ECG1, "
                                        r"ECG2\)"):
        W.convert(svdb_two, tmp_path / "none", split="test", lead="MLII")
    assert not (tmp_path / "none").exists()


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

    proc = subprocess.run(
        [sys.executable, "code/data.py", "wfdb", "--src", str(svdb_two), "--out",
         str(tmp_path / "v1"), "--split", "test", "--lead", "V1"],
        cwd=repo_root, env=run_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "error: record 800 has no lead V1 (its leads: ECG1, ECG2)")
