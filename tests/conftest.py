"""Shared test setup: offline W&B, quiet TensorFlow, paths to the real fixtures."""

import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

# Set before anything imports wandb or TensorFlow.
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Ray nodes started by the tests listen on 127.0.0.1 only. Ray 2.60 swaps a loopback node
# address for the machine's outward one, and its servers then listen on every interface,
# unless this variable is 0; it is read when ray is imported, so it is set here, first.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
RAY_LOOPBACK_NODE = {"node_ip_address": "127.0.0.1", "include_dashboard": False}

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def user_cache_under_tmp(tmp_path_factory) -> Iterator[Path]:
    """XDG_CACHE_HOME (the CSV parse cache's folder, ``kaggle_csv.user_cache_dir``) under
    pytest's tmp for every test and, through the environment run_env copies, each of its
    subprocesses: no test writes to the real home's cache."""
    cache = tmp_path_factory.mktemp("xdg-cache")
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    yield cache
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


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
    """Environment for a subprocess of ours: offline W&B under tmp_path, quiet TF; the parse
    cache where ``user_cache_under_tmp`` points it."""
    env = dict(os.environ)
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DIR=str(tmp_path),
               # W&B's own folders (artifact staging, cache) under tmp_path, not the home
               WANDB_DATA_DIR=str(tmp_path / "wandb-data"),
               WANDB_CACHE_DIR=str(tmp_path / "wandb-cache"),
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    for key in ("WANDB_SWEEP_ID", "WANDB_RUN_ID", "WANDB_SWEEP_PARAM_PATH"):
        env.pop(key, None)
    env.update(extra)
    return env


def copy_records(dest: Path, *records: Path) -> Path:
    """Copies of WFDB records (``.../mitdb/100``: its .hea, .dat and .atr) in ``dest``, so a
    test converts them without writing beside the shared data."""
    dest.mkdir(parents=True, exist_ok=True)
    for base in records:
        for ext in ("hea", "dat", "atr"):
            shutil.copyfile(base.with_suffix(f".{ext}"), dest / f"{base.name}.{ext}")
    return dest


# Sample rate of the fake records' R peaks (write_records_csv).
FAKE_RECORD_FS = 360


def write_records_csv(folder: Path, name: str, lengths: dict, seed: int,
                      with_sidecar: bool = True) -> Path:
    """A Kaggle-format CSV of fake records' beats (in record order, as `code/data.py wfdb`
    writes them), with its beat sidecar of records, R peaks and RR features."""
    import numpy as np

    from ecgsweep.data import sidecar, synth
    from ecgsweep.data.kaggle_csv import write_csv

    X, y = synth.make_mitbih(sum(lengths.values()), seed)
    csv = write_csv(folder / f"{name}.csv", X, y)
    if with_sidecar:
        rng = np.random.default_rng(seed)
        peaks = [np.cumsum(rng.integers(250, 400, n)) for n in lengths.values()]
        records = np.concatenate([[r] * n for r, n in lengths.items()])
        rr = np.concatenate([sidecar.rr_features(p, FAKE_RECORD_FS) for p in peaks])
        sidecar.write(sidecar.sidecar_path(csv), records, np.concatenate(peaks), rr)
    return csv


def kill_processes_under(folder: Path) -> None:
    """SIGKILL every process of this user whose environment names ``folder`` (its W&B
    folder): what a failing test would otherwise leave running."""
    import os
    import signal

    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if str(folder).encode() in (proc / "environ").read_bytes():
                    os.kill(int(proc.name), signal.SIGKILL)
            except OSError:
                pass
