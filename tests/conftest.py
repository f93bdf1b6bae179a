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
