"""Training, saving, loading and evaluation on the TensorFlow and PyTorch backends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import run_env
from ecgsweep import backend, params
from ecgsweep.cli import UserError

WORKER = Path(__file__).with_name("backend_worker.py")


def test_choose_prefers_config_then_loaded_then_environment():
    assert backend.choose("torch", {}) == "torch"
    assert backend.choose("auto", {"KERAS_BACKEND": "jax"}) == "jax"
    assert backend.choose("auto", {"KERAS_BACKEND": "jax"}, loaded="torch") == "torch"
    assert backend.choose("auto", {}) == "tensorflow"


def test_choose_refuses_a_switch_after_keras_is_loaded():
    with pytest.raises(UserError, match="already loaded with 'tensorflow'.*KERAS_BACKEND=torch"):
        backend.choose("torch", {}, loaded="tensorflow")


def test_choose_refuses_an_unknown_environment_backend():
    with pytest.raises(UserError, match="KERAS_BACKEND='numpy'.*tensorflow, jax, torch"):
        backend.choose("auto", {"KERAS_BACKEND": "numpy"})


def test_select_names_the_install_line_of_a_missing_backend(monkeypatch):
    monkeypatch.setattr(backend, "is_installed", lambda name: False)
    monkeypatch.setattr(backend, "_loaded_backend", lambda: None)
    with pytest.raises(UserError, match=r"'jax' is not installed.*pip install jax==0\.6\.2"):
        backend.select("jax")


def test_backend_is_a_config_key_with_the_backends_as_choices():
    p = params.params_for("cnn")["backend"]
    assert p.default == "auto" and set(p.choices) == {"auto", *backend.BACKENDS}


def test_device_description_and_precision_policy():
    assert backend.precision_policy(True, ()) == "float32"  # float16 only on a GPU
    assert backend.precision_policy(True, ("H100",)) == "mixed_float16"
    gpu = backend.Device("torch", ("NVIDIA H100",), "mixed_float16", 16)
    assert gpu.describe() == "GPU: NVIDIA H100 (mixed_float16), Keras backend torch"
    cpu = backend.Device("jax", (), "float32", 2)
    assert cpu.describe() == "CPU (2 cores; no GPU visible), Keras backend jax"


def _worker(backend_name: str, synth_dir: Path, tmp_path: Path, out: Path, *extra: str):
    cmd = [sys.executable, str(WORKER), str(synth_dir / "mitbih_train.csv"),
           str(synth_dir / "mitbih_test.csv"), str(out), *extra]
    proc = subprocess.run(cmd, env=run_env(tmp_path, KERAS_BACKEND=backend_name),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def _train_on_both_and_load_across(other: str, synth_dir: Path, tmp_path: Path) -> None:
    """TensorFlow and ``other`` each train every family, save it and evaluate the cnn; each
    loads the other's models, whose probabilities must match the saving backend's."""
    tf_dir, other_dir = tmp_path / "tensorflow", tmp_path / other
    _worker("tensorflow", synth_dir, tmp_path, tf_dir)
    _worker(other, synth_dir, tmp_path, other_dir, "--load", str(tf_dir))
    _worker("tensorflow", synth_dir, tmp_path, tf_dir, "--no-train", "--load", str(other_dir))
    for out, name, loaded_on in ((tf_dir, "tensorflow", other), (other_dir, other, "tensorflow")):
        assert json.loads((out / "device.json").read_text())["backend"] == name
        assert json.loads((out / "eval" / "report.json").read_text())["models"]
        for family in sorted(set(params.family_names()) - set(params.SEQUENCE_FAMILIES)):
            saved = np.load(out / f"{family}.npy")
            elsewhere = np.load(out / f"{family}.on-{loaded_on}.npy")
            np.testing.assert_allclose(elsewhere, saved, atol=1e-4,
                                       err_msg=f"{family} saved on {name}")


@pytest.mark.slow
def test_every_family_trains_saves_loads_and_evaluates_on_tensorflow_and_torch(synth_dir,
                                                                                tmp_path):
    pytest.importorskip("torch")
    _train_on_both_and_load_across("torch", synth_dir, tmp_path)


@pytest.mark.slow
def test_every_family_trains_saves_loads_and_evaluates_on_tensorflow_and_jax(synth_dir,
                                                                              tmp_path):
    # Not in requirements-test.txt: JAX 0.6.2 is the newest beside numpy<2 (docs/models-and-parameters.md).
    pytest.importorskip("jax")
    _train_on_both_and_load_across("jax", synth_dir, tmp_path)


@pytest.mark.slow
def test_train_py_on_torch_records_backend_and_device(synth_dir, tmp_path, repo_root):
    pytest.importorskip("torch")
    models_dir = tmp_path / "models"
    cmd = [sys.executable, str(repo_root / "code" / "train.py"), "--backend=torch",
           f"--dataset={synth_dir}", "--epochs=1", "--max_train_beats=200", "--n_conv_blocks=1",
           f"--models_dir={models_dir}"]
    proc = subprocess.run(cmd, env=run_env(tmp_path, KERAS_BACKEND="tensorflow"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "training on CPU (" in proc.stdout and "Keras backend torch" in proc.stdout
    record = json.loads((models_dir / "cnn" / "best.json").read_text())
    assert record["backend"] == "torch"
    assert record["device"].startswith("CPU") and record["device"].endswith("backend torch")
