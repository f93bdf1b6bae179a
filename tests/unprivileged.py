"""Run a command that may not write a folder, whoever runs the tests.

The folder's write bits are taken away while the command runs. Permission bits do not stop
root, so as root the command runs without the capabilities that override them
(CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER): for it, as for any user, a folder
without write bits cannot be written.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
PR_CAPBSET_DROP = 24
OVERRIDING_CAPS = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


def _drop_overriding_caps() -> None:
    """In the child before exec: the program it runs has none of OVERRIDING_CAPS."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in OVERRIDING_CAPS:
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) refused")


def _preexec():
    if os.geteuid() != 0:
        return None
    probe = subprocess.run([sys.executable, "-c", "pass"], preexec_fn=_drop_overriding_caps,
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip("running as root without the right to drop capabilities")
    return _drop_overriding_caps


def _chmod_tree(folder: Path, *, add: int = 0, remove: int = 0) -> None:
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            path.chmod((path.stat().st_mode | add) & ~remove)


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """While in the block, commands of ``run`` may read ``folder`` but not write in it."""
    _chmod_tree(folder, remove=WRITE_BITS)
    try:
        yield
    finally:
        _chmod_tree(folder, add=stat.S_IWUSR)


# Runs the sweep command's main once per argv in one process (one start-up for all), and prints
# [exit code, stdout, stderr] for each; an exception that escapes is recorded by its repr.
_SWEEP_CALLS = """
import contextlib, io, json, sys
sys.path.insert(0, "code")
from ecgsweep import sweep_cli as sweep
from ecgsweep.cli import run_main
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = run_main(lambda: sweep.main(argv))
        except BaseException as e:
            rc = repr(e)
    results.append([rc, out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


def sweep_cli(*argvs: list[str]) -> list[tuple[int | str, str, str]]:
    """(exit code, stdout, stderr) of ``code/sweep.py ARGV`` for each argv, run from the
    repository root by a process that cannot write where the permission bits say no."""
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true", TF_CPP_MIN_LOG_LEVEL="2")
    res = subprocess.run([sys.executable, "-c", _SWEEP_CALLS, json.dumps(argvs)], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=300,
                         preexec_fn=_preexec())
    assert res.returncode == 0, res.stderr
    return [tuple(r) for r in json.loads(res.stdout.strip().splitlines()[-1])]
