"""The models an evaluation scores: each loaded with its record, checked against the test
data, and fed the inputs its training config names; several together form an ensemble
whose class probabilities are averaged."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import params, prior_shift
from ..artifacts import MODEL_FILE, ModelPair, unloadable_model
from ..cli import UserError
from ..data.datasets import Split
from ..model_record import ModelRecord, record_path


@dataclass(frozen=True)


class LoadedModel:
    """A model file, the Keras model in it, and its record (empty when it has none)."""

    path: Path
    model: Any  # keras.Model
    record: ModelRecord

    @property
    def class_names(self) -> list[str]:
        return list(self.record.class_names)


def read_record(model_path: Path) -> ModelRecord:
    """The record saved beside a model (an empty one when there is none); for a best.keras
    the pair is verified first."""
    if model_path.name == MODEL_FILE:
        record = ModelPair(model_path.resolve().parent).read()  # follows the family's link
        if record is not None:
            return record
    side = record_path(model_path)
    if side.is_file():
        return ModelRecord.read(side)
    return ModelRecord()


def numbered_class_names(n: int) -> list[str]:
    """The class names of a model with no record of them: its outputs' numbers."""
    return [str(i) for i in range(n)]


def load_model(path: str | Path) -> LoadedModel:
    import keras

    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: a folder, not a model file; pass the path of a .keras file "
                        f"(a run's folder holds model.keras, a models folder "
                        "<model>/best.keras)")
    if not path.is_file():
        raise UserError(f"{path}: no such model file. Train one first (`make sweep` or "
                        "`python code/train.py`), or pass the path of a .keras file")
    record = read_record(path)
    from .. import models as _families  # noqa: F401  (registers custom layers, if any)

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as e:  # keras raises many types for a file that is not a model
        raise unloadable_model(path, e) from None
    if not record.class_names:  # no record of them: the classes are the outputs' numbers
        n_out = int(model.output_shape[-1])
        record = dataclasses.replace(record, class_names=numbered_class_names(n_out))
    return LoadedModel(path, model, record)


def with_settings(member: LoadedModel, settings: dict[str, Any]) -> LoadedModel:
    """``member`` with the steps after its model set to ``settings``
    (``config.parse_settings``) instead of the values it was trained with; a clear
    error when a step given acts on a class the model does not predict."""
    if not settings:
        return member
    config = {**member.record.config, **settings}
    need = params.missing_classes(config, member.class_names)
    if need is not None:
        raise UserError(f"--set {need.key}={config[need.key]} {need.does}, but {member.path} "
                        f"predicts the classes {', '.join(member.class_names)}")
    return dataclasses.replace(member, record=dataclasses.replace(member.record, config=config))


def changed_settings(member: LoadedModel, settings: dict[str, Any]) -> str:
    """One line: each setting given, and the value the model was trained with."""
    every = params.all_params()
    trained = member.record.config
    return ", ".join(f"{key}={value} (trained with {trained.get(key, every[key].default)})"
                     for key, value in settings.items()) or "as trained"


def model_source(record: ModelRecord) -> dict[str, Any]:
    """What report.json says of a model scored: the run that made it, what the file is
    (a k-fold run's ``final_model``, a seeds' average), its family and its objective's
    value where it was chosen."""
    return {"run_id": record.run_id, "run_dir": record.run_dir,
            "final_model": record.final_model, "model": record.family,
            "metric": record.metric, "value": record.value}


def chosen_on(record: ModelRecord) -> str | None:
    """The data set a model was selected on, as one line (None when unrecorded)."""
    dataset = record.dataset
    if not dataset.recorded():
        return None
    files = ", ".join(f"{k}: {v}" for k, v in dataset.files.items())
    return (f"chosen on data set {dataset.name}" + (f" ({files})" if files else "")
            + f", fingerprint {dataset.fingerprint}")


def beat_width(model) -> int | None:
    """Samples per beat the model reads: the last axis but one of its beat input, which is
    (batch, width, 1), or (batch, seq_window, width, 1) for a sequence model."""
    beat = next((i for i in model.inputs if i.name == "beat"), model.inputs[0])
    return beat.shape[-2]


def check_fit(loaded: LoadedModel, split: Split, source: str) -> None:
    """A clear message when the model cannot score this data (beat width or class labels)."""
    expected_len = beat_width(loaded.model)
    leads = int(loaded.record.config.get("beat_leads", 1))
    if expected_len is not None and split.X.shape[1] != expected_len * leads:
        in_leads = f" in each of {leads} leads" if leads > 1 else ""
        raise UserError(f"{loaded.path} expects beats of {expected_len} samples{in_leads} "
                        f"({expected_len * leads} per row, before the label) but {source} has "
                        f"{split.X.shape[1]}"
                        + ("; convert it with `code/data.py wfdb --two-leads`" if leads > 1
                           else ""))
    n_out = int(loaded.model.output_shape[-1])
    if len(split.y) and int(split.y.max()) >= n_out:
        raise UserError(f"{loaded.path} predicts {n_out} classes ({', '.join(loaded.class_names)}) "
                        f"but {source} has label {int(split.y.max())}; was the model trained on "
                        "another data set?")


def check_sidecar_needs(path: Path, config: dict[str, Any], split: Split) -> None:
    """A clear error when the model at ``path`` (trained with ``config``) needs a sidecar
    field (``params.OPTION_NEEDS``) that ``split`` lacks."""
    need = params.missing_sidecar_need(config, split)
    if need is not None:
        raise UserError(f"{path} runs with {need.key}={config[need.key]}, which "
                        f"{need.says()}: "
                        "give test beats with their beat sidecar (<name>.beats.csv), as "
                        "`python code/data.py wfdb` writes them")


def predict_proba(members: Sequence[LoadedModel], data: "np.ndarray | Split",
                  batch_size: int = 1024) -> np.ndarray:
    """Mean class probabilities over the members (one member: its own probabilities). Each
    member is fed the inputs its training config names (the beats; with rr_features also
    the RR features of ``data``, a Split with a beat sidecar; a sequence model its windows,
    mapped back to one row per beat).

    The steps after the model (the S gate, the V templates: ``training.per_record_steps``)
    run once on the mean softmax output of the members that share their settings, as they
    run on a k-fold run's ensemble model (``final_model``), so the fold models given
    together score as that model does; members with other settings each make a group of
    their own, and the groups' results are averaged by their number of members."""
    from ..training import model_proba, per_record_steps

    split = data if isinstance(data, Split) else Split(np.asarray(data), np.zeros(len(data), int))
    groups: dict[tuple, list[np.ndarray]] = {}
    configs: dict[tuple, dict[str, Any]] = {}
    priors: dict[tuple, list[list[float] | None]] = {}
    for m in members:
        config = m.record.config
        check_sidecar_needs(m.path, config, split)
        check_class_prior(m)
        key = per_record_settings(config)
        groups.setdefault(key, []).append(model_proba(m.model, split, config, batch_size))
        configs.setdefault(key, config)
        priors.setdefault(key, []).append(m.record.class_prior)
    total = sum(per_record_steps(np.mean(raw, axis=0), split, configs[key],
                                 prior_shift.mean_prior(priors[key])) * len(raw)
                for key, raw in groups.items())
    return total / len(members)


def check_class_prior(member: LoadedModel) -> None:
    """A clear error when a model trained with prior_adaptation has no class prior in its
    record (one written before records held it)."""
    config = member.record.config
    if params.option_on(config, "prior_adaptation") and member.record.class_prior is None:
        raise UserError(f"{member.path} runs with prior_adaptation="
                        f"{config['prior_adaptation']}, which needs the class prior the model "
                        f"was trained to, but its record ({record_path(member.path)}) has no "
                        "class_prior: train it again with this ecg-sweeps")


def per_record_settings(config: dict[str, Any]) -> tuple:
    """The values of ``config`` that the steps after the model read
    (``params.PER_RECORD_KEYS``; a key the config lacks: its default)."""
    every = params.all_params()
    return tuple(config.get(key, every[key].default) for key in params.PER_RECORD_KEYS)
