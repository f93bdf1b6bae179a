"""What a run checks and loads before it trains, in this order: the config's cross-setting
rules (``params.COMBINATION_RULES``: before any data is read), the development beats in the
config's protocol with the checks that need their classes or their beat sidecar, and the
pretrained model it starts from. Whatever it refuses is one ``UserError`` line."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from . import backend, ec57, params
from .cli import UserError, writable_folder
from .data.datasets import DataSource, Split


def check_combinations(config: dict[str, Any]) -> None:
    """Refuse settings that cannot run together (``params.combination_problems``), before
    the data is read; the first problem's message is the error, naming the ``config_file``
    when it set one of the keys."""
    from .config import read_config_file

    problems = params.combination_problems(config)
    if problems:
        file_name = str(config.get("config_file") or "")
        from_file = read_config_file(file_name) if file_name else {}
        named = any(key in from_file for key in problems[0].keys)
        raise UserError(f"{file_name}: " * named + problems[0].message)


@dataclass(frozen=True)
class ProtocolData:
    """The development beats in the config's class set, the names of their classes, and
    (``other_lead_data``) the same records' beats in another lead, for training only."""

    dev: Split
    class_names: tuple[str, ...]
    other_lead: Split | None = None


def load_protocol_data(config: dict[str, Any], source: DataSource) -> ProtocolData:
    """The development beats in the config's class set (aami4 drops Q) and their class
    names. Options that read the beat sidecar (``params.OPTION_NEEDS``) need one, and
    options that act on some classes need those classes: a clear error otherwise."""
    from .data import datasets

    check_class_set(config, source)
    dev = datasets.load_development(source)
    dev = datasets.restrict_classes(dev, source.class_names, config["classes"])
    class_names = datasets.class_names_for(source.class_names, config["classes"])
    check_classes(config, class_names)
    check_objective(config, class_names)
    check_sidecar(config, dev, source)
    check_leads(config, dev, source)
    return ProtocolData(dev, class_names)


def check_leads(config: dict[str, Any], dev: Split, source: DataSource) -> None:
    """The rows hold ``beat_leads`` leads: their width divides, and a converted folder's
    ``split.json`` says as many leads per row."""
    from .data import beatnorm, wfdb_beats

    leads = int(config["beat_leads"])
    where = ", ".join(source.development_files()) or source.name
    try:
        beatnorm.beat_width(int(dev.X.shape[1]), leads)
    except ValueError as e:
        raise UserError(f"config key 'beat_leads': {leads}: {where}: {e}; convert the records "
                        "with `code/data.py wfdb --two-leads`") from None
    for path in source.development_files():
        method = wfdb_beats.conversion_method(Path(path).parent)
        converted = wfdb_beats.layout_value(method, "leads") if method else leads
        if converted != leads:
            summary = Path(path).parent / wfdb_beats.SUMMARY_FILE
            raise UserError(f"config key 'beat_leads': {leads}, but {path} was converted with "
                            f"{converted} lead(s) per row ({summary}); "
                            f"set beat_leads={converted} or convert it again"
                            + (" with --two-leads" if leads == wfdb_beats.TWO_LEADS
                               else " without --two-leads"))


def load_other_lead(config: dict[str, Any], dev: Split) -> Split | None:
    """The beats of ``other_lead_data`` in the config's class set, checked against the
    development beats (``other_lead.checked``); None when the key is empty."""
    from .data import datasets, other_lead

    where = config["other_lead_data"]
    if not where:
        return None
    if not Path(where).exists():
        raise UserError(f"config key 'other_lead_data': {where}: no such folder or file")
    other_source = datasets.resolve_source(str(where))
    other = datasets.load_development(other_source)
    other = datasets.restrict_classes(other, other_source.class_names, config["classes"])
    return other_lead.checked(other, dev, where)


def check_sidecar(config: dict[str, Any], dev: Split, source: DataSource) -> None:
    """Every option the config turns on finds the sidecar field it reads."""
    need = params.missing_sidecar_need(config, dev)
    if need is None:
        return
    from .data.sidecar import sidecar_path

    data = source.files.get("train", source.name)
    missing = f" ({sidecar_path(data)} missing)" if "train" in source.files else ""
    raise UserError(f"config key '{need.key}': {config[need.key]} {need.says()}, from the beat "
                    "sidecar (<name>.beats.csv, written by `python code/data.py wfdb`); the "
                    f"data ({data}) has none{missing}")


def check_class_set(config: dict[str, Any], source: DataSource) -> None:
    """``classes: aami4`` on data whose classes are not MIT-BIH's is refused: it has no Q
    beats to drop, and a run would train on every class while it says N S V F."""
    from .data import classes, datasets

    if datasets.class_set_fits(source.class_names, config["classes"]):
        return
    has = (f"has the classes {', '.join(source.class_names)}" if source.class_names else
           f"names no classes (name them {' '.join(classes.MITBIH_CLASSES)} in "
           f"{classes.classes_path(source.files.get('train', source.name))} if they are "
           "MIT-BIH's)")
    raise UserError(f"config key 'classes': {config['classes']} drops MIT-BIH's "
                    f"{datasets.AAMI4_DROPPED} beats, but data set {source.name!r} {has}; set "
                    "classes=aami5 to keep every class of the data")


def check_classes(config: dict[str, Any], class_names: Sequence[str]) -> None:
    """Every option the config turns on finds the classes it acts on
    (``params.OPTION_NEEDS``)."""
    need = params.missing_classes(config, class_names)
    if need is not None:
        raise UserError(f"config key '{need.key}': {config[need.key]} {need.does}, but the "
                        f"data's classes are {', '.join(class_names)}; set it to 0")


def check_objective(config: dict[str, Any], class_names: Sequence[str]) -> None:
    """sveb_veb_f1 scores the EC57 SVEB and VEB rows: the classes must include S and V."""
    if config["objective"] == "sveb_veb_f1" and not ec57.has_ec57_rows(class_names):
        raise UserError(f"config key 'objective': sveb_veb_f1 is the mean F1 of classes S and "
                        f"V, but the data's classes are {', '.join(class_names)}; set "
                        "objective=macro_f1")


def check_pretrained(config: dict[str, Any], input_width: int) -> dict[str, Any] | None:
    """Validate ``pretrained`` once, before any training; returns what the record keeps."""
    from . import artifacts, transfer

    if not params.pretrained_set(config["pretrained"]):
        return None
    path = Path(config["pretrained"])
    slot = artifacts.BestModelSlot(config["models_dir"], config["model"])
    if path.exists() and slot.model_path.exists() and path.resolve() == slot.model_path.resolve():
        raise UserError(f"config key 'pretrained': {path} is the best-model file this run would "
                        f"replace (models_dir={config['models_dir']}, model={config['model']}); "
                        f"pass another models_dir, e.g. --models_dir={config['models_dir']}/transfer")
    model = transfer.load_pretrained(path, input_width)
    layer = transfer.feature_layer(model, f"config key 'pretrained': {path}")
    source = _pretrained_source(path)
    if source.get("model") and source["model"] != config["model"]:
        raise UserError(f"config key 'pretrained': {path} is a {source['model']} model (its "
                        f"record says so), but model={config['model']}: the run would be "
                        f"named and kept as {config['model']}; set model={source['model']}")
    info = {"pretrained": str(path), "sha256": artifacts.sha256_file(path),
            "feature_layer": layer.name, "freeze_epochs": int(config["freeze_epochs"]),
            "fine_tune_lr_factor": float(config["fine_tune_lr_factor"]), "source": source}
    trained_on = f", {source['model']} trained on {source['dataset']}" if source.get("dataset") else ""
    print(f"transfer: feature layers of {path}{trained_on}, up to layer {layer.name!r}; "
          f"{transfer_plan(config)}", flush=True)
    if source.get("dataset") and source["dataset"] == config["dataset"]:
        # models/<model>/best.keras follows the data trained on last, which may be this one
        print(f"note: {path} was trained on {source['dataset']}, the data set this run trains "
              "on, so this fine-tunes it rather than transferring from another data set; name "
              f"the source data set's own slot, {slot.folder}/<data-key>/best.keras, to "
              "start from it", flush=True)
    return info


def transfer_plan(config: dict[str, Any]) -> str:
    """What the epochs of a transfer run do, as ``training.fit`` runs them."""
    from .training import frozen_epochs

    epochs = int(config["epochs"])
    frozen = frozen_epochs(config["freeze_epochs"], epochs)
    all_layers = f"all layers at learning rate x {config['fine_tune_lr_factor']}"
    if frozen == epochs:
        return (f"new head trained alone for all {epochs} epoch(s) (freeze_epochs "
                f"{config['freeze_epochs']} >= epochs): the feature layers are never fine-tuned")
    if frozen == 0:
        return f"{all_layers} from epoch 1 (freeze_epochs 0: no frozen phase)"
    return (f"new head trained alone for {frozen} epoch(s), then {all_layers} to epoch "
            f"{epochs}")


def _pretrained_source(path: Path) -> dict[str, Any]:
    """What the pretrained model's record says of it (nothing when it has no record); a
    damaged record is an error naming it."""
    from .model_record import DamagedRecord, ModelRecord, record_path

    side = record_path(path)
    if not side.is_file():
        return {}
    try:
        record = ModelRecord.read(side)
    except DamagedRecord as e:
        raise UserError(f"config key 'pretrained': {e}") from None
    except OSError:
        return {}
    return {"model": record.family, "dataset": record.dataset.name, "run_id": record.run_id,
            "value": record.value}


@dataclass
class RunContext:
    """What every step of one run reads: the W&B run, its config, folders, data and device."""

    run: Any
    config: dict[str, Any]
    stop: Any  # training.StopRequest
    device: str
    source: DataSource
    data: ProtocolData
    folds: int  # k for k-fold, 0 for one split
    transfer_info: dict[str, Any] | None

    @property
    def dev(self) -> Split:
        return self.data.dev

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.data.class_names

    @property
    def files_dir(self) -> Path:
        return Path(self.run.dir)

    @property
    def run_dir(self) -> Path:
        return self.files_dir.parent

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def tag(self, fold) -> str:
        return f"fold {fold.index}/{self.folds}: " if self.folds else ""


def prepare(run, config: dict[str, Any], stop) -> RunContext:
    """The config's rules, the device, the data in the config's protocol, and the
    pretrained model's check."""
    from .data import datasets

    check_combinations(config)
    # before the data is read and the model trained: the promoted model goes there
    writable_folder(config["models_dir"], "config key models_dir:")
    device = backend.configure_device(config["mixed_precision"]).describe()
    print(f"run {run.id}: {config['model']} on {config['dataset']}, training on {device}",
          flush=True)
    source = datasets.resolve_source(config["dataset"], config["data_dir"])
    data = load_protocol_data(config, source)
    data = replace(data, other_lead=load_other_lead(config, data.dev))
    transfer_info = check_pretrained(config, int(data.dev.X.shape[1]))
    k = int(config["folds"]) if int(config["folds"]) >= 2 else 0
    if k:
        print(f"{k}-fold cross-validation on {len(data.dev)} development beats (val_fraction "
              "unused); the run's metrics are the means over the folds", flush=True)
    return RunContext(run, config, stop, device, source, data, k, transfer_info)
