"""Every process a run started ends with its runner: the run's guard (ecgsweep.sweep.guard).

The hard case is a YAML whose command runs the program through a shell script without
``exec`` (tests/fake_programs/no_exec.sh): the training program is then the runner's
grandchild, which neither the parent-death signal nor a signal to the shell reaches.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ecgsweep.sweep import launch
from ecgsweep.sweep.executor import RunMetrics

REPO = Path(__file__).resolve().parents[1]
CURVE = "tests/fake_programs/curve.py"
NO_EXEC = "tests/fake_programs/no_exec.sh"


def wait_for(check, *, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def live_run(db: Path) -> dict | None:
    """The running run with a logged epoch, read as an outsider (the runner may be writing)."""
    if not db.exists():
        return None
    con = sqlite3.connect(str(db), timeout=30)
    con.row_factory = sqlite3.Row
    try:
        row = con.execute("SELECT * FROM runs WHERE state = 'running' AND epochs >= 1 "
                          "AND files_dir IS NOT NULL").fetchone()
    except sqlite3.OperationalError:
        return None
    finally:
        con.close()
    return dict(row) if row else None


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT],
                         ids=["SIGKILL", "SIGTERM", "SIGINT"])
def test_a_program_started_through_a_shell_script_ends_with_its_runner(tmp_path, sig):
    yaml_path = tmp_path / "s.yaml"
    yaml_path.write_text(
        f"program: {CURVE}\nmethod: grid\nmetric: {{name: val_macro_f1, goal: maximize}}\n"
        f"command: [/bin/sh, {NO_EXEC}, '${{env}}', FAKE_EPOCH_S=0.1, '${{interpreter}}', "
        "'${program}', '${args}']\nparameters:\n  epochs: {value: 1000}\n")
    store = tmp_path / "store"
    runner = subprocess.Popen([sys.executable, "code/sweep.py", str(yaml_path), "--store",
                               str(store), "--sweep-id", "orphans1", "--plain", "--poll", "0.1",
                               "--kill-delay", "20"], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              env=dict(os.environ, WANDB_MODE="offline"))
    program = None
    try:
        run = wait_for(lambda: live_run(store / "orphans1" / "sweep.db"), timeout=60,
                       what="a live run with a logged epoch")
        program = json.loads((Path(run["files_dir"]) / "env.json").read_text())["pid"]
        shell = parent_of(program)
        assert NO_EXEC in Path(f"/proc/{shell}/cmdline").read_text()  # a grandchild
        runner.send_signal(sig)
        out = runner.communicate(timeout=60)[0]
        assert runner.returncode == (-9 if sig == signal.SIGKILL else 130), out
        wait_for(lambda: not launch.pid_alive(program), timeout=30,
                 what=f"the program (pid {program}) to end with its runner")
    finally:
        if runner.poll() is None:
            runner.kill()
        if program and launch.pid_alive(program):
            os.kill(program, signal.SIGKILL)
    # it was stopped as the agent stops a run, so it saved its state
    record = RunMetrics(str(store / "orphans1"), run["run_id"], str(REPO))
    assert record.new_rows() and record.summary()["stopped"] is True


def test_processes_a_finished_program_left_behind_are_stopped(tmp_path):
    left = tmp_path / "left.pid"
    guard = launch.start(["/bin/sh", "-c", f"sleep 300 & echo $! > {left}; exit 3"],
                         os.environ, log_path=tmp_path / "run.log", kill_delay_s=5)
    try:
        assert guard.wait(timeout=60) == 3  # the program's own exit code
        assert not launch.pid_alive(int(left.read_text()))
    finally:
        if left.exists() and launch.pid_alive(int(left.read_text())):
            os.kill(int(left.read_text()), signal.SIGKILL)


def test_a_run_that_ignores_sigterm_after_its_runner_died_gets_sigkill(tmp_path):
    """The runner's end of the guard's stdin closed: the runner is gone."""
    child = tmp_path / "child.pid"
    stubborn = (f"import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                f"open({str(child)!r}, 'w').write(str(os.getpid())); time.sleep(300)")
    guard = launch.start(["/bin/sh", "-c", f"{sys.executable} -c \"{stubborn}\"; exit 0"],
                         os.environ, log_path=tmp_path / "run.log", kill_delay_s=0.5)
    try:
        wait_for(lambda: child.exists() and child.read_text(), timeout=30, what="the program")
        guard.stdin.close()
        assert guard.wait(timeout=60) == -signal.SIGKILL
        wait_for(lambda: not launch.pid_alive(int(child.read_text())), timeout=30,
                 what="the program to be killed")
    finally:
        if guard.poll() is None:
            os.killpg(guard.pid, signal.SIGKILL)


def test_a_program_that_cannot_start_is_an_oserror_naming_it(tmp_path):
    with pytest.raises(OSError, match="no/such/program"):
        launch.start([str(tmp_path / "no/such/program")], os.environ,
                     log_path=tmp_path / "run.log", kill_delay_s=5)
