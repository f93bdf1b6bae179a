"""The sweep store under trouble: read without write access, damaged files named per sweep,
and a full disk that leaves nothing half-written behind. Each failure is one `error:` line."""

import errno
import json
import sqlite3
from pathlib import Path

import pytest

from ecgsweep import sweep_cli
import unprivileged
from ecgsweep.cli import EXIT_USAGE, run_main
from ecgsweep.sweep import config as sc
from ecgsweep.sweep import report
from ecgsweep.sweep.bookkeeping import create_or_join
from ecgsweep.sweep.store import DB_NAME, Store, db_path

YAML = ("program: tests/fake_programs/curve.py\nmethod: grid\n"
        "metric: {name: val_macro_f1, goal: maximize}\n"
        "parameters:\n  learning_rate: {values: [0.9, 0.5, 0.3]}\n  epochs: {value: 2}\n")


def make_sweep(root: Path, sweep_id: str, *, keep_open: bool = False) -> Store:
    """A sweep with two finished runs and their histories, written as a runner writes it."""
    store, _ = create_or_join(root, sc.loads(YAML), YAML, "s.yaml", sweep_id=sweep_id)
    with store.transaction():
        for i, lr in enumerate((0.9, 0.5)):
            run_id = f"{sweep_id[:4]}run{i}"
            store.insert_run(run_id, {"learning_rate": {"value": lr}, "epochs": {"value": 2}},
                             state="finished")
            store.add_history(run_id, 0, [{"val_macro_f1": lr / 2}, {"val_macro_f1": lr * 0.75}])
            store.update_run(run_id, exit_code=0, metric_best=lr * 0.75, epochs=2,
                             started_at=100.0 + i, ended_at=160.0 + i)
        store.set("state", "finished")
    if not keep_open:
        store.close()
    return store


def cli(argv, capsys):
    """code/sweep.py in this process: (exit code, stdout, stderr)."""
    rc = run_main(lambda: sweep_cli.main(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# ----------------------------------------------------------------------------- read-only


@pytest.mark.slow
@pytest.mark.parametrize("runner_attached", [False, True],
                         ids=["store-closed", "a-writer-holds-it-open"])
def test_a_store_that_cannot_be_written_is_read_and_refuses_writing_in_one_line(
        tmp_path, runner_attached):
    root = tmp_path / "sweeps"
    writer = make_sweep(root, "ro000001", keep_open=runner_attached)
    out = tmp_path / "out"
    yaml_path = tmp_path / "s.yaml"
    yaml_path.write_text(YAML)
    before = sorted(p.name for p in (root / "ro000001").iterdir())
    store = ["--store", str(root)]
    try:
        with unprivileged.read_only(root):
            listed, status, as_json, drawn, report_in_store, resume, new = unprivileged.sweep_cli(
                ["status", *store], ["status", "ro000001", *store],
                ["status", "ro000001", "--json", *store],
                ["report", "ro000001", *store, "--out", str(out)],
                ["report", "ro000001", *store], ["--resume", "ro000001", *store],
                [str(yaml_path), *store])
            after = sorted(p.name for p in (root / "ro000001").iterdir())
    finally:
        writer.close()
    for rc, _, err in (listed, status, as_json, drawn):
        assert rc == 0, err
    assert listed[1].startswith("ro000001  finished")
    assert "2 runs (2 finished)" in status[1]
    assert json.loads(as_json[1])["sweep"]["id"] == "ro000001"
    assert (out / report.HTML_NAME).is_file()
    for rc, out_text, err in (report_in_store, resume, new):
        assert rc == EXIT_USAGE, (out_text, err)
        one_error_line(err)
    assert "report folder" in report_in_store[2]
    assert f"{root / 'ro000001' / DB_NAME} cannot be used" in resume[2]
    assert "cannot make the sweep folder" in new[2]
    assert sorted(p.name for p in root.iterdir()) == ["ro000001"]
    assert after == before


# ----------------------------------------------------------------------------- damaged


def _halve(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _garbage(path: Path) -> None:
    path.write_bytes(b"not a database " * 300)


@pytest.mark.parametrize("damage, says", [(_halve, "database disk image is malformed"),
                                          (_empty, "holds no sweep (0 bytes"),
                                          (_garbage, "file is not a database")],
                         ids=["truncated-to-half", "zero-bytes", "not-sqlite"])
def test_a_damaged_store_is_named_and_does_not_hide_the_other_sweeps(tmp_path, capsys,
                                                                     damage, says):
    root = tmp_path / "sweeps"
    make_sweep(root, "good0001")
    make_sweep(root, "bad00001")
    bad = db_path(root, "bad00001")
    damage(bad)
    damaged_bytes = bad.read_bytes()

    rc, out, err = cli(["status", "--store", str(root)], capsys)
    assert rc == 0 and err == ""
    bad_line, good_line = out.strip().splitlines()  # sorted by ID
    assert good_line.startswith("good0001  finished") and "2 runs (2 finished)" in good_line
    assert bad_line.startswith("bad00001  damaged") and str(bad) in bad_line and says in bad_line

    for argv in (["status", "bad00001"], ["status", "bad00001", "--json"],
                 ["report", "bad00001", "--out", str(tmp_path / "rep")],
                 ["ensemble", "bad00001", "--top", "1"], ["--resume", "bad00001"]):
        rc, out, err = cli([*argv, "--store", str(root)], capsys)
        line = one_error_line(err)
        assert rc == EXIT_USAGE and str(bad) in line and says in line, (argv, err)
    assert bad.read_bytes() == damaged_bytes  # nothing wrote to the damaged file
    assert not (tmp_path / "rep").exists()


def test_a_store_folder_that_is_a_file_is_one_error_line(tmp_path, capsys):
    not_a_folder = tmp_path / "passwd"
    not_a_folder.write_text("root:x:0:0\n")
    yaml_path = tmp_path / "s.yaml"
    yaml_path.write_text(YAML)
    for argv in ([str(yaml_path)], ["status"], ["status", "abc"], ["report", "abc"],
                 ["--resume", "abc"]):
        rc, _, err = cli([*argv, "--store", str(not_a_folder)], capsys)
        assert rc == EXIT_USAGE and "is a file, not a folder" in one_error_line(err), argv
    assert not_a_folder.read_text() == "root:x:0:0\n"


# ----------------------------------------------------------------------------- full disk


def test_a_sweep_whose_creation_fills_the_disk_leaves_no_folder(tmp_path, capsys, monkeypatch):
    root = tmp_path / "sweeps"
    make_sweep(root, "old00001")
    yaml_path = tmp_path / "s.yaml"
    yaml_path.write_text(YAML)

    def disk_full(self, key, value):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Store, "set", disk_full)
    rc, _, err = cli([str(yaml_path), "--store", str(root), "--plain"], capsys)
    assert rc == EXIT_USAGE and "database or disk is full" in one_error_line(err)
    assert sorted(p.name for p in root.iterdir()) == ["old00001"]


def test_a_sweep_folder_that_cannot_be_made_is_one_error_line(tmp_path, capsys, monkeypatch):
    yaml_path = tmp_path / "s.yaml"
    yaml_path.write_text(YAML)
    real_mkdir = Path.mkdir

    def no_space(self, *args, **kwargs):
        if self.parent == tmp_path / "sweeps":
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", no_space)
    rc, _, err = cli([str(yaml_path), "--store", str(tmp_path / "sweeps"), "--plain"], capsys)
    line = one_error_line(err)
    assert rc == EXIT_USAGE and "No space left on device" in line and "free space" in line


def _fills_the_disk_half_way(path, data):
    with open(path, "wb") as f:
        f.write(b"x" * 1000)
    raise OSError(errno.ENOSPC, "No space left on device", str(path))


@pytest.mark.parametrize("which", ["html", "png"])
def test_a_report_that_fills_the_disk_leaves_no_partial_file(tmp_path, capsys, monkeypatch,
                                                             which):
    root = tmp_path / "sweeps"
    make_sweep(root, "rep00001")
    out = tmp_path / "rep"
    if which == "html":
        monkeypatch.setattr(Path, "write_text",
                            lambda self, data, *a, **k: _fills_the_disk_half_way(self, data))
    else:
        from matplotlib.figure import Figure

        monkeypatch.setattr(Figure, "savefig",
                            lambda self, path, *a, **k: _fills_the_disk_half_way(path, None))
    rc, _, err = cli(["report", "rep00001", "--store", str(root), "--out", str(out)], capsys)
    line = one_error_line(err)
    assert rc == EXIT_USAGE and "No space left on device" in line and str(out) in line
    assert [p.name for p in out.iterdir() if ".tmp" in p.name] == []
