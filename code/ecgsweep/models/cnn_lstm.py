"""Convolution blocks followed by stacked LSTMs, for single heartbeats.

The convolutions learn local wave shapes and shorten the sequence (max-pooling by 2 per
block), so the recurrent layers read a few dozen feature vectors instead of every sample;
the last LSTM's final state feeds the shared dense head.

References:
  S. L. Oh, E. Y. K. Ng, R. S. Tan, U. R. Acharya, "Automated diagnosis of arrhythmia
  using combination of CNN and LSTM techniques with variable length heart beats",
  Computers in Biology and Medicine 102 (2018) 278-287.
  S. Hochreiter, J. Schmidhuber, "Long Short-Term Memory", Neural Computation 9 (1997).

Sweepable: ``n_conv_blocks``, ``n_filters``, ``kernel_size``, ``batch_norm``,
``rnn_units``, ``rnn_layers``, ``layer_FC_size``, ``dropout_rate``.
"""

from __future__ import annotations

from typing import Any, Mapping

import keras
from keras import layers

from .head import beat_input, classification_head
from .layers import conv_stack


def build(config: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int) -> keras.Model:
    inputs = beat_input(input_shape)
    x = conv_stack(inputs, config)
    n_layers = config["rnn_layers"]
    for i in range(n_layers):
        x = layers.LSTM(config["rnn_units"], return_sequences=i < n_layers - 1,
                        name=f"lstm{i + 1}")(x)
    outputs = classification_head(x, config, n_classes)
    return keras.Model(inputs, outputs, name="cnn_lstm")
