"""The inter-patient protocol as one command: WFDB records in, a final model and its AAMI
EC57 report on records no choice looked at out.

    python code/protocol.py --dev DIR --external DIR [--config FILE] [--out DIR]
                            [--sweep YAML --count N] [--seed N ...]
                            [--external-lead NAME] [--external-as-recorded]
                            [--hold-external]

1. Convert: the development records into ``<out>/data/dev`` (every beat to the training
   file, as ``code/data.py wfdb --split train``), the external ones into
   ``<out>/data/external`` (every beat to the test file, ``--split test``, each record
   whose QRS points down in the lead read turned upside down, ``--qrs-up``, unless
   ``--external-as-recorded``). An external record is read in MLII when it has it, else
   in the lead whose beats look most like the development beats (``--lead-like``), or in
   ``--external-lead`` when given. When the configuration trains on another lead too
   (``other_lead_data`` set), the development records are also converted in their other
   lead (``--lead other --qrs-up``) into ``<out>/data/dev-other-lead``, which the key then
   names. When the configuration reads two leads per row (``beat_leads: 2``), both sides
   are converted with ``--two-leads`` into ``<out>/data/dev-two-leads`` and
   ``<out>/data/external-two-leads``. A folder converted from the same files the same way
   before is reused.
2. With ``--sweep``: the offline sweep on the development data; its best finished run's
   parameters, read from the sweep's store, join the configuration (no copying by hand).
   A choice made before from the same YAML, configuration files, count, data and code
   (``<out>/sweep-choice.json``) is reused.
3. For each seed: train the final model (``code/train.py --config_file=FILE``): its
   record-grouped k-fold cross-validation's pooled EC57 table is the **chosen-on** figure,
   and the run's own model (``final_model``) is what is scored next. A seed trained before
   from the same arguments, configuration file, converted data and code
   (``<out>/seed<N>/trained.json``) is reused, so a stopped protocol, run again, trains only
   the seeds it had not finished.
4. Score that model on the external records (EC57, bootstrap intervals): the
   **never-seen** figure. With ``--hold-external`` the external records are neither
   converted nor scored: a choice between configurations is then made on the chosen-on
   figures alone, and the same command without the flag scores the models it trained.
5. With several seeds: their models averaged in one file, ``<out>/seeds-averaged/model.keras``,
   the protocol's final model (``seed_average``). Its chosen-on figure averages the seeds'
   models of each fold on the records that fold held out (the seeds share their folds);
   its never-seen figure scores the file itself.
6. Write ``<out>/protocol.json`` and ``<out>/protocol.md``: per seed, and for the seeds
   averaged, both sides' tables, each labelled chosen-on or never-seen, the records of each
   side, the date, the machine and the configuration.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cli import EXIT_INTERRUPTED, UserError, positive_int, prog, writable_folder
from .contract import RUN_MODEL_FILE
from .protocol_report import CHOSEN_ON, NEVER_SEEN, THEN_SCORE, markdown
from .sweep.files import write_text_whole

DEFAULT_CONFIG = "configs/inter_patient.yaml"
DEFAULT_SEEDS = (42,)
STAMP_FILE = "protocol-input.json"  # what a data folder was converted from
PROTOCOL_FILE, REPORT_FILE = "protocol.json", "protocol.md"  # <out>/: the record, as text
TRAINED_FILE = "trained.json"  # <out>/seed<N>/trained.json: a finished training and its inputs
CHOICE_FILE = "sweep-choice.json"  # <out>/sweep-choice.json: a sweep's best run and its inputs
# Keys the protocol sets itself: a sweep's values of them are not carried over. The
# converted files are named as the mitbih data set's (mitbih_train.csv, mitbih_test.csv).
PROTOCOL_KEYS = ("dataset", "data_dir", "models_dir", "seed", "config_file", "other_lead_data",
                 "beat_leads")
TWO_LEADS_SUFFIX = "-two-leads"  # the data folders of a configuration with beat_leads: 2
DATASET = "mitbih"
AVERAGED_FOLDER = "seeds-averaged"  # <out>/seeds-averaged/model.keras: the seeds' models averaged


@dataclass(frozen=True)
class Side:
    """One side of the protocol: its records, the split they are converted as, and where."""

    name: str  # dev | external
    split: str  # train | test (code/data.py wfdb --split)
    src: Path
    folder: Path

    @property
    def csv(self) -> Path:
        from .data import wfdb_beats

        return wfdb_beats.part_file(self.folder, self.split)


def _sides(dev: Path, external: Path, out: Path, two_leads: bool = False
           ) -> tuple[Side, Side]:
    suffix = TWO_LEADS_SUFFIX if two_leads else ""
    return (Side("dev", "train", dev, out / "data" / f"dev{suffix}"),
            Side("external", "test", external, out / "data" / f"external{suffix}"))


def other_lead_side(dev: Side) -> Side:
    """The development records in their other lead (``other_lead_data``), beside ``dev``."""
    return Side("dev-other-lead", "train", dev.src, dev.folder.with_name("dev-other-lead"))


# --- data --------------------------------------------------------------------------


def source_digest(src: Path) -> str:
    """A digest of every file in the records folder ``src``: names and contents. The files
    are read once per run: the development folder is digested for its own conversion and
    again as the external side's ``--lead-like`` reference."""
    files = sorted(p for p in src.iterdir() if p.is_file())
    return _files_digest(tuple((p.name, str(p.resolve()), *_file_identity(p.stat()))
                               for p in files))


def _file_identity(stat: os.stat_result) -> tuple[int, ...]:
    """What changes when a file's content may have: size, inode, modified and changed times."""
    return stat.st_size, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns


@functools.lru_cache(maxsize=8)
def _files_digest(files: tuple[tuple[Any, ...], ...]) -> str:
    """The digest of ``files`` ((name, path, identity...) each: a changed file is another
    key), over their names and contents."""
    digest = hashlib.sha256()
    for name, path, *_ in files:
        digest.update(name.encode() + b"\0")
        _add_file(digest, Path(path))
    return digest.hexdigest()


def _add_file(digest: Any, path: Path) -> Any:
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest


def _file_digest(path: Path) -> str:
    return _add_file(hashlib.sha256(), path).hexdigest()


def records_on_both_sides(dev: Path, external: Path) -> list[str]:
    """The external records that are development records too: every one when both name
    the same folder, else those whose signal file (``.dat``) is byte for byte a development
    record's, whatever it is named."""
    if dev.resolve() == external.resolve():
        return sorted(p.stem for p in external.glob("*.hea"))
    dev_signals = {_file_digest(p) for p in dev.glob("*.dat") if p.is_file()}
    return sorted(p.stem for p in external.glob("*.dat")
                  if p.is_file() and _file_digest(p) in dev_signals)


def check_sides_apart(dev: Path, external: Path) -> None:
    """UserError when an external record is a development record: its figure would not be
    a never-seen one."""
    shared = records_on_both_sides(dev, external)
    if shared:
        listed = " ".join(shared[:10]) + (f" and {len(shared) - 10} more"
                                          if len(shared) > 10 else "")
        raise UserError(f"--external {external}: records {listed} are development records "
                        f"too (the same signal files as in --dev {dev}); the never-seen side "
                        "must hold other patients' records")


def check_record_folder(side: Side) -> None:
    """UserError, before any work, when the side's folder is missing or holds no WFDB
    record: a typo in --external would otherwise surface only at the scoring step, after
    the training a --hold-external run waits for."""
    from .data.wfdb_beats import record_headers

    if not side.src.is_dir():
        raise UserError(f"--{side.name} {side.src}: no such folder (give a folder of WFDB "
                        "records: .hea, .dat, .atr)")
    if not record_headers(side.src):
        raise UserError(f"--{side.name} {side.src}: no WFDB record in it (no .hea file; give "
                        "a folder of records: .hea, .dat, .atr)")


def check_external_lead(external: Side, lead: str | None) -> None:
    """UserError, before any work, naming the external records without ``--external-lead``
    and the leads they have."""
    from .data import wfdb_beats

    lacking = (wfdb_beats.records_without_lead(external.src,
                                                wfdb_beats.record_headers(external.src), lead)
               if lead else {})
    if lacking:
        raise UserError(f"--external-lead {lead}: not a lead of every external record "
                        f"({wfdb_beats.leads_had(lacking)}); name a lead they all have, or "
                        "leave the option out to read each in MLII, else in its lead most "
                        "like the development beats")


def convert_side(side: Side, qrs_up: bool = False, lead: str | None = None,
                 like: Side | None = None, two_leads: bool = False) -> dict[str, Any]:
    """Convert the side's records into its folder (``split.json``'s summary returned), or
    reuse what an earlier conversion of the same files, the same way, wrote there.
    ``qrs_up``: records whose QRS points down are turned upside down (``--qrs-up``);
    ``lead``: the lead read from every record (``--lead``; None: MLII, else the first);
    ``like``: a converted side whose beats a record without MLII is read most like
    (``--lead-like``); ``two_leads``: rows of two leads (``--two-leads``)."""
    from .data import wfdb_beats

    stamp = {"source": str(side.src.resolve()), "split": side.split, "qrs_up": qrs_up,
             "lead": lead, "digest": source_digest(side.src),
             "lead_like": source_digest(like.src) if like else None,
             # only when set, so a one-lead folder converted before the key is reused
             **({"two_leads": True} if two_leads else {})}
    stamp_path = side.folder / STAMP_FILE
    summary_path = side.folder / wfdb_beats.SUMMARY_FILE
    if (stamp_path.is_file() and summary_path.is_file() and side.csv.is_file()
            and json.loads(stamp_path.read_text()) == stamp):
        print(f"protocol: {side.name}: reusing {side.folder} (converted from the same "
              f"files of {side.src})", flush=True)
        return json.loads(summary_path.read_text())
    options = f"--split {side.split}" + (" --qrs-up" if qrs_up else "") + (
        f" --lead {lead}" if lead else "") + (f" --lead-like {like.csv}" if like else "") + (
        " --two-leads" if two_leads else "")
    print(f"protocol: {side.name}: converting {side.src} into {side.folder} ({options})",
          flush=True)
    # a conversion stopped part-way leaves no stamp, so it is never taken for a whole one
    stamp_path.unlink(missing_ok=True)
    summary = wfdb_beats.convert(side.src, side.folder, split=side.split, qrs_up=qrs_up,
                                 lead=lead, lead_like=like.csv if like else None,
                                 two_leads=two_leads)
    write_text_whole(stamp_path, json.dumps(stamp, indent=2) + "\n")
    for name, reason in summary.get("skipped_records", {}).items():
        print(f"warning: protocol: {side.name}: skipped record {name}: {reason}",
              file=sys.stderr, flush=True)
    return summary


# --- configuration -----------------------------------------------------------------


def sweep_choice(yaml_path: str, count: int, dev: Side, out: Path) -> dict[str, Any]:
    """Run the sweep ``yaml_path`` offline on the development data (``count`` runs) and
    return its best finished run: {sweep_id, run_id, metric, value, params}."""
    import yaml

    from .sweep import commands
    from .sweep import config as sweep_config
    from .sweep.runner import Options
    from .sweep_hooks import ECG_PROGRAM

    cfg = sweep_config.loads(sweep_config.read_text(yaml_path), source=yaml_path)
    inputs = sweep_inputs(yaml_path, cfg, count, dev)
    earlier = chosen_before(out, inputs)
    if earlier:
        print(f"protocol: reusing the choice of sweep {earlier['sweep_id']} made before from "
              f"the same YAML, count, data and code: its best run {earlier['run_id']}",
              flush=True)
        return earlier
    params = dict(cfg.get("parameters") or {})
    # full paths: the same sweep, named by its inputs, whatever --out was spelled as
    params.update(dataset={"value": DATASET}, data_dir={"value": str(dev.folder.resolve())},
                  models_dir={"value": str((out / "sweep-models").resolve())})
    on_dev = out / "sweep.yaml"
    write_text_whole(on_dev, yaml.safe_dump({**cfg, "parameters": params}, sort_keys=False))
    store_root = out / "sweeps"
    store_root.mkdir(parents=True, exist_ok=True)
    # named by its inputs: a protocol stopped while sweeping joins, when run again, the
    # sweep it left, whose finished runs count toward its runs
    sweep_id = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()
                              ).hexdigest()[:8]
    print(f"protocol: sweep {yaml_path} on {dev.folder}, {count} runs ({on_dev}; sweep "
          f"{sweep_id} in {store_root})", flush=True)
    goes_on = sweep_left_before(store_root, sweep_id)
    rc = commands.run_sweep(yaml_path=None if goes_on else str(on_dev),
                            store_root=str(store_root), resume=sweep_id if goes_on else None,
                            sweep_id=None if goes_on else sweep_id,
                            opts=Options(count=count, live=False, program=ECG_PROGRAM))
    if rc == EXIT_INTERRUPTED:
        print(f"protocol: stopped while sweeping; sweep {sweep_id} keeps the runs it finished "
              f"({store_root / sweep_id}), and the same command goes on with it",
              file=sys.stderr, flush=True)
        raise KeyboardInterrupt
    if rc != 0:
        raise UserError(f"the sweep {sweep_id} ended with exit code {rc}; see its runs' "
                        f"output in {store_root / sweep_id / 'logs'}")
    choice = best_finished_run(store_root, sweep_id)
    write_text_whole(out / CHOICE_FILE, json.dumps({"inputs": inputs, "choice": choice},
                                                   indent=2, default=str) + "\n")
    return choice


def sweep_left_before(store_root: Path, sweep_id: str) -> bool:
    """Whether a sweep of the same inputs was left in the store to go on with (stopped, or
    its runner killed). One that failed is moved aside, kept under a new name, so the
    protocol run again (its cause fixed) sweeps anew: a failed sweep's runs, which count
    toward its run cap, would end it again at once."""
    from .sweep.store import db_path, open_store, sweep_dir

    if not db_path(store_root, sweep_id).is_file():
        return False
    store = open_store(store_root, sweep_id, read_only=True)
    state, failure = store.get("state"), store.get("failure")
    store.close()
    if state != "failed":
        return True
    aside = sweep_dir(store_root, f"{sweep_id}-failed-{time.strftime('%Y%m%d-%H%M%S')}")
    sweep_dir(store_root, sweep_id).rename(aside)
    print(f"protocol: sweep {sweep_id} had failed ({failure}); it is kept in {aside}, and "
          "the sweep starts anew", flush=True)
    return False


def sweep_inputs(yaml_path: str, cfg: dict[str, Any], count: int, dev: Side
                 ) -> dict[str, Any]:
    """What a sweep's choice is made from: its YAML, the configuration files and pretrained
    models its parameters name, its run count, the converted data and the code."""
    from .sweep_hooks import values_given

    section = cfg.get("parameters") or {}
    config_files = [str(name) for name in values_given(section, "config_file", None)]
    return {"yaml": _file_digest(Path(yaml_path)), "count": count,
            "config_files": {name: _file_digest(Path(name)) for name in config_files
                             if Path(name).is_file()},
            "pretrained": pretrained_digests(values_given(section, "pretrained", None)),
            "data": side_stamp(dev), "code": package_digest()}


def done_before(path: Path, inputs: dict[str, Any]) -> dict[str, Any]:
    """What a step finished before wrote in ``path`` (``{"inputs": ..., ...}``) when it was
    made from the same ``inputs``; else an empty dict (none, unreadable, or other inputs)."""
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return earlier if isinstance(earlier, dict) and earlier.get("inputs") == inputs else {}


def chosen_before(out: Path, inputs: dict[str, Any]) -> dict[str, Any] | None:
    """The best run of a sweep finished before from the same ``inputs``
    (``<out>/sweep-choice.json``); else None."""
    choice = done_before(out / CHOICE_FILE, inputs).get("choice")
    return choice if isinstance(choice, dict) and isinstance(choice.get("params"), dict) \
        else None


def best_finished_run(store_root: Path, sweep_id: str) -> dict[str, Any]:
    """The best finished run of a sweep in the store, as its leaderboard ranks it."""
    from .sweep import config as sweep_config
    from .sweep.ranking import metric_and_goal, ranked
    from .sweep.store import FINISHED, open_store

    store = open_store(store_root, sweep_id, read_only=True)
    metric, goal = metric_and_goal(sweep_config.engine_config(store.get("config")))
    best = ranked(store.runs(), goal, states=(FINISHED,))
    if not best:
        raise UserError(f"sweep {sweep_id} has no finished run with its metric {metric}; "
                        "raise --count or look at its runs' output in "
                        f"{store_root / sweep_id / 'logs'}")
    params = {k: (v.get("value") if isinstance(v, dict) else v)
              for k, v in best[0]["params"].items()}
    return {"sweep_id": sweep_id, "run_id": best[0]["run_id"], "metric": metric,
            "value": best[0]["metric_best"], "params": params}


def chosen_values(choice: dict[str, Any] | None) -> dict[str, Any]:
    """The sweep's values the final training takes (none without a sweep): all but those
    the protocol sets itself (``PROTOCOL_KEYS``)."""
    if choice is None:
        return {}
    return {k: v for k, v in choice["params"].items() if k not in PROTOCOL_KEYS}


def check_configuration(config_file: str, chosen: dict[str, Any], *,
                        folds_needed: bool = True) -> dict[str, Any]:
    """The configuration resolved as the training program resolves it; refused (when
    ``folds_needed``) unless its figures are a record-grouped k-fold cross-validation."""
    from .config import resolve

    config = resolve({"config_file": config_file, **chosen, "dataset": DATASET})
    if folds_needed and (int(config["folds"]) < 2 or config["val_split"] != "record"):
        raise UserError(f"{config_file}: the protocol's chosen-on figure is a record-grouped "
                        f"k-fold cross-validation; set folds >= 2 (now {config['folds']}) and "
                        f"val_split record (now {config['val_split']})")
    return config


# --- training and scoring ------------------------------------------------------------


def _argument(key: str, value: Any) -> str:
    """``--key=value`` as code/train.py reads it back (values typed as YAML reads them)."""
    return f"--{key}={value if isinstance(value, str) else json.dumps(value)}"


def run_to_end(argv: list[str], env: dict[str, str]) -> int:
    """Run ``argv`` to its end and return its exit code. When this process is stopped
    meanwhile (KeyboardInterrupt: Ctrl-C, or SIGTERM and SIGHUP after
    ``cli.stop_signals_interrupt``) the program gets SIGTERM (a training run then stops at
    its next batch and keeps the folds it finished) and is waited for before the interrupt
    goes on, so a stopped protocol leaves no process behind."""
    proc = subprocess.Popen(argv, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        stop_and_wait(proc)
        raise


def stop_and_wait(proc: subprocess.Popen) -> None:
    """SIGTERM to ``proc``, then wait for its end; a further interrupt meanwhile sends
    SIGTERM again instead of leaving it running."""
    while proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait()
        except KeyboardInterrupt:
            continue


def training_arguments(seed: int, config_file: str, chosen: dict[str, Any], dev: Side,
                       out: Path, other_lead: Side | None = None) -> list[str]:
    """code/train.py's arguments for the final model of ``seed``."""
    return [_argument("config_file", config_file), _argument("dataset", DATASET),
            _argument("data_dir", str(dev.folder)),
            _argument("models_dir", str(out / "models")), _argument("seed", seed),
            *([_argument("other_lead_data", str(other_lead.folder))] if other_lead else []),
            *(_argument(k, v) for k, v in chosen.items())]


@functools.lru_cache(maxsize=1)
def package_digest() -> str:
    """A digest of this package's source: the code a model was trained by."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0")
        _add_file(digest, path)
    return digest.hexdigest()


def side_stamp(side: Side | None) -> dict[str, Any] | None:
    """What a converted side was converted from (its folder's stamp), or None."""
    path = side.folder / STAMP_FILE if side else None
    return json.loads(path.read_text()) if path and path.is_file() else None


def pretrained_digests(names: list[Any]) -> dict[str, str]:
    """The content digest of each ``pretrained`` model file named (a path such as
    models/cnn/best.keras is a link that moves as runs finish)."""
    from .params import pretrained_set

    return {str(name): _file_digest(Path(str(name))) for name in names
            if pretrained_set(name) and Path(str(name)).is_file()}


def training_inputs(arguments: list[str], config_file: str, chosen: dict[str, Any],
                    dev: Side, other_lead: Side | None = None) -> dict[str, Any]:
    """What a seed's final model is trained from: the training arguments, the contents of
    the configuration file and of a pretrained model, the converted data's stamps and the
    code."""
    config = check_configuration(config_file, chosen, folds_needed=False)
    return {"arguments": arguments, "config_file": _file_digest(Path(config_file)),
            "pretrained": pretrained_digests([config["pretrained"]]),
            "data": side_stamp(dev), "other_lead_data": side_stamp(other_lead),
            "code": package_digest()}


def trained_before(folder: Path, inputs: dict[str, Any]) -> Path | None:
    """The run folder of a training finished before from the same ``inputs``
    (``<folder>/trained.json``), when its model and record are still there; else None."""
    from .model_record import record_path

    run_dir = done_before(folder / TRAINED_FILE, inputs).get("run_dir")
    if not isinstance(run_dir, str):
        return None
    model = Path(run_dir) / RUN_MODEL_FILE
    return model.parent if model.is_file() and record_path(model).is_file() else None


def seed_run_folders(folder: str | Path) -> list[str] | None:
    """The run folders of the seeds of the protocol run that wrote ``folder``'s
    protocol.json, in its order; None when ``folder`` holds no readable protocol.json."""
    try:
        seeds = json.loads((Path(folder) / PROTOCOL_FILE).read_text())["seeds"]
        return [str(seed["run_dir"]) for seed in seeds] or None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def seed_runs_without_report(folder: str | Path) -> list[str]:
    """The seeds' run folders holding fold records in a protocol output folder with no
    protocol.json (a protocol stopped before it wrote one); empty when there are none."""
    folder = Path(folder)
    if (folder / PROTOCOL_FILE).is_file():
        return []
    return sorted(str(run) for run in folder.glob("seed*/wandb/*run-*")
                  if run.is_dir() and any(run.glob("fold*.json")))


def train_seed(seed: int, config_file: str, chosen: dict[str, Any], dev: Side,
               out: Path, other_lead: Side | None = None) -> Path:
    """Train the final model on the development data with ``seed`` (and, given
    ``other_lead``, its records' beats in another lead); returns its run folder. A training
    finished before from the same configuration, data and code is reused, not repeated."""
    from .sweep_hooks import train_program

    folder = out / f"seed{seed}"
    arguments = training_arguments(seed, config_file, chosen, dev, out, other_lead)
    inputs = training_inputs(arguments, config_file, chosen, dev, other_lead)
    earlier = trained_before(folder, inputs)
    if earlier:
        print(f"protocol: seed {seed}: reusing the final model trained before from the same "
              f"configuration, data and code ({earlier})", flush=True)
        return earlier
    folder.mkdir(parents=True, exist_ok=True)
    run_id = f"protocol-{seed}-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "WANDB_DIR": str(folder.resolve()), "WANDB_RUN_ID": run_id}
    for key in ("WANDB_SWEEP_ID", "WANDB_SWEEP_PARAM_PATH", "WANDB_RESUME"):
        env.pop(key, None)
    print(f"protocol: seed {seed}: training the final model: code/train.py "
          f"{' '.join(arguments)}", flush=True)
    try:
        rc = run_to_end([sys.executable, *train_program(), *arguments], env)
    except KeyboardInterrupt:
        kept = (f"what it finished is in {folder / 'wandb'}" if (folder / "wandb").is_dir()
                else "it had written nothing yet")
        print(f"protocol: stopped while training with seed {seed}; the training stopped too, "
              f"and {kept}", file=sys.stderr, flush=True)
        raise
    if rc != 0:
        raise UserError(f"training with seed {seed} ended with exit code {rc} (its output is "
                        f"above; its W&B folder is in {folder / 'wandb'})")
    found = sorted((folder / "wandb").glob(f"*run-*-{run_id}"))
    if not found or not (found[-1] / RUN_MODEL_FILE).is_file():
        raise UserError(f"training with seed {seed} left no {RUN_MODEL_FILE} in "
                        f"{folder / 'wandb'}; was it stopped?")
    write_text_whole(folder / TRAINED_FILE, json.dumps(
        {"inputs": inputs, "run_dir": str(found[-1].resolve())}, indent=2) + "\n")
    return found[-1].resolve()  # named in protocol.json, read from any folder


def side_figures(label: str, ec57_table: dict, macro_f1: float | None,
                 intervals: dict | None = None, **more: Any) -> dict[str, Any]:
    """One side's figures of one seed, labelled chosen-on or never-seen."""
    return {"label": label, "ec57": ec57_table, "macro_f1": macro_f1,
            "confidence_intervals": intervals, **more}


def never_seen_figures(model: Path, external: Side | None, out_dir: Path,
                       bootstrap: int) -> dict[str, Any] | None:
    """The model scored on the external records (its report in ``out_dir``); None when they
    are held back."""
    from . import backend, ec57, evaluation

    if external is None:
        return None
    backend.select()
    report = evaluation.evaluate([model], test_csv=str(external.csv), out_dir=out_dir,
                                 bootstrap=bootstrap)
    return side_figures(f"{NEVER_SEEN} (external)", report["ec57"],
                        ec57.macro_f1(report["confusion_matrix"]),
                        report.get("confidence_intervals"), bootstrap=report.get("bootstrap"),
                        report=str(out_dir / "report.json"))


def seeds_averaged(results: list[dict[str, Any]], external: Side | None, out: Path,
                   bootstrap: int, dev_label: str) -> dict[str, Any]:
    """Both sides' figures of the seeds' models averaged in one file
    (``<out>/seeds-averaged/model.keras``, ``seed_average``): the seeds' fold models averaged
    fold by fold on the records each fold held out, and the file scored on the external
    records (unless they are held back: None)."""
    from . import backend, cv_rescore
    from .seed_average import save_seed_average

    seeds = [r["seed"] for r in results]
    run_dirs = [Path(r["run_dir"]) for r in results]
    folder = out / AVERAGED_FOLDER
    print(f"protocol: the models of seeds {' '.join(map(str, seeds))} averaged, fold by fold "
          "on the records each fold held out:", flush=True)
    backend.select()
    model = folder / RUN_MODEL_FILE
    try:
        pooled = cv_rescore.rescore_run_folders(run_dirs, {})
        record = save_seed_average(run_dirs, seeds, pooled, model)
        print(f"protocol: the seeds' models averaged in one file: {model}", flush=True)
        never_seen = never_seen_figures(model, external, folder / "external", bootstrap)
    except KeyboardInterrupt:
        print("protocol: stopped while averaging the seeds' models; each seed's run is kept "
              f"({', '.join(map(str, run_dirs))})", file=sys.stderr, flush=True)
        raise
    return {
        "seeds": seeds, "model": str(model), "final_model": record.final_model,
        CHOSEN_ON: side_figures(f"{CHOSEN_ON} ({dev_label} record-grouped CV)", pooled["ec57"],
                                pooled["pooled_macro_f1"], pooled.get("confidence_intervals"),
                                bootstrap=pooled.get("bootstrap"),
                                folds=len(pooled["val_records"]),
                                held_out_records=pooled["val_records"]),
        NEVER_SEEN: never_seen,
    }


def seed_result(seed: int, run_dir: Path, external: Side | None, out: Path,
                bootstrap: int, dev_label: str) -> dict[str, Any]:
    """Both sides' figures of the seed's final model: the k-fold CV's pooled table from its
    record, and the model scored on the external records (unless they are held back:
    None)."""
    from .cv_report import read_fold_records, record_intervals
    from .model_record import ModelRecord, record_path

    model = run_dir / RUN_MODEL_FILE
    record = ModelRecord.read(record_path(model))
    kfold = record.kfold
    over_records = record_intervals(read_fold_records(run_dir))
    never_seen = never_seen_figures(model, external, out / f"seed{seed}" / "external",
                                    bootstrap)
    return {
        "seed": seed, "run_dir": str(run_dir), "model": str(model),
        "final_model": record.final_model, "device": record.device,
        "config": record.config,
        CHOSEN_ON: side_figures(f"{CHOSEN_ON} ({dev_label} record-grouped CV)", kfold.ec57,
                                kfold.pooled_macro_f1, over_records.get("confidence_intervals"),
                                bootstrap=over_records.get("bootstrap"), folds=kfold.folds,
                                held_out_records=kfold.val_records, fold_values=kfold.values,
                                metric=record.metric, mean=kfold.mean),
        NEVER_SEEN: never_seen,
    }


# --- the record of the protocol --------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {"platform": platform.platform(), "processor": platform.processor() or None,
            "cpus": os.cpu_count(), "python": platform.python_version()}


def dev_label(records: list[str]) -> str:
    """How the chosen-on side is named: DS1 when its records are DS1's, a count of DS1's
    records when they are some of them."""
    from .data import records as mitbih

    names, ds1 = set(records), set(mitbih.DS1)
    if not names or not names <= ds1:
        return "development records'"
    return "DS1" if names == ds1 else f"{len(names)} of DS1's {len(ds1)} records'"


def side_summary(side: Side, summary: dict[str, Any]) -> dict[str, Any]:
    """A side's records as protocol.json names them."""
    return {"source": str(side.src), "data": str(side.csv),
            "records": list(summary["records"][side.split]),
            "counts": summary["counts"][side.split],
            "leads": {n: info["lead"] for n, info in summary["per_record"].items()},
            "lead_choice": summary["method"]["lead"],
            "qrs_up": summary["method"]["qrs_up"],
            "inverted": [n for n, info in summary["per_record"].items() if info["inverted"]],
            "second_leads": {n: info["second_lead"] for n, info in summary["per_record"].items()
                             if "second_lead" in info},
            "skipped": dict(summary.get("skipped_records", {}))}


def held_back_summary(side: Side) -> dict[str, Any]:
    """The external side as protocol.json names it while it is held back: its folder only."""
    return {"source": str(side.src), "held_back": True}


def run_protocol(args: argparse.Namespace) -> dict[str, Any]:
    """The protocol's steps in order (see the module's text); returns protocol.json's
    document."""
    from .data.wfdb_beats import OTHER_LEAD, TWO_LEADS

    out = Path(args.out or Path("protocol") / Path(args.config).stem)
    writable_folder(out, "--out")
    # before any work: a bad file stops here (with a sweep, its values may set the folds)
    config = check_configuration(args.config, {}, folds_needed=not args.sweep)
    two_leads = int(config["beat_leads"]) == TWO_LEADS
    dev, external = _sides(Path(args.dev), Path(args.external), out, two_leads)
    for side in (dev, external):
        check_record_folder(side)
    check_sides_apart(dev.src, external.src)
    check_external_lead(external, args.external_lead)
    external_up = not args.external_as_recorded
    # the development side first: the external records are read like it
    summaries = {"dev": convert_side(dev, two_leads=two_leads)}
    if not args.hold_external:
        summaries["external"] = convert_side(external, external_up, args.external_lead,
                                             None if args.external_lead else dev, two_leads)
    # turned upright as the external records are, which the model then meets
    other_lead = other_lead_side(dev) if config["other_lead_data"] else None
    if other_lead:
        summaries["dev_other_lead"] = convert_side(other_lead, True, OTHER_LEAD)
    choice = sweep_choice(args.sweep, args.count, dev, out) if args.sweep else None
    chosen = chosen_values(choice)
    check_configuration(args.config, chosen)
    label = dev_label(summaries["dev"]["records"]["train"])
    scored = None if args.hold_external else external
    seeds = []
    for seed in dict.fromkeys(args.seed or DEFAULT_SEEDS):
        run_dir = train_seed(seed, args.config, chosen, dev, out, other_lead)
        seeds.append(seed_result(seed, run_dir, scored, out, args.bootstrap, label))
    averaged = (seeds_averaged(seeds, scored, out, args.bootstrap, label)
                if len(seeds) > 1 else None)
    earlier_average = out / AVERAGED_FOLDER / RUN_MODEL_FILE
    if averaged is None and earlier_average.is_file():
        print(f"protocol: note: {earlier_average} averages the seeds of an earlier run; this "
              f"run's final model is its one seed's, {seeds[0]['model']}", flush=True)
    document = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "machine": machine(),
                "config_file": args.config, "sweep": choice, "chosen": chosen,
                "dev": side_summary(dev, summaries["dev"]),
                "external": (held_back_summary(external) if args.hold_external
                             else side_summary(external, summaries["external"])),
                "dev_other_lead": (side_summary(other_lead, summaries["dev_other_lead"])
                                   if other_lead else None), "seeds": seeds,
                "seeds_averaged": averaged}
    write_text_whole(out / PROTOCOL_FILE, json.dumps(document, indent=2, default=str) + "\n")
    write_text_whole(out / REPORT_FILE, markdown(document) + "\n")
    print(f"protocol: wrote {out / PROTOCOL_FILE} and {out / REPORT_FILE}", flush=True)
    if args.hold_external:
        print(f"protocol: the never-seen records ({external.src}) are held back: decide on "
              f"the chosen-on figures; then {THEN_SCORE}", flush=True)
    return document


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog("protocol.py", "protocol"), description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", required=True, metavar="DIR",
                        help="WFDB records (.hea, .dat, .atr) to develop and choose on, e.g. "
                             "../shared/data/mitdb-ds1")
    parser.add_argument("--external", required=True, metavar="DIR",
                        help="WFDB records no choice looks at, scored once at the end, e.g. "
                             "../shared/data/svdb-even")
    parser.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE",
                        help=f"the training configuration (default {DEFAULT_CONFIG})")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="where the data, models and reports go (default protocol/<the "
                             "config file's name>)")
    parser.add_argument("--sweep", default=None, metavar="YAML",
                        help="first run this sweep offline on the development data and take "
                             "its best finished run's parameters")
    parser.add_argument("--count", type=positive_int, default=None, metavar="N",
                        help="runs of the --sweep (needed with it)")
    parser.add_argument("--seed", type=int, action="append", metavar="N",
                        help="seed of the final training; repeat for several (default 42)")
    parser.add_argument("--external-lead", default=None, metavar="NAME",
                        help="read this lead of every external record, as its header names it "
                             "(code/data.py wfdb --lead; default: MLII, else the lead whose "
                             "beats look most like the development beats, --lead-like)")
    parser.add_argument("--external-as-recorded", action="store_true",
                        help="convert the external records as recorded; by default each one "
                             "whose QRS points down in the lead read is turned upside down "
                             "(code/data.py wfdb --qrs-up), as the development records' MLII "
                             "points up")
    parser.add_argument("--hold-external", action="store_true",
                        help="train and report the chosen-on side only, the external records "
                             "neither converted nor scored, so a choice is made before their "
                             f"figures exist; {THEN_SCORE}")
    parser.add_argument("--bootstrap", type=positive_int, default=1000, metavar="N",
                        help="bootstrap draws of the never-seen intervals (default 1000; at "
                             "least 1: the protocol reports every figure with its interval)")
    return parser


def main(argv: list[str] | None = None) -> None:
    from .cli import stop_signals_interrupt

    stop_signals_interrupt()  # a stopped protocol stops the training it waits for
    parser = build_parser()
    args = parser.parse_args(argv)
    if bool(args.sweep) != (args.count is not None):
        parser.error("--sweep and --count go together: the sweep's YAML and its runs")
    run_protocol(args)
