"""Model families: a registry from ``config['model']`` to a builder.

Every family exposes ``build(config, input_shape, n_classes) -> keras.Model`` using only
Keras 3 layers and ``keras.ops``, so the same file runs on the TensorFlow, JAX or PyTorch
backend. Hyperparameters and their allowed values live in ``ecgsweep.params``.

A sequence family (``SEQUENCE_FAMILIES``: seq2seq) reads a window of beats and predicts
each of them; its builder also takes ``n_rr`` and joins the RR features per beat itself,
where the other families get ``with_rr_branch``.
"""

from __future__ import annotations

import importlib
from typing import Any, Mapping

from ..config import ConfigError
from ..params import FAMILY_PARAMS, SEQUENCE_FAMILIES
# Custom layers register themselves with Keras on import, so that
# keras.models.load_model(path, compile=False) works once this package is imported.
from . import layers  # noqa: F401

# config['model'] -> module in this package holding its build(); imported on demand so that
# importing the registry does not import every family's dependencies.
FAMILY_MODULES: dict[str, str] = {
    "cnn": "cnn",
    "rnn": "rnn",
    "cnet": "cnet",
    "cnn_lstm": "cnn_lstm",
    "cnn_bilstm_attention": "cnn_bilstm_attention",
    "dualpath_resnet": "dualpath_resnet",
    "seq2seq": "seq2seq",
}


def build(config: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int):
    """Build the model family named by ``config['model']``; returns an uncompiled keras.Model."""
    name = config.get("model")
    if name not in FAMILY_MODULES:
        raise ConfigError(f"config key 'model': {name!r} is not a known model family; "
                          f"choose one of: {', '.join(sorted(FAMILY_MODULES))}")
    if name not in FAMILY_PARAMS:
        raise ConfigError(f"model family {name!r} has no parameter schema in ecgsweep.params")
    module = importlib.import_module(f".{FAMILY_MODULES[name]}", __name__)
    if name in SEQUENCE_FAMILIES:
        return module.build(config, input_shape, n_classes, n_rr=rr_width(config))
    model = module.build(config, input_shape, n_classes)
    if config.get("rr_features"):
        model = with_rr_branch(model, rr_width(config), n_classes,
                               config.get("beat_dropout", 0.0))
    return model


def rr_width(config: Mapping[str, Any]) -> int:
    """RR features per beat the model reads (0 without ``rr_features``)."""
    if not config.get("rr_features"):
        return 0
    from ..data.sidecar import RR_COLUMNS_BY_NORMALIZATION

    return len(RR_COLUMNS_BY_NORMALIZATION[config.get("rr_normalization", "record")])


RR_BRANCH_UNITS = 32


def with_rr_branch(model, n_rr: int, n_classes: int, beat_dropout: float = 0.0):
    """The family's network with a second input, the beat's RR-interval features: a small
    dense branch merged with the beat's features just before the softmax, so rhythm (a
    premature beat) and shape (the beat's waveform) are judged together. Works for every
    family, as each ends in the shared head's ``probabilities`` layer.

    ``beat_dropout`` > 0 zeroes the whole waveform feature vector of that share of the
    training beats (one draw per beat, not per unit): the waveform of the training patients'
    few S beats is easy to memorize, and without this the head can ignore the rhythm that
    marks a premature beat in any patient. Inactive at inference."""
    import keras
    from keras import layers as kl  # not `layers`: that name is this package's module

    beat = model.inputs[0]
    features = model.get_layer("probabilities").input
    if beat_dropout > 0:
        features = kl.Dropout(beat_dropout, noise_shape=(None, 1), name="beat_dropout")(features)
    rr = keras.Input(shape=(n_rr,), name="rr")
    r = kl.Dense(RR_BRANCH_UNITS, activation="relu", name="rr_dense1")(rr)
    r = kl.Dense(RR_BRANCH_UNITS // 2, activation="relu", name="rr_dense2")(r)
    x = kl.Concatenate(name="beat_and_rr")([features, r])
    x = kl.Dense(RR_BRANCH_UNITS, activation="relu", name="beat_and_rr_dense")(x)
    outputs = kl.Dense(n_classes, activation="softmax", dtype="float32",
                           name="probabilities_rr")(x)
    return keras.Model({"beat": beat, "rr": rr}, outputs, name=f"{model.name}_rr")
