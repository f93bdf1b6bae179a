"""Run a sweep's runs on a Ray cluster: one Ray actor per run, on whichever node has room.

The coordinator (``code/sweep.py --ray ADDRESS``) keeps the engine and the SQLite store on its
own disk and stays their only writer; Ray only executes. ``RayExecutor.start(spec)`` creates a
``RunActor`` that asks for ``num_cpus`` and ``num_gpus`` (fractional GPUs allowed; Ray sets the
actor's ``CUDA_VISIBLE_DEVICES`` and the program inherits it) and returns a ``RayRun``, the
runner's handle. On its node the actor

- moves the prepared run into a folder of its own: the store folder's path in the argv and
  the W&B variables is replaced by that folder, where the run's parameter files are written
  (no shared disk needed); the node's own environment is kept, plus the W&B and Keras ones
  and those the program asks for remote runs (``ProgramHooks.remote_env``);
- starts the program with ``launch.start`` (under its guard, in a process group of its own
  that ends with the actor: SIGTERM, then SIGKILL after the kill delay), in the same working
  folder as on the coordinator (every node needs the checkout there);
- reads the run's W&B record there (``executor.RunMetrics``) and hands over the new rows;
- signals the program's process group on ``terminate`` (SIGTERM) and ``kill`` (SIGKILL);
- at the end returns the output log and the run's ``wandb/`` folder (offline run folder with
  the model files, parameter files) as a tarball, which ``RayRun.outcome`` unpacks into the
  store folder, so ``wandb sync`` and the saved models work from there, and hands it to
  the program's ``ProgramHooks.on_shipped_run`` (ecg-sweeps promotes the run's model there).

A lost actor or node makes ``poll()`` return ``LOST_EXIT`` and ``outcome()`` an ``Outcome``
with ``lost`` set: the runner records the run crashed. No call ever waits on an actor: a run
that no live node can hold is an error naming what it asks and what the nodes have (at start,
and for a waiting actor once its last fitting node is gone); stopping a run Ray has not placed
yet removes its actor (``ray.kill``), and so does a SIGKILL the actor does not answer, so the
coordinator always ends. ``ray`` is an optional dependency (requirements-ray.txt) and is only
imported when ``--ray`` is given.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import tarfile
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from . import launch
from .errors import UserError
from .executor import Outcome, RunMetrics, RunSpec, signal_group
from .failures import read_tail
from .program import ANY_PROGRAM, ProgramHooks

INSTALL_HINT = "pip install -r requirements-ray.txt"
CONNECT_TIMEOUT_S = 5.0
FINISH_TIMEOUT_S = 600.0
KILL_ANSWER_S = 15.0  # a SIGKILL the actor does not confirm by then: the actor is removed
ROOM_CHECK_S = 2.0  # how often a waiting run asks whether any live node can still hold it
LOST_EXIT = -1  # poll()'s answer for a lost run; the outcome says why
START_FAILED_EXIT = 127  # as a shell answers for a command it cannot run
FORWARDED_PREFIXES = ("WANDB_", "KERAS_", "TF_CPP_")
START_HINT = "start one with `ray start --head` or fix the address"
# Answers that still come from a Ray head: one with token authentication, to a call without
# the token; one of another Ray version, which lacks the call (ray.init names the mismatch).
RAY_HEAD_REFUSALS = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED", "UNIMPLEMENTED"})


def import_ray() -> Any:
    """The ``ray`` module, or a UserError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError(f"--ray needs the optional package ray: {INSTALL_HINT}") from None
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of ``HOST:PORT``, None for ``auto``; UserError for anything else."""
    if address == "auto":
        return None
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UserError(f"--ray {address!r}: give 'auto' or HOST:PORT of a running Ray "
                        "cluster's head (`ray start --head` prints it)")
    return host.strip("[]"), int(port)  # an IPv6 host comes in brackets


def dialled_address(address: str) -> str:
    """The HOST:PORT that ``ray.init(address=address)`` dials: Ray finds ``auto`` (from
    RAY_ADDRESS or the cluster this machine started last) and puts the machine's outward
    address in place of a loopback one unless RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER is 0."""
    try:  # Ray's own reading (private: a Ray without it leaves the address as given)
        from ray._private.services import canonicalize_bootstrap_address
    except ImportError:
        return address
    try:
        dialled = canonicalize_bootstrap_address(address)
    except (ConnectionError, ValueError) as e:
        raise cannot_join(address, e) from None
    if not dialled:  # RAY_ADDRESS=local: Ray would start a cluster, not join one
        raise cannot_join(address, ConnectionError("Ray finds no running cluster to join "
                                                   "(RAY_ADDRESS may say local)"))
    return dialled


def cannot_join(address: str, e: BaseException) -> UserError:
    return UserError(f"--ray {address}: cannot join the Ray cluster ({_one_line(e)}); "
                     f"{START_HINT}")


def gcs_refusal(dialled: str, timeout_s: float) -> str | None:
    """Why no Ray head answers at ``dialled`` (None when one does): it must answer the
    cluster-ID call of Ray's GCS within ``timeout_s``. ``ray.init`` instead retries a silent
    port, or one speaking another protocol, for minutes while printing Ray's log lines."""
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return None  # a TLS head's answer needs Ray's certificates: ray.init checks it
    try:  # Ray's generated GCS stubs (a Ray without them: ray.init is left to find out)
        import grpc
        from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc
    except ImportError:
        return None

    with grpc.insecure_channel(dialled) as channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        try:
            stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), timeout=timeout_s)
        except grpc.RpcError as e:
            if e.code().name in RAY_HEAD_REFUSALS:
                return None  # a Ray head that wants the token ray.init sends
            if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return f"no Ray head answers there within {timeout_s:g} s"
            detail = " ".join((e.details() or "").split())[:300]
            return f"the service there is not a Ray head ({e.code().name}: {detail})"
    return None


def require_ray_head(address: str, timeout_s: float) -> None:
    """UserError naming ``address`` (and the address Ray dials, where that differs) unless
    a Ray head answers there within about ``timeout_s`` per step."""
    dialled = dialled_address(address)
    where = address if dialled == address else f"{address} (Ray dials {dialled})"
    try:
        socket.create_connection(_host_port(dialled), timeout=timeout_s).close()
    except OSError as e:
        raise UserError(f"--ray {where}: no Ray head answers there ({e.strerror or e}); "
                        f"{START_HINT}") from None
    why = gcs_refusal(dialled, timeout_s)
    if why:
        raise UserError(f"--ray {where}: {why}; {START_HINT}")


def connect(address: str, *, timeout_s: float = CONNECT_TIMEOUT_S) -> Any:
    """Join the Ray cluster at ``address`` (``auto`` or ``HOST:PORT``) as a driver; the
    ``ray`` module. A head that does not answer, or a port where something else listens, is
    a one-line UserError within seconds."""
    ray = import_ray()
    _host_port(address)  # a malformed address is refused before Ray reads it
    require_ray_head(address, timeout_s)
    if ray.is_initialized():
        return ray
    package = str(Path(__file__).resolve().parents[1])  # ecgsweep travels with the job
    try:
        ray.init(address=address, log_to_driver=False, logging_level="ERROR",
                 runtime_env={"py_modules": [package]})
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise cannot_join(address, e) from None
    return ray


def param_files(wandb_dir: str, run_id: str) -> dict[str, bytes]:
    """The run's parameter files under the store folder, by path relative to it."""
    root = Path(wandb_dir)
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.glob(f"wandb/sweep-*/config-{run_id}.*"))}


def relocate(spec: RunSpec, old_dir: str, new_dir: str, base_env: dict[str, str],
             program_env: dict[str, str] | None = None) -> RunSpec:
    """The spec with ``old_dir`` (the coordinator's store folder) replaced by ``new_dir`` in
    its argv and W&B variables, on the node's own environment ``base_env``, with the
    variables the program asks for remote runs (``program_env``)."""
    ours = {k: v.replace(old_dir, new_dir) for k, v in spec.env.items()
            if k.startswith(FORWARDED_PREFIXES)}
    return replace(spec, argv=[a.replace(old_dir, new_dir) for a in spec.argv],
                   env={**base_env, **ours, **(program_env or {})},
                   log_path=Path(new_dir) / "logs" / f"{spec.run_id}.log", gpu=None)


def tar_folder(folder: Path) -> bytes:
    """The folder as gzipped tar bytes, without links (they mean nothing on another host)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        if folder.is_dir():
            tar.add(str(folder), arcname=".",
                    filter=lambda info: None if info.issym() or info.islnk() else info)
    return buf.getvalue()


def untar_folder(data: bytes, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(dest, filter="data")


class RunActor:
    """One run on a Ray node (wrapped with ``ray.remote`` by ``RayExecutor``)."""

    def __init__(self, spec: RunSpec, store_dir: str, files: dict[str, bytes],
                 program_env: dict[str, str] | None = None):
        self.workdir = Path(tempfile.mkdtemp(prefix=f"ecgsweep-{spec.run_id}-"))
        for rel, data in files.items():
            path = self.workdir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        self.spec = relocate(spec, store_dir, str(self.workdir), dict(os.environ), program_env)
        self.metrics = RunMetrics(str(self.workdir), spec.run_id, spec.cwd)
        self.proc: Any = None

    def start(self) -> dict[str, Any]:
        """Start the program; where it runs, its pid, the resources Ray granted, and an
        ``error`` line when it could not start."""
        import ray

        ctx = ray.get_runtime_context()
        info: dict[str, Any] = {"node_id": ctx.get_node_id(), "hostname": socket.gethostname(),
                                "ip": ray.util.get_node_ip_address(),
                                "resources": ctx.get_assigned_resources()}
        s = self.spec
        try:
            if not os.path.isdir(s.cwd):
                raise OSError(f"working folder {s.cwd} missing on this node (every node needs "
                              "the checkout at the same path)")
            self.proc = launch.start(s.argv, s.env, log_path=s.log_path, cwd=s.cwd,
                                     kill_delay_s=s.kill_delay_s)
            info["pid"] = self.proc.pid
        except OSError as e:
            info["error"] = f"could not start on {info['hostname']}: {e}"
            s.log_path.parent.mkdir(parents=True, exist_ok=True)
            s.log_path.write_text(f"error: {info['error']}\n")
        return info

    def check(self) -> tuple[list[dict[str, Any]], int | None]:
        """(rows logged since the last call, exit code or None while it runs)."""
        code = self.proc.poll() if self.proc is not None else START_FAILED_EXIT
        return self.metrics.new_rows(), code

    def terminate(self) -> None:
        if self.proc is not None:
            signal_group(self.proc.pid, signal.SIGTERM)

    def kill(self) -> None:
        if self.proc is not None:
            signal_group(self.proc.pid, signal.SIGKILL)

    def finish(self) -> dict[str, Any]:
        """Once the program exited: its last rows, summary, output log and ``wandb/`` folder.
        The node's copy is removed."""
        if self.proc is not None:
            self.proc.wait()
        out = {"rows": self.metrics.new_rows(), "summary": self.metrics.summary(),
               "log": self.spec.log_path.read_bytes() if self.spec.log_path.exists() else b"",
               "wandb_tar": tar_folder(self.workdir / "wandb")}
        shutil.rmtree(self.workdir, ignore_errors=True)
        return out


def _one_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


def describe_request(cpus: float, gpus: float) -> str:
    return f"{cpus:g} CPU and {gpus:g} GPU"


def runs_that_fit(resources: dict[str, float], cpus: float, gpus: float) -> int | None:
    """How many runs asking ``cpus`` CPUs and ``gpus`` GPUs a node with these (total)
    resources holds at once; None when a run asks for nothing (any number)."""
    fits = [int(resources.get(name, 0) / need + 1e-9)
            for name, need in (("CPU", cpus), ("GPU", gpus)) if need > 0]
    return min(fits) if fits else None


def describe_nodes(nodes: list[dict[str, Any]]) -> str:
    """The live nodes' CPUs and GPUs, as ``ray.nodes()`` lists them."""
    alive = [n for n in nodes if n.get("Alive")]
    if not alive:
        return "the cluster has no live node"
    return "its live nodes have " + "; ".join(
        f"node {str(n.get('NodeID', '?'))[:8]} ({n.get('NodeManagerAddress', '?')}): "
        f"{describe_request(n['Resources'].get('CPU', 0), n['Resources'].get('GPU', 0))}"
        for n in alive)


def no_room(nodes: list[dict[str, Any]], cpus: float, gpus: float) -> str | None:
    """Why no live node can ever hold a run with this request; None when one can."""
    if any(runs_that_fit(n.get("Resources") or {}, cpus, gpus) != 0
           for n in nodes if n.get("Alive")):
        return None
    return (f"no node of the Ray cluster can hold a run asking {describe_request(cpus, gpus)}; "
            f"{describe_nodes(nodes)}")


def require_room(address: str, cpus_per_run: float, gpus_per_run: float) -> None:
    """Join the cluster at ``address``; UserError when no live node can hold one run."""
    why = no_room(connect(address).nodes(), cpus_per_run, gpus_per_run)
    if why:
        raise UserError(f"--ray {address}: {why}. Ask for less (--cpus-per-run, "
                        "--gpus-per-run) or add a node with room")


class Room:
    """Whether some live node can still hold a run: asked of the cluster at most every
    ``ROOM_CHECK_S`` seconds, however many runs wait for a node."""

    def __init__(self, ray: Any, cpus: float, gpus: float,
                 clock: Callable[[], float] = time.monotonic):
        self.ray, self.cpus, self.gpus, self.clock = ray, cpus, gpus, clock
        self.request = describe_request(cpus, gpus)
        self._asked_at: float | None = None
        self._why: str | None = None

    def missing(self) -> str | None:
        """None while a live node can hold a run, else why none can."""
        now = self.clock()
        if self._asked_at is None or now - self._asked_at >= ROOM_CHECK_S:
            self._why, self._asked_at = no_room(self.ray.nodes(), self.cpus, self.gpus), now
        return self._why


class RayRun:
    """The runner's handle on a run in a ``RunActor``. Never blocks the runner's loop: each
    call looks whether the actor's last answer came (its start on a node, then checks while
    the program runs, then the run folder shipped back) and asks again. A run ends for the
    runner once its folder is back, or when it is lost."""

    def __init__(self, ray: Any, actor: Any, spec: RunSpec, wandb_dir: str, room: Room,
                 clock: Callable[[], float] = time.monotonic,
                 program: ProgramHooks = ANY_PROGRAM):
        self.ray, self.actor, self.spec, self.wandb_dir = ray, actor, spec, wandb_dir
        self.room, self.clock, self.program = room, clock, program
        self.run_id = spec.run_id
        self.pid: int | None = None  # the program's pid is on its node: never signal it here
        self.host, self.node_id = "", None
        self.resources: dict[str, float] = {}
        self.files_dir: Path | None = None  # set once the run folder is shipped back
        self.lost: str | None = None
        self.start_error: str | None = None
        self._rows: list[dict[str, Any]] = []
        self._exit: int | None = None
        self._shipped: dict[str, Any] | None = None
        self._kill_sent_at: float | None = None
        self._start_ref: Any = actor.start.remote()
        self._check_ref: Any = None
        self._finish_ref: Any = None
        self._finish_asked_at = 0.0

    def _ready(self, ref: Any) -> bool:
        done, _ = self.ray.wait([ref], timeout=0)
        return bool(done)

    def _done(self) -> bool:
        """Lost, or exited and (when it started on a node) its folder is back."""
        return bool(self.lost) or (self._exit is not None
                                   and (self.node_id is None or self._shipped is not None))

    def _on_started(self, info: dict[str, Any]) -> None:
        if "node_id" in info:
            self.node_id, self.resources = info["node_id"], info["resources"]
            self.host = f"{info['hostname']} ({info['ip']}, node {info['node_id'][:8]})"
        if "error" in info:
            self.start_error = info["error"]
            self._exit = START_FAILED_EXIT

    def _update(self) -> None:
        if self._done():
            return
        errors = self.ray.exceptions
        try:
            self._ask()
        except errors.ActorUnavailableError:
            self._check_ref = None  # unreachable for a moment: ask again next turn
        except errors.RayActorError as e:
            if e.actor_init_failed:  # the actor could not even be set up: a failed start
                return self._on_started({"error": _one_line(e)})
            self._on_lost(e)
        except (errors.NodeDiedError, errors.WorkerCrashedError, errors.ObjectLostError) as e:
            self._on_lost(e)
        if (not self._done() and self._kill_sent_at is not None
                and self.clock() > self._kill_sent_at + KILL_ANSWER_S):
            self._remove(f"its Ray actor ({self.host}) did not answer SIGKILL within "
                         f"{KILL_ANSWER_S:g}s; the actor was removed")

    def _ask(self) -> None:
        if self._start_ref is not None:
            return self._ask_start()
        if self._exit is None:
            self._ask_check()
        if self._exit is not None and self.node_id is not None:
            self._ask_finish()

    def _ask_start(self) -> None:
        if self._ready(self._start_ref):
            info = self.ray.get(self._start_ref)
            self._start_ref = None
            return self._on_started(info)
        why = self.room.missing()  # else: waiting for room, which a busy cluster frees later
        if why:
            self._remove_actor()
            self._on_started({"error": f"Ray cannot place it: {why}"})

    def _ask_check(self) -> None:
        if self._check_ref is None:
            self._check_ref = self.actor.check.remote()
        if self._ready(self._check_ref):
            rows, self._exit = self.ray.get(self._check_ref)
            self._check_ref = None
            self._rows += rows

    def _ask_finish(self) -> None:
        if self._finish_ref is None:
            self._finish_ref, self._finish_asked_at = self.actor.finish.remote(), self.clock()
        try:
            if self._ready(self._finish_ref):
                self._shipped = self.ray.get(self._finish_ref)
            elif self.clock() > self._finish_asked_at + FINISH_TIMEOUT_S:
                raise TimeoutError(f"no answer within {FINISH_TIMEOUT_S:g}s")
        except (self.ray.exceptions.RayError, OSError) as e:
            self.lost = f"its run folder could not be fetched from {self.host}: {_one_line(e)}"
        if self._shipped is not None or self.lost:
            self._remove_actor()

    def _on_lost(self, e: BaseException) -> None:
        self.lost = f"its Ray actor or node was lost ({self.host or 'not placed yet'}): " \
                    f"{_one_line(e)}"

    def _remove_actor(self) -> None:
        """Remove the actor; on its node the run's guard then stops whatever still runs."""
        try:
            self.ray.kill(self.actor, no_restart=True)
        except self.ray.exceptions.RayError:
            pass

    def _remove(self, why: str) -> None:
        self._remove_actor()
        self.lost = why

    def poll(self) -> int | None:
        self._update()
        if self.lost:
            return LOST_EXIT
        return self._exit if self._done() else None

    def new_rows(self) -> list[dict[str, Any]]:
        self._update()
        rows, self._rows = self._rows, []
        return rows

    def terminate(self) -> None:
        self._update()
        if self._done():
            return
        if self.node_id is None:  # waiting for a node: nothing runs, the actor can go
            return self._remove(f"stopped before Ray placed it (it asks {self.room.request})")
        self.actor.terminate.remote()

    def kill(self) -> None:
        """SIGKILL through the actor; removes the actor instead when Ray has not placed it,
        when it does not answer within ``KILL_ANSWER_S``, or on a second kill."""
        self._update()
        if self._done():
            return
        if self.node_id is None:
            return self._remove(f"killed before Ray placed it (it asks {self.room.request})")
        if self._kill_sent_at is not None:
            return self._remove(f"killed again before its Ray actor ({self.host}) answered; "
                                "the actor was removed")
        self.actor.kill.remote()
        self._kill_sent_at = self.clock()

    def outcome(self, exit_code: int) -> Outcome:
        rows, self._rows = self._rows, []
        if self.lost:
            self._remove_actor()
            return Outcome(exit_code, rows, None, "", None, lost=self.lost)
        if self._shipped is None:  # it never started on a node: no folder to fetch
            self._remove_actor()
            return Outcome(exit_code, rows, None, f"error: {self.start_error}", None)
        done = self._shipped
        self.spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.spec.log_path.write_bytes(done["log"])
        untar_folder(done["wandb_tar"], Path(self.wandb_dir) / "wandb")
        self.files_dir = launch.find_files_dir(self.wandb_dir, self.run_id, self.spec.cwd)
        if self.files_dir is not None and exit_code == 0:
            note = self.program.on_shipped_run(self.files_dir.parent, self.spec.cwd)
            if note:
                with open(self.spec.log_path, "a") as log:
                    log.write(note + "\n")
        return Outcome(exit_code, rows + done["rows"], done["summary"],
                       read_tail(self.spec.log_path), self.files_dir)


class RayExecutor:
    """Starts each run as a ``RunActor`` on the Ray cluster at ``address``."""

    def __init__(self, address: str, cpus_per_run: float = 1.0, gpus_per_run: float = 0.0,
                 wandb_dir: str = ".", program: ProgramHooks = ANY_PROGRAM):
        if cpus_per_run < 0 or gpus_per_run < 0:
            raise UserError(f"--cpus-per-run {cpus_per_run:g} / --gpus-per-run "
                            f"{gpus_per_run:g}: give numbers of 0 or more")
        self.address, self.wandb_dir = address, str(Path(wandb_dir).resolve())
        self.program = program
        self.cpus_per_run, self.gpus_per_run = float(cpus_per_run), float(gpus_per_run)
        require_room(address, self.cpus_per_run, self.gpus_per_run)
        self.ray = connect(address)
        self.actor_cls = self.ray.remote(RunActor)
        self.room = Room(self.ray, self.cpus_per_run, self.gpus_per_run)

    def actor_options(self) -> dict[str, Any]:
        """The resource request of each run's actor; a lost actor is not restarted."""
        return {"num_cpus": self.cpus_per_run, "num_gpus": self.gpus_per_run,
                "max_restarts": 0, "max_task_retries": 0}

    def start(self, spec: RunSpec) -> RayRun:
        """Ask Ray for a node with room for the run; returns at once."""
        files = param_files(self.wandb_dir, spec.run_id)
        actor = self.actor_cls.options(**self.actor_options()).remote(
            spec, self.wandb_dir, files, self.program.remote_env())
        return RayRun(self.ray, actor, spec, self.wandb_dir, self.room, program=self.program)

    def slots(self) -> int:
        """How many runs the cluster's live nodes hold at once, each on one node, with the
        resources each asks for (1 when a run asks for nothing)."""
        counts = [runs_that_fit(n.get("Resources") or {}, self.cpus_per_run, self.gpus_per_run)
                  for n in self.ray.nodes() if n.get("Alive")]
        if not counts or None in counts:
            return 1
        return max(1, sum(counts))
