"""Every hyperparameter the training program reads, as data.

This is the one schema of ``wandb.config``: sweep YAMLs, ``code/train.py``, best.json
and the README all use these names. It imports nothing heavy, so ``sweep.py check``
can validate a YAML without loading TensorFlow.

A family's parameters are read only when that family is selected by ``model``; the
training parameters are read by every run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from .contract import OBJECTIVE_METRICS

# Keras backends a run can train on (ecgsweep.backend sets the chosen one up).
BACKENDS = ("tensorflow", "jax", "torch")
AUTO = "auto"  # the config value that defers to KERAS_BACKEND (Keras' own default: tensorflow)
DEFAULT_BACKEND = "tensorflow"


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its name, default, type and allowed values."""

    name: str
    default: Any
    kind: type  # int, float, bool or str
    help: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None  # inclusive bounds for numbers
    high: float | None = None


# The parameters whose value is a file or folder (or a data set's name): ``~`` in them is
# the user's home, as in a shell.
PATH_KEYS = ("dataset", "data_dir", "models_dir", "pretrained", "config_file", "other_lead_data")

TRAINING_PARAMS: tuple[Param, ...] = (
    Param("model", "cnn", str, "model family: the sections below"),
    Param("dataset", "mitbih", str,
          "mitbih | ptbdb | synthetic | a CSV of beats (a row per beat, the label last, a "
          "header optional) | a folder of the Kaggle CSVs"),
    Param("data_dir", "data", str, "folder holding the Kaggle CSVs"),
    Param("epochs", 10, int, "training epochs", low=1, high=10_000),
    Param("batch_size", 64, int, "beats per gradient step", low=1, high=65_536),
    Param("learning_rate", 0.001, float, "initial learning rate", low=1e-8, high=10.0),
    Param("optimizer", "adam", str, "optimizer", choices=("adam", "adamw", "sgd", "rmsprop")),
    Param("val_fraction", 0.1, float,
          "stratified share of the training file held out for validation", low=0.01, high=0.5),
    Param("class_weight", "none", str, "loss weight per class",
          choices=("none", "balanced", "sqrt")),
    Param("class_weight_max", 0.0, float,
          "upper limit of every class weight (0: none), so a rare class of few records (F) "
          "is not over-weighted", low=0.0, high=1000.0),
    Param("seed", 42, int, "seed for splits, weights and shuffling", low=0),
    Param("early_stopping_patience", 0, int,
          "stop after this many epochs without a better objective (0: off)", low=0),
    Param("objective", "macro_f1", str,
          "validation metric that picks the kept epoch, drives early stopping and the plateau "
          "schedule, and ranks runs for the best model: macro_f1 = val_macro_f1 over all "
          "classes; sveb_veb_f1 = val_sveb_veb_f1, the mean of the EC57 SVEB and VEB F1 (needs "
          "classes S and V: MIT-BIH), the inter-patient literature's figures",
          choices=tuple(OBJECTIVE_METRICS)),
    Param("keep_epoch", "best", str,
          "whose weights the run keeps and reports: best = the epoch of highest "
          "objective (chosen on the validation data, which flatters the figure), last = "
          "the final epoch (nothing chosen on it: the honest k-fold figure; pair with "
          "lr_schedule cosine)", choices=("best", "last")),
    Param("lr_schedule", "none", str, "learning-rate schedule",
          choices=("none", "plateau", "cosine")),
    Param("ema_epochs", 0.0, float,
          "time constant, in epochs, of an exponential moving average of the weights "
          "(Polyak averaging, Keras's optimizer EMA); validation, the kept epoch and the "
          "saved model use the averaged weights, which smooths the last epoch's noise "
          "(0: off)", low=0.0, high=100.0),
    Param("backend", "auto", str,
          "Keras backend to train on (auto: KERAS_BACKEND, else tensorflow)",
          choices=(AUTO, *BACKENDS)),
    Param("mixed_precision", False, bool, "float16 compute on a GPU (ignored on CPU)"),
    Param("max_train_beats", 0, int,
          "stratified subsample of the training file for quick sweeps (0: all)", low=0),
    Param("models_dir", "models", str, "where <model>/best.keras and best.json live"),
    # Class imbalance (ecgsweep.imbalance): all act on the training beats only.
    Param("resample", "none", str,
          "oversample the training beats: smote brings every class to the majority count",
          choices=("none", "smote")),
    Param("loss", "crossentropy", str,
          "training loss; focal (Lin et al. 2017) takes its alpha from class_weight. "
          "val_loss is always the unweighted cross-entropy", choices=("crossentropy", "focal")),
    Param("focal_gamma", 2.0, float, "focusing exponent of the focal loss (0: cross-entropy)",
          low=0.0, high=10.0),
    Param("augment_synthetic", 0.0, float,
          "synthetic beats of the rarest classes added to training, as a share of its size",
          low=0.0, high=10.0),
    # Transfer learning (ecgsweep.transfer).
    Param("pretrained", "", str,
          "a .keras model whose feature layers start this one, under a new head ('': off)"),
    Param("freeze_epochs", 3, int,
          "with pretrained: epochs that train only the new head before fine-tuning all", low=0),
    Param("fine_tune_lr_factor", 0.1, float,
          "with pretrained: learning rate factor once the pretrained layers train too",
          low=1e-6, high=1.0),
    Param("folds", 0, int,
          "stratified k-fold cross-validation on the training file (0 or 1: one split)",
          low=0, high=20),
    Param("final_model", "ensemble", str,
          "with folds >= 2, the model the run saves (model.keras) and promotes: ensemble = "
          "the k fold models averaged in one file, whose predictions are those the "
          "cross-validation scored; refit = one model trained afterwards on every "
          "development beat for the rounded mean of the folds' kept epochs, same seed, "
          "no validation data", choices=("ensemble", "refit")),
    Param("config_file", "", str,
          "a YAML file of fixed values (key: value), read first; values given on the "
          "command line or by a sweep win over it ('': none)"),
    # Inter-patient protocol (de Chazal et al. 2004; AAMI EC57).
    Param("val_split", "auto", str,
          "validation held out by record (no patient on both sides) or by beat; auto: record "
          "when the data's beat sidecar names the records, else random",
          choices=("auto", "record", "random")),
    Param("classes", "aami5", str,
          "MIT-BIH classes: aami5 = N S V F Q; aami4 = N S V F, Q beats dropped everywhere "
          "(the inter-patient literature's protocol)", choices=("aami5", "aami4")),
    Param("rr_features", False, bool,
          "feed each beat's RR-interval features (from the beat sidecar) as a second input"),
    # Training-time augmentation of the training beats (ecgsweep.augment); 0: off.
    Param("aug_scale", 0.0, float, "scale each training beat by U(1-s, 1+s)", low=0.0, high=0.9),
    Param("aug_shift", 0, int, "shift each training beat by up to this many samples",
          low=0, high=40),
    Param("aug_wander", 0.0, float, "add baseline wander (0.1-0.5 Hz) of up to this amplitude",
          low=0.0, high=2.0),
    Param("aug_noise", 0.0, float, "add Gaussian noise of this standard deviation",
          low=0.0, high=1.0),
    Param("other_lead_data", "", str,
          "a data folder (or beat CSV) of the same development records in another lead "
          "(code/data.py wfdb --split train --lead other): each fold also trains on its "
          "training records' beats from it, never validates on them ('': off)"),
    Param("beat_dropout", 0.0, float,
          "with rr_features: share of training beats whose waveform features are hidden "
          "from the head (all at once), so the model also learns to judge from the RR "
          "features alone", low=0.0, high=0.9),
    Param("s_gate_irregularity", 0.0, float,
          "no S call where the rhythm is irregular: a beat whose s_gate_measure is "
          "above this gets its S probability added to N, at validation and "
          "test alike. In atrial fibrillation no beat is a premature atrial one (MIT-BIH "
          "labels them N) (0: off)", low=0.0, high=10.0),
    Param("s_premature_ratio", 0.0, float,
          "premature beats called S: a beat the model calls N whose RR interval is below "
          "this share of the mean of the intervals around it gets its N probability added "
          "to S, before the S gate, at validation and test alike (0: off)",
          low=0.0, high=1.0),
    Param("s_premature_spread", 0.0, float,
          "premature beats called S by each record's own rhythm: a beat called N is also "
          "premature when its RR interval, as a share of the intervals around it, is below "
          "its record's median share minus this many robust standard deviations (over the "
          "beats called N), up to 0.95 (0: off; s_premature_ratio stays the least "
          "threshold)", low=0.0, high=20.0),
    Param("s_run_tolerance", 0.0, float,
          "runs of S: a beat called S whose RR interval is at most (1 - this) of the one "
          "before starts a run, and the beats after it whose interval stays within (1 + "
          "this) of its own are called S too (their N probability added to S), after the "
          "S gate, at validation and test alike; every beat of a run of supraventricular "
          "tachycardia is S, but only its first is premature (s_runs) (0: off)",
          low=0.0, high=0.5),
    Param("v_template_clusters", 0, int,
          "Holter-style templates: each record's beats are clustered into this many "
          "morphology templates (k-means on each row's QRS and ST segment; "
          "beat_templates.TEMPLATE_SECONDS) and every beat "
          "gets its template's mean V probability, at validation and test alike; a V is "
          "told by its shape (0: off)", low=0, high=200),
    Param("v_novel_templates", 0.0, float,
          "premature templates of a novel shape called V: within each record's templates "
          "(v_template_clusters), one whose mean shape lies more than this many of the "
          "dominant template's spreads (its beats' median distance from its mean shape) "
          "from the dominant template's mean shape, and at least v_novel_premature_share of "
          "whose beats are premature (s_premature_ratio, s_premature_spread), has its beats "
          "called V (their N and S probability added to V), before the prematurity step, "
          "at validation and test alike; an ectopic beat of another shape that comes early is "
          "ventricular in any lead (0: off)", low=0.0, high=100.0),
    Param("v_novel_premature_share", 0.5, float,
          "with v_novel_templates: the least share of a template's beats that must be "
          "premature for it to be called V", low=0.0, high=1.0),
    Param("prior_adaptation", 0.0, float,
          "each record's balance of N and S beats re-estimated from the model's outputs on "
          "that record, without its labels (EM, prior_shift), before the S gate; how far "
          "the outputs move toward it in log space, at validation and test alike (0: off, "
          "1: all the way)", low=0.0, high=1.0),
    Param("rr_normalization", "record", str,
          "which RR features: record = ratios to the record's mean RR (per patient), "
          "record_timing = the same without the two measures of the rhythm's spread, so an "
          "irregular rhythm is left to the S gate, record_entropy = those and rr_entropy "
          "(the entropy of the intervals around the beat, which tells fibrillation from "
          "ectopy; needs the beat sidecar's records), none = seconds, both, rhythm = "
          "ratios to the median of the minute around the beat, and the pause after it, record_p75 = ratios to the record's 75th-percentile "
          "RR, which common premature beats do not pull down as they do the mean "
          "(data.sidecar)",
          choices=("record", "record_timing", "record_entropy", "none", "both", "rhythm",
                   "record_p75")),
    Param("s_gate_measure", "local_irregularity", str,
          "the measure s_gate_irregularity reads: local_irregularity (successive "
          "intervals, beat sidecar), rhythm_irregularity (the most regular of lags 1-3, "
          "so bigeminy and trigeminy of premature beats are not taken for fibrillation; "
          "beat sidecar) or rr_entropy (bits: the entropy of the histogram of the 64 "
          "intervals around the beat, which fibrillation spreads over many bins and "
          "ectopy over a few; rr_entropy)",
          choices=("local_irregularity", "rhythm_irregularity", "rr_entropy")),
    Param("train_outside_s_gate", False, bool,
          "training leaves out the beats the S gate clears (s_gate_measure above "
          "s_gate_irregularity), whatever their class: the gate makes their S call, and "
          "fibrillation's irregular beats would teach the model that a premature beat is "
          "normal wherever the rhythm is irregular (needs the S gate on)"),
    Param("beat_normalization", "none", str,
          "record_median: a second input channel, the beat minus the median beat of its own "
          "record (per-patient morphology; needs the beat sidecar's records)",
          choices=("none", "record_median")),
    Param("beat_leads", 1, int,
          "leads per row of the data: 2 for data converted with `code/data.py wfdb "
          "--two-leads` (each row the beat in its lead read, then in a second lead); the "
          "model reads them as input channels", low=1, high=2),
    Param("split_seed", -1, int,
          "seed of the validation split and the folds (-1: seed), to repeat a run with other "
          "weights on the same folds", low=-1),
)

# Dense head shared by the families that end in one (same name as published sweeps use).
# A transfer run (pretrained) builds a new head from these, and reads no other family key.
HEAD_PARAMS = (
    Param("layer_FC_size", 64, int, "width of the dense layer before the softmax (0: none)",
          low=0, high=4096),
    Param("dropout_rate", 0.2, float, "dropout before the dense layers", low=0.0, high=0.9),
)

# The convolutional front (models.layers.conv_stack) the LSTM families and seq2seq share.
_CONV_FRONT = (
        Param("n_conv_blocks", 2, int, "convolution blocks (each halves the sequence)",
              low=1, high=6),
        Param("n_filters", 32, int, "filters in every convolution", low=1, high=1024),
        Param("kernel_size", 5, int, "kernel of every convolution", low=1, high=63),
        Param("batch_norm", True, bool, "batch normalization after each convolution"),
)

FAMILY_PARAMS: dict[str, tuple[Param, ...]] = {
    "cnn": (
        Param("n_conv_blocks", 3, int, "convolution blocks", low=1, high=6),
        Param("layer_1_size", 32, int, "filters in block 1", low=1, high=1024),
        Param("layer_2_size", 64, int, "filters in block 2", low=1, high=1024),
        Param("layer_3_size", 128, int, "filters in block 3", low=1, high=1024),
        Param("layer_4_size", 128, int, "filters in block 4", low=1, high=1024),
        Param("layer_5_size", 256, int, "filters in block 5", low=1, high=1024),
        Param("layer_6_size", 256, int, "filters in block 6", low=1, high=1024),
        Param("kernel_size", 5, int, "kernel of the first block", low=1, high=63),
        Param("kernel_size_step", 0, int,
              "kernel change from one block to the next (e.g. -2: 7, 5, 3)", low=-16, high=16),
        Param("convs_per_block", 1, int, "convolutions in each block", low=1, high=4),
        Param("batch_norm", True, bool, "batch normalization after each convolution"),
        Param("pooling", "max", str, "pooling after each block", choices=("max", "avg", "none")),
        # flatten keeps where in the window each feature sits (the next beat's onset tells
        # premature beats apart); global average pooling discards it and scores lower.
        Param("global_pooling", "flatten", str, "how the feature maps become a vector",
              choices=("flatten", "avg", "max")),
        Param("activation", "relu", str, "activation", choices=("relu", "elu", "gelu", "swish")),
        *HEAD_PARAMS,
    ),
    "rnn": (
        Param("rnn_cell", "lstm", str, "recurrent cell", choices=("lstm", "gru")),
        Param("bidirectional", False, bool, "read the beat both ways"),
        Param("rnn_units", 64, int, "units per recurrent layer", low=1, high=1024),
        Param("rnn_layers", 1, int, "stacked recurrent layers", low=1, high=4),
        Param("downsample", 1, int,
              "average-pool the beat by this factor first (RNNs are slow on 187 steps)",
              low=1, high=8),
        *HEAD_PARAMS,
    ),
    # Kachuee et al. 2018 (arXiv:1805.00794); defaults are the paper's network.
    "cnet": (
        Param("n_res_blocks", 5, int, "residual blocks", low=1, high=12),
        Param("n_filters", 32, int, "filters in every convolution", low=1, high=1024),
        Param("kernel_size", 5, int, "kernel of every convolution", low=1, high=63),
        Param("n_dense_layers", 2, int, "dense layers of layer_FC_size units before the softmax",
              low=0, high=4),
        Param("layer_FC_size", 32, int, "width of each dense layer before the softmax (0: none)",
              low=0, high=4096),
        Param("dropout_rate", 0.0, float, "dropout before the dense layers (0 in the paper)",
              low=0.0, high=0.9),
    ),
    "cnn_lstm": (
        *_CONV_FRONT,
        Param("rnn_units", 64, int, "units per LSTM layer", low=1, high=1024),
        Param("rnn_layers", 2, int, "stacked LSTM layers", low=1, high=4),
        *HEAD_PARAMS,
    ),
    "cnn_bilstm_attention": (
        *_CONV_FRONT,
        Param("rnn_units", 32, int, "units per LSTM direction", low=1, high=1024),
        Param("rnn_layers", 1, int, "stacked bidirectional LSTM layers", low=1, high=4),
        Param("attention_units", 32, int, "hidden units of the additive attention score",
              low=1, high=1024),
        *HEAD_PARAMS,
    ),
    # Mousavi & Afghah 2019: windows of consecutive beats of one record (ecgsweep.beat_windows).
    "seq2seq": (
        Param("seq_window", 16, int, "consecutive beats of one record per window", low=2,
              high=256),
        Param("seq_stride", 8, int,
              "beats between window starts (at most seq_window; below it windows overlap "
              "and a beat's prediction is the mean over its windows)", low=1, high=256),
        *_CONV_FRONT,
        Param("beat_features", 64, int, "features per beat the encoder reads", low=1,
              high=1024),
        Param("rnn_cell", "lstm", str, "recurrent cell of encoder and decoder",
              choices=("lstm", "gru")),
        Param("rnn_units", 64, int, "units per direction of the bidirectional encoder",
              low=1, high=1024),
        Param("attention", True, bool,
              "each decoder step attends over all encoder steps (Luong dot product)"),
        *HEAD_PARAMS,
    ),
    "dualpath_resnet": (
        Param("n_res_blocks", 4, int, "residual blocks (each halves the sequence)",
              low=1, high=12),
        Param("n_filters", 32, int, "filters in every convolution", low=1, high=1024),
        Param("local_kernel_size", 3, int, "kernel of the local (fine) path", low=1, high=63),
        Param("global_kernel_size", 15, int, "kernel of the global (wide) path", low=1, high=63),
        Param("global_dilation", 1, int, "dilation of the global path's convolutions",
              low=1, high=16),
        Param("path_merge", "add", str, "how the two paths are merged", choices=("add", "concat")),
        Param("batch_norm", True, bool, "batch normalization after each convolution"),
        Param("attention_units", 32, int, "hidden units of the additive attention score",
              low=1, high=1024),
        *HEAD_PARAMS,
    ),
}


# Families whose model reads windows of consecutive beats of one record, not single beats.
SEQUENCE_FAMILIES = ("seq2seq",)


@dataclass(frozen=True)
class OptionNeed:
    """An option that needs something of the data: its config key, whether a config turns
    it on, what it does (as its refusals say it), the field of ``datasets.Split`` it reads
    from the beat sidecar (``data.sidecar``; None: none) and the classes it acts on."""

    key: str
    is_on: Callable[[Mapping[str, Any]], bool]
    does: str
    field: str | None  # "records", "rr" or None
    classes: tuple[str, ...] = ()

    def says(self) -> str:
        """'<what it does> and needs <the field>', the core of both sidecar refusals."""
        return f"{self.does} and needs {SIDECAR_FIELD_WORDS[self.field]}"


def _positive(key: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda c: float(c.get(key, 0) or 0) > 0


# The config keys of the steps that follow the model (training.per_record_steps): they
# change no weight, so a trained model can be scored again under other values of them.
PER_RECORD_KEYS = ("prior_adaptation", "v_novel_templates", "v_novel_premature_share",
                   "s_premature_ratio", "s_premature_spread", "s_gate_irregularity",
                   "s_gate_measure", "s_run_tolerance", "v_template_clusters")


# rr_normalization choices whose intervals are divided by a statistic of each beat's record
# when the model is fed (data.sidecar.reference_scaled), so they need each beat's record.
RECORD_SCALED_RR = ("record_p75",)
# rr_normalization choices with an input computed from each record's intervals when the
# model is fed (data.sidecar.FED_RR), so they need each beat's record too.
RECORD_FED_RR = ("record_entropy",)


def _rr_from_whole_record(config: Mapping[str, Any]) -> bool:
    return (bool(config.get("rr_features"))
            and config.get("rr_normalization", "record") in RECORD_SCALED_RR + RECORD_FED_RR)


def _gate_by_entropy(config: Mapping[str, Any]) -> bool:
    return (_positive("s_gate_irregularity")(config)
            and config.get("s_gate_measure") == "rr_entropy")


# The one table of what each option needs of the data: a run refuses at its start
# (run_start.check_sidecar, run_start.check_classes) and eval before scoring
# (evaluation.check_sidecar_needs).
OPTION_NEEDS: tuple[OptionNeed, ...] = (
    OptionNeed("model", lambda c: c.get("model") in SEQUENCE_FAMILIES,
               "reads consecutive beats of one record", "records"),
    OptionNeed("rr_features", lambda c: bool(c.get("rr_features")),
               "feeds each beat's RR intervals to the model", "rr"),
    OptionNeed("rr_normalization", _rr_from_whole_record,
               "reads each beat's RR intervals against its whole record's", "records"),
    OptionNeed("s_gate_irregularity", _positive("s_gate_irregularity"),
               "moves S calls to N where the rhythm is irregular", "rr",
               ("N", "S")),
    OptionNeed("s_gate_measure", _gate_by_entropy,
               "measures the rhythm's entropy over each record's beats", "records"),
    OptionNeed("s_premature_ratio", _positive("s_premature_ratio"),
               "calls S the beats called N that come early against the intervals around "
               "them", "rr", ("N", "S")),
    OptionNeed("s_premature_spread", _positive("s_premature_spread"),
               "calls S the beats called N that come early against their own record's "
               "rhythm", "rr", ("N", "S")),
    OptionNeed("s_premature_spread", _positive("s_premature_spread"),
               "sets each record's prematurity threshold from its own rhythm", "records"),
    OptionNeed("s_run_tolerance", _positive("s_run_tolerance"),
               "calls S the beats of a run begun by an abrupt S beat", "rr", ("N", "S")),
    OptionNeed("prior_adaptation", _positive("prior_adaptation"),
               "re-estimates each record's balance of N and S beats", "records", ("N", "S")),
    OptionNeed("v_template_clusters", _positive("v_template_clusters"),
               "shares the V probability within each record's beat templates", "records",
               ("V",)),
    OptionNeed("v_novel_templates", _positive("v_novel_templates"),
               "calls V the premature templates of a novel shape", "rr", ("N", "S", "V")),
    OptionNeed("v_novel_templates", _positive("v_novel_templates"),
               "compares each record's beat templates", "records"),
    OptionNeed("beat_normalization", lambda c: c.get("beat_normalization", "none") != "none",
               "normalizes each beat by its record's beats", "records"),
)
SIDECAR_FIELD_WORDS = {"records": "each beat's record", "rr": "each beat's RR features"}


def option_on(config: Mapping[str, Any], key: str) -> bool:
    """Whether ``config`` turns on the option ``key`` of ``OPTION_NEEDS``."""
    return next(need for need in OPTION_NEEDS if need.key == key).is_on(config)


def missing_sidecar_need(config: Mapping[str, Any], split: Any) -> OptionNeed | None:
    """The first option ``config`` turns on whose sidecar field ``split`` (a
    ``datasets.Split``) lacks; None when nothing is missing."""
    return next((need for need in OPTION_NEEDS
                 if need.field and need.is_on(config) and getattr(split, need.field) is None),
                None)


def missing_classes(config: Mapping[str, Any], class_names: Any) -> OptionNeed | None:
    """The first option ``config`` turns on that acts on a class ``class_names`` lacks;
    None when every one finds its classes."""
    return next((need for need in OPTION_NEEDS
                 if need.is_on(config) and not set(need.classes) <= set(class_names)), None)


# Training-time augmentation of the beat alone (ecgsweep.augment); any above 0 turns it on.
AUGMENT_KEYS = ("aug_scale", "aug_shift", "aug_wander", "aug_noise")


def augment_on(config: Mapping[str, Any]) -> bool:
    """Whether the config augments the training beats (any ``AUGMENT_KEYS`` above 0)."""
    return any(float(config.get(key, 0) or 0) > 0 for key in AUGMENT_KEYS)


def pretrained_set(pretrained: Any) -> bool:
    """Whether the config's ``pretrained`` names a file ('' or 'none': off)."""
    return bool(pretrained) and str(pretrained).strip().lower() not in ("", "none", "null")


def value(config: Mapping[str, Any], key: str) -> Any:
    """The config's value of ``key``, or the parameter's default where the config has none
    (a sweep's fixed values name only some keys)."""
    if key in config:
        return config[key]
    return next(p.default for p in TRAINING_PARAMS if p.name == key)


def prematurity_on(config: Mapping[str, Any]) -> bool:
    """Whether the config calls beats premature (``s_premature_ratio`` or
    ``s_premature_spread`` above 0): the prematurity step runs, and the steps that read
    which beats are premature can."""
    return (float(value(config, "s_premature_ratio") or 0) > 0
            or float(value(config, "s_premature_spread") or 0) > 0)


@dataclass(frozen=True)
class ReadOnlyWith:
    """A key read only when ``needed`` holds of the setting of ``needed_key`` (said as
    ``needs``: "with folds >= 2", "without pretrained"): given otherwise, it changes
    nothing, and the run says so."""

    key: str
    needed_key: str
    needs: str
    needed: Callable[[Mapping[str, Any]], bool]


def architecture_keys() -> tuple[str, ...]:
    """Every family key that shapes the network below its head: a run with ``pretrained``
    takes the pretrained model's feature layers instead and reads none of them. The sequence
    families' keys are not among them: those families refuse ``pretrained``
    (``COMBINATION_RULES``), and their window keys shape the data, not the network."""
    head = {p.name for p in HEAD_PARAMS}
    keys = {p.name for name, family in FAMILY_PARAMS.items() if name not in SEQUENCE_FAMILIES
            for p in family}
    return tuple(sorted(keys - head))


def _without_pretrained(key: str) -> ReadOnlyWith:
    return ReadOnlyWith(key, "pretrained", "without pretrained (the pretrained model's feature "
                        "layers stand in for the family's)",
                        lambda c: not pretrained_set(value(c, "pretrained")))


# The one table of keys that need another setting to be read (or, for the architecture
# keys, one left off).
READ_ONLY_WITH: tuple[ReadOnlyWith, ...] = (
    ReadOnlyWith("final_model", "folds", "with folds >= 2",
                 lambda c: int(value(c, "folds")) >= 2),
    ReadOnlyWith("freeze_epochs", "pretrained", "with pretrained",
                 lambda c: pretrained_set(value(c, "pretrained"))),
    ReadOnlyWith("fine_tune_lr_factor", "pretrained", "with pretrained",
                 lambda c: pretrained_set(value(c, "pretrained"))),
    ReadOnlyWith("beat_dropout", "rr_features", "with rr_features",
                 lambda c: bool(value(c, "rr_features"))),
    *(_without_pretrained(key) for key in architecture_keys()),
)


def unread_keys(given: Sequence[str], config: Mapping[str, Any]) -> list[ReadOnlyWith]:
    """The keys of ``given`` that ``config`` does not read, for want of the setting each
    needs (``READ_ONLY_WITH``)."""
    return [rule for rule in READ_ONLY_WITH if rule.key in given and not rule.needed(config)]


@dataclass(frozen=True)
class Switch:
    """An option a cross-setting rule can rule out: its name as refusals print it, the
    config keys it reads, and whether a config turns it on."""

    name: str
    keys: tuple[str, ...]
    is_on: Callable[[Mapping[str, Any]], bool]

    def keys_on(self, config: Mapping[str, Any]) -> tuple[str, ...]:
        """The keys that turn it on in ``config`` (for aug_*: those above 0)."""
        if len(self.keys) == 1:
            return self.keys
        return tuple(k for k in self.keys if float(value(config, k) or 0) > 0)


SWITCHES: dict[str, Switch] = {s.name: s for s in (
    Switch("max_train_beats", ("max_train_beats",),
           lambda c: int(value(c, "max_train_beats")) > 0),
    Switch("val_split=random", ("val_split",), lambda c: value(c, "val_split") == "random"),
    Switch("resample", ("resample",), lambda c: value(c, "resample") != "none"),
    Switch("augment_synthetic", ("augment_synthetic",),
           lambda c: float(value(c, "augment_synthetic")) > 0),
    Switch("pretrained", ("pretrained",), lambda c: pretrained_set(value(c, "pretrained"))),
    Switch("aug_*", AUGMENT_KEYS, augment_on),
    Switch("beat_normalization", ("beat_normalization",),
           lambda c: value(c, "beat_normalization") != "none"),
    Switch("beat_leads=2", ("beat_leads",), lambda c: int(value(c, "beat_leads")) > 1),
    Switch("other_lead_data", ("other_lead_data",), lambda c: bool(value(c, "other_lead_data"))),
    Switch("beat_dropout", ("beat_dropout",), lambda c: float(value(c, "beat_dropout")) > 0),
    Switch("train_outside_s_gate", ("train_outside_s_gate",),
           lambda c: bool(value(c, "train_outside_s_gate"))),
    Switch("s_gate_irregularity=0", ("s_gate_irregularity",),
           lambda c: float(value(c, "s_gate_irregularity")) <= 0),
    Switch("v_template_clusters=0", ("v_template_clusters",),
           lambda c: int(value(c, "v_template_clusters")) <= 0),
    # keys_on names the first key only: both are 0 when this switch is on
    Switch("no prematurity step (s_premature_ratio=0, s_premature_spread=0)",
           ("s_premature_ratio",), lambda c: not prematurity_on(c)),
    Switch("lr_schedule=plateau", ("lr_schedule",),
           lambda c: value(c, "lr_schedule") == "plateau"),
)}


@dataclass(frozen=True)
class CombinationProblem:
    """Settings of one config that cannot run together: the keys involved (the option
    first) and the refusal, one line."""

    keys: tuple[str, ...]
    message: str


@dataclass(frozen=True)
class CombinationRule:
    """An option (``key``, on when ``applies``) that none of the ``excludes`` switches may
    join. ``message`` is the refusal, with ``{value}`` (the option's value), ``{clash}``
    (the switches that are on, by name) and ``{why}`` (the ``reasons`` of those switches,
    each once)."""

    key: str
    applies: Callable[[Mapping[str, Any]], bool]
    excludes: tuple[str, ...]
    message: str
    reasons: Mapping[str, str] = field(default_factory=dict)

    def problem(self, config: Mapping[str, Any]) -> CombinationProblem | None:
        if not self.applies(config):
            return None
        clash = [SWITCHES[name] for name in self.excludes if SWITCHES[name].is_on(config)]
        if not clash:
            return None
        keys = tuple(dict.fromkeys(k for s in clash for k in s.keys_on(config)))
        why = "; ".join(dict.fromkeys(self.reasons[s.name] for s in clash
                                      if s.name in self.reasons))
        return CombinationProblem((self.key, *keys), self.message.format(
            value=value(config, self.key), clash=", ".join(s.name for s in clash), why=why))


# The one table of which settings cannot run together. Config-only: a run refuses at its
# start, before loading data (run_start.check_combinations), and `sweep.py check` before the
# sweep's first run (sweep_hooks).
COMBINATION_RULES: tuple[CombinationRule, ...] = (
    # A sequence model reads consecutive beats of one record: nothing may take beats out of
    # a record or add beats from none. beat_normalization: its windows are gathered from the
    # beats alone (beat_windows.gather); beat_dropout: it joins the RR features per beat
    # itself, without the shared RR branch.
    CombinationRule(
        "model", lambda c: value(c, "model") in SEQUENCE_FAMILIES,
        ("max_train_beats", "val_split=random", "resample", "augment_synthetic", "pretrained",
         "beat_normalization", "beat_dropout", "train_outside_s_gate", "beat_leads=2"),
        "config key 'model': {value} is not supported together with {clash} ({why}); turn "
        "those off",
        reasons={**dict.fromkeys(("max_train_beats", "val_split=random",
                                  "train_outside_s_gate"), "gaps in a record's beats"),
                 **dict.fromkeys(("resample", "augment_synthetic"), "beats of no record"),
                 "pretrained": "a single-beat model to start from",
                 **dict.fromkeys(("beat_normalization", "beat_dropout", "beat_leads=2"),
                                 "a channel its windows do not carry")}),
    # Beats added by SMOTE or the synthetic generator, and a pretrained single-input model,
    # have no RR features.
    CombinationRule(
        "rr_features", lambda c: bool(value(c, "rr_features")),
        ("resample", "augment_synthetic", "pretrained"),
        "config key 'rr_features': not supported together with {clash} (added beats and a "
        "pretrained beat-only model have no RR features); set rr_features=false or turn "
        "those off"),
    # The second channel needs each beat's record, which added beats lack, and would not
    # fit a pretrained one-channel model.
    CombinationRule(
        "beat_normalization", lambda c: value(c, "beat_normalization") != "none",
        ("resample", "augment_synthetic", "pretrained"),
        "config key 'beat_normalization': {value}: not supported together with {clash}; set "
        "beat_normalization=none or turn those off"),
    # Which beats the gate clears is the gate's threshold: without one there are none.
    CombinationRule(
        "train_outside_s_gate", lambda c: bool(value(c, "train_outside_s_gate")),
        ("s_gate_irregularity=0",),
        "config key 'train_outside_s_gate': true leaves out of training the beats the S gate "
        "clears, and the gate is off ({clash}); set s_gate_irregularity above 0 or "
        "train_outside_s_gate=false"),
    # Novel templates are judged among the V templates' clusters, and by the beats the
    # prematurity step finds early.
    CombinationRule(
        "v_novel_templates", lambda c: float(value(c, "v_novel_templates")) > 0,
        ("v_template_clusters=0",
         "no prematurity step (s_premature_ratio=0, s_premature_spread=0)"),
        "config key 'v_novel_templates': {value} calls V the premature templates of a novel "
        "shape among each record's V templates, and {clash}; set v_template_clusters and "
        "s_premature_ratio (or s_premature_spread) above 0, or v_novel_templates=0"),
    # Two-lead rows: the added and synthetic beats, a pretrained model, the augmentation and
    # the other-lead training beats are of one lead.
    CombinationRule(
        "beat_leads", lambda c: int(value(c, "beat_leads")) > 1,
        ("resample", "augment_synthetic", "pretrained", "aug_*", "other_lead_data"),
        "config key 'beat_leads': {value} reads rows of two leads, and {clash} works on "
        "beats of one lead; set beat_leads=1 or turn those off"),
    # Beats split at random put a beat's other-lead copy in training beside it in validation.
    CombinationRule(
        "other_lead_data", lambda c: bool(value(c, "other_lead_data")),
        ("val_split=random",),
        "config key 'other_lead_data': {value} adds another lead of the training records, "
        "and with {clash} the beats validated on are among those records, so training would "
        "see them in the other lead; use val_split record (or auto)"),
    # A k-fold run's refit trains without validation data, which the plateau schedule follows.
    CombinationRule(
        "final_model",
        lambda c: value(c, "final_model") == "refit" and int(value(c, "folds")) >= 2,
        ("lr_schedule=plateau",),
        "config key 'final_model': {value} trains without validation data, which "
        "{clash} follows; use final_model=ensemble or another lr_schedule"),
)


def combination_problems(config: Mapping[str, Any]) -> list[CombinationProblem]:
    """Every rule of ``COMBINATION_RULES`` that ``config`` breaks, in the table's order
    (empty when its settings can run together). Keys it does not name take their
    defaults."""
    return [problem for rule in COMBINATION_RULES
            if (problem := rule.problem(config)) is not None]


def family_names() -> list[str]:
    return sorted(FAMILY_PARAMS)


def params_for(model: str) -> dict[str, Param]:
    """Training parameters plus the given family's, by name."""
    if model not in FAMILY_PARAMS:
        raise KeyError(model)
    return {p.name: p for p in (*TRAINING_PARAMS, *FAMILY_PARAMS[model])}


def all_params() -> dict[str, Param]:
    """Every parameter any run can read (training plus all families)."""
    merged: dict[str, Param] = {p.name: p for p in TRAINING_PARAMS}
    for family in FAMILY_PARAMS.values():
        for p in family:
            merged.setdefault(p.name, p)
    return merged
