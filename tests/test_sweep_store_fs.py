"""The shared-store mode stays on one host: a store on a network file system is refused."""

import pytest

from ecgsweep.cli import UserError
from ecgsweep.sweep import commands, store


def test_store_on_network_fs_is_refused_pointing_to_a_local_disk(monkeypatch, tmp_path):
    monkeypatch.setattr(store, "network_fs_type", lambda path: "nfs4")
    with pytest.raises(UserError, match=r"network file system \(nfs4\).*local disk.*--ray ADDRESS"):
        store.refuse_network_store(tmp_path / "sweeps")
    monkeypatch.setattr(store, "network_fs_type", lambda path: None)
    store.refuse_network_store(tmp_path / "sweeps")  # a local disk is fine


def test_run_sweep_refuses_before_touching_the_store(monkeypatch, tmp_path):
    monkeypatch.setattr(store, "network_fs_type", lambda path: "lustre")
    with pytest.raises(UserError, match="lustre"):
        commands.run_sweep(yaml_path=None, store_root=str(tmp_path / "sweeps"))
    assert not (tmp_path / "sweeps").exists()
