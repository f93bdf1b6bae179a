"""Run by tests/test_backends.py in a subprocess with KERAS_BACKEND set (one backend per process).

    python tests/backend_worker.py DATA_CSV TEST_CSV OUT [--load DIR]

Trains every single-beat model family for one epoch on a few beats of DATA_CSV, saves
``OUT/<family>.keras`` and its probabilities on the first beats of TEST_CSV
(``<family>.npy``), and evaluates the cnn with ``evaluation.evaluate`` (report in
``OUT/eval``). With ``--load DIR`` it also loads the models another backend saved in DIR
and writes their probabilities on the same beats as ``DIR/<family>.on-<backend>.npy``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "code"))

from ecgsweep import backend, config, evaluation, model_inputs, models, params, training  # noqa: E402
from ecgsweep.data import datasets  # noqa: E402

# Small versions of each family, so one epoch on a CPU takes a second or two.
SMALL = {
    "cnn": {"n_conv_blocks": 2, "layer_1_size": 8, "layer_2_size": 8, "layer_FC_size": 16},
    "rnn": {"downsample": 8, "rnn_units": 8},
    "cnet": {"n_res_blocks": 1, "n_filters": 8, "layer_FC_size": 8},
    "cnn_lstm": {"n_filters": 8, "rnn_units": 8, "rnn_layers": 1},
    "cnn_bilstm_attention": {"n_filters": 8, "rnn_units": 4, "attention_units": 4},
    "dualpath_resnet": {"n_res_blocks": 1, "n_filters": 8, "attention_units": 4},
}
# The families that read single beats: the synthetic data names no records, which the
# sequence families (seq2seq) need; tests/test_seq2seq.py covers those.
BEAT_FAMILIES = [f for f in params.family_names() if f not in params.SEQUENCE_FAMILIES]
N_PROBE = 32  # test beats whose probabilities are compared across backends


def train_all(dev: datasets.Split, probe: np.ndarray, out: Path) -> None:
    train, val = datasets.train_val_split(dev, 0.1, seed=0, max_train_beats=300)
    class_names = datasets.MITBIH_CLASSES
    for family in BEAT_FAMILIES:
        cfg = config.resolve({"model": family, "epochs": 1, "batch_size": 64, **SMALL[family]})
        training.seed_everything(0)
        model = models.build(cfg, (dev.X.shape[1], 1), len(class_names))
        result = training.fit(model, cfg, train, val, class_names, sink=lambda m: None,
                              stop=training.StopRequest())
        assert result.history, family
        path = out / f"{family}.keras"
        model.save(path)
        np.save(out / f"{family}.npy", model.predict(model_inputs.as_model_input(probe), verbose=0))


def load_all(other: Path, probe: np.ndarray, name: str) -> None:
    for path in sorted(other.glob("*.keras")):
        loaded = evaluation.load_model(path)
        probs = loaded.model.predict(model_inputs.as_model_input(probe), verbose=0)
        np.save(other / f"{path.stem}.on-{name}.npy", probs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data_csv")
    parser.add_argument("test_csv")
    parser.add_argument("out", type=Path)
    parser.add_argument("--load", type=Path)
    parser.add_argument("--no-train", action="store_true")
    args = parser.parse_args()
    name = backend.select()
    device = backend.configure_device(mixed_precision=False)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "device.json").write_text(json.dumps({"backend": device.backend,
                                                      "device": device.describe()}))
    dev = datasets.load_development(datasets.resolve_source(args.data_csv))
    probe = datasets.load_test(datasets.resolve_source(args.test_csv), args.test_csv).X[:N_PROBE]
    if not args.no_train:
        train_all(dev, probe, args.out)
        evaluation.evaluate([args.out / "cnn.keras"], test_csv=args.test_csv,
                            out_dir=args.out / "eval", bootstrap=0, examples_per_pair=1)
    if args.load:
        load_all(args.load, probe, name)


if __name__ == "__main__":
    main()
