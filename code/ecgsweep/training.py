"""Training pieces: class weights, input pipeline, callbacks, the fit loop.

Nothing here talks to W&B; the run (``ecgsweep.run``) hands ``fit`` a function that
receives each epoch's metrics and logs them wherever it wants.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from sklearn.metrics import confusion_matrix
from sklearn.utils.class_weight import compute_class_weight

from . import ec57, params, prior_shift
from .beat_calls import N_INDEX, S_INDEX, V_INDEX, move_probability
from .cli import counted
from .contract import EPOCH_BATCHES, OBJECTIVE_METRICS, STOPPED_AFTER_BATCH
from .data.datasets import MITBIH_CLASSES, Split
from .model_inputs import model_inputs
from .sweep.guard import handled_stop_signals

EpochSink = Callable[[dict[str, float]], None]


class TrainingDiverged(RuntimeError):
    """The loss, the weights or the validation outputs stopped being finite."""


def check_finite_weights(model, when: str) -> None:
    """A model with a NaN or infinite weight predicts a constant: never keep one.
    (SGD at a huge learning rate can leave the loss finite while the weights are NaN.)"""
    bad = sum(int(np.size(w) - np.isfinite(w).sum()) for w in model.get_weights())
    if bad:
        total = sum(int(np.size(w)) for w in model.get_weights())
        raise TrainingDiverged(f"{bad} of {total} weights are NaN or infinite {when}: lower "
                               "learning_rate or check the data")


def seed_everything(seed: int) -> None:
    import keras

    keras.utils.set_random_seed(seed)  # Python, NumPy and the backend


def class_weights(y: np.ndarray, mode: str, n_classes: int,
                  cap: float = 0.0) -> dict[int, float] | None:
    """Per-class loss weights: none, balanced (n / (k * count)), or the square root of balanced.

    Classes absent from ``y`` get weight 1. sqrt is a milder correction that often helps
    macro-F1 without wrecking precision on the majority class. ``cap`` > 0 limits every
    weight to it: a class held by a few beats of one or two records (F in MIT-BIH's DS1,
    mostly record 208) is then not learned as if it were common.
    """
    if mode == "none":
        return None
    present = np.unique(y)
    balanced = compute_class_weight("balanced", classes=present, y=y)
    weights = {c: 1.0 for c in range(n_classes)}
    for c, w in zip(present, balanced):
        weight = float(math.sqrt(w) if mode == "sqrt" else w)
        weights[int(c)] = min(weight, cap) if cap > 0 else weight
    return weights


def predict_proba(model, split: Split, config: Mapping[str, Any], batch_size: int = 1024,
                  class_prior: Sequence[float] | None = None) -> np.ndarray:
    """Class probabilities (n, k) float64, one row per beat of ``split`` in its order: the
    model's own (``model_proba``), then the config's per-record steps (``per_record_steps``;
    ``class_prior``: the model's, ``prior_shift.model_prior``)."""
    return per_record_steps(model_proba(model, split, config, batch_size), split, config,
                            class_prior)


def model_proba(model, split: Split, config: Mapping[str, Any],
                batch_size: int = 1024) -> np.ndarray:
    """The model's softmax outputs (n, k) float64, one row per beat of ``split``; a
    sequence model's windows are mapped back to beats (``beat_windows.predict_beats``)."""
    from . import beat_windows

    if beat_windows.is_sequence(config):
        return beat_windows.predict_beats(model, split, config, batch_size)
    return np.asarray(model.predict(model_inputs(split, config), batch_size=batch_size,
                                    verbose=0), dtype=np.float64)


def per_record_steps(probs: np.ndarray, split: Split, config: Mapping[str, Any],
                     class_prior: Sequence[float] | None = None) -> np.ndarray:
    """What follows the model, at validation and test alike: each record's class mix
    re-estimated (with the model's ``class_prior``), premature templates of a novel shape
    called V, premature beats called S, the S gate, the runs of S, then the V templates
    (each unchanged when its key is 0)."""
    probs = adapt_record_priors(probs, split, config, class_prior)
    probs = call_novel_premature_templates_v(probs, split, config)
    probs = call_premature_beats_s(probs, split, config)
    probs = gate_s_in_irregular_rhythm(probs, split, config)
    probs = extend_s_runs(probs, split, config)
    return share_v_within_templates(probs, split, config)


def adapt_record_priors(probs: np.ndarray, split: Split, config: Mapping[str, Any],
                        class_prior: Sequence[float] | None) -> np.ndarray:
    """``prior_adaptation``: each record's beats re-weighted toward the balance of N and S
    EM estimates for that record (``prior_shift``). Unchanged when it is 0."""
    if not params.option_on(config, "prior_adaptation"):
        return probs
    if split.records is None:
        raise ValueError("prior_adaptation needs each beat's record (the beat sidecar)")
    if class_prior is None:
        raise ValueError("prior_adaptation needs the class prior the model was trained to "
                         "(its record's class_prior)")
    keep = prior_shift.kept_columns(MITBIH_CLASSES[:probs.shape[1]])
    return prior_shift.adapt_by_record(probs, split.records, class_prior,
                                       float(config["prior_adaptation"]), keep)


def call_novel_premature_templates_v(probs: np.ndarray, split: Split,
                                     config: Mapping[str, Any]) -> np.ndarray:
    """``v_novel_templates``: each record's V templates (``v_template_clusters``) that look
    unlike its dominant template and whose beats are mostly premature (``premature_beats``;
    ``v_novel_premature_share``) have their beats' N and S probability added to V
    (``beat_templates.novel_premature_templates``). Before the prematurity step, so those
    beats are not called S for coming early. Unchanged when the key is 0."""
    from . import beat_templates
    novelty = float(config.get("v_novel_templates", 0.0))
    if novelty <= 0:
        return probs
    require_records_and_rr(split, "v_novel_templates")
    labels = beat_templates.template_labels(split.X, split.records,
                                            int(params.value(config, "v_template_clusters")))
    chosen = beat_templates.novel_premature_templates(
        split.X, split.records, labels, premature_beats(probs, split, config), novelty,
        float(params.value(config, "v_novel_premature_share")))
    return move_probability(probs, chosen, V_INDEX, (N_INDEX, S_INDEX))


def premature_beats(probs: np.ndarray, split: Split, config: Mapping[str, Any]) -> np.ndarray:
    """Per beat, whether its interval is below its prematurity threshold: its share of the
    mean of the intervals around it (``pre_local_ratio``) under ``s_premature_ratio``, or
    with ``s_premature_spread`` under its record's own threshold (``prematurity``, set from
    the beats ``probs`` calls N)."""
    from . import prematurity
    from .data import sidecar
    ratio = float(config.get("s_premature_ratio", 0.0))
    spread = float(config.get("s_premature_spread", 0.0))
    if split.rr is None:
        raise ValueError("s_premature_ratio needs the beats' RR features (the beat sidecar)")
    if spread > 0 and split.records is None:
        raise ValueError("s_premature_spread needs each beat's record (the beat sidecar)")
    pre_local_ratio = split.rr[:, sidecar.RR_FEATURES.index("pre_local_ratio")]
    called_n = probs.argmax(axis=1) == N_INDEX
    thresholds = prematurity.premature_thresholds(pre_local_ratio, split.records, called_n,
                                                  ratio, spread)
    return pre_local_ratio < thresholds


def call_premature_beats_s(probs: np.ndarray, split: Split,
                           config: Mapping[str, Any]) -> np.ndarray:
    """``s_premature_ratio``: a beat the model calls N whose interval is below this share
    of the mean of the intervals around it (``pre_local_ratio``) gets its N probability
    added to S, as a Holter system's prematurity criterion calls it; with
    ``s_premature_spread`` each record may raise that share to a threshold set by its own
    rhythm (``premature_beats``). The S gate, after this step, takes the call back where
    fibrillation makes beats early. Unchanged when both keys are 0."""
    if not params.prematurity_on(config):
        return probs
    premature = (probs.argmax(axis=1) == N_INDEX) & premature_beats(probs, split, config)
    return move_probability(probs, premature, S_INDEX, (N_INDEX,))


def gate_s_in_irregular_rhythm(probs: np.ndarray, split: Split,
                               config: Mapping[str, Any]) -> np.ndarray:
    """``s_gate_irregularity``: beats whose rhythm around them is irregular (``gate_measure``
    above it) get their S probability added to N. Atrial
    fibrillation's irregular intervals make many of its beats look premature, but none is
    a premature atrial beat; a model trained on the few AF records there are still calls
    them S. Unchanged when the key is 0."""
    threshold = float(config.get("s_gate_irregularity", 0.0))
    if threshold <= 0:
        return probs
    if split.rr is None:
        raise ValueError("s_gate_irregularity needs the beats' RR features (the beat sidecar)")
    irregular = gate_measure(split, config.get("s_gate_measure", "local_irregularity")) > threshold
    return move_probability(probs, irregular, N_INDEX, (S_INDEX,))


def beats_outside_s_gate(train: Split, config: Mapping[str, Any]) -> Split:
    """``train_outside_s_gate``: the training beats the S gate leaves to the model (its
    measure at most ``s_gate_irregularity``); all of ``train`` when the key is off. The
    gate sets the S call of the others, so they would teach the model that fibrillation's
    premature-looking beats are normal, and with them every premature beat in an irregular
    rhythm. Their V and F beats go too: kept alone, they teach that an irregular rhythm
    makes a beat V."""
    if not config.get("train_outside_s_gate"):
        return train
    threshold = float(config.get("s_gate_irregularity", 0.0))
    if threshold <= 0:
        raise ValueError("train_outside_s_gate needs the S gate on (s_gate_irregularity > 0)")
    if train.rr is None:
        raise ValueError("train_outside_s_gate needs the beats' RR features (the beat sidecar)")
    measure = gate_measure(train, config.get("s_gate_measure", "local_irregularity"))
    return train.take(measure <= threshold)


def gate_measure(split: Split, measure: str) -> np.ndarray:
    """Per beat, the S gate's ``measure``: a column of the beat sidecar, or the entropy of
    the intervals around the beat (``rr_entropy``), computed from its records' intervals."""
    from . import rr_entropy
    from .data import sidecar

    if measure == "rr_entropy":
        return rr_entropy.split_entropy(split, "s_gate_measure rr_entropy")
    return split.rr[:, sidecar.RR_FEATURES.index(measure)]


def extend_s_runs(probs: np.ndarray, split: Split, config: Mapping[str, Any]) -> np.ndarray:
    """``s_run_tolerance``: the beats of a run begun by an abrupt beat called S are called
    S too (``s_runs``). Unchanged when it is 0."""
    from . import s_runs
    from .data import sidecar

    tolerance = float(config.get("s_run_tolerance", 0.0))
    if tolerance <= 0:
        return probs
    require_records_and_rr(split, "s_run_tolerance")
    pre_rr = split.rr[:, sidecar.RR_FEATURES.index("pre_rr")]
    return s_runs.extend_s_runs(probs, pre_rr, split.records, tolerance)


def require_records_and_rr(split: Split, key: str) -> None:
    """The step of config key ``key`` reads each beat's record and RR features: a clear
    error when ``split`` has no beat sidecar."""
    if split.rr is None or split.records is None:
        raise ValueError(f"{key} needs each beat's record and RR features (the beat sidecar)")


def share_v_within_templates(probs: np.ndarray, split: Split,
                             config: Mapping[str, Any]) -> np.ndarray:
    """``v_template_clusters``: each record's beats are grouped into this many morphology
    templates and share their template's mean V probability (``beat_templates``).
    Unchanged when the key is 0."""
    from . import beat_templates
    n_clusters = int(config.get("v_template_clusters", 0))
    if n_clusters <= 0:
        return probs
    if split.records is None:
        raise ValueError("v_template_clusters needs each beat's record (the beat sidecar)")
    labels = beat_templates.template_labels(split.X, split.records, n_clusters)
    return beat_templates.share_v_probability(probs, labels, V_INDEX)


def make_optimizer(config: Mapping[str, Any], steps_per_epoch: int,
                   learning_rate: float | None = None, epochs: int | None = None):
    """The config's optimizer; ``learning_rate``/``epochs`` override the config's (a phase of
    transfer learning trains for fewer epochs, at a lower rate)."""
    import keras

    lr: Any = float(config["learning_rate"] if learning_rate is None else learning_rate)
    n_epochs = int(config["epochs"] if epochs is None else epochs)
    if config["lr_schedule"] == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(
            lr, decay_steps=max(1, n_epochs * steps_per_epoch))
    optimizers = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
                  "sgd": lambda **kw: keras.optimizers.SGD(momentum=0.9, **kw),
                  "rmsprop": keras.optimizers.RMSprop}
    momentum = ema_momentum(config, steps_per_epoch)
    averaging = {"use_ema": True, "ema_momentum": momentum} if momentum else {}
    return optimizers[config["optimizer"]](learning_rate=lr, **averaging)


def ema_momentum(config: Mapping[str, Any], steps_per_epoch: int) -> float | None:
    """The per-step decay of the weights' moving average whose time constant is
    ``ema_epochs`` epochs (None: no averaging). In epochs, not steps, so one value means
    the same smoothing whatever the data size and batch size."""
    epochs = float(config.get("ema_epochs", 0.0))
    if epochs <= 0:
        return None
    return 1.0 - 1.0 / max(1.0, epochs * steps_per_epoch)


class StopRequest:
    """Turns SIGTERM (how `wandb agent` and our runner stop a run), SIGINT (Ctrl-C) and
    SIGHUP (its terminal closed) into a clean stop after the current batch: the epoch it
    cuts short is validated and logged as stopped partway (``STOPPED_AFTER_BATCH``), the
    run keeps what it trained and is not promoted. A second Ctrl-C quits at once
    (KeyboardInterrupt)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in handled_stop_signals()}

    def uninstall(self) -> None:
        for signum, previous in self._previous.items():
            if previous is not None:
                signal.signal(signum, previous)
        self._previous = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGINT:
            if self.requested:
                raise KeyboardInterrupt
            print("stopping after the current batch (Ctrl-C again to quit now)",
                  file=sys.stderr, flush=True)
        self.requested = True


def objective_metric(config: Mapping[str, Any]) -> str:
    """The validation metric the config's ``objective`` names (contract.OBJECTIVE_METRICS)."""
    return OBJECTIVE_METRICS[config["objective"]]


def _validation_metrics(model, val: Split, config: Mapping[str, Any],
                        class_names: Sequence[str],
                        class_prior: Sequence[float]) -> dict[str, float]:
    """val_loss is the plain mean cross-entropy of the predicted probabilities, with no
    class weights and no focal term, so runs with different losses or weights compare.
    val_sveb_veb_f1 only when the classes have EC57's SVEB and VEB rows (S and V)."""
    probs = predict_proba(model, val, config, batch_size=max(256, int(config["batch_size"])),
                          class_prior=class_prior)
    if not np.isfinite(probs).all():
        raise TrainingDiverged("the model's validation outputs are NaN or infinite (its weights "
                               "diverged): lower learning_rate or check the data")
    picked = np.clip(probs[np.arange(len(val.y)), val.y], 1e-12, 1.0)
    pred = probs.argmax(axis=1)
    cm = confusion_matrix(val.y, pred, labels=list(range(len(class_names))))
    metrics = {
        "val_loss": float(-np.log(picked).mean()),
        "val_accuracy": float((pred == val.y).mean()),
        "val_macro_f1": ec57.macro_f1(cm),
    }
    if ec57.has_ec57_rows(class_names):
        metrics["val_sveb_veb_f1"] = ec57.sveb_veb_f1(cm, class_names)
    return metrics


@dataclass
class FitResult:
    """Every epoch's metrics, and the epoch whose weights the model holds after ``fit``:
    the best by the objective's metric, or the last with ``keep_epoch: last``; ``kept_value``
    is that epoch's objective metric."""

    history: list[dict[str, float]] = field(default_factory=list)
    kept_epoch: int = 0
    kept_value: float = float("-inf")
    kept_metrics: dict[str, float] = field(default_factory=dict)
    stopped: bool = False  # stopped from outside (SIGTERM), not by early stopping
    # trained to its own end (its epochs, or early stopping's): no stop cut it short
    finished: bool = True
    class_prior: list[float] = field(default_factory=list)  # prior_shift.model_prior

    @property
    def stopped_mid_epoch(self) -> bool:
        """Whether the last epoch trained was cut short by a stop (``STOPPED_AFTER_BATCH``)."""
        return bool(self.history) and STOPPED_AFTER_BATCH in self.history[-1]


def keeps_epoch(keep_epoch: str, value: float, kept_value: float) -> bool:
    """Whether an epoch scoring ``value`` replaces the kept one (scoring ``kept_value``).
    ``last`` keeps every new epoch, so no choice is made on the validation data."""
    return keep_epoch == "last" or value > kept_value


def keeps_partial_epoch(history: list[dict[str, float]]) -> bool:
    """Whether an epoch a stop cut short may be kept: only when no whole epoch was trained
    (``history``, the epochs before it), as the run then has nothing else."""
    return all(STOPPED_AFTER_BATCH in row for row in history)


def kept_row(history: list[dict[str, float]], keep_epoch: str, metric: str) -> dict[str, float]:
    """The epoch of ``history`` (one metrics row per epoch) that ``keep_epoch`` keeps,
    judged by ``metric``."""
    kept = history[0]
    for row in history[1:]:
        if keeps_epoch(keep_epoch, row[metric], kept[metric]):
            kept = row
    return kept


def _make_callbacks(model, config, val: Split, class_names: Sequence[str], sink: EpochSink,
                    stop: StopRequest, result: FitResult, state: dict[str, Any], steps: int):
    import keras

    averaged = bool(getattr(model.optimizer, "use_ema", False))  # ema_epochs > 0

    class EpochMetrics(keras.callbacks.Callback):
        """Adds the validation metrics to the epoch logs (one pass over val), keeps the
        weights of the epoch ``keep_epoch`` names, and hands the epoch's metrics to the sink.
        Listed before EarlyStopping and ReduceLROnPlateau, so they see the objective."""

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                state["diverged_epoch"] = state["epoch"]
                self.model.stop_training = True
            state["batches"] = batch + 1
            if stop.requested:
                self.model.stop_training = True

        def on_epoch_begin(self, epoch, logs=None):
            state["epoch"], state["batches"] = epoch + 1, 0

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            if "diverged_epoch" in state:
                return
            validation = ({} if val is None
                          else _validation_metrics(self.model, val, config, class_names,
                                                   result.class_prior))
            logs.update(validation)
            metrics = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()
                                              if k in ("loss", "accuracy", *validation)}}
            lr = self.model.optimizer.learning_rate
            metrics["learning_rate"] = float(keras.ops.convert_to_numpy(
                lr(self.model.optimizer.iterations) if callable(lr) else lr))
            if stop.requested:
                metrics.update(_cut_short(state["batches"], self.params.get("steps") or steps))
            _keep_epoch(self.model, config, metrics, result, state, val is None)
            result.history.append(metrics)
            sink(metrics)
            if stop.requested:
                self.model.stop_training = True

    # SwapEMAWeights first: at each epoch's end the model holds the averaged weights while
    # EpochMetrics validates and keeps them, and the raw ones again when training goes on
    averaging = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if averaged else []
    schedule = _schedule_callbacks(config) if val is not None else []  # they follow validation
    return averaging + [EpochMetrics()] + schedule


def _cut_short(batches: int, steps: int) -> dict[str, int]:
    """The marks of an epoch a stop ended after ``batches`` of its ``steps`` batches; none
    when it trained them all."""
    return {STOPPED_AFTER_BATCH: batches, EPOCH_BATCHES: steps} if batches < steps else {}


def _keep_epoch(model, config: Mapping[str, Any], metrics: dict[str, float], result: FitResult,
                state: dict[str, Any], every: bool) -> None:
    """Make the epoch of ``metrics`` the kept one when ``keep_epoch`` chooses it (``every``,
    without validation data: always, as with last). An epoch a stop cut short is kept only
    while no whole one was trained: its figures are not an epoch's."""
    if STOPPED_AFTER_BATCH in metrics and not keeps_partial_epoch(result.history):
        return
    objective = objective_metric(config)
    if not (every or keeps_epoch(config["keep_epoch"], metrics[objective], result.kept_value)):
        return
    result.kept_value = metrics.get(objective, float("nan"))
    result.kept_epoch = int(metrics["epoch"])
    result.kept_metrics = dict(metrics)
    # a copy: the model may end on other weights (a later epoch cut short, or with
    # averaging the raw ones)
    state["kept_weights"] = model.get_weights()


def epoch_bars(steps: int, epochs: int, stream: Any = None) -> list[Any]:
    """On a terminal, a bar over each epoch's batches that gives way to the epoch's line;
    elsewhere (a sweep's log, a pipe) none: the one line per epoch is the log."""
    import keras

    from .sweep.progress import Progress

    stream = sys.stderr if stream is None else stream
    if not stream.isatty():
        return []

    class EpochBar(keras.callbacks.Callback):
        bar: Progress | None = None

        def on_epoch_begin(self, epoch, logs=None):
            self.bar = Progress(f"epoch {epoch + 1}/{epochs}", steps, stream=stream,
                                delay_s=0).__enter__()

        def on_train_batch_end(self, batch, logs=None):
            if self.bar is not None:
                self.bar.advance()

        def on_epoch_end(self, epoch, logs=None):
            self.close()

        def on_train_end(self, logs=None):  # a stop within an epoch
            self.close()

        def close(self) -> None:
            if self.bar is not None:
                self.bar.__exit__(None, None, None)
                self.bar = None

    return [EpochBar()]


def _schedule_callbacks(config: Mapping[str, Any]) -> list[Any]:
    """Early stopping and the plateau schedule, both on the objective's metric."""
    import keras

    callbacks: list[Any] = []
    if config["early_stopping_patience"] > 0:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=objective_metric(config), mode="max",
            patience=int(config["early_stopping_patience"])))
    if config["lr_schedule"] == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=objective_metric(config), mode="max", factor=0.5, patience=2, min_lr=1e-6))
    return callbacks


def _sublayers(layer) -> list[Any]:
    """Every layer nested in ``layer`` (models within models included)."""
    out = []
    for sub in getattr(layer, "layers", None) or []:
        out.append(sub)
        out.extend(_sublayers(sub))
    return out


@dataclass
class FineTune:
    """Transfer learning: train with ``base`` frozen for ``freeze_epochs``, then train the
    whole model at ``learning_rate x lr_factor`` (a fresh optimizer) for the other epochs.

    The base's BatchNormalization layers stay non-trainable when the rest is unfrozen:
    Keras 3 runs a non-trainable BatchNormalization in inference mode (its moving mean and
    variance from the source data, not the batch's), whatever ``training`` the outer model
    is called with; a ``training=False`` given when the base was called does not survive
    ``fit`` in Keras 3.
    """

    base: Any  # the keras layer (a nested model) holding the pretrained feature layers
    freeze_epochs: int
    lr_factor: float

    def set_base_trainable(self, trainable: bool) -> None:
        import keras

        self.base.trainable = trainable
        if trainable:
            for layer in _sublayers(self.base):
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.trainable = False


def frozen_epochs(freeze_epochs: int, epochs: int) -> int:
    """The epochs a transfer run trains its new head alone: ``freeze_epochs``, at most all."""
    return max(0, min(int(freeze_epochs), int(epochs)))


def _phases(config: Mapping[str, Any], fine_tune: FineTune | None):
    """(end epoch, learning rate, base trainable or None) per phase; each phase starts
    where the one before it stopped."""
    epochs, lr = int(config["epochs"]), float(config["learning_rate"])
    if fine_tune is None:
        return [(epochs, lr, None)]
    frozen = frozen_epochs(fine_tune.freeze_epochs, epochs)
    phases = [(frozen, lr, False)] if frozen > 0 else []
    if frozen < epochs:
        phases.append((epochs, lr * float(fine_tune.lr_factor), True))
    return phases


def _phase_ended_by_itself(callbacks: list, state: dict[str, Any], end: int,
                           result: FitResult) -> bool:
    """Whether a phase's training stopped by its own rule: early stopping, or its last
    epoch trained whole (not a stop from outside)."""
    import keras

    early = any(isinstance(c, keras.callbacks.EarlyStopping) and c.stopped_epoch > 0
                for c in callbacks)
    if result.stopped_mid_epoch:  # early stopping may have fired on the part-epoch too
        return False
    return early or state["epoch"] == end


def _say_early_stop(callbacks: list, epoch: int, end: int, stopped: bool) -> None:
    """One line when early stopping ended the epochs before ``end``, which the epoch lines
    alone do not say."""
    import keras

    for c in callbacks:
        if isinstance(c, keras.callbacks.EarlyStopping) and c.stopped_epoch > 0 \
                and not stopped and epoch < end:
            print(f"early stopping: {c.monitor} did not improve for "
                  f"{counted(c.patience, 'epoch')}; "
                  f"these epochs ended at {epoch} of {end}", flush=True)


def _fit_phase(model, config: Mapping[str, Any], train: Split,
               weights: dict[int, float] | None, first: int, end: int, callbacks: list) -> None:
    """Epochs ``first``..``end`` of training: plain arrays, augmented batches when the
    config asks for augmentation (training beats only), or a sequence model's windows."""
    from . import augment, beat_windows

    batch_size, seed = int(config["batch_size"]), int(config["seed"]) + first
    if beat_windows.is_sequence(config):
        batches = beat_windows.WindowBatches(train, config, weights, seed)
        model.fit(batches, initial_epoch=first, epochs=end, callbacks=callbacks, verbose=0)
        return
    inputs, labels = model_inputs(train, config), train.y.astype(np.int32)
    if not params.augment_on(config):
        model.fit(inputs, labels, batch_size=batch_size, shuffle=True, initial_epoch=first,
                  epochs=end, callbacks=callbacks, verbose=0, class_weight=weights)
        return
    sample_weights = (None if weights is None
                      else np.array([weights[int(c)] for c in labels], dtype=np.float32))
    batches = augment.AugmentedBatches(inputs, labels, sample_weights, config, batch_size, seed)
    model.fit(batches, initial_epoch=first, epochs=end, callbacks=callbacks, verbose=0)


def steps_per_epoch(train: Split, config: Mapping[str, Any]) -> int:
    """Gradient steps in one epoch over ``train`` (a sequence model steps over windows)."""
    from . import beat_windows

    if beat_windows.is_sequence(config):
        windows = len(beat_windows.window_rows(train, config))
        return max(1, math.ceil(windows / beat_windows.windows_per_batch(config)))
    return max(1, math.ceil(len(train) / int(config["batch_size"])))


def fit(model, config: Mapping[str, Any], train: Split, val: Split | None,
        class_names: Sequence[str], sink: EpochSink, stop: StopRequest, loss: Any = None, *,
        fine_tune: FineTune | None = None) -> FitResult:
    """Compile and train; leave the model holding the weights of its best epoch (the last
    with ``keep_epoch: last``).

    ``loss`` defaults to the config's (``imbalance.make_loss``: cross-entropy or focal).
    Whatever the loss, the logged val_loss is the unweighted cross-entropy.
    With ``fine_tune`` the epochs run in two phases (frozen base for up to
    ``freeze_epochs``, then all layers at a lower learning rate up to ``epochs``), numbered
    on as one run: early stopping in the frozen phase ends that phase, and fine-tuning
    starts at the next epoch; in the last phase it ends the run. Early stopping and
    plateau schedules start afresh in the second phase, and the best epoch is chosen over
    both. A stop from outside (``stop``) ends training after the current batch
    (``result.finished`` False when that cut it short).
    ``val`` None trains without validation data: no validation metric, every epoch kept
    (the last one's weights), no early stopping and no plateau schedule.
    Raises TrainingDiverged when the loss stops being finite, and ValueError when the
    objective needs classes that ``class_names`` lacks.
    """
    if objective_metric(config) == "val_sveb_veb_f1" and not ec57.has_ec57_rows(class_names):
        raise ValueError(f"objective {config['objective']} needs classes S and V; these are "
                         f"{', '.join(class_names)}")
    if loss is None:
        from .imbalance import make_loss

        loss = make_loss(config)
    steps = steps_per_epoch(train, config)
    weights = class_weights(train.y, config["class_weight"], len(class_names),
                            config.get("class_weight_max", 0.0))
    result = FitResult(class_prior=prior_shift.model_prior(train.y, len(class_names),
                                                           weights).tolist())
    state: dict[str, Any] = {"epoch": 0}
    for end, lr, base_trainable in _phases(config, fine_tune):
        first, result.finished = state["epoch"], False
        if "diverged_epoch" in state or (stop.requested and first > 0):
            break
        if fine_tune is not None:
            fine_tune.set_base_trainable(base_trainable)
        model.compile(optimizer=make_optimizer(config, steps, learning_rate=lr,
                                               epochs=end - first),
                      loss=loss, metrics=["accuracy"])
        callbacks = _make_callbacks(model, config, val, class_names, sink, stop, result, state,
                                    steps)
        callbacks = epoch_bars(steps, int(config["epochs"])) + callbacks
        if not stop.requested:
            _fit_phase(model, config, train, weights, first, end, callbacks)
            result.finished = _phase_ended_by_itself(callbacks, state, end, result)
            _say_early_stop(callbacks, state["epoch"], end, stop.requested)
    if "diverged_epoch" in state:
        raise TrainingDiverged(f"NaN loss at epoch {state['diverged_epoch']}: lower "
                               f"learning_rate (now {config['learning_rate']}) or check the data")
    result.stopped = stop.requested
    if "kept_weights" in state:
        model.set_weights(state["kept_weights"])
    check_finite_weights(model, f"after epoch {result.kept_epoch}")
    return result
