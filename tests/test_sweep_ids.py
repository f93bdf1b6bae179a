"""Every sweep ID the user gives is validated like --sweep-id (no paths)."""

import pytest

from ecgsweep.sweep.errors import ConfigError
from ecgsweep.sweep import commands
from ecgsweep.sweep.store import Store

BAD_IDS = ["../x", "../../x", "a/../../x", ".hidden"]


@pytest.fixture
def store_root(tmp_path):
    """A store root with a sweep store just outside it, at ../x, that must never be opened."""
    outside = tmp_path / "x"
    outside.mkdir()
    Store(outside / "sweep.db", create=True).close()
    root = tmp_path / "root"
    root.mkdir()
    return root


@pytest.mark.parametrize("bad", BAD_IDS + ["ABSOLUTE"])
def test_status_refuses_path_like_ids(store_root, bad):
    bad = str(store_root.parent / "x") if bad == "ABSOLUTE" else bad
    with pytest.raises(ConfigError, match="letters, digits"):
        commands.status(bad, store_root=str(store_root))


@pytest.mark.parametrize("bad", BAD_IDS + ["ABSOLUTE"])
def test_resume_refuses_path_like_ids(store_root, bad):
    bad = str(store_root.parent / "x") if bad == "ABSOLUTE" else bad
    with pytest.raises(ConfigError, match="letters, digits"):
        commands.run_sweep(yaml_path=None, store_root=str(store_root), resume=bad)
