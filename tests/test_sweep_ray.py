"""The Ray executor under the real runner, on a two-node Ray cluster on this machine.

Loopback only, no real GPU: the head declares one pretend GPU, the second node none, one CPU
each, so two one-CPU runs at once land on different nodes. The stand-in program
(tests/fake_programs/curve.py) writes a W&B run record that the actors read on their node.
Skipped when ray is not installed (pip install -r requirements-ray.txt).
"""

import importlib.util
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from ecgsweep.cli import UserError
from ecgsweep.sweep import config as sc
from ecgsweep.sweep import ray_executor
from ecgsweep.sweep.bookkeeping import create_or_join
from ecgsweep.sweep.runner import Options, Runner
from ecgsweep.sweep.store import Store

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
    assert not sc.errors(sc.check(cfg, cwd=REPO))
    store, _ = create_or_join(tmp_path / "store", cfg, yaml_text, "test.yaml", sweep_id=sweep_id)
    return store


def ray_runner(store: Store, address: str, *, workers: int = 2, gpus_per_run: float = 0.0,
               cpus_per_run: float = 1.0) -> Runner:
    executor = ray_executor.RayExecutor(address, cpus_per_run, gpus_per_run,
                                        wandb_dir=str(store.folder.resolve()))
    return Runner(store, Options(workers=workers, poll_s=0.1, cwd=str(REPO), gpus=[],
                                 kill_delay_s=5, executor=executor))


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


def test_resource_flags_need_ray_and_reach_the_request(monkeypatch, tmp_path):
    import sweep as sweep_cli  # code/sweep.py

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
        "num_cpus": 1, "num_gpus": 1, "resources": {"head_node": 1}})
    try:
        c.add_node(num_cpus=1, resources={"second_node": 1})
        c.wait_for_nodes()
        ray_executor.connect(c.address)
        yield c
    finally:
        ray.shutdown()
        c.shutdown()
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.update({k: v})
        shutil.rmtree(ray_tmp, ignore_errors=True)


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
        "  learning_rate: {values: [0.9, 0.8, 0.3]}\n  epochs: {value: 8}\n", epoch_s=0.3,
        extra="early_terminate: {type: hyperband, min_iter: 2, eta: 2}\n"))
    assert ray_runner(store, cluster.address).run() == 0
    by_lr = {r["params"]["learning_rate"]["value"]: r for r in store.runs()}
    assert [by_lr[lr]["state"] for lr in (0.9, 0.8)] == ["finished"] * 2
    lag = by_lr[0.3]
    assert lag["state"] == "stopped" and "hyperband" in lag["stop_reason"], lag
    assert 2 <= len(store.history(lag["run_id"])) < 8  # SIGTERM reached it on its node
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
        wait_for(lambda: db.exists() and Store(db).runs("state = 'running' AND epochs >= 1"),
                 timeout=90, what="a live run with a logged epoch")
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    store = Store(db)
    live_before = {r["run_id"] for r in store.runs("state = 'running'")}
    assert live_before
    assert ray_runner(store, cluster.address).run() == 0
    rows = {r["run_id"]: r for r in store.runs()}
    for rid in live_before:
        assert rows[rid]["state"] == "crashed" and rows[rid]["requeued"] == 1
    finished = Counter(r["params"]["learning_rate"]["value"] for r in rows.values()
                       if r["state"] == "finished")
    assert finished == Counter({0.9: 1, 0.7: 1, 0.5: 1})
    assert store.get("state") == "finished"


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
        rows = watch.runs("state = 'running' AND host LIKE ? AND epochs >= 1", (f"%{second}%",))
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
    cluster.add_node(num_cpus=1, resources={"second_node": 1})


def test_a_run_told_that_the_coordinator_promotes_leaves_the_slot_alone(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from ecgsweep import run
    from ecgsweep.contract import PROMOTE_BY_COORDINATOR, PROMOTE_ENV

    ctx = SimpleNamespace(config={"models_dir": str(tmp_path / "models"), "model": "cnn"})
    model = tmp_path / "model.keras"
    model.write_bytes(b"x")
    record = {"metric": "val_macro_f1", "value": 0.5, "run_id": "r1",
              "dataset": {"name": "d.csv", "fingerprint": "0" * 12}}
    monkeypatch.setenv(PROMOTE_ENV, PROMOTE_BY_COORDINATOR)
    promoted, slot = run.promote(ctx, model, record)
    assert promoted is False and not slot.model_path.exists()
    monkeypatch.delenv(PROMOTE_ENV)
    promoted, slot = run.promote(ctx, model, record)
    assert promoted is True and slot.model_path.exists()
