"""The residual 1-D CNN of Kachuee, Fazeli & Sarrafzadeh (2018) for single heartbeats.

Reference: M. Kachuee, S. Fazeli, M. Sarrafzadeh, "ECG Heartbeat Classification: A Deep
Transferable Representation", IEEE ICHI 2018, arXiv:1805.00794. It is the network that
introduced the Kaggle MIT-BIH / PTBDB heartbeat CSVs this project reads.

At the defaults the network is the paper's::

    Conv1D(32, 5)
    5 x residual block:  Conv1D(32, 5) -> ReLU -> Conv1D(32, 5) -> + skip -> ReLU
                         -> MaxPool1D(5, stride 2)
    Flatten -> Dense(32) -> ReLU -> Dense(32) -> ReLU -> Dense(n_classes) softmax

Sweepable: ``n_res_blocks`` (depth), ``n_filters`` (width), ``kernel_size``,
``layer_FC_size`` (width of each dense layer), ``n_dense_layers`` and ``dropout_rate``
(0 in the paper). A residual block whose input is shorter than the pooling window skips
the pooling, so more than five blocks still fit a short beat.
"""

from __future__ import annotations

from typing import Any, Mapping

import keras
from keras import layers

from .head import beat_input, classification_head

POOL_SIZE, POOL_STRIDE = 5, 2  # the paper's max-pooling


def residual_block(x, filters: int, kernel: int, name: str):
    """conv -> ReLU -> conv -> add skip -> ReLU -> max-pool(5, stride 2)."""
    skip = x
    y = layers.Conv1D(filters, kernel, padding="same", name=f"{name}_conv1")(x)
    y = layers.Activation("relu", name=f"{name}_relu1")(y)
    y = layers.Conv1D(filters, kernel, padding="same", name=f"{name}_conv2")(y)
    y = layers.Add(name=f"{name}_add")([y, skip])
    y = layers.Activation("relu", name=f"{name}_relu2")(y)
    if y.shape[1] is not None and y.shape[1] >= POOL_SIZE:
        y = layers.MaxPooling1D(POOL_SIZE, strides=POOL_STRIDE, name=f"{name}_pool")(y)
    return y


def build(config: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int) -> keras.Model:
    filters, kernel = config["n_filters"], config["kernel_size"]
    inputs = beat_input(input_shape)
    # The stem brings the beat to `filters` channels so the first skip connection adds up.
    x = layers.Conv1D(filters, kernel, padding="same", name="stem_conv")(inputs)
    for block in range(config["n_res_blocks"]):
        x = residual_block(x, filters, kernel, name=f"res{block + 1}")
    x = layers.Flatten(name="flatten")(x)

    # n_dense_layers dense layers of layer_FC_size units; the last one (and the softmax)
    # come from the shared head, so dropout sits before every dense layer.
    n_dense = config["n_dense_layers"] if config["layer_FC_size"] > 0 else 0
    rate = config["dropout_rate"]
    for i in range(n_dense - 1):
        if rate > 0:
            x = layers.Dropout(rate, name=f"fc{i + 1}_dropout")(x)
        x = layers.Dense(config["layer_FC_size"], activation="relu", name=f"fc{i + 1}")(x)
    head_config = dict(config) if n_dense >= 1 else {**config, "layer_FC_size": 0}
    outputs = classification_head(x, head_config, n_classes, activation="relu")
    return keras.Model(inputs, outputs, name="cnet")
