"""A plain 1-D convolutional network for single heartbeats.

Blocks of Conv1D (+ batch norm) + activation, then pooling; a global pooling (or flatten)
turns the feature maps into a vector for the dense head. It covers the hyperparameters
that published MIT-BIH sweeps tune (layer_1_size..layer_3_size, layer_FC_size,
dropout_rate, learning_rate, batch_size, epochs) and adds depth, kernel sizes, batch norm
and pooling choices.
"""

from __future__ import annotations

from typing import Any, Mapping

import keras
from keras import layers

from .head import beat_input, classification_head


def build(config: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int) -> keras.Model:
    inputs = beat_input(input_shape)
    x = inputs
    use_bn = config["batch_norm"]
    for block in range(config["n_conv_blocks"]):
        filters = config[f"layer_{block + 1}_size"]
        kernel = max(1, config["kernel_size"] + block * config["kernel_size_step"])
        for conv in range(config["convs_per_block"]):
            x = layers.Conv1D(filters, kernel, padding="same", use_bias=not use_bn,
                              name=f"block{block + 1}_conv{conv + 1}")(x)
            if use_bn:
                # momentum 0.9: moving statistics settle within a short sweep run
                x = layers.BatchNormalization(momentum=0.9, name=f"block{block + 1}_bn{conv + 1}")(x)
            x = layers.Activation(config["activation"])(x)
        # Stop halving once the sequence is short, so deep nets fit a short beat.
        if config["pooling"] != "none" and x.shape[1] is not None and x.shape[1] >= 4:
            pool = layers.MaxPooling1D if config["pooling"] == "max" else layers.AveragePooling1D
            x = pool(pool_size=2, name=f"block{block + 1}_pool")(x)
    if config["global_pooling"] == "avg":
        x = layers.GlobalAveragePooling1D()(x)
    elif config["global_pooling"] == "max":
        x = layers.GlobalMaxPooling1D()(x)
    else:
        x = layers.Flatten()(x)
    outputs = classification_head(x, config, n_classes, activation=config["activation"])
    return keras.Model(inputs, outputs, name="cnn")
