"""Transfer learning: start a model (e.g. PTB's normal/abnormal) from a trained MIT-BIH one.

Kachuee et al. ("ECG Heartbeat Classification: A Deep Transferable Representation",
IEEE ICHI 2018) train on MIT-BIH, keep the network's feature layers, and train a new
head for myocardial infarction on PTB. Here:

- the **feature layers** of a saved model are everything up to the input of its
  classification head. The head is found by walking back from the softmax layer (the one
  named "probabilities", see ``models/head.py``, else the model's last layer) through the
  chain of Dense and Dropout layers; the first other layer reached (a global pooling,
  Flatten, or a recurrent layer) is the last feature layer and its output the feature vector;
  a model this module built (itself fine-tuned) has its feature layers nested as
  ``pretrained_base``, which is taken whole, so a model can be transferred again;
- a new head (``models.head.classification_head``: dropout, ``layer_FC_size`` units,
  softmax over the new classes) goes on top;
- ``training.fit`` trains the head alone for ``freeze_epochs`` epochs, then the whole
  network at ``learning_rate x fine_tune_lr_factor`` (``training.FineTune``).

The batch-normalization layers of the pretrained part stay in inference mode (their
moving statistics from MIT-BIH are kept and used) while frozen and while fine-tuned, as the
Keras transfer-learning guide recommends: frozen layers run in inference mode, and on
unfreezing ``training.FineTune`` leaves them non-trainable. (The guide's
``base(inputs, training=False)`` is kept too, but Keras 3 overrides it with the outer
``training`` flag during ``fit``, so it is not what keeps them in inference mode.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from . import params
from .cli import UserError
from .contract import ENSEMBLE_MODEL_NAME, FOLD_MODEL_FILE

HEAD_LAYER_TYPES = ("Dense", "Dropout")
BASE_NAME = "pretrained_base"
# Used when a family has no layer_FC_size/dropout_rate (all current families have them).
HEAD_DEFAULTS = {p.name: p.default for p in params.HEAD_PARAMS}


def load_pretrained(path: str | Path, input_width: int):
    """Load a saved model for its feature layers; a clear UserError when it cannot serve.

    Checks that the file exists, loads (custom layers and losses of this package are
    registered first), and that it reads one beat of ``input_width`` samples.
    """
    import keras

    from . import imbalance, models  # noqa: F401  (register custom layers and losses)
    from .artifacts import unloadable_model

    path = Path(path)
    where = f"config key 'pretrained': {path}"
    if not path.is_file():
        raise UserError(f"{where}: no such file. Train the source model first (e.g. "
                        "`python code/train.py --dataset=mitbih`, which writes "
                        "models/<model>/best.keras) and pass that path")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as e:  # keras raises many types for a file that is not a model
        raise UserError(f"config key 'pretrained': {unloadable_model(path, e)}") from None
    shape = model.input_shape
    if isinstance(shape, list) or len(shape) != 3:
        raise UserError(f"{where}: expected one input of shape (beat samples, 1), the model "
                        f"takes {shape}")
    if shape[1] is not None and int(shape[1]) != int(input_width):
        raise UserError(f"{where}: the model takes beats of {shape[1]} samples but the data "
                        f"set has {input_width} per beat; use a model trained on beats of the "
                        "same width")
    if shape[2] != 1:
        raise UserError(f"{where}: the model takes {shape[2]} channels per sample, the data "
                        "has 1")
    return model


def _producer(tensor):
    """The layer whose output ``tensor`` is (Keras 3 functional graph)."""
    history = getattr(tensor, "_keras_history", None)
    return history[0] if history else None


def _feature_end(model, where: str):
    """The layer feeding the Dense/Dropout head chain of ``model``, and the tensor it feeds
    the head (its output in ``model``'s graph: a nested model's own ``output`` is the one
    inside it)."""
    import keras

    try:
        layer = model.get_layer("probabilities")
    except ValueError:
        layer = model.layers[-1]
    steps, features = 0, None
    while type(layer).__name__ in HEAD_LAYER_TYPES:
        try:
            features = layer.input
        except (AttributeError, ValueError) as e:
            raise UserError(f"{where}: cannot follow the head back from layer "
                            f"{layer.name!r} ({e})") from None
        if isinstance(features, (list, tuple)):
            raise UserError(f"{where}: head layer {layer.name!r} has several inputs; "
                            "cannot tell where the feature layers end")
        layer = _producer(features)
        steps += 1
        if layer is None:
            raise UserError(f"{where}: cannot follow the head back to the feature layers")
    if steps == 0:
        raise UserError(_no_head_message(model, where))
    if isinstance(layer, keras.layers.InputLayer):
        raise UserError(f"{where}: has no feature layers before its Dense head")
    return layer, features


def _no_head_message(model, where: str) -> str:
    """Why a model whose last layer is not its Dense head cannot serve, and the way out."""
    last = model.layers[-1].name
    if model.name == ENSEMBLE_MODEL_NAME:
        return (f"{where}: a k-fold run's ensemble of its fold models (last layer {last!r}) "
                "has no single set of feature layers; train the source with "
                f"final_model=refit, or pass one fold's model, "
                f"{FOLD_MODEL_FILE.format(index='<i>')} in that run's folder")
    return (f"{where}: its last layer {last!r} is not a Dense softmax; cannot tell the "
            "head from the feature layers")


def _is_transfer_base(layer) -> bool:
    """Whether ``layer`` is the nested feature model of a model ``build`` made (one that
    was itself fine-tuned): it already holds every feature layer."""
    import keras

    return isinstance(layer, keras.Model) and layer.name == BASE_NAME


def feature_layer(model, where: str = "the pretrained model"):
    """The last feature layer of ``model``: the layer feeding its Dense/Dropout head chain
    (in a fine-tuned model, the last layer of its nested feature model)."""
    layer, _ = _feature_end(model, where)
    if _is_transfer_base(layer):
        return _producer(layer.outputs[0])
    return layer


def feature_extractor(model, where: str = "the pretrained model"):
    """A model from the pretrained one's input to its feature vector (the weights are
    shared). A fine-tuned model's nested feature model is taken as it is, so transferring
    again nests no deeper and no layer name appears twice."""
    import keras

    layer, features = _feature_end(model, where)
    if _is_transfer_base(layer):
        return layer
    return keras.Model(model.inputs, features, name=BASE_NAME)


def build(config: Mapping[str, Any], pretrained, n_classes: int, where: str = "the pretrained model"):
    """The pretrained feature layers under a new head; returns (model, base).

    ``base`` is the nested feature model, called with ``training=False``; freeze it with
    ``base.trainable = False`` (``training.fit`` does, through ``training.FineTune``).
    """
    import keras

    from .models.head import beat_input, classification_head

    base = feature_extractor(pretrained, where)
    inputs = beat_input(tuple(pretrained.input_shape[1:]))
    features = base(inputs, training=False)  # see the module docstring: FineTune does the work
    head_config = {k: config.get(k, v) for k, v in HEAD_DEFAULTS.items()}
    outputs = classification_head(features, head_config, n_classes)
    return keras.Model(inputs, outputs, name=f"{pretrained.name}_transfer"), base
