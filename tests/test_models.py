"""Every model family builds from its defaults and from extreme values, and trains a step."""

import numpy as np
import pytest

from ecgsweep import models, params
from ecgsweep.config import ConfigError, resolve

# Families that read one beat; the sequence families (seq2seq) read windows of beats and
# have their own tests (test_seq2seq.py).
FAMILIES = sorted(set(params.FAMILY_PARAMS) - set(params.SEQUENCE_FAMILIES))


def _extremes(family: str) -> list[dict]:
    """Every numeric parameter of the family at its low bound together, then at its high
    bound (capped so the test stays small), then every choice of every categorical one."""
    caps = {"rnn_units": 16, "layer_FC_size": 16, "rnn_layers": 2}
    low, high, variants = {}, {}, []
    for p in params.FAMILY_PARAMS[family]:
        if p.choices:
            variants += [{p.name: c} for c in p.choices]
        elif p.kind is bool:
            low[p.name], high[p.name] = False, True
        elif p.kind in (int, float) and p.low is not None:
            low[p.name] = p.kind(p.low)
            high[p.name] = p.kind(min(p.high, caps.get(p.name, 8 if p.kind is int else p.high)))
    return [{}, low, high, *variants]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("n_classes", [5, 2])
def test_family_builds_and_trains_one_step(family, n_classes):
    import keras

    config = resolve({"model": family})
    model = models.build(config, (187, 1), n_classes)
    assert model.input_shape == (None, 187, 1)
    assert model.output_shape == (None, n_classes)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    X = rng.random((8, 187, 1), dtype=np.float32)
    y = rng.integers(0, n_classes, 8)
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch(X, y)
    assert np.isfinite(float(np.asarray(loss).ravel()[0]))
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))
    probs = np.asarray(model(X, training=False))
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    keras.backend.clear_session()


@pytest.mark.parametrize("family", FAMILIES)
def test_family_builds_at_extreme_values(family):
    import keras

    for variant in _extremes(family):
        config = resolve({"model": family, **variant})
        model = models.build(config, (187, 1), 5)
        out = model(np.zeros((2, 187, 1), np.float32), training=False)
        assert tuple(out.shape) == (2, 5), variant
        keras.backend.clear_session()


def test_cnn_hyperparameters_shape_the_network():
    small = models.build(resolve({"n_conv_blocks": 1, "layer_1_size": 4, "layer_FC_size": 0}),
                         (187, 1), 5)
    big = models.build(resolve({"n_conv_blocks": 3, "layer_1_size": 16, "convs_per_block": 2}),
                       (187, 1), 5)
    convs = [l for l in big.layers if l.__class__.__name__ == "Conv1D"]
    assert len(convs) == 6 and convs[0].filters == 16
    assert small.count_params() < big.count_params()


def test_unknown_family_lists_the_known_ones():
    with pytest.raises(ConfigError, match="choose one of: .*cnn.*rnn"):
        models.build({"model": "mlp"}, (187, 1), 5)
