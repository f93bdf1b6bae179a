"""Convolutional features, a bidirectional LSTM and attention pooling, for single heartbeats.

Convolution blocks extract local wave shapes and shorten the beat; bidirectional LSTMs
(every step returned) give each time step context from both sides; a learned additive
attention scores every step, and the softmax-weighted sum of the steps feeds the shared
dense head. The attention weights show which part of the beat (P wave, QRS, T wave) the
decision rests on: ``layer(x, return_attention=True)`` on the ``attention`` layer.

References:
  D. Bahdanau, K. Cho, Y. Bengio, "Neural Machine Translation by Jointly Learning to
  Align and Translate", ICLR 2015, arXiv:1409.0473 (additive attention).
  Z. Yang et al., "Hierarchical Attention Networks for Document Classification",
  NAACL 2016 (attention pooling of bidirectional recurrent states).
  S. Mousavi, F. Afghah, "Inter- and intra-patient ECG heartbeat classification for
  arrhythmia detection: a sequence to sequence deep learning approach", ICASSP 2019
  (convolutional features, a bidirectional recurrent encoder and attention on MIT-BIH).

Sweepable: ``n_conv_blocks``, ``n_filters``, ``kernel_size``, ``batch_norm``,
``rnn_units`` (per direction), ``rnn_layers``, ``attention_units``, ``layer_FC_size``,
``dropout_rate``.
"""

from __future__ import annotations

from typing import Any, Mapping

import keras
from keras import layers

from .head import beat_input, classification_head
from .layers import AttentionPooling1D, conv_stack


def build(config: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int) -> keras.Model:
    inputs = beat_input(input_shape)
    x = conv_stack(inputs, config)
    for i in range(config["rnn_layers"]):
        x = layers.Bidirectional(
            layers.LSTM(config["rnn_units"], return_sequences=True, name=f"lstm{i + 1}"),
            name=f"bilstm{i + 1}")(x)
    x = AttentionPooling1D(config["attention_units"], name="attention")(x)
    outputs = classification_head(x, config, n_classes)
    return keras.Model(inputs, outputs, name="cnn_bilstm_attention")
