"""Custom layers shared by the model families.

Each layer is registered with Keras under the package ``ecgsweep`` and implements
``get_config``, so a saved model that uses it reloads with
``keras.models.load_model(path, compile=False)`` once ``ecgsweep.models`` is imported.
Only ``keras.ops`` is used, so the layers run on the TensorFlow, JAX and PyTorch backends.
"""

from __future__ import annotations

import keras
from keras import ops

# Moving-average momentum of batch normalization in these families (PyTorch's default;
# Keras' 0.99 leaves the inference statistics ~30% at their initial values after 120
# steps, which in a deep residual stack turns a short or subsampled run's validation
# predictions into one class even though training accuracy is high).
BN_MOMENTUM = 0.9


@keras.saving.register_keras_serializable(package="ecgsweep")
class AttentionPooling1D(keras.layers.Layer):
    """Additive (Bahdanau-style) attention pooling over the time axis.

    For a sequence ``h`` of shape ``(batch, steps, features)``::

        score_t = v . tanh(W h_t + b)          # one scalar per time step
        alpha   = softmax(score) over t         # weights that sum to 1 over time
        output  = sum_t alpha_t h_t             # shape (batch, features)

    References: Bahdanau, Cho & Bengio 2015 (arXiv:1409.0473); Yang et al. 2016,
    "Hierarchical Attention Networks for Document Classification" (attention pooling of
    recurrent states with a learned context vector).

    ``layer(x, return_attention=True)`` returns ``(output, alpha)`` with ``alpha`` of shape
    ``(batch, steps)``, for inspecting where the model looks in a beat.
    """

    def __init__(self, units: int = 64, **kwargs):
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"AttentionPooling1D: units must be >= 1, got {units!r}")
        self.units = int(units)
        self.supports_masking = False

    def build(self, input_shape):
        features = int(input_shape[-1])
        self.w = self.add_weight(name="w", shape=(features, self.units),
                                 initializer="glorot_uniform")
        self.b = self.add_weight(name="b", shape=(self.units,), initializer="zeros")
        self.v = self.add_weight(name="v", shape=(self.units,), initializer="glorot_uniform")

    def attention_weights(self, inputs):
        """Softmax weights over the time axis, shape ``(batch, steps)``."""
        hidden = ops.tanh(ops.matmul(inputs, self.w) + self.b)       # (batch, steps, units)
        scores = ops.sum(hidden * self.v, axis=-1)                    # (batch, steps)
        # Softmax in float32 so mixed precision does not lose probability mass.
        alpha = ops.softmax(ops.cast(scores, "float32"), axis=-1)
        return ops.cast(alpha, inputs.dtype)

    def call(self, inputs, return_attention: bool = False):
        alpha = self.attention_weights(inputs)
        pooled = ops.sum(inputs * ops.expand_dims(alpha, -1), axis=1)
        if return_attention:
            return pooled, alpha
        return pooled

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units})
        return config


def conv_stack(x, config, prefix: str = "conv"):
    """The convolutional front of the hybrid families (cnn_lstm, cnn_bilstm_attention).

    ``n_conv_blocks`` blocks of Conv1D(``n_filters``, ``kernel_size``, same padding),
    optional batch normalization, ReLU and max-pooling by 2. Pooling stops once the
    sequence is shorter than 4 steps, so deep stacks still fit a short beat.
    """
    use_bn = config["batch_norm"]
    for block in range(config["n_conv_blocks"]):
        name = f"{prefix}{block + 1}"
        x = keras.layers.Conv1D(config["n_filters"], config["kernel_size"],
                                padding="same", use_bias=not use_bn, name=name)(x)
        if use_bn:
            x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
        x = keras.layers.Activation("relu", name=f"{name}_relu")(x)
        if x.shape[1] is not None and x.shape[1] >= 4:
            x = keras.layers.MaxPooling1D(pool_size=2, name=f"{name}_pool")(x)
    return x
