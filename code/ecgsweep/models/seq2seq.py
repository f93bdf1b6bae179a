"""Sequence to sequence: a window of consecutive beats of one record in, each beat's class out.

Whether a beat is premature, or one of a run of ectopic beats, shows against its
neighbours, so this family reads ``seq_window`` consecutive beats at once
(``ecgsweep.beat_windows`` cuts the windows and maps their predictions back to beats):

    beat encoder, the same for every beat: conv_stack's blocks, flatten, dense
      (``beat_features``)
    [rr_features: each beat's RR vector through a small dense layer, joined to its features]
    encoder: bidirectional LSTM/GRU over the window, every step and the final states kept
    decoder: LSTM/GRU started from the encoder's final states, one step per beat
    attention (optional): each decoder step attends over every encoder step (dot product)
    the shared head on every step: dropout, dense, softmax -> (seq_window, n_classes)

Mousavi & Afghah feed the decoder its own previous prediction; this decoder reads the
encoder's steps instead, so a window is predicted in one pass, with no teacher forcing.

References:
  S. Mousavi, F. Afghah, "Inter- and intra-patient ECG heartbeat classification for
  arrhythmia detection: a sequence to sequence deep learning approach", ICASSP 2019
  (arXiv:1812.07421).
  I. Sutskever, O. Vinyals, Q. V. Le, "Sequence to Sequence Learning with Neural
  Networks", NeurIPS 2014 (arXiv:1409.3215).
  M.-T. Luong, H. Pham, C. D. Manning, "Effective Approaches to Attention-based Neural
  Machine Translation", EMNLP 2015 (arXiv:1508.04025).

Sweepable: ``seq_window``, ``seq_stride``, ``n_conv_blocks``, ``n_filters``,
``kernel_size``, ``batch_norm``, ``beat_features``, ``rnn_cell``, ``rnn_units``,
``attention``, ``layer_FC_size``, ``dropout_rate``.
"""

from __future__ import annotations

from typing import Any, Mapping

import keras
from keras import layers

from .head import classification_head
from .layers import BN_MOMENTUM

RR_UNITS = 16  # width of the dense layer each beat's RR vector passes through


def encode_beats(beats, config: Mapping[str, Any]):
    """(window, width, 1) beats -> (window, ``beat_features``): conv_stack's blocks on every
    beat alike. A Conv2D with a (1, k) kernel is a Conv1D run on each beat of the window
    (one set of weights for all), which traces far faster than TimeDistributed."""
    use_bn = config["batch_norm"]
    x = beats
    for block in range(config["n_conv_blocks"]):
        name = f"conv{block + 1}"
        x = layers.Conv2D(config["n_filters"], (1, config["kernel_size"]),
                          padding="same", use_bias=not use_bn, name=name)(x)
        if use_bn:
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
        x = layers.Activation("relu", name=f"{name}_relu")(x)
        if x.shape[2] is not None and x.shape[2] >= 4:
            x = layers.MaxPooling2D(pool_size=(1, 2), name=f"{name}_pool")(x)
    x = layers.Reshape((int(x.shape[1]), -1), name="beat_flatten")(x)
    return layers.Dense(config["beat_features"], activation="relu", name="beat_dense")(x)


def _recurrent(config: Mapping[str, Any], units: int, name: str, **kwargs) -> layers.Layer:
    cell = layers.LSTM if config["rnn_cell"] == "lstm" else layers.GRU
    return cell(units, return_sequences=True, name=name, **kwargs)


def encode_decode(x, config: Mapping[str, Any]):
    """Bidirectional encoder, decoder started from its final states, optional attention."""
    units = config["rnn_units"]
    encoder = layers.Bidirectional(_recurrent(config, units, "encoder", return_state=True),
                                   name="bi_encoder")
    encoded, *states = encoder(x)
    half = len(states) // 2  # forward states, then backward: (h, c) for LSTM, (h,) for GRU
    initial = [layers.Concatenate(name=f"decoder_state{i}")([states[i], states[half + i]])
               for i in range(half)]
    decoded = _recurrent(config, 2 * units, "decoder")(encoded, initial_state=initial)
    if not config["attention"]:
        return decoded
    context = layers.Attention(name="attention")([decoded, encoded])
    return layers.Concatenate(name="decoded_with_context")([decoded, context])


def build(config: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int,
          n_rr: int = 0) -> keras.Model:
    """The model: {"beat": (seq_window, *input_shape)} [and "rr": (seq_window, n_rr)] ->
    (seq_window, n_classes) probabilities."""
    window = config["seq_window"]
    beats = keras.Input(shape=(window, *input_shape), name="beat")
    x = encode_beats(beats, config)
    inputs: Any = beats
    if n_rr:
        rr = keras.Input(shape=(window, n_rr), name="rr")
        r = layers.Dense(RR_UNITS, activation="relu", name="rr_dense")(rr)
        x = layers.Concatenate(name="beat_and_rr")([x, r])
        inputs = {"beat": beats, "rr": rr}
    outputs = classification_head(encode_decode(x, config), config, n_classes)
    return keras.Model(inputs, outputs, name="seq2seq")
