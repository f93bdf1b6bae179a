"""Recurrent networks for single heartbeats: LSTM or GRU, uni- or bidirectional, stacked.

An optional average pooling shortens the beat first (187 steps in the Kaggle layout):
recurrent layers cost time per step and cannot run in parallel along the sequence, so
``downsample: 2`` halves the training time with little loss on 125 Hz beats.
"""

from __future__ import annotations

from typing import Any, Mapping

import keras
from keras import layers

from .head import beat_input, classification_head


def build(config: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int) -> keras.Model:
    inputs = beat_input(input_shape)
    x = inputs
    if 1 < config["downsample"] <= input_shape[0]:  # a beat shorter than the pool: none
        x = layers.AveragePooling1D(pool_size=config["downsample"], name="downsample")(x)
    cell = layers.LSTM if config["rnn_cell"] == "lstm" else layers.GRU
    n_layers = config["rnn_layers"]
    for i in range(n_layers):
        recurrent = cell(config["rnn_units"], return_sequences=i < n_layers - 1,
                         name=f"{config['rnn_cell']}{i + 1}")
        if config["bidirectional"]:
            recurrent = layers.Bidirectional(recurrent, name=f"bi{config['rnn_cell']}{i + 1}")
        x = recurrent(x)
    outputs = classification_head(x, config, n_classes)
    return keras.Model(inputs, outputs, name="rnn")
