"""The inter-patient protocol in one command (code/protocol.py): WFDB records in, the final
model's chosen-on and never-seen EC57 tables out."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT, copy_records, kill_processes_under, run_env
from ecgsweep import protocol, protocol_report
from ecgsweep.cli import UserError
from ecgsweep.config import ConfigError
from ecgsweep.contract import RUN_MODEL_FILE
from ecgsweep.model_record import record_path

SHIPPED = REPO_ROOT / "configs" / "inter_patient.yaml"
# Small versions of the shipped configuration: 2 folds, 1 epoch, a tiny CNet.
TINY = {"epochs": 1, "folds": 2, "n_res_blocks": 1, "n_filters": 4, "layer_FC_size": 4,
        "batch_size": 256, "v_template_clusters": 3}


def _tiny_config(tmp_path: Path) -> Path:
    values = {**yaml.safe_load(SHIPPED.read_text()), **TINY}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def _protocol(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "code/protocol.py", *args], cwd=REPO_ROOT,
                          env=run_env(tmp_path), capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_the_protocol_runs_from_records_to_both_sides_figures(shared_data, tmp_path):
    ds1, svdb = shared_data / "mitdb-ds1", shared_data / "svdb-even"
    dev = copy_records(tmp_path / "ds1", ds1 / "101", ds1 / "106", ds1 / "209")
    external = copy_records(tmp_path / "svdb", svdb / "800", svdb / "802")
    config = _tiny_config(tmp_path)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({
        "program": "code/train.py", "method": "grid",
        "metric": {"name": "kept_val_sveb_veb_f1", "goal": "maximize"},
        "parameters": {"config_file": {"value": str(config)},
                       "dropout_rate": {"values": [0.3]}}}))
    out = tmp_path / "out"
    command = ["--dev", str(dev), "--external", str(external), "--config", str(config),
               "--out", str(out), "--sweep", str(sweep), "--count", "1", "--seed", "1",
               "--seed", "2", "--bootstrap", "20"]
    # first with the external records held back: the chosen-on side alone, nothing external read
    proc = _protocol(tmp_path, *command, "--hold-external")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    held = json.loads((out / "protocol.json").read_text())
    assert held["external"] == {"source": str(external), "held_back": True}
    assert not (out / "data" / "external").exists()
    assert all(r["never-seen"] is None and r["chosen-on"]["ec57"] for r in held["seeds"])
    assert held["seeds_averaged"]["never-seen"] is None
    held_text = (out / "protocol.md").read_text()
    assert protocol_report.HELD_BACK_NOTE in held_text
    assert "never-seen (external)" not in held_text
    assert f"decide on the chosen-on figures; then {protocol_report.THEN_SCORE}" in proc.stdout

    # then scored: each seed's model trained above is reused, not trained again
    proc = _protocol(tmp_path, *command)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("reusing the final model trained before") == 2
    assert f"reusing the choice of sweep {held['sweep']['sweep_id']} made before" in proc.stdout
    assert "training the final model" not in proc.stdout

    document = json.loads((out / "protocol.json").read_text())
    assert [r["run_dir"] for r in document["seeds"]] == [r["run_dir"] for r in held["seeds"]]
    # eval --cv-run and --against take the output folder for its seeds' runs
    assert protocol.seed_run_folders(out) == [r["run_dir"] for r in document["seeds"]]
    assert document["dev"]["records"] == ["101", "106", "209"]
    assert document["external"]["records"] == ["800", "802"]
    # without MLII, each external record is read in its lead most like the development beats
    dev_csv = out / "data" / "dev" / "mitbih_train.csv"
    assert document["external"]["lead_choice"] == (
        f"MLII, else the lead most like the beats of {dev_csv}")
    split = json.loads((out / "data" / "external" / "split.json").read_text())
    likest = {name: max(info["lead_likeness"], key=info["lead_likeness"].get)
              for name, info in split["per_record"].items()}
    assert document["external"]["leads"] == likest and set(likest) == {"800", "802"}
    # by default the external records are turned to point up, the development ones are not
    assert document["external"]["qrs_up"] and not document["dev"]["qrs_up"]
    assert document["dev"]["inverted"] == []
    assert document["external"]["inverted"] == [
        name for name, info in split["per_record"].items() if info["qrs_up_share"] < 0.5]
    # the sweep's best run's values, read from its store, reach the final training
    assert document["sweep"]["params"]["dropout_rate"] == 0.3
    assert [r["seed"] for r in document["seeds"]] == [1, 2]
    for result in document["seeds"]:
        assert result["final_model"] == "ensemble" and result["config"]["dropout_rate"] == 0.3
        assert result["config"]["seed"] == result["seed"] and result["config"]["folds"] == 2
        chosen, unseen = result["chosen-on"], result["never-seen"]
        assert chosen["label"] == "chosen-on (3 of DS1's 22 records' record-grouped CV)"
        assert unseen["label"] == "never-seen (external)"
        assert sorted(r for fold in chosen["held_out_records"] for r in fold) == [
            "101", "106", "209"]
        beats = {c: row["support"] for c, row in unseen["ec57"].items()}
        counts = document["external"]["counts"]
        assert beats == {c: counts[c] for c in ("N", "S", "V", "F")}  # classes N S V F
        assert unseen["confidence_intervals"]["per_class"]["S"]["f1-score"] is not None
        # both sides' intervals resample whole records: the held-out ones and the external ones
        assert unseen["bootstrap"]["resampled"] == "records"
        assert chosen["bootstrap"]["records"] == 3
        assert chosen["confidence_intervals"]["per_class"]["N"]["f1-score"] is not None
        assert Path(result["model"]).name == "model.keras"
        assert Path(unseen["report"]).is_file()

    # the final model: the seeds' models averaged in one file, scored as they score together
    averaged = document["seeds_averaged"]
    assert averaged["seeds"] == [1, 2] and Path(averaged["model"]).is_file()
    assert sorted(r for fold in averaged["chosen-on"]["held_out_records"] for r in fold) == [
        "101", "106", "209"]
    from ecgsweep import evaluation

    together = evaluation.evaluate([r["model"] for r in document["seeds"]],
                                   test_csv=str(out / "data" / "external" / "mitbih_test.csv"),
                                   out_dir=tmp_path / "together", bootstrap=0)
    report = json.loads(Path(averaged["never-seen"]["report"]).read_text())
    assert report["confusion_matrix"] == together["confusion_matrix"]

    text = (out / "protocol.md").read_text()
    for needed in ("chosen-on (3 of DS1's 22 records' record-grouped CV)",
                   "never-seen (external)", "## Seed 1", "## Seed 2", "## Over the seeds", "SVEB", "VEB", "101 106 209", "800 802",
                   "## Seeds 1 2 averaged", "the seeds' models averaged (the final model)",
                   "F1 95% interval (every call counted; records resampled)",
                   "never-seen records turned upside down (QRS pointing down): ",
                   "never-seen records' leads (MLII, else the lead most like the beats of ",
                   document["date"]):
        assert needed in text
    assert "protocol: dev: reusing" in proc.stdout and "external: converting" in proc.stdout

    # one of those seeds alone: nothing trained, and the earlier seeds' average is named as
    # not this run's final model
    second = command.index("--seed", command.index("--seed") + 1)
    one_seed = command[:second] + command[second + 2:]
    proc = _protocol(tmp_path, *one_seed)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "training the final model" not in proc.stdout
    assert (f"protocol: note: {averaged['model']} averages the seeds of an earlier run; this "
            f"run's final model is its one seed's, {document['seeds'][0]['model']}"
            in proc.stdout)


def test_a_converted_folder_is_reused_until_its_records_change(shared_data, tmp_path, capsys):
    src = copy_records(tmp_path / "svdb", shared_data / "svdb-even" / "800")
    side = protocol.Side("external", "test", src, tmp_path / "out" / "external")
    with pytest.warns(UserWarning, match="no MLII lead"):
        first = protocol.convert_side(side)
    written = side.csv.stat().st_mtime_ns
    assert protocol.convert_side(side) == first
    assert "reusing" in capsys.readouterr().out and side.csv.stat().st_mtime_ns == written
    copy_records(src, shared_data / "svdb-even" / "802")  # another record: converted again
    with pytest.warns(UserWarning, match="no MLII lead"):
        again = protocol.convert_side(side)
    assert again["records"]["test"] == ["800", "802"]
    assert "converting" in capsys.readouterr().out
    # converted another way (--qrs-up): converted again, and split.json says so
    with pytest.warns(UserWarning, match="no MLII lead"):
        turned = protocol.convert_side(side, qrs_up=True)
    assert turned["method"]["qrs_up"] and "converting" in capsys.readouterr().out
    second = protocol.convert_side(side, qrs_up=True, lead="ECG2")  # another lead: again
    assert {info["lead"] for info in second["per_record"].values()} == {"ECG2"}
    assert "--qrs-up --lead ECG2" in capsys.readouterr().out
    both = protocol.convert_side(side, qrs_up=True, lead="ECG2", two_leads=True)  # again
    assert both["method"]["leads"] == 2 and "--lead ECG2 --two-leads" in capsys.readouterr().out
    assert {info["second_lead"] for info in both["per_record"].values()} == {"ECG1"}
    # read like another side's beats: converted again, each record's leads compared
    dev = protocol.Side("dev", "train", copy_records(tmp_path / "ds1", shared_data / "mitdb"
                                                     / "100"), tmp_path / "out" / "dev")
    protocol.convert_side(dev)
    liked = protocol.convert_side(side, qrs_up=True, like=dev)
    assert all("lead_likeness" in info for info in liked["per_record"].values())
    assert f"--qrs-up --lead-like {dev.csv}" in capsys.readouterr().out
    assert protocol.convert_side(side, qrs_up=True, like=dev) == liked
    assert "reusing" in capsys.readouterr().out


def test_a_conversion_stopped_part_way_is_never_reused(shared_data, tmp_path, monkeypatch,
                                                       capsys):
    from ecgsweep.data import wfdb_beats

    src = copy_records(tmp_path / "svdb", shared_data / "svdb-even" / "800")
    side = protocol.Side("external", "test", src, tmp_path / "out" / "external")
    with pytest.warns(UserWarning, match="no MLII lead"):
        protocol.convert_side(side)
    assert (side.folder / protocol.STAMP_FILE).is_file()
    real_convert = wfdb_beats.convert

    def stopped_after_the_csv(src, out, **options):
        side.csv.write_text("part of another conversion\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(wfdb_beats, "convert", stopped_after_the_csv)
    with pytest.raises(KeyboardInterrupt):
        protocol.convert_side(side, qrs_up=True)  # another way: converted again, stopped
    assert not (side.folder / protocol.STAMP_FILE).exists()
    monkeypatch.setattr(wfdb_beats, "convert", real_convert)
    capsys.readouterr()
    with pytest.warns(UserWarning, match="no MLII lead"):
        again = protocol.convert_side(side)  # the first way again: converted, not reused
    assert "converting" in capsys.readouterr().out and again["records"]["test"] == ["800"]


def test_records_the_converter_left_out_are_said_and_named_in_the_report(
        shared_data, tmp_path, capsys):
    src = copy_records(tmp_path / "svdb", shared_data / "svdb-even" / "800",
                       shared_data / "svdb-even" / "802")
    (src / "802.atr").write_bytes((src / "800.atr").read_bytes())  # another record's beats
    side = protocol.Side("external", "test", src, tmp_path / "out" / "external")
    with pytest.warns(UserWarning, match="no MLII lead"):
        summary = protocol.convert_side(side)
    assert "warning: protocol: external: skipped record 802: " in capsys.readouterr().err
    named = protocol.side_summary(side, summary)
    assert named["records"] == ["800"] and list(named["skipped"]) == ["802"]
    from ecgsweep.protocol_report import skipped_lines

    [line] = skipped_lines(named, "never-seen")
    assert line.startswith("- never-seen records left out (they could not be converted): 802: ")
    assert skipped_lines({**named, "skipped": {}}, "never-seen") == []


def test_a_records_folder_is_read_once_for_its_digest_until_a_file_changes(tmp_path,
                                                                           monkeypatch):
    src = tmp_path / "records"
    src.mkdir()
    (src / "1.dat").write_bytes(b"\1" * 100)
    (src / "1.hea").write_text("1 1 360 100\n")
    read = []
    add_file = protocol._add_file
    monkeypatch.setattr(protocol, "_add_file",
                        lambda digest, path: read.append(path.name) or add_file(digest, path))
    first = protocol.source_digest(src)
    assert protocol.source_digest(src) == first and sorted(read) == ["1.dat", "1.hea"]
    (src / "1.dat").write_bytes(b"\2" * 101)  # changed: read again, another digest
    assert protocol.source_digest(src) != first and len(read) == 4


def _finished_training(folder: Path, inputs: dict) -> Path:
    """A seed folder as a finished training leaves it: a run with its model and record."""

    run_dir = folder / "wandb" / "offline-run-1-protocol-7-x"
    run_dir.mkdir(parents=True)
    (run_dir / RUN_MODEL_FILE).write_bytes(b"model")
    record_path(run_dir / RUN_MODEL_FILE).write_text("{}")
    (folder / protocol.TRAINED_FILE).write_text(json.dumps({"inputs": inputs,
                                                            "run_dir": str(run_dir)}))
    return run_dir


def test_a_seed_trained_before_from_the_same_inputs_is_reused(tmp_path, monkeypatch, capsys):
    trained = []
    monkeypatch.setattr(protocol, "run_to_end", lambda argv, env: trained.append(argv) or 1)
    config = tmp_path / "config.yaml"
    config.write_text(SHIPPED.read_text())
    dev = protocol.Side("dev", "train", tmp_path, tmp_path / "dev")
    dev.folder.mkdir()
    (dev.folder / protocol.STAMP_FILE).write_text('{"digest": "a"}')
    out = tmp_path / "out"
    arguments = protocol.training_arguments(7, str(config), {}, dev, out)
    inputs = protocol.training_inputs(arguments, str(config), {}, dev)
    run_dir = _finished_training(out / "seed7", inputs)
    assert protocol.train_seed(7, str(config), {}, dev, out) == run_dir and not trained
    assert "seed 7: reusing the final model trained before" in capsys.readouterr().out
    # another seed, another value, an edited configuration or other data: trained again
    changes = [lambda: protocol.train_seed(8, str(config), {}, dev, out),
               lambda: protocol.train_seed(7, str(config), {"epochs": 2}, dev, out)]
    for train in changes:
        with pytest.raises(UserError, match="ended with exit code 1"):
            train()
    config.write_text(SHIPPED.read_text().replace("epochs: 8", "epochs: 3"))
    with pytest.raises(UserError, match="ended with exit code 1"):
        protocol.train_seed(7, str(config), {}, dev, out)
    config.write_text(SHIPPED.read_text())
    (dev.folder / protocol.STAMP_FILE).write_text('{"digest": "b"}')
    with pytest.raises(UserError, match="ended with exit code 1"):
        protocol.train_seed(7, str(config), {}, dev, out)
    assert len(trained) == 4
    # a pretrained model named by a path whose file changed: trained again
    (dev.folder / protocol.STAMP_FILE).write_text('{"digest": "a"}')
    start = tmp_path / "start.keras"
    start.write_bytes(b"one")
    from_model = protocol.training_inputs(arguments, str(config), {"pretrained": str(start)},
                                          dev)
    start.write_bytes(b"two")
    assert protocol.training_inputs(arguments, str(config), {"pretrained": str(start)},
                                    dev) != from_model
    # the same inputs, but the model file gone: trained again
    (dev.folder / protocol.STAMP_FILE).write_text('{"digest": "a"}')
    assert protocol.trained_before(out / "seed7", inputs) == run_dir
    (run_dir / RUN_MODEL_FILE).unlink()
    assert protocol.trained_before(out / "seed7", inputs) is None
    (out / "seed7" / protocol.TRAINED_FILE).write_text("not json")
    assert protocol.trained_before(out / "seed7", inputs) is None


def test_a_protocol_folder_stands_for_its_seeds_runs_in_eval(tmp_path, capsys):
    from ecgsweep.eval_cli import run_folders

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / protocol.PROTOCOL_FILE).write_text(json.dumps(
        {"seeds": [{"seed": 42, "run_dir": "/runs/42"}, {"seed": 7, "run_dir": "/runs/7"}]}))
    # a seed trained for another protocol run before is not among this one's
    (tmp_path / "out" / "seed1").mkdir()
    (tmp_path / "out" / "seed1" / protocol.TRAINED_FILE).write_text(
        json.dumps({"inputs": {}, "run_dir": "/runs/1"}))
    assert protocol.seed_run_folders(tmp_path / "out") == ["/runs/42", "/runs/7"]
    assert protocol.seed_run_folders(tmp_path) is None
    assert run_folders([str(tmp_path / "out"), "a-run"], "--against") == [
        "/runs/42", "/runs/7", "a-run"]
    assert "--against " in capsys.readouterr().out
    # stopped before it wrote protocol.json: its seeds' runs are named, not guessed
    stopped = tmp_path / "stopped"
    run = stopped / "seed42" / "wandb" / "offline-run-20261205_000000-protocol-42-ab"
    run.mkdir(parents=True)
    (run / "fold1.json").write_text("{}")
    with pytest.raises(UserError, match=rf"^--cv-run {stopped}: a protocol's output folder "
                                        rf"without its protocol.json .* run folders: {run}$"):
        run_folders([str(stopped)], "--cv-run")


def test_a_sweep_s_choice_made_before_from_the_same_inputs_is_reused(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("epochs: 1\n")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"program": "code/train.py", "method": "grid",
                                     "parameters": {"config_file": {"value": str(config)}}}))
    dev = protocol.Side("dev", "train", tmp_path, tmp_path / "dev")
    cfg = yaml.safe_load(sweep.read_text())
    inputs = protocol.sweep_inputs(str(sweep), cfg, 3, dev)
    out = tmp_path / "out"
    out.mkdir()
    choice = {"sweep_id": "s1", "run_id": "r1", "params": {"dropout_rate": 0.3}}
    (out / protocol.CHOICE_FILE).write_text(json.dumps({"inputs": inputs, "choice": choice}))
    assert protocol.chosen_before(out, inputs) == choice
    # another count, an edited configuration file the sweep names: made again
    assert protocol.chosen_before(out, protocol.sweep_inputs(str(sweep), cfg, 4, dev)) is None
    config.write_text("epochs: 2\n")
    assert protocol.chosen_before(out, protocol.sweep_inputs(str(sweep), cfg, 3, dev)) is None


def test_a_sweep_stopped_part_way_is_joined_again_by_the_same_command(tmp_path, monkeypatch,
                                                                     capsys):
    """Its id comes from its inputs, so the protocol run again goes on with the sweep it
    left, whose finished runs count; a stop says so and ends as a stop."""
    from ecgsweep.sweep import commands

    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"program": "code/train.py", "method": "random",
                                     "metric": {"name": "val_macro_f1", "goal": "maximize"},
                                     "parameters": {"epochs": {"value": 1}}}))
    dev = protocol.Side("dev", "train", tmp_path, tmp_path / "dev")
    ids, resumed = [], []

    def stopped_sweep(*, yaml_path, store_root, sweep_id, resume, opts):
        ids.append(sweep_id or resume)
        resumed.append(resume is not None)
        return protocol.EXIT_INTERRUPTED

    monkeypatch.setattr(commands, "run_sweep", stopped_sweep)
    (tmp_path / "out").mkdir()
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            protocol.sweep_choice(str(sweep), 2, dev, tmp_path / "out")
    assert len(ids) == 2 and ids[0] == ids[1]
    err = capsys.readouterr().err
    assert (f"protocol: stopped while sweeping; sweep {ids[0]} keeps the runs it finished "
            f"({tmp_path / 'out' / 'sweeps' / ids[0]}), and the same command goes on with it"
            in err)
    with pytest.raises(KeyboardInterrupt):  # another run count: another sweep
        protocol.sweep_choice(str(sweep), 3, dev, tmp_path / "out")
    assert ids[2] != ids[0] and resumed == [False] * 3
    # a sweep of the same inputs in the store: gone on with, or, failed, kept aside
    from ecgsweep.sweep.store import Store, db_path

    store_root = tmp_path / "out" / "sweeps"
    left = Store(db_path(store_root, ids[0]), create=True)
    left.set("config", yaml.safe_load(sweep.read_text()))
    left.set("sweep_id", ids[0])
    left.set("state", "running")
    left.close()
    with pytest.raises(KeyboardInterrupt):
        protocol.sweep_choice(str(sweep), 2, dev, tmp_path / "out")
    assert ids[-1] == ids[0] and resumed[-1]
    failed = Store(db_path(store_root, ids[0]), read_only=False)
    failed.set("state", "failed")
    failed.set("failure", "no run finished")
    failed.close()
    with pytest.raises(KeyboardInterrupt):
        protocol.sweep_choice(str(sweep), 2, dev, tmp_path / "out")
    assert ids[-1] == ids[0] and not resumed[-1]
    [aside] = store_root.glob(f"{ids[0]}-failed-*")
    assert (aside / "sweep.db").is_file() and not (store_root / ids[0]).exists()
    assert f"protocol: sweep {ids[0]} had failed (no run finished); it is kept in {aside}" in (
        capsys.readouterr().out)


def test_a_configuration_without_record_grouped_folds_is_refused_first(tmp_path):
    config = tmp_path / "single.yaml"
    config.write_text("folds: 0\nval_split: record\n")
    with pytest.raises(UserError, match="record-grouped k-fold cross-validation; set folds"):
        protocol.check_configuration(str(config), {})
    config.write_text("folds: 4\nepocs: 3\n")
    with pytest.raises(ConfigError, match=rf"^{config}: config key 'epocs'"):
        protocol.check_configuration(str(config), {})
    proc = _protocol(tmp_path, "--dev", str(tmp_path), "--external", str(tmp_path),
                     "--config", str(config), "--out", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"error: {config}: config key 'epocs' is not read" in proc.stderr
    assert not (tmp_path / "data").exists()  # refused before any conversion


def test_external_records_that_are_development_records_are_refused_first(shared_data, tmp_path):
    """A record on both sides, under its own name or another, has no never-seen figure."""
    dev = copy_records(tmp_path / "dev", shared_data / "mitdb" / "100")
    external = copy_records(tmp_path / "external", shared_data / "mitdb-ds1" / "101")
    assert protocol.records_on_both_sides(dev, external) == []
    for ext in ("hea", "dat", "atr"):  # record 100 again, renamed
        (external / f"900.{ext}").write_bytes((dev / f"100.{ext}").read_bytes())
    assert protocol.records_on_both_sides(dev, external) == ["900"]
    assert protocol.records_on_both_sides(dev, dev) == ["100"]
    proc = _protocol(tmp_path, "--dev", str(dev), "--external", str(external),
                     "--config", str(_tiny_config(tmp_path)), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert (f"error: --external {external}: records 900 are development records too"
            in proc.stderr)
    assert not (tmp_path / "out" / "data").exists()  # refused before any conversion


def test_an_external_lead_some_records_lack_is_refused_before_any_work(shared_data, tmp_path):
    dev = copy_records(tmp_path / "dev", shared_data / "mitdb" / "100")
    external = copy_records(tmp_path / "external", shared_data / "svdb-even" / "800")
    proc = _protocol(tmp_path, "--dev", str(dev), "--external", str(external), "--config",
                     str(_tiny_config(tmp_path)), "--out", str(tmp_path / "out"),
                     "--external-lead", "V1", "--hold-external")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert ("error: --external-lead V1: not a lead of every external record (800 has ECG1, "
            "ECG2); name a lead they all have" in proc.stderr)
    assert not (tmp_path / "out" / "data").exists()


class _Converted(Exception):
    """Stops run_protocol once both sides are converted."""


def _record_folders(tmp_path: Path) -> tuple[Path, Path]:
    """Two folders that each look like a folder of records (a header apiece), for a
    protocol whose conversion is stood in for."""
    folders = tmp_path / "dev-records", tmp_path / "external-records"
    for folder, name, leads in zip(folders, ("100", "800"), (("MLII", "V5"), ("ECG1", "ECG2"))):
        folder.mkdir(exist_ok=True)
        (folder / f"{name}.hea").write_text(f"{name} 2 360 650000\n" + "".join(
            f"{name}.dat 212 200 11 1024 0 0 0 {lead}\n" for lead in leads))
    return folders


@pytest.mark.parametrize("flags", [[], ["--hold-external"]])
def test_a_missing_or_empty_records_folder_is_refused_before_any_work(tmp_path, flags):
    """Held back or not, a typo in --external stops the protocol at once, not at the
    scoring step after the training."""
    dev, _ = _record_folders(tmp_path)
    (tmp_path / "empty").mkdir()
    for external, says in ((tmp_path / "nosuch", "no such folder"),
                           (tmp_path / "empty", "no WFDB record in it")):
        proc = _protocol(tmp_path, "--dev", str(dev), "--external", str(external),
                         "--config", str(_tiny_config(tmp_path)), "--out",
                         str(tmp_path / "out"), *flags)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert f"error: --external {external}: {says}" in proc.stderr
        assert not (tmp_path / "out" / "data").exists()


@pytest.mark.parametrize("flags, external", [
    ([], (True, None, "dev")), (["--external-as-recorded"], (False, None, "dev")),
    (["--external-lead", "ECG2"], (True, "ECG2", None))])
def test_the_external_records_alone_are_turned_up_and_read_from_the_lead_asked(
        tmp_path, monkeypatch, flags, external):
    """By default the external records are turned up and read in MLII, else in the lead
    most like the development beats; --external-lead names the lead instead."""
    calls = []

    def convert_side(side, qrs_up=False, lead=None, like=None, two_leads=False):
        calls.append((side.name, qrs_up, lead, like.name if like else None))
        if len(calls) == 2:
            raise _Converted

    monkeypatch.setattr(protocol, "convert_side", convert_side)
    dev_records, external_records = _record_folders(tmp_path)
    args = protocol.build_parser().parse_args(
        ["--dev", str(dev_records), "--external", str(external_records), "--config", str(SHIPPED),
         "--out", str(tmp_path / "out"), *flags])
    with pytest.raises(_Converted):
        protocol.run_protocol(args)
    assert calls == [("dev", False, None, None), ("external", *external)]


def _protocol_until_training(tmp_path, config_lines: str) -> None:
    """Runs the protocol with the shipped configuration and ``config_lines`` added, until a
    stand-in ``train_seed`` stops it (raising _Converted)."""
    config = tmp_path / "config.yaml"
    config.write_text(SHIPPED.read_text() + config_lines)
    dev, external = _record_folders(tmp_path)
    args = protocol.build_parser().parse_args(
        ["--dev", str(dev), "--external", str(external), "--config", str(config),
         "--out", str(tmp_path / "out")])
    with pytest.raises(_Converted):
        protocol.run_protocol(args)


def test_a_configuration_that_trains_on_the_other_lead_gets_it_converted_and_named(
        tmp_path, monkeypatch):
    """other_lead_data set: the development records are also converted in their other lead,
    turned up as the external records are, and training is pointed at that folder."""
    calls, trained = [], []
    monkeypatch.setattr(protocol, "convert_side", lambda side, qrs_up=False, lead=None,
                        like=None, two_leads=False: calls.append((side.name, qrs_up, lead))
                        or {"records": {"train": []}})

    def train_seed(seed, config_file, chosen, dev, out, other_lead=None):
        trained.append(other_lead)
        raise _Converted

    monkeypatch.setattr(protocol, "train_seed", train_seed)
    _protocol_until_training(tmp_path, "other_lead_data: data/dev-other-lead\n")
    assert calls == [("dev", False, None), ("external", True, None),
                     ("dev-other-lead", True, "other")]
    [other] = trained
    assert other.folder == tmp_path / "out" / "data" / "dev-other-lead" and other.split == "train"
    argument = protocol._argument("other_lead_data", str(other.folder))
    assert argument == f"--other_lead_data={other.folder}"


def test_a_two_lead_configuration_gets_both_sides_converted_in_two_leads(tmp_path, monkeypatch):
    """beat_leads 2: both sides are converted with --two-leads into folders of their own,
    the external records read like the two-lead development rows, and training reads them."""
    calls, trained = [], []

    def convert_side(side, qrs_up=False, lead=None, like=None, two_leads=False):
        calls.append((side.folder.name, qrs_up, like.folder.name if like else None, two_leads))
        return {"records": {"train": []}}

    def train_seed(seed, config_file, chosen, dev, out, other_lead=None):
        trained.append(dev.folder)
        raise _Converted

    monkeypatch.setattr(protocol, "convert_side", convert_side)
    monkeypatch.setattr(protocol, "train_seed", train_seed)
    _protocol_until_training(tmp_path, "beat_leads: 2\n")
    assert calls == [("dev-two-leads", False, None, True),
                     ("external-two-leads", True, "dev-two-leads", True)]
    assert trained == [tmp_path / "out" / "data" / "dev-two-leads"]


def test_sweep_and_count_go_together(tmp_path):
    proc = _protocol(tmp_path, "--dev", "d", "--external", "e", "--sweep", "s.yaml")
    assert proc.returncode == 2 and "--sweep and --count go together" in proc.stderr


def _figures(label, f1_s, f1_v):
    rows = {c: {"name": {"S": "SVEB", "V": "VEB"}.get(c, c), "se": 0.5, "ppv": 0.5, "fpr": 0.1,
                "f1": f, "support": 10} for c, f in (("F", 0.0), ("N", 0.9), ("S", f1_s),
                                                    ("V", f1_v))}
    return protocol.side_figures(label, rows, 0.5)


STAND_IN_TRAINING = """
import os, signal, sys, time
from pathlib import Path
folder = Path(sys.argv[1])
def stop(signum, frame):
    (folder / "stopped").write_text(signal.Signals(signum).name)
    sys.exit(3)
signal.signal(signal.SIGTERM, stop)
(folder / "child.pid").write_text(str(os.getpid()))
time.sleep(120)
"""

PROTOCOL_SIDE = """
import sys
from ecgsweep.cli import stop_signals_interrupt
from ecgsweep.protocol import run_to_end
stop_signals_interrupt()
try:
    print("ended", run_to_end([sys.executable, "-c", sys.argv[2], sys.argv[1]], {}))
except KeyboardInterrupt:
    print("interrupted")
"""


def _wait_for(path: Path, seconds: float = 60) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.1)


def test_a_stopped_protocol_stops_its_training_and_waits_for_it(tmp_path):
    import os
    import signal

    parent = subprocess.Popen([sys.executable, "-c", PROTOCOL_SIDE, str(tmp_path),
                               STAND_IN_TRAINING], cwd=REPO_ROOT, env=run_env(tmp_path),
                              stdout=subprocess.PIPE, text=True)
    _wait_for(tmp_path / "child.pid")
    child = int((tmp_path / "child.pid").read_text())
    try:
        parent.send_signal(signal.SIGTERM)
        out, _ = parent.communicate(timeout=60)
        assert out.split() == ["interrupted"]
        assert (tmp_path / "stopped").read_text() == "SIGTERM"
        with pytest.raises(ProcessLookupError):  # waited for: no process left behind
            os.kill(child, 0)
    finally:  # a failure leaves nothing running either
        parent.kill()
        kill_processes_under(tmp_path)


def test_a_stopped_training_stops_the_protocol_naming_what_it_kept(tmp_path, monkeypatch,
                                                                    capsys):
    wrote = []

    def stopped(argv, env):
        if wrote:  # the training had started its W&B folder
            (tmp_path / "out" / "seed7" / "wandb").mkdir(parents=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(protocol, "run_to_end", stopped)
    dev = protocol.Side("dev", "train", tmp_path, tmp_path / "dev")
    with pytest.raises(KeyboardInterrupt):
        protocol.train_seed(7, str(SHIPPED), {}, dev, tmp_path / "out")
    assert re.search(r"stopped while training with seed 7; the training stopped too, and it "
                     r"had written nothing yet", capsys.readouterr().err)
    wrote.append(True)
    with pytest.raises(KeyboardInterrupt):
        protocol.train_seed(7, str(SHIPPED), {}, dev, tmp_path / "out")
    assert re.search(r"stopped while training with seed 7; .*what it finished is in "
                     r".*seed7.wandb", capsys.readouterr().err)


def test_the_chosen_on_side_is_named_by_the_records_it_holds():
    from ecgsweep.data import records

    assert protocol.dev_label(list(records.DS1)) == "DS1"
    assert protocol.dev_label(["101", "106", "209"]) == "3 of DS1's 22 records'"
    assert protocol.dev_label(["101", "800"]) == "development records'"
    assert protocol.dev_label([]) == "development records'"


def test_the_report_orders_classes_and_says_what_is_undefined():
    seeds = [{"seed": seed, "model": "m.keras", "device": "CPU", "final_model": "ensemble",
              "chosen-on": _figures("chosen-on (DS1 record-grouped CV)", f1_s, 0.8),
              "never-seen": _figures("never-seen (external)", None, 0.6)}
             for seed, f1_s in ((1, 0.4), (2, 0.6))]
    document = {"date": "2026-12-02", "machine": {"platform": "Linux", "cpus": 2},
                "config_file": "c.yaml", "sweep": None, "chosen": {},
                "dev": {"source": "ds1", "records": ["101"]},
                "external": {"source": "svdb", "records": ["800", "802", "804"],
                             "qrs_up": True, "inverted": [], "lead_choice": "MLII, else ...",
                             "leads": {"800": "ECG1", "802": "ECG2", "804": "ECG1"}},
                "seeds": seeds}
    text = protocol_report.markdown(document)
    assert "turned upside down (QRS pointing down): none (every QRS points up)" in text
    assert "never-seen records' leads (MLII, else ...): ECG1: 800 804; ECG2: 802" in text
    table = text[text.index("**chosen-on"):]
    assert [line.split(" | ")[0] for line in table.splitlines()[4:8]] == [
        "| N", "| SVEB", "| VEB", "| F"]
    assert "| chosen-on: mean +- spread | 2 seeds | 0.500 +- 0.100 | 0.800 +- 0.000 |" in text
    assert "| never-seen: mean +- spread | 2 seeds | - | 0.600 +- 0.000 |" in text
    assert "other lead" not in text
    document["dev_other_lead"] = {"leads": {"101": "V1", "114": "V5"}}
    assert ("- chosen-on records' other lead, trained on as well (other_lead_data; never "
            "validated on): V1: 101; V5: 114") in protocol_report.markdown(document)
    assert "second lead" not in protocol_report.markdown(document)
    document["dev"]["second_leads"] = {"101": "V1"}
    document["external"]["second_leads"] = {"800": "ECG2", "802": "ECG1", "804": "ECG2"}
    assert ("- second lead of each row (beat_leads 2; turned upright): chosen-on V1: 101; "
            "never-seen ECG2: 800 804; ECG1: 802") in protocol_report.markdown(document)


def test_a_stop_while_averaging_the_seeds_names_the_runs_it_kept(tmp_path, monkeypatch, capsys):
    from ecgsweep import cv_rescore

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cv_rescore, "rescore_run_folders", stopped)
    dev, external = protocol._sides(tmp_path / "dev", tmp_path / "svdb", tmp_path / "out")
    results = [{"seed": 1, "run_dir": str(tmp_path / "run1")},
               {"seed": 2, "run_dir": str(tmp_path / "run2")}]
    with pytest.raises(KeyboardInterrupt):
        protocol.seeds_averaged(results, external, tmp_path / "out", 0, "DS1")
    err = capsys.readouterr().err
    assert "stopped while averaging the seeds' models; each seed's run is kept" in err
    assert str(tmp_path / "run1") in err and str(tmp_path / "run2") in err
    assert not (tmp_path / "out" / protocol.AVERAGED_FOLDER / "model.keras").exists()
