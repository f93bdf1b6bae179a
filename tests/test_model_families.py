"""The published-architecture families: their sweep YAMLs are valid and every setting they
can sample builds and trains; custom layers survive save/load; cnet is the paper's network;
attention weights are a distribution over time.

Kept small for 2 CPU cores: batches of 2 beats, eager single steps (no graph tracing),
``keras.backend.clear_session()`` between models.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from ecgsweep import models, params
from ecgsweep.config import resolve
from ecgsweep.contract import OBJECTIVE_METRICS, kept_metric
from ecgsweep.sweep_hooks import ECG_PROGRAM

ROOT = Path(__file__).resolve().parents[1]
BEAT = (187, 1)
SHORT_BEAT = (64, 1)  # for the many builds of the YAML extremes: eager steps cost per sample


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _models_of(cfg: dict) -> list[str]:
    spec = cfg.get("parameters", {}).get("model", {})
    if "value" in spec:
        return [spec["value"]]
    return list(spec.get("values", []))


# (yaml file, family) for every *_bayes.yaml whose model is a known family.
BAYES = [(path, model)
         for path in sorted((ROOT / "sweep_conf").glob("*_bayes.yaml"))
         for model in _models_of(_load(path)) if model in params.FAMILY_PARAMS]
BAYES_IDS = [f"{path.stem}-{model}" for path, model in BAYES]


def _candidates(spec: dict) -> list:
    """Every value a sweep can sample for one parameter, as far as a finite list goes: the
    constant, every listed value, or min and max of a distribution (in value space)."""
    if "value" in spec:
        return [spec["value"]]
    if "values" in spec:
        return list(spec["values"])
    lo, hi = spec["min"], spec["max"]
    if spec.get("distribution") in ("log_uniform", "q_log_uniform"):
        lo, hi = math.exp(lo), math.exp(hi)
    return [lo, hi]


def _extremes(spec: dict) -> list:
    """The extreme settings of one parameter: min and max of a number (listed or a
    distribution's range), every value of a string or boolean choice."""
    values = _candidates(spec)
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if numbers and len(numbers) == len(values):
        return sorted({min(numbers), max(numbers)})
    return values


def _base_value(spec: dict, p: params.Param):
    """A parameter's 'YAML default': the constant, the first listed value, or the schema
    default when it lies inside a distribution's range (else the range's minimum)."""
    values = _candidates(spec)
    if "value" in spec or "values" in spec:
        return values[0]
    lo, hi = values
    return p.default if lo <= p.default <= hi else lo


def _variants(cfg: dict, family: str) -> list[dict]:
    """The YAML's base config, then configs that together put every family parameter at
    each of its extremes at least once: config j takes extreme j (cycling) of every
    parameter at once. That covers what one-parameter-at-a-time variants cover in a few
    builds instead of dozens, which keeps this file within a minute on 2 cores; the
    family's schema extremes at the full 187 samples are in test_models.py."""
    schema = {**params.all_params(), **params.params_for(family)}
    section = cfg["parameters"]
    base = {"model": family}
    for name, spec in section.items():
        if name != "model":
            base[name] = _base_value(spec, schema[name])
    family_names = {p.name for p in params.FAMILY_PARAMS[family]}
    extremes = {name: _extremes(spec) for name, spec in section.items() if name in family_names}
    n = max((len(v) for v in extremes.values()), default=0)
    out = [base]
    for j in range(n):
        variant = {**base, **{name: values[j % len(values)] for name, values in extremes.items()}}
        if variant not in out:
            out.append(variant)
    return out


@pytest.mark.parametrize("path,family", BAYES, ids=BAYES_IDS)
def test_bayes_yaml_is_valid_and_every_value_resolves(path, family):
    import sweeps

    from ecgsweep.sweep import config as sweep_config

    cfg = _load(path)
    assert sweeps.schema_violations_from_proposed_config(cfg) == []
    assert sweep_config.errors(sweep_config.check(cfg, program=ECG_PROGRAM, cwd=ROOT)) == []
    assert cfg["method"] == "bayes"
    # ranked by the metric the runs' own objective keeps epochs and models by
    objective = cfg["parameters"].get("objective", {}).get("value", "macro_f1")
    metric = OBJECTIVE_METRICS[objective]
    if cfg["parameters"].get("keep_epoch", {}).get("value") == "last":
        # judged on the epoch each run keeps; a k-fold run logs it after each fold, where
        # hyperband can act, a single-split run only in its summary, where it cannot
        assert cfg["metric"] == {"name": kept_metric(metric), "goal": "maximize"}
        if cfg["parameters"].get("folds", {}).get("value", 1) >= 2:
            assert cfg["early_terminate"] == {"type": "hyperband", "min_iter": 1, "eta": 2}
        else:
            assert "early_terminate" not in cfg
    else:
        assert cfg["metric"] == {"name": metric, "goal": "maximize"}
        assert cfg["early_terminate"]["type"] == "hyperband"
    every = params.all_params()
    unknown = sorted(set(cfg["parameters"]) - set(every))
    assert not unknown, f"{path.name}: parameters not in ecgsweep.params: {unknown}"
    for name, spec in cfg["parameters"].items():
        for value in _candidates(spec):
            resolve({"model": family, name: value})  # raises ConfigError when out of range


@pytest.mark.parametrize("path,family", BAYES, ids=BAYES_IDS)
def test_bayes_yaml_extremes_build_and_train_one_step(path, family):
    import keras

    from ecgsweep.data.sidecar import rr_columns

    rng = np.random.default_rng(0)
    beats = rng.random((2, *SHORT_BEAT), dtype=np.float32)
    y = np.array([0, 1])
    for variant in _variants(_load(path), family):
        config = resolve(variant)
        model = models.build(config, SHORT_BEAT, 5)
        assert model.output_shape == (None, 5), variant
        X = beats
        if config["rr_features"]:  # the RR vector is the model's second input
            X = {"beat": beats, "rr": rng.random(
                (2, len(rr_columns(config["rr_normalization"]))), dtype=np.float32)}
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", run_eagerly=True)
        loss = model.train_on_batch(X, y)
        assert np.isfinite(float(np.asarray(loss).ravel()[0])), variant
        probs = np.asarray(model(X, training=False))
        assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4), variant
        keras.backend.clear_session()


def _custom_layers(model) -> list:
    return [layer for layer in model.layers
            if type(layer).__module__ == "ecgsweep.models.layers"]


SMALL = {"n_filters": 4, "rnn_units": 4, "attention_units": 4, "layer_FC_size": 8,
         "n_res_blocks": 2, "n_conv_blocks": 2, "rnn_layers": 1}


def _small_config(family: str) -> dict:
    names = {p.name for p in params.FAMILY_PARAMS[family]}
    return resolve({"model": family, **{k: v for k, v in SMALL.items() if k in names}})


@pytest.mark.parametrize("family", ["cnn_bilstm_attention", "dualpath_resnet"])
def test_saved_model_with_custom_layers_reloads_with_identical_predictions(family, tmp_path):
    import keras

    model = models.build(_small_config(family), BEAT, 5)
    assert _custom_layers(model), f"{family} was expected to use a custom layer"
    # a dropout-free, trained-looking state: move the weights off their initial values
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", run_eagerly=True)
    rng = np.random.default_rng(1)
    X = rng.random((3, *BEAT), dtype=np.float32)
    model.train_on_batch(X, np.array([0, 1, 2]))
    expected = np.asarray(model(X, training=False))
    path = tmp_path / f"{family}.keras"
    model.save(path)
    keras.backend.clear_session()

    loaded = keras.models.load_model(path, compile=False)
    assert [type(l).__name__ for l in _custom_layers(loaded)] == ["AttentionPooling1D"]
    np.testing.assert_allclose(np.asarray(loaded(X, training=False)), expected,
                               rtol=0, atol=1e-6)
    keras.backend.clear_session()


def test_custom_layers_are_registered_by_importing_the_package():
    import keras

    from ecgsweep.models.layers import AttentionPooling1D

    assert keras.saving.get_registered_object("ecgsweep>AttentionPooling1D") is AttentionPooling1D
    layer = AttentionPooling1D(7, name="att")
    clone = AttentionPooling1D.from_config(layer.get_config())
    assert clone.units == 7 and clone.name == "att"


def test_cnet_defaults_are_the_paper_network():
    """Kachuee et al. 2018: conv, 5 residual blocks (conv-ReLU-conv-add-ReLU-maxpool(5,2)),
    two dense layers of 32, softmax."""
    import keras

    config = resolve({"model": "cnet"})
    model = models.build(config, BEAT, 5)
    kinds = [type(l).__name__ for l in model.layers]
    assert kinds.count("Add") == 5
    assert kinds.count("Conv1D") == 1 + 2 * 5
    convs = [l for l in model.layers if type(l).__name__ == "Conv1D"]
    assert all(c.filters == 32 and c.kernel_size == (5,) for c in convs)
    pools = [l for l in model.layers if type(l).__name__ == "MaxPooling1D"]
    assert len(pools) == 5
    assert all(p.pool_size == (5,) and p.strides == (2,) for p in pools)
    assert "Dropout" not in kinds  # the paper uses none
    dense = [l for l in model.layers if type(l).__name__ == "Dense"]
    assert [d.units for d in dense] == [32, 32, 5]
    assert [d.activation.__name__ for d in dense] == ["relu", "relu", "softmax"]
    # 187 -> 92 -> 44 -> 20 -> 8 -> 2 steps of 32 features after the five poolings
    assert model.get_layer("flatten").output.shape[-1] == 2 * 32
    keras.backend.clear_session()


def test_cnet_depth_and_width_follow_the_config():
    import keras

    config = resolve({"model": "cnet", "n_res_blocks": 8, "n_filters": 8,
                      "n_dense_layers": 1, "layer_FC_size": 16})
    model = models.build(config, BEAT, 2)
    kinds = [type(l).__name__ for l in model.layers]
    assert kinds.count("Add") == 8
    assert [d.units for d in model.layers if type(d).__name__ == "Dense"] == [16, 2]
    keras.backend.clear_session()


@pytest.mark.parametrize("family", ["cnn_bilstm_attention", "dualpath_resnet"])
def test_attention_weights_sum_to_one_over_time(family):
    import keras

    model = models.build(_small_config(family), BEAT, 5)
    attention = model.get_layer("attention")
    features_model = keras.Model(model.inputs, attention.input)
    X = np.random.default_rng(2).normal(size=(3, *BEAT)).astype(np.float32)
    features = features_model(X, training=False)
    pooled, alpha = attention(features, return_attention=True)
    pooled, alpha, features = map(np.asarray, (pooled, alpha, features))
    assert alpha.shape == features.shape[:2]
    assert (alpha >= 0).all()
    np.testing.assert_allclose(alpha.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(pooled, np.einsum("bt,btf->bf", alpha, features), atol=1e-5)
    np.testing.assert_allclose(np.asarray(attention(features)), pooled, atol=1e-6)
    keras.backend.clear_session()
