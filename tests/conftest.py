"""Shared test setup: offline W&B, quiet TensorFlow, paths to the real fixtures."""

import os
from pathlib import Path

import pytest

# Set before anything imports wandb or TensorFlow.
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real fixtures missing: {SHARED_DATA} (CI puts ../shared beside the repo)")
    return SHARED_DATA


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """A small synthetic data set in the Kaggle format (all four files)."""
    from ecgsweep.data import synth

    out = tmp_path_factory.mktemp("synthdata")
    synth.write_dataset(out, n_train=1500, n_test=500, n_ptb=500, seed=0)
    return out


def run_env(tmp_path: Path, **extra: str) -> dict:
    """Environment for a subprocess of ours: offline W&B under tmp_path, quiet TF."""
    env = dict(os.environ)
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DIR=str(tmp_path),
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    for key in ("WANDB_SWEEP_ID", "WANDB_RUN_ID", "WANDB_SWEEP_PARAM_PATH"):
        env.pop(key, None)
    env.update(extra)
    return env
