"""Download the MIT-BIH records (PhysioNet, via ``wfdb``) or the Kaggle heartbeat CSVs.

Both fail at once without internet: a ~3 s connection probe runs before any download,
and the error says what to fetch by hand, where to put it and what to run next.

Set ``ECGSWEEPS_NET_PROBE=host:port`` to send every probe to one address instead (the
tests point it at a closed local port to take the offline path without a network).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from ..cli import UserError
from .classes import KAGGLE_FILE_CLASSES, MITBIH_FILES, PTBDB_FILES

PHYSIONET_HOST = ("physionet.org", 443)
KAGGLE_HOST = ("www.kaggle.com", 443)
PROBE_TIMEOUT_S = 3.0
PROBE_ENV = "ECGSWEEPS_NET_PROBE"

MITDB_URL = "https://physionet.org/content/mitdb/1.0.0/"
KAGGLE_DATASET = "shayanfazeli/heartbeat"
KAGGLE_URL = "https://www.kaggle.com/datasets/shayanfazeli/heartbeat"
KAGGLE_FILES = tuple(KAGGLE_FILE_CLASSES)


def _probe_target(default: tuple[str, int]) -> tuple[str, int]:
    override = os.environ.get(PROBE_ENV, "").strip()
    if not override:
        return default
    host, sep, port = override.rpartition(":")
    if not sep or not port.isdigit():
        raise UserError(f"{PROBE_ENV}={override!r}: expected host:port")
    return host or "127.0.0.1", int(port)


def can_reach(host: str, port: int, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when a TCP connection to ``host:port`` opens within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:  # DNS failure, refused, unreachable, timeout
        return False


def _require_network(default: tuple[str, int], what: str, manual: str) -> None:
    host, port = _probe_target(default)
    if not can_reach(host, port):
        raise UserError(f"cannot reach {host}:{port} to download {what} (no internet?). "
                        f"{manual}")


def records_folder(out: str | os.PathLike) -> Path:
    """Where ``data.py wfdb`` keeps the MIT-BIH records by default: beside the CSVs it
    converts them to (``--out``), as ``<out>/mitdb``."""
    return Path(out) / "mitdb"


def mitdb_manual(dest: Path) -> str:
    return (f"Download the MIT-BIH Arrhythmia Database by hand from {MITDB_URL} "
            f"(\"Download the ZIP file\", or the 48 records' .hea, .dat and .atr files), "
            f"put the record files directly in {dest}/ (e.g. {dest}/100.hea), then run "
            f"`python code/data.py wfdb --src {dest} --out {dest.parent}`.")


def kaggle_manual(dest: Path) -> str:
    return (f"Download the ECG Heartbeat Categorization Dataset by hand from {KAGGLE_URL}, "
            f"unzip it and put {', '.join(MITBIH_FILES.values())} (and "
            f"{', '.join(PTBDB_FILES.values())}) in {dest}/, then run `python code/data.py check "
            f"{' '.join(f'{dest}/{name}' for name in MITBIH_FILES.values())}`.")


def download_mitdb(dest: str | os.PathLike) -> Path:
    """Download all 48 MIT-BIH Arrhythmia records into ``dest`` with ``wfdb.dl_database``.

    Files already there are kept (wfdb does not overwrite them). Returns ``dest``.
    """
    dest = Path(dest)
    _require_network(PHYSIONET_HOST, "the MIT-BIH Arrhythmia Database from PhysioNet",
                     mitdb_manual(dest))
    import wfdb

    dest.mkdir(parents=True, exist_ok=True)
    try:
        wfdb.dl_database("mitdb", dl_dir=str(dest))
    except Exception as e:  # network drop, HTTP error: the manual route still works
        raise UserError(f"downloading mitdb from PhysioNet into {dest} failed: {e}. "
                        f"{mitdb_manual(dest)}") from e
    if not any(dest.glob("*.hea")):
        raise UserError(f"the PhysioNet download left no records in {dest}. "
                        f"{mitdb_manual(dest)}")
    return dest


def _kaggle_credentials() -> str | None:
    """Where the Kaggle API will find credentials, or None."""
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return "KAGGLE_USERNAME/KAGGLE_KEY"
    config_dir = Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle")
    token = config_dir / "kaggle.json"
    return str(token) if token.is_file() else None


def download_kaggle(dest: str | os.PathLike) -> Path:
    """Download and unzip the Kaggle heartbeat CSVs (``shayanfazeli/heartbeat``) into
    ``dest`` with the Kaggle API. Needs ``pip install kaggle`` and an API token
    (``~/.kaggle/kaggle.json`` or ``KAGGLE_USERNAME`` and ``KAGGLE_KEY``). Returns ``dest``.
    """
    dest = Path(dest)
    manual = kaggle_manual(dest)
    _require_network(KAGGLE_HOST, "the Kaggle heartbeat CSVs", manual)
    if _kaggle_credentials() is None:
        config_dir = Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle")
        raise UserError(
            f"no Kaggle API credentials: create a token at https://www.kaggle.com/settings "
            f"(API, \"Create New Token\") and save it as {config_dir / 'kaggle.json'}, or set "
            f"KAGGLE_USERNAME and KAGGLE_KEY. {manual}")
    try:
        # Importing ``kaggle`` authenticates at once, so it comes after the check above.
        from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError:
        raise UserError(f"the Kaggle API client is not installed: `pip install kaggle`. "
                        f"{manual}") from None
    dest.mkdir(parents=True, exist_ok=True)
    try:
        api = KaggleApi()
        api.authenticate()
        api.dataset_download_files(KAGGLE_DATASET, path=str(dest), unzip=True, quiet=False)
    except Exception as e:
        raise UserError(f"downloading {KAGGLE_DATASET} from Kaggle failed: {e}. {manual}") from e
    absent = [f for f in KAGGLE_FILES[:2] if not (dest / f).is_file()]
    if absent:
        raise UserError(f"the Kaggle download left no {', '.join(absent)} in {dest}. {manual}")
    return dest
