"""Every hyperparameter the training program reads, as data.

This is the one schema of ``wandb.config``: sweep YAMLs, ``code/train.py``, best.json
and the README all use these names. It imports nothing heavy, so ``sweep.py check``
can validate a YAML without loading TensorFlow.

A family's parameters are read only when that family is selected by ``model``; the
training parameters are read by every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its name, default, type and allowed values."""

    name: str
    default: Any
    kind: type  # int, float, bool or str
    help: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None  # inclusive bounds for numbers
    high: float | None = None


TRAINING_PARAMS: tuple[Param, ...] = (
    Param("model", "cnn", str, "model family (see FAMILY_PARAMS)"),
    Param("dataset", "mitbih", str,
          "mitbih | ptbdb | synthetic | a path to a Kaggle-format CSV or a folder of them"),
    Param("data_dir", "data", str, "folder holding the Kaggle CSVs"),
    Param("epochs", 10, int, "training epochs", low=1, high=10_000),
    Param("batch_size", 64, int, "beats per gradient step", low=1, high=65_536),
    Param("learning_rate", 0.001, float, "initial learning rate", low=1e-8, high=10.0),
    Param("optimizer", "adam", str, "optimizer", choices=("adam", "adamw", "sgd", "rmsprop")),
    Param("val_fraction", 0.1, float,
          "stratified share of the training file held out for validation", low=0.01, high=0.5),
    Param("class_weight", "none", str, "loss weight per class",
          choices=("none", "balanced", "sqrt")),
    Param("seed", 42, int, "seed for splits, weights and shuffling", low=0),
    Param("early_stopping_patience", 0, int,
          "stop after this many epochs without a better val_macro_f1 (0: off)", low=0),
    Param("lr_schedule", "none", str, "learning-rate schedule",
          choices=("none", "plateau", "cosine")),
    Param("mixed_precision", False, bool, "float16 compute on a GPU (ignored on CPU)"),
    Param("max_train_beats", 0, int,
          "stratified subsample of the training file for quick sweeps (0: all)", low=0),
    Param("models_dir", "models", str, "where <model>/best.keras and best.json live"),
)

# Dense head shared by the families that end in one (same name as published sweeps use).
_HEAD = (
    Param("layer_FC_size", 64, int, "width of the dense layer before the softmax (0: none)",
          low=0, high=4096),
    Param("dropout_rate", 0.2, float, "dropout before the dense layers", low=0.0, high=0.9),
)

FAMILY_PARAMS: dict[str, tuple[Param, ...]] = {
    "cnn": (
        Param("n_conv_blocks", 3, int, "convolution blocks", low=1, high=6),
        Param("layer_1_size", 32, int, "filters in block 1", low=1, high=1024),
        Param("layer_2_size", 64, int, "filters in block 2", low=1, high=1024),
        Param("layer_3_size", 128, int, "filters in block 3", low=1, high=1024),
        Param("layer_4_size", 128, int, "filters in block 4", low=1, high=1024),
        Param("layer_5_size", 256, int, "filters in block 5", low=1, high=1024),
        Param("layer_6_size", 256, int, "filters in block 6", low=1, high=1024),
        Param("kernel_size", 5, int, "kernel of the first block", low=1, high=63),
        Param("kernel_size_step", 0, int,
              "kernel change from one block to the next (e.g. -2: 7, 5, 3)", low=-16, high=16),
        Param("convs_per_block", 1, int, "convolutions in each block", low=1, high=4),
        Param("batch_norm", True, bool, "batch normalization after each convolution"),
        Param("pooling", "max", str, "pooling after each block", choices=("max", "avg", "none")),
        Param("global_pooling", "avg", str, "how the feature maps become a vector",
              choices=("avg", "max", "flatten")),
        Param("activation", "relu", str, "activation", choices=("relu", "elu", "gelu", "swish")),
        *_HEAD,
    ),
    "rnn": (
        Param("rnn_cell", "lstm", str, "recurrent cell", choices=("lstm", "gru")),
        Param("bidirectional", False, bool, "read the beat both ways"),
        Param("rnn_units", 64, int, "units per recurrent layer", low=1, high=1024),
        Param("rnn_layers", 1, int, "stacked recurrent layers", low=1, high=4),
        Param("downsample", 1, int,
              "average-pool the beat by this factor first (RNNs are slow on 187 steps)",
              low=1, high=8),
        *_HEAD,
    ),
}


def family_names() -> list[str]:
    return sorted(FAMILY_PARAMS)


def params_for(model: str) -> dict[str, Param]:
    """Training parameters plus the given family's, by name."""
    if model not in FAMILY_PARAMS:
        raise KeyError(model)
    return {p.name: p for p in (*TRAINING_PARAMS, *FAMILY_PARAMS[model])}


def all_params() -> dict[str, Param]:
    """Every parameter any run can read (training plus all families)."""
    merged: dict[str, Param] = {p.name: p for p in TRAINING_PARAMS}
    for family in FAMILY_PARAMS.values():
        for p in family:
            merged.setdefault(p.name, p)
    return merged
