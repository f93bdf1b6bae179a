"""A run's guard: the small process between a runner and the program it runs, so that no
process a run started outlives its runner, however the runner ends.

    python -I -S guard.py KILL_DELAY_S READY_FD PROGRAM [ARGS...]

The runner's own measures cannot do it alone: a runner killed with SIGKILL runs no code, and
the kernel's parent-death signal reaches only a direct child, not the Python a shell script
started without ``exec``. So each run gets a guard, which

- leads the run's process group (the runner starts it in a group of its own); the program
  and whatever it starts inherit that group, so the runner's SIGTERM and SIGKILL to the group
  reach all of them, while the guard itself only notes a SIGTERM;
- is the subreaper of its descendants (``PR_SET_CHILD_SUBREAPER``): a process whose parent
  died is re-parented to the guard, not to init, so the guard waits for every descendant and
  exits only once none is left (the run is over when its last process is), with the
  program's own exit status;
- holds the read end of a pipe whose write end only the runner holds, as its stdin: end of
  file means the runner is gone, however it died (no thread-bound parent-death signal); the
  guard then stops the group as ``wandb agent`` stops a run: SIGTERM, and SIGKILL once
  ``KILL_DELAY_S`` passed. It does the same for processes left behind by a program that ended.

Whether the program started is written to ``READY_FD`` (nothing: it started; else the
error), so that the runner can tell "could not start" from a run that failed.
Standard library only, run with ``-I -S``: it starts in milliseconds on any node.
"""

import ctypes
import ctypes.util
import os
import resource
import select
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
TICK_S = 0.2
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def handled_stop_signals() -> tuple[int, ...]:
    """The STOP_SIGNALS a process takes as a stop: all but a SIGHUP it was started ignoring
    (``nohup``), which asks that a closing terminal leave it running."""
    return tuple(s for s in STOP_SIGNALS
                 if not (s == signal.SIGHUP and signal.getsignal(s) == signal.SIG_IGN))


def become_subreaper() -> None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: orphans go to init, as without a guard
        pass


def reap(program_pid: int) -> tuple[int | None, bool]:
    """Reap every descendant that ended: (the program's wait status if it was among them,
    whether any descendant is still there)."""
    status = None
    while True:
        try:
            pid, st = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status, False
        if pid == 0:
            return status, True
        if pid == program_pid:
            status = st


def exit_like(status: int | None) -> None:
    """End the guard as the program ended: same exit code, or killed by the same signal."""
    if status is None:
        sys.exit(1)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the program's crash, not ours
        if sig != signal.SIGKILL:  # the default action, which Python changed for SIGPIPE
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        sys.exit(128 + sig)  # a signal that does not end a process
    sys.exit(os.waitstatus_to_exitcode(status))


def runner_gone() -> bool:
    """True once the runner's end of stdin is closed (it never writes)."""
    ready, _, _ = select.select([0], [], [], TICK_S)
    return bool(ready) and os.read(0, 4096) == b""


def main(argv: list[str]) -> None:
    kill_delay, ready_fd, program = float(argv[1]), int(argv[2]), argv[3:]
    signalled: list[float] = []  # when the group got a stop signal (the guard ignores it)
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda signum, frame: signalled.append(time.monotonic()))
    if os.getpgrp() != os.getpid():  # killpg(0, ...) below must mean the run's group only
        os.setpgid(0, 0)
    become_subreaper()
    try:
        # stdin a pipe closed at once, as wandb agent starts a run; signal handlers and the
        # guard's stdin (the runner's pipe) do not reach the program
        child = subprocess.Popen(program, stdin=subprocess.PIPE)
    except OSError as e:
        os.write(ready_fd, str(e).encode() or type(e).__name__.encode())
        sys.exit(127)
    os.close(ready_fd)
    child.stdin.close()
    status, orphaned, kill_at = None, False, None
    while True:
        got, left = reap(child.pid)
        status = got if got is not None else status
        if not left:
            return exit_like(status)
        if kill_at is None and (orphaned or status is not None):
            # the runner is gone, or the program ended and left processes behind
            kill_at = (signalled[0] if signalled else time.monotonic()) + kill_delay
            if not signalled:
                os.killpg(0, signal.SIGTERM)
        if kill_at is not None and time.monotonic() > kill_at:
            os.killpg(0, signal.SIGKILL)  # the guard goes with them
        if orphaned:
            time.sleep(TICK_S)
        else:
            orphaned = runner_gone()


if __name__ == "__main__":
    main(sys.argv)
