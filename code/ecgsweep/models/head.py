"""The classification head several families share: dropout, optional dense, softmax."""

from __future__ import annotations

from typing import Any, Mapping

import keras
from keras import layers


def classification_head(x, config: Mapping[str, Any], n_classes: int, activation: str = "relu"):
    """Dropout, a dense layer of ``layer_FC_size`` units (0: none), then the softmax.

    The softmax is computed in float32 so mixed precision does not lose probability mass.
    """
    rate = config["dropout_rate"]
    if rate > 0:
        x = layers.Dropout(rate)(x)
    if config["layer_FC_size"] > 0:
        x = layers.Dense(config["layer_FC_size"], activation=activation)(x)
        if rate > 0:
            x = layers.Dropout(rate)(x)
    return layers.Dense(n_classes, activation="softmax", dtype="float32", name="probabilities")(x)


def beat_input(input_shape: tuple[int, ...]) -> keras.KerasTensor:
    return keras.Input(shape=tuple(input_shape), name="beat")
