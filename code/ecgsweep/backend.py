"""Which Keras backend a run trains on, and the device set-up each backend needs.

Keras reads ``KERAS_BACKEND`` once, when it is first imported; so ``select`` must run
before anything imports keras. The run calls it with its config key ``backend``.
Deciding (``choose``, ``describe``) is pure; probing the GPUs is at the edges.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from typing import Mapping

from .cli import UserError
from .params import AUTO, BACKENDS, DEFAULT_BACKEND  # one definition: the config schema
from .sweep.launch import GPU_MEMORY_FRACTION_ENV  # set by the sweep runner's --runs-per-gpu

# What to install for each backend (docs/models-and-parameters.md gives the GPU lines).
INSTALL_HINT = {
    "tensorflow": "pip install -r requirements.txt",
    "jax": "pip install jax==0.6.2 jaxlib==0.6.2",  # 0.10 needs numpy>=2; sweeps numpy<2
    "torch": "pip install torch==2.13.0",
}


# TensorFlow's C++ log level: 2 keeps its start-up notes (absl, oneDNN, CPU features, CUDA
# plugins) off the terminal and still shows its errors.
TF_LOG_LEVEL = ("TF_CPP_MIN_LOG_LEVEL", "2")


def quiet_tensorflow(environ: dict[str, str] | None = None) -> None:
    """Keep TensorFlow's start-up notes off stderr unless the user set the level; before
    TensorFlow is imported (it reads the variable once), and in every run it starts."""
    name, level = TF_LOG_LEVEL
    environ = os.environ if environ is None else environ
    environ.setdefault(name, level)
    if environ[name] != "0":
        # its Python side as well: "triggered tf.function retracing" each time one of several
        # models predicts (an ensemble, fold models scored again) says nothing to the user
        logging.getLogger("tensorflow").setLevel(logging.ERROR)


# Notes TensorFlow's C++ side writes while it loads, through absl before absl reads a log
# level, so TF_CPP_MIN_LOG_LEVEL does not hold them back (the oneDNN note, on CPUs with it).
TF_LOAD_NOTES = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\) is called "
                           r"are written to STDERR|I\d{4} [\d:. ]+\d+ \S+\.cc:\d+\] .*")


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with what it writes to stderr while loading held back, and pass on
    every line but its load notes (``TF_LOAD_NOTES``), unless the user asked for TensorFlow's
    notes (TF_CPP_MIN_LOG_LEVEL=0)."""
    if "tensorflow" in sys.modules or os.environ.get(TF_LOG_LEVEL[0], "0") == "0":
        return
    sys.stderr.flush()
    with tempfile.TemporaryFile() as held:
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:  # a failed import's own messages reach stderr too
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            sys.stderr.write(without_load_notes(held.read().decode(errors="replace")))


def without_load_notes(text: str) -> str:
    """``text`` without TensorFlow's load notes (``TF_LOAD_NOTES``), line by line."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not TF_LOAD_NOTES.fullmatch(line.rstrip("\n")))


class BackendError(UserError):
    """The requested backend cannot be used in this process or environment."""


def choose(requested: str, environ: Mapping[str, str], loaded: str | None = None) -> str:
    """The backend a run will use: the config's, else the one Keras already loaded in this
    process, else ``KERAS_BACKEND``, else TensorFlow. Raises BackendError for a backend
    other than the loaded one (Keras cannot switch once imported)."""
    name = requested if requested != AUTO else (
        loaded or environ.get("KERAS_BACKEND") or DEFAULT_BACKEND)
    if name not in BACKENDS:
        raise BackendError(f"KERAS_BACKEND={name!r} is not a backend ecg-sweeps trains on; "
                           f"use one of: {', '.join(BACKENDS)}")
    if loaded is not None and name != loaded:
        raise BackendError(f"config key 'backend': {name!r} was asked for, but Keras is already "
                           f"loaded with {loaded!r} in this process; start a new process with "
                           f"KERAS_BACKEND={name}")
    return name


def _loaded_backend() -> str | None:
    keras = sys.modules.get("keras")
    return keras.backend.backend() if keras is not None else None


def is_installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def select(requested: str = AUTO) -> str:
    """Make ``requested`` (a config value) the backend Keras loads; return its name."""
    quiet_tensorflow()
    name = choose(requested, os.environ, _loaded_backend())
    if not is_installed(name):
        raise BackendError(f"config key 'backend': {name!r} is not installed in "
                           f"{sys.prefix}; install it with `{INSTALL_HINT[name]}` "
                           "(docs/models-and-parameters.md: GPU backends)")
    os.environ["KERAS_BACKEND"] = name
    if name == "tensorflow":
        import_tensorflow_quietly()
    if name == "jax":
        # JAX takes 75% of GPU memory up front; allocate on demand so several runs share a GPU
        # (what TensorFlow's memory growth does).
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    return name


@dataclass(frozen=True)
class Device:
    """Where a run trains: the backend, the GPUs it sees (names) and the precision policy."""

    backend: str
    gpus: tuple[str, ...]
    precision: str  # "float32" or "mixed_float16"
    cpu_count: int

    def describe(self) -> str:
        """One line for the run's output and best.json's ``device``."""
        if not self.gpus:
            return f"CPU ({self.cpu_count} cores; no GPU visible), Keras backend {self.backend}"
        return f"GPU: {', '.join(self.gpus)} ({self.precision}), Keras backend {self.backend}"


def precision_policy(mixed_precision: bool, gpus: tuple[str, ...]) -> str:
    """float16 compute only on a GPU: on a CPU it is slower and no more accurate."""
    return "mixed_float16" if mixed_precision and gpus else "float32"


def _tensorflow_gpus() -> tuple[str, ...]:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)  # share the GPU between runs
        except RuntimeError:
            pass  # already initialised (a second run in one process): keep its setting
    return tuple(tf.config.experimental.get_device_details(g).get("device_name", g.name)
                 for g in gpus)


def memory_fraction(environ: Mapping[str, str]) -> float | None:
    """The share of each GPU's memory this run may take when runs share a GPU
    (``GPU_MEMORY_FRACTION_ENV``); None: as much as it needs."""
    text = environ.get(GPU_MEMORY_FRACTION_ENV, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 1:
        raise BackendError(f"{GPU_MEMORY_FRACTION_ENV}={text!r}: give the share of a GPU's "
                           "memory one run may take, a number in (0, 1], or unset it")
    return value


def _torch_gpus() -> tuple[str, ...]:
    import torch

    if not torch.cuda.is_available():
        return ()
    fraction = memory_fraction(os.environ)  # TensorFlow grows, JAX reads its own variable
    if fraction is not None:
        for i in range(torch.cuda.device_count()):
            torch.cuda.set_per_process_memory_fraction(fraction, i)
    return tuple(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))


def _jax_gpus() -> tuple[str, ...]:
    import jax

    return tuple(d.device_kind for d in jax.devices() if d.platform == "gpu")


def visible_gpus(name: str) -> tuple[str, ...]:
    """Names of the GPUs the backend ``name`` can train on (empty on a CPU-only machine)."""
    probes = {"tensorflow": _tensorflow_gpus, "torch": _torch_gpus, "jax": _jax_gpus}
    return probes[name]()


def configure_device(mixed_precision: bool) -> Device:
    """Set up the loaded backend's GPUs and Keras' precision policy; describe the device."""
    import keras

    name = keras.backend.backend()
    gpus = visible_gpus(name)
    policy = precision_policy(mixed_precision, gpus)
    keras.mixed_precision.set_global_policy(policy)  # explicit: a second run in one process
    return Device(name, gpus, policy, os.cpu_count() or 1)
