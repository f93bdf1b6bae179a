"""A residual 1-D CNN whose blocks look at a beat at two scales, with attention pooling.

Each residual block runs two paths side by side on the same input:

* local:  Conv1D(``local_kernel_size``) -> ReLU -> Conv1D, small kernels for sharp
  features (QRS onset, notches);
* global: Conv1D(``global_kernel_size``, dilation ``global_dilation``) -> ReLU -> Conv1D,
  a wide receptive field for the slow waves (P, T) and the overall beat shape.

The paths are merged by ``path_merge`` (``add``, or ``concat`` followed by a 1x1
convolution back to ``n_filters`` channels), added to the block's input (skip
connection), passed through ReLU and max-pooled by 2. After the blocks, additive
attention pooling over time (``layers.AttentionPooling1D``) feeds the shared dense head.

References:
  K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition",
  CVPR 2016, arXiv:1512.03385 (residual blocks).
  C. Szegedy et al., "Going Deeper with Convolutions", CVPR 2015, arXiv:1409.4842
  (parallel paths with different kernel sizes, merged by concatenation).
  F. Yu, V. Koltun, "Multi-Scale Context Aggregation by Dilated Convolutions",
  ICLR 2016, arXiv:1511.07122 (dilation widens the receptive field at no extra cost).
  A. Y. Hannun et al., "Cardiologist-level arrhythmia detection and classification in
  ambulatory electrocardiograms using a deep neural network", Nature Medicine 25 (2019)
  (a residual 1-D CNN for ECG).
  D. Bahdanau, K. Cho, Y. Bengio, ICLR 2015, arXiv:1409.0473 (additive attention).

Sweepable: ``n_res_blocks``, ``n_filters``, ``local_kernel_size``,
``global_kernel_size``, ``global_dilation``, ``path_merge``, ``batch_norm``,
``attention_units``, ``layer_FC_size``, ``dropout_rate``.
"""

from __future__ import annotations

from typing import Any, Mapping

import keras
from keras import layers

from .head import beat_input, classification_head
from .layers import BN_MOMENTUM, AttentionPooling1D


def _conv(x, filters: int, kernel: int, dilation: int, use_bn: bool, name: str):
    x = layers.Conv1D(filters, kernel, padding="same", dilation_rate=dilation,
                      use_bias=not use_bn, name=name)(x)
    if use_bn:
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return x


def _path(x, filters: int, kernel: int, dilation: int, use_bn: bool, name: str):
    y = _conv(x, filters, kernel, dilation, use_bn, f"{name}_conv1")
    y = layers.Activation("relu", name=f"{name}_relu")(y)
    return _conv(y, filters, kernel, dilation, use_bn, f"{name}_conv2")


def dual_path_block(x, config: Mapping[str, Any], name: str):
    filters, use_bn = config["n_filters"], config["batch_norm"]
    local = _path(x, filters, config["local_kernel_size"], 1, use_bn, f"{name}_local")
    wide = _path(x, filters, config["global_kernel_size"], config["global_dilation"],
                 use_bn, f"{name}_global")
    if config["path_merge"] == "add":
        merged = layers.Add(name=f"{name}_merge")([local, wide])
    else:
        merged = layers.Concatenate(name=f"{name}_merge")([local, wide])
        merged = _conv(merged, filters, 1, 1, use_bn, f"{name}_project")
    y = layers.Add(name=f"{name}_skip")([merged, x])
    y = layers.Activation("relu", name=f"{name}_out")(y)
    if y.shape[1] is not None and y.shape[1] >= 4:
        y = layers.MaxPooling1D(pool_size=2, name=f"{name}_pool")(y)
    return y


def build(config: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int) -> keras.Model:
    inputs = beat_input(input_shape)
    # The stem brings the beat to n_filters channels so every skip connection adds up.
    x = _conv(inputs, config["n_filters"], config["local_kernel_size"], 1,
              config["batch_norm"], "stem_conv")
    x = layers.Activation("relu", name="stem_relu")(x)
    for block in range(config["n_res_blocks"]):
        x = dual_path_block(x, config, name=f"block{block + 1}")
    x = AttentionPooling1D(config["attention_units"], name="attention")(x)
    outputs = classification_head(x, config, n_classes)
    return keras.Model(inputs, outputs, name="dualpath_resnet")
