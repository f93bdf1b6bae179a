"""Downloads fail fast offline with what to fetch by hand; no test touches the network."""

import socket
import subprocess
import sys
import time

import pytest

from ecgsweep.cli import UserError
from ecgsweep.data import download


@pytest.fixture
def closed_port() -> str:
    """host:port of a local TCP port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"127.0.0.1:{port}"


@pytest.fixture
def offline(monkeypatch, closed_port):
    monkeypatch.setenv(download.PROBE_ENV, closed_port)
    return closed_port


@pytest.fixture
def online(monkeypatch):
    monkeypatch.setattr(download, "can_reach", lambda host, port, timeout=3.0: True)


def test_probe_refused_port_is_offline(closed_port):
    host, port = closed_port.split(":")
    start = time.monotonic()
    assert download.can_reach(host, int(port)) is False
    assert time.monotonic() - start < 3.5


def test_mitdb_offline_fails_with_manual_steps(offline, tmp_path, monkeypatch):
    import wfdb

    def no_download(*a, **k):
        raise AssertionError("must not try to download offline")

    monkeypatch.setattr(wfdb, "dl_database", no_download)
    with pytest.raises(UserError) as err:
        download.download_mitdb(tmp_path / "mitdb")
    msg = str(err.value)
    assert "https://physionet.org/content/mitdb/1.0.0/" in msg
    assert str(tmp_path / "mitdb") in msg and "code/data.py wfdb --src" in msg
    assert not (tmp_path / "mitdb").exists()


def test_kaggle_offline_fails_with_manual_steps(offline, tmp_path):
    with pytest.raises(UserError) as err:
        download.download_kaggle(tmp_path)
    msg = str(err.value)
    assert "https://www.kaggle.com/datasets/shayanfazeli/heartbeat" in msg
    assert "put mitbih_train.csv" in msg and str(tmp_path) in msg


def test_kaggle_missing_credentials(online, tmp_path, monkeypatch):
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.delenv("KAGGLE_KEY", raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))
    with pytest.raises(UserError) as err:
        download.download_kaggle(tmp_path / "data")
    msg = str(err.value)
    assert "no Kaggle API credentials" in msg and "kaggle.json" in msg
    assert "KAGGLE_USERNAME" in msg and download.KAGGLE_URL in msg
    assert "put mitbih_train.csv" in msg


def test_kaggle_package_missing(online, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "not-a-key")
    # make `import kaggle` fail even where the package is installed
    monkeypatch.setitem(sys.modules, "kaggle", None)
    monkeypatch.setitem(sys.modules, "kaggle.api", None)
    monkeypatch.setitem(sys.modules, "kaggle.api.kaggle_api_extended", None)
    with pytest.raises(UserError, match="pip install kaggle"):
        download.download_kaggle(tmp_path / "data")


def test_probe_override_must_be_host_port(monkeypatch, tmp_path):
    monkeypatch.setenv(download.PROBE_ENV, "nonsense")
    with pytest.raises(UserError, match="host:port"):
        download.download_mitdb(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("args, expected", [
    (["wfdb", "--download", "mitdb"], "https://physionet.org/content/mitdb/1.0.0/"),
    (["kaggle"], "https://www.kaggle.com/datasets/shayanfazeli/heartbeat"),
])
def test_cli_downloads_fail_fast_offline(repo_root, tmp_path, closed_port, args, expected):
    out = ["--src", str(tmp_path / "mitdb")] if args[0] == "wfdb" else ["--out", str(tmp_path)]
    env = {**__import__("os").environ, download.PROBE_ENV: closed_port}
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "code/data.py", *args, *out], cwd=repo_root,
                          env=env, capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: cannot reach") and expected in proc.stderr
    assert "Traceback" not in proc.stderr
    assert elapsed < 15  # the probe fails at once; the rest is interpreter start-up
