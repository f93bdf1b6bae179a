"""The Ray executor under the real runner, on a two-node Ray cluster on this machine.

Loopback only (every Ray process listens on 127.0.0.1, see conftest.RAY_LOOPBACK_NODE), no
real GPU: the head declares one pretend GPU, the second node none, one CPU each, so two
one-CPU runs at once land on different nodes. The stand-in program
(tests/fake_programs/curve.py) writes a W&B run record that the actors read on their node.
The run handle's bookkeeping is also tested on a stand-in for the ``ray`` module.
Cluster tests are skipped when ray is not installed (pip install -r requirements-ray.txt).
"""

import http.server
import importlib.util
import ipaddress
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import RAY_LOOPBACK_NODE
from ecgsweep.cli import UserError
from ecgsweep.sweep import config as sc
from ecgsweep.sweep import ray_executor
from ecgsweep.sweep.bookkeeping import create_or_join
from ecgsweep.sweep.executor import RunSpec
from ecgsweep.sweep.runner import EXIT_INTERRUPTED, EXIT_SWEEP_FAILED, Options, Runner
from ecgsweep.sweep.store import Store, StoreError
from ecgsweep.sweep_hooks import ECG_PROGRAM

REPO = Path(__file__).resolve().parents[1]
HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="ray not installed "
                               "(pip install -r requirements-ray.txt)")


def grid_yaml(params: str, *, epoch_s: float, extra: str = "") -> str:
    # FAKE_EPOCH_S goes through the YAML's command, the way a W&B user sets a run's variables
    return ("program: tests/fake_programs/curve.py\nmethod: grid\n"
            "metric: {name: val_macro_f1, goal: maximize}\n"
            f"command: ['${{env}}', 'FAKE_EPOCH_S={epoch_s}', '${{interpreter}}', "
            "'${program}', '${args}']\n" + extra + "parameters:\n" + params)


def make_store(tmp_path: Path, yaml_text: str, sweep_id: str | None = None) -> Store:
    cfg = sc.loads(yaml_text)
    assert not sc.errors(sc.check(cfg, program=ECG_PROGRAM, cwd=REPO))
    store, _ = create_or_join(tmp_path / "store", cfg, yaml_text, "test.yaml", sweep_id=sweep_id)
    return store


def ray_runner(store: Store, address: str, *, workers: int = 2, gpus_per_run: float = 0.0,
               cpus_per_run: float = 1.0) -> Runner:
    executor = ray_executor.RayExecutor(address, cpus_per_run, gpus_per_run,
                                        wandb_dir=str(store.folder.resolve()),
                                        program=ECG_PROGRAM)
    return Runner(store, Options(workers=workers, poll_s=0.1, cwd=str(REPO), gpus=[],
                                 kill_delay_s=5, executor=executor, program=ECG_PROGRAM))


def wait_for(check, *, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# ----------------------------------------------------------------------------- no ray


def test_ray_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(UserError, match=r"requirements-ray\.txt"):
        ray_executor.connect("auto")


def test_the_project_imports_without_ray():
    code = ("import sys; sys.modules['ray'] = None\n"
            "import ecgsweep.sweep.commands, ecgsweep.sweep.ray_executor, ecgsweep.sweep.runner\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO / "code",
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


@needs_ray
def test_unreachable_cluster_is_one_error_line_naming_the_address(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "s.yaml").write_text(grid_yaml("  epochs: {value: 1}\n", epoch_s=0.01))
    t0 = time.time()
    out = subprocess.run([sys.executable, "code/sweep.py", str(tmp_path / "s.yaml"), "--ray",
                          f"127.0.0.1:{port}", "--store", str(tmp_path / "store")],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2, out.stderr
    assert len(lines) == 1 and lines[0].startswith(f"error: --ray 127.0.0.1:{port}: no Ray head")
    assert time.time() - t0 < 60
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").iterdir())
    with pytest.raises(UserError, match="HOST:PORT"):
        ray_executor.connect("nocolon")


def run_coordinator(tmp_path: Path, address: str) -> subprocess.CompletedProcess:
    """``code/sweep.py`` on a one-point grid with ``--ray address``; bounded, so a
    coordinator that never gives up fails the test instead of hanging it."""
    (tmp_path / "s.yaml").write_text(grid_yaml("  epochs: {value: 1}\n", epoch_s=0.01))
    return subprocess.run([sys.executable, "code/sweep.py", str(tmp_path / "s.yaml"),
                           "--count", "1", "--ray", address, "--store", str(tmp_path / "store")],
                          cwd=REPO, capture_output=True, text=True, timeout=90)


class QuietHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_port():
    """The port of an HTTP/1 server on 127.0.0.1: open, but not a Ray head."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_port():
    """The port of a socket on 127.0.0.1 that takes connections and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


@needs_ray
@pytest.mark.parametrize("port_fixture, why", [
    ("http_port", "the service there is not a Ray head (UNAVAILABLE: "),
    ("silent_port", f"no Ray head answers there within {ray_executor.CONNECT_TIMEOUT_S:g} s"),
])
def test_an_open_port_without_a_ray_head_is_one_error_line_naming_the_address(
        request, tmp_path, port_fixture, why):
    port = request.getfixturevalue(port_fixture)
    out = run_coordinator(tmp_path, f"127.0.0.1:{port}")
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2, out.stderr
    assert len(lines) == 1 and lines[0].startswith(f"error: --ray 127.0.0.1:{port}: {why}")
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").iterdir())


def test_the_error_names_the_address_ray_dials_where_it_differs(monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(ray_executor, "dialled_address", lambda address: f"127.0.0.1:{port}")
    with pytest.raises(UserError, match=rf"^--ray localhost:{port} \(Ray dials 127\.0\.0\.1:"
                                        rf"{port}\): no Ray head answers there"):
        ray_executor.require_ray_head(f"localhost:{port}", 5.0)


def test_an_address_ray_would_start_a_cluster_at_is_one_error_line(monkeypatch):
    pytest.importorskip("ray")
    from ray._private import services

    monkeypatch.setattr(services, "canonicalize_bootstrap_address", lambda address: None)
    with pytest.raises(UserError, match=r"^--ray auto: cannot join the Ray cluster \(Ray "
                                        r"finds no running cluster to join"):
        ray_executor.dialled_address("auto")


def test_resource_flags_need_ray_and_reach_the_request(monkeypatch, tmp_path):
    from ecgsweep import sweep_cli

    with pytest.raises(SystemExit) as e:
        sweep_cli.main(["x.yaml", "--gpus-per-run", "0.5"])
    assert e.value.code == 2
    got = {}
    monkeypatch.setattr("ecgsweep.sweep.commands.run_sweep", lambda **kw: got.update(kw) or 0)
    assert sweep_cli.main(["--resume", "abc", "--ray", "auto", "--gpus-per-run", "0.25",
                           "--cpus-per-run", "2"]) == 0
    assert got["resume"] == "abc"
    assert (got["ray"].address, got["ray"].gpus_per_run, got["ray"].cpus_per_run,
            got["ray"].workers) == ("auto", 0.25, 2.0, None)
    assert sweep_cli.main(["x.yaml"]) == 0 and got["ray"] is None  # without --ray: local


# ----------------------------------------------------------------------------- the run handle


class FakeRef:
    def __init__(self, value=None):
        self.value = value


class FakeActor:
    """Answers the calls named in ``answers`` at once and never answers the others."""

    def __init__(self, answers: dict):
        self.answers, self.calls = answers, []

    def __getattr__(self, name):
        def remote():
            self.calls.append(name)
            return FakeRef(self.answers.get(name))
        return SimpleNamespace(remote=remote)


class FakeError(Exception):
    actor_init_failed = False


class FakeRay:
    """The calls of the ``ray`` module that the run handle makes."""

    exceptions = SimpleNamespace(RayError=FakeError, RayActorError=FakeError,
                                 ActorUnavailableError=type("Unavailable", (FakeError,), {}),
                                 NodeDiedError=FakeError, WorkerCrashedError=FakeError,
                                 ObjectLostError=FakeError)

    def __init__(self, nodes: list[dict]):
        self._nodes, self.killed = nodes, []

    def wait(self, refs, timeout):
        return [r for r in refs if r.value is not None], [r for r in refs if r.value is None]

    def get(self, ref):
        return ref.value

    def kill(self, actor, no_restart):
        self.killed.append(actor)

    def nodes(self):
        return self._nodes


def node(node_id: str, cpus: float, gpus: float = 0.0, alive: bool = True) -> dict:
    return {"NodeID": node_id * 8, "NodeManagerAddress": "127.0.0.1", "Alive": alive,
            "Resources": {"CPU": cpus, "GPU": gpus, "memory": 1e9}}


PLACED = {"node_id": "ab" * 8, "hostname": "h", "ip": "127.0.0.1", "resources": {}, "pid": 7}


def fake_run(tmp_path, answers: dict, nodes: list[dict], *, gpus: float = 0.0):
    """(handle, actor, ray, clock) for a run asking 1 CPU and ``gpus`` GPU."""
    ray, actor, clock = FakeRay(nodes), FakeActor(answers), [0.0]
    spec = RunSpec("r1", [], {}, tmp_path / "logs" / "r1.log", str(tmp_path), kill_delay_s=5)
    room = ray_executor.Room(ray, 1.0, gpus, clock=lambda: clock[0])
    handle = ray_executor.RayRun(ray, actor, spec, str(tmp_path), room, clock=lambda: clock[0])
    return handle, actor, ray, clock


def test_stopping_a_run_ray_has_not_placed_removes_its_actor(tmp_path):
    handle, actor, ray, _ = fake_run(tmp_path, {}, [node("a", 2)])
    assert handle.poll() is None  # waiting for room on a busy cluster
    handle.terminate()
    assert ray.killed == [actor] and "terminate" not in actor.calls  # nothing left to wait on
    assert handle.poll() == ray_executor.LOST_EXIT
    lost = handle.outcome(ray_executor.LOST_EXIT).lost
    assert lost == "stopped before Ray placed it (it asks 1 CPU and 0 GPU)"


def test_a_kill_the_actor_does_not_answer_removes_it(tmp_path):
    handle, actor, ray, clock = fake_run(tmp_path, {"start": PLACED}, [node("a", 2)])
    assert handle.poll() is None and handle.node_id == PLACED["node_id"]
    handle.kill()
    assert actor.calls[-1] == "kill" and handle.poll() is None and ray.killed == []
    clock[0] = ray_executor.KILL_ANSWER_S + 1
    assert handle.poll() == ray_executor.LOST_EXIT and ray.killed == [actor]
    assert "did not answer SIGKILL" in handle.outcome(ray_executor.LOST_EXIT).lost


def test_a_second_kill_removes_the_actor_at_once(tmp_path):
    handle, actor, ray, _ = fake_run(tmp_path, {"start": PLACED}, [node("a", 2)])
    handle.poll()
    handle.kill()
    handle.kill()
    assert ray.killed == [actor] and handle.poll() == ray_executor.LOST_EXIT


def test_a_waiting_run_no_live_node_can_hold_fails_naming_what_it_asks(tmp_path):
    nodes = [node("a", 4), node("b", 0, 1), node("c", 8, 8, alive=False)]
    handle, actor, ray, _ = fake_run(tmp_path, {}, nodes, gpus=1.0)
    assert handle.poll() == ray_executor.START_FAILED_EXIT and ray.killed == [actor]
    tail = handle.outcome(ray_executor.START_FAILED_EXIT).tail
    assert tail == ("error: Ray cannot place it: no node of the Ray cluster can hold a run "
                    "asking 1 CPU and 1 GPU; its live nodes have node aaaaaaaa (127.0.0.1): "
                    "4 CPU and 0 GPU; node bbbbbbbb (127.0.0.1): 0 CPU and 1 GPU")


def test_room_is_counted_per_node():
    nodes = [node("a", 4), node("b", 1, 1), node("c", 8, 8, alive=False)]
    assert ray_executor.no_room(nodes, 1, 1) is None
    assert ray_executor.no_room(nodes, 2, 1).startswith("no node of the Ray cluster can hold")
    assert ray_executor.no_room([], 0, 0) == ("no node of the Ray cluster can hold a run "
                                              "asking 0 CPU and 0 GPU; the cluster has no "
                                              "live node")
    assert [ray_executor.runs_that_fit(n["Resources"], 0.5, 0) for n in nodes] == [8, 2, 16]
    assert ray_executor.runs_that_fit({"CPU": 2}, 0, 0) is None  # asks for nothing


# ----------------------------------------------------------------------------- on a cluster


@pytest.fixture(scope="module")
def cluster():
    import ray
    from ray.cluster_utils import Cluster

    # a temp folder of its own, short: Ray's socket paths must fit in 107 characters; the
    # runs' node folders land there too (TMPDIR) and go with it
    ray_tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    old = {k: os.environ.get(k) for k in ("RAY_TMPDIR", "TMPDIR")}
    os.environ.update(RAY_TMPDIR=ray_tmp, TMPDIR=ray_tmp)
    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "num_gpus": 1, "resources": {"head_node": 1}, **RAY_LOOPBACK_NODE})
    try:
        c.add_node(num_cpus=1, resources={"second_node": 1}, **RAY_LOOPBACK_NODE)
        c.wait_for_nodes()
        ray_executor.connect(c.address)
        yield c
    finally:
        ray.shutdown()
        c.shutdown()
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.update({k: v})
        shutil.rmtree(ray_tmp, ignore_errors=True)


def live_runs(db: Path) -> list[dict]:
    """Running runs with a logged epoch, once the coordinator has written the sweep."""
    try:
        return ([r for r in Store(db).runs("running") if r["epochs"] >= 1] if db.exists()
                else [])
    except StoreError:  # created but not yet holding the sweep
        return []


def node_ids(ray_module) -> dict[str, str]:
    """'head' and 'second' -> the node id of the live node with that resource."""
    out = {}
    for n in ray_module.nodes():
        for name in ("head", "second"):
            if n["Alive"] and n["Resources"].get(f"{name}_node"):
                out[name] = n["NodeID"]
    return out


@needs_ray
@pytest.mark.slow
def test_grid_runs_on_both_nodes_each_point_once_and_folders_come_back(cluster, tmp_path):
    import ray

    models = tmp_path / "models"
    store = make_store(tmp_path, grid_yaml("  learning_rate: {values: [0.9, 0.5]}\n"
                                           "  layer_1_size: {values: [16, 32]}\n"
                                           f"  models_dir: {{value: {models}}}\n"
                                           "  epochs: {value: 3}\n", epoch_s=0.3))
    assert ray_runner(store, cluster.address).run() == 0
    rows = store.runs()
    points = Counter((r["params"]["learning_rate"]["value"], r["params"]["layer_1_size"]["value"])
                     for r in rows)
    assert points == Counter(itertools.product([0.9, 0.5], [16, 32]))  # each exactly once
    assert [r["state"] for r in rows] == ["finished"] * 4
    nodes = node_ids(ray)
    assert {nid[:8] for nid in nodes.values()} == {r["host"].split("node ")[1][:8] for r in rows}
    assert set(nodes.values()) == {r["node_id"] for r in rows}  # status --json shows them
    for r in rows:
        assert [h["epoch"] for h in store.history(r["run_id"])] == [1, 2, 3]
        assert r["metric_best"] == pytest.approx(r["params"]["learning_rate"]["value"] * 0.875)
        assert r["pid"] is None  # the program's pid is on its node, never signalled from here
        files = Path(r["files_dir"])  # shipped back into the store folder
        assert files.parent.parent == store.folder.resolve() / "wandb"
        assert (files.parent / f"run-{r['run_id']}.wandb").is_file()
        env = json.loads((files / "env.json").read_text())
        assert env["params"]["layer_1_size"] == r["params"]["layer_1_size"]["value"]
        assert env["env"]["WANDB_DIR"] != str(store.folder.resolve())  # ran in its node's folder
        assert "fake run" in Path(r["log_path"]).read_text()
        assert r["summary"]["stopped"] is False
        assert "by the coordinator" in Path(r["log_path"]).read_text()
    assert store.get("state") == "finished"
    # the best model was promoted on the coordinator, from the shipped run folders
    best = json.loads((models / "cnn" / "best.json").read_text())
    winner = max(rows, key=lambda r: r["metric_best"])
    assert best["run_id"] == winner["run_id"] and best["promoted_by_run"] is False
    assert (models / "cnn" / "best.keras").read_bytes() == f"fake model of {best['run_id']}".encode()


@needs_ray
@pytest.mark.slow
def test_fractional_gpu_is_the_runs_resource_request(cluster, tmp_path):
    import ray

    store = make_store(tmp_path, grid_yaml("  epochs: {value: 1}\n", epoch_s=0.05))
    runner = ray_runner(store, cluster.address, workers=1, cpus_per_run=0.5, gpus_per_run=0.25)
    assert runner.launcher.executor.actor_options()["num_gpus"] == 0.25
    handles = []
    start = runner.launcher.executor.start
    runner.launcher.executor.start = lambda spec: handles.append(start(spec)) or handles[-1]
    assert runner.run() == 0
    (handle,) = handles
    assert handle.resources == {"CPU": 0.5, "GPU": 0.25}  # what Ray granted the actor
    assert handle.node_id == node_ids(ray)["head"]  # the only node with a GPU
    (row,) = store.runs()
    env = json.loads((Path(row["files_dir"]) / "env.json").read_text())
    assert env["env"]["CUDA_VISIBLE_DEVICES"] == "0"  # set by Ray, inherited by the program


@needs_ray
@pytest.mark.slow
def test_hyperband_stops_a_lagging_run_on_a_node(cluster, tmp_path):
    store = make_store(tmp_path, grid_yaml(
        # 24 epochs: the lagging run outlasts the runner's reading of its record on a busy host
        "  learning_rate: {values: [0.9, 0.8, 0.3]}\n  epochs: {value: 24}\n", epoch_s=0.3,
        extra="early_terminate: {type: hyperband, min_iter: 2, eta: 2}\n"))
    assert ray_runner(store, cluster.address).run() == 0
    by_lr = {r["params"]["learning_rate"]["value"]: r for r in store.runs()}
    assert [by_lr[lr]["state"] for lr in (0.9, 0.8)] == ["finished"] * 2
    lag = by_lr[0.3]
    assert lag["state"] == "stopped" and "hyperband" in lag["stop_reason"], lag
    assert 2 <= len(store.history(lag["run_id"])) < 24  # SIGTERM reached it on its node
    assert lag["exit_code"] == 0 and lag["summary"]["stopped"] is True
    assert len({r["host"] for r in by_lr.values()}) == 2


@needs_ray
@pytest.mark.slow
def test_coordinator_sigkill_then_resume_with_ray_finishes_the_grid(cluster, tmp_path):
    yaml_path = tmp_path / "s.yaml"
    yaml_path.write_text(grid_yaml("  learning_rate: {values: [0.9, 0.7, 0.5]}\n"
                                   "  epochs: {value: 6}\n", epoch_s=0.4))
    store_root = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, "code/sweep.py", str(yaml_path), "--ray",
                             cluster.address, "--store", str(store_root), "--sweep-id",
                             "rayresume", "--plain"], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        db = store_root / "rayresume" / "sweep.db"
        wait_for(lambda: live_runs(db), timeout=90, what="a live run with a logged epoch")
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    store = Store(db)
    live_before = {r["run_id"] for r in store.runs("running")}
    assert live_before
    assert ray_runner(store, cluster.address).run() == 0
    rows = {r["run_id"]: r for r in store.runs()}
    for rid in live_before:
        assert rows[rid]["state"] == "crashed" and rows[rid]["requeued"] == 1
    finished = Counter(r["params"]["learning_rate"]["value"] for r in rows.values()
                       if r["state"] == "finished")
    assert finished == Counter({0.9: 1, 0.7: 1, 0.5: 1})
    assert store.get("state") == "finished"


def listening_sockets() -> dict[str, tuple]:
    """Socket inode -> (address, port) of every listening TCP and unconnected UDP socket."""
    out = {}
    for table, listening in (("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07")):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == listening:
                host, port = fields[1].split(":")
                raw = bytes.fromhex(host)
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                ip = ipaddress.ip_address(words)
                out[fields[9]] = (getattr(ip, "ipv4_mapped", None) or ip, int(port, 16))
    return out


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:["):-1])
    return inodes


def descendants(root: int) -> list[int]:
    """``root`` and every process below it (the test cluster's nodes are this process's)."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit():
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(proc.name))
        except OSError:
            continue
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


@needs_ray
@pytest.mark.slow
def test_the_cluster_listens_on_loopback_only(cluster):
    import ray

    @ray.remote(num_cpus=0)
    class Pinger:  # defined here, so that it travels by value to the worker
        def ping(self) -> int:
            return os.getpid()

    pinger = Pinger.remote()  # held: an actor without a handle goes away
    worker = ray.get(pinger.ping.remote())
    open_sockets, seen = listening_sockets(), {}
    for pid in descendants(os.getpid()):
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            mine = socket_inodes(pid)
        except OSError:  # ended meanwhile
            continue
        for inode in mine & open_sockets.keys():
            seen.setdefault(open_sockets[inode], set()).add((pid, name))
    ray.kill(pinger)
    owners = {owner for found in seen.values() for owner in found}
    assert {"gcs_server", "raylet"} <= {name for _, name in owners}, seen
    assert worker in {pid for pid, _ in owners}, seen  # the workers' servers too
    assert int(cluster.address.rsplit(":", 1)[1]) in {port for _, port in seen}
    wide = {addr: found for addr, found in seen.items() if not addr[0].is_loopback}
    assert not wide, f"listening beyond loopback: {wide}"

@needs_ray
@pytest.mark.slow
@pytest.mark.parametrize("flags, asks", [(["--gpus-per-run", "2"], "1 CPU and 2 GPU"),
                                         (["--workers", "1", "--cpus-per-run", "3"],
                                          "3 CPU and 0 GPU")])
def test_a_run_no_node_can_hold_is_an_error_before_any_sweep(cluster, tmp_path, flags, asks):
    (tmp_path / "s.yaml").write_text(grid_yaml("  epochs: {value: 1}\n", epoch_s=0.01))
    out = subprocess.run([sys.executable, "code/sweep.py", str(tmp_path / "s.yaml"), "--ray",
                          cluster.address, "--store", str(tmp_path / "store"), *flags],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and errors[0] == out.stderr.strip().splitlines()[-1], out.stderr
    assert errors[0].startswith(f"error: --ray {cluster.address}: no node of the Ray cluster "
                                f"can hold a run asking {asks}; its live nodes have node ")
    assert "1 CPU and 1 GPU" in errors[0] and "1 CPU and 0 GPU" in errors[0]  # the two nodes
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").iterdir())


@needs_ray
@pytest.mark.slow
def test_a_waiting_run_that_no_node_can_hold_any_more_fails_the_sweep(cluster, tmp_path):
    import ray

    store = make_store(tmp_path, grid_yaml("  learning_rate: {values: [0.9, 0.7, 0.5]}\n"
                                           "  epochs: {value: 1}\n", epoch_s=0.01))
    big = cluster.add_node(num_cpus=1, num_gpus=2, **RAY_LOOPBACK_NODE)
    try:
        runner = ray_runner(store, cluster.address, workers=1, gpus_per_run=2)  # only `big` fits
    finally:
        cluster.remove_node(big)  # ... and it leaves before the first run starts
    wait_for(lambda: not any(n["Alive"] and n["Resources"].get("GPU", 0) >= 2
                             for n in ray.nodes()), timeout=60, what="the node to be gone")
    result = {}
    thread = threading.Thread(target=lambda: result.update(rc=runner.run()), daemon=True)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive() and result["rc"] == EXIT_SWEEP_FAILED
    rows = store.runs()
    assert [r["state"] for r in rows] == ["failed"] * 3 and not any(r["host"] for r in rows)
    assert ("Ray cannot place it: no node of the Ray cluster can hold a run asking 1 CPU and "
            "2 GPU; its live nodes have node ") in rows[0]["error"]
    assert store.get("state") == "failed"


@needs_ray
@pytest.mark.slow
def test_sigterm_ends_the_coordinator_with_a_run_ray_has_not_placed(cluster, tmp_path):
    store = make_store(tmp_path, grid_yaml("  learning_rate: {values: [0.9, 0.7, 0.5]}\n"
                                           "  epochs: {value: 100}\n", epoch_s=0.3))
    runner = ray_runner(store, cluster.address, workers=3)  # the cluster holds two at once
    watch = Store(store.path)

    def sigterm_once_two_run() -> None:
        wait_for(lambda: len([r for r in watch.runs("running") if r["epochs"] >= 1]) == 2,
                 timeout=90, what="two live runs with a logged epoch")
        os.kill(os.getpid(), signal.SIGTERM)  # the runner's handler, on the main thread

    threading.Thread(target=sigterm_once_two_run, daemon=True).start()
    assert runner.run() == EXIT_INTERRUPTED
    rows = [r for r in store.runs() if not r["retry_of"]]
    (waiting,) = [r for r in rows if not r["host"]]  # never placed, never started
    assert waiting["state"] == "crashed" and "stopped before Ray placed it" in waiting["error"]
    placed = [r for r in rows if r["host"]]
    assert len(placed) == 2 and all(r["summary"]["stopped"] is True for r in placed)


@needs_ray
@pytest.mark.slow
def test_a_run_on_a_lost_node_is_crashed_and_its_grid_point_run_again(cluster, tmp_path):
    """Last of the cluster tests: it removes the second node (and adds a fresh one back)."""
    import ray

    store = make_store(tmp_path, grid_yaml("  learning_rate: {values: [0.9, 0.5]}\n"
                                           "  epochs: {value: 10}\n", epoch_s=0.3))
    second = node_ids(ray)["second"][:8]
    runner = ray_runner(store, cluster.address)
    result = {}
    thread = threading.Thread(target=lambda: result.update(rc=runner.run()), daemon=True)
    thread.start()
    watch = Store(store.path)

    def on_second() -> bool:
        rows = [r for r in watch.runs("running")
                if second in (r["host"] or "") and r["epochs"] >= 1]
        return bool(rows)

    wait_for(on_second, timeout=60, what="a run with a logged epoch on the second node")
    cluster.remove_node(list(cluster.worker_nodes)[0])
    thread.join(timeout=120)
    assert not thread.is_alive() and result["rc"] == 0
    rows = {r["run_id"]: r for r in store.runs()}
    (lost,) = [r for r in rows.values() if r["state"] == "crashed"]
    assert second in lost["host"] and "lost" in lost["error"] and lost["requeued"] == 1
    assert lost["exit_code"] is None and len(store.history(lost["run_id"])) >= 1
    (retry,) = [r for r in rows.values() if r["retry_of"] == lost["run_id"]]
    assert retry["state"] == "finished" and retry["params"] == lost["params"]
    finished = Counter(r["params"]["learning_rate"]["value"] for r in rows.values()
                       if r["state"] == "finished")
    assert finished == Counter({0.9: 1, 0.5: 1})
    cluster.add_node(num_cpus=1, resources={"second_node": 1}, **RAY_LOOPBACK_NODE)


def test_a_run_told_that_the_coordinator_promotes_leaves_the_slot_alone(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from ecgsweep import run_end
    from ecgsweep.contract import PROMOTE_BY_COORDINATOR, PROMOTE_ENV
    from ecgsweep.model_record import ModelRecord

    ctx = SimpleNamespace(config={"models_dir": str(tmp_path / "models"), "model": "cnn"})
    model = tmp_path / "model.keras"
    model.write_bytes(b"x")
    record = ModelRecord.from_json({"metric": "val_macro_f1", "value": 0.5, "run_id": "r1",
                                    "dataset": {"name": "d.csv", "fingerprint": "0" * 12}})
    monkeypatch.setenv(PROMOTE_ENV, PROMOTE_BY_COORDINATOR)
    promoted, slot = run_end.promote(ctx, model, record)
    assert promoted is False and not slot.model_path.exists()
    monkeypatch.delenv(PROMOTE_ENV)
    promoted, slot = run_end.promote(ctx, model, record)
    assert promoted is True and slot.model_path.exists()
