"""The offline runner, in-process, with the fast fake program (tests/fake_programs/curve.py)."""

import io
import itertools
import json
import threading
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from ecgsweep.cli import script_command
from ecgsweep.model_record import ModelRecord
from ecgsweep.sweep import commands, engine as engine_mod, executor, failures, runner
from ecgsweep.sweep import config as sc
from ecgsweep.sweep.bookkeeping import NoMore, claim, create_or_join
from ecgsweep.sweep.program import ANY_PROGRAM
from ecgsweep.sweep.runner import Options, Runner
from ecgsweep.sweep_hooks import ECG_PROGRAM

REPO = Path(__file__).resolve().parents[1]
CURVE = "tests/fake_programs/curve.py"


def make_sweep(tmp_path, yaml_text, *, count=None, sweep_id=None):
    cfg = sc.loads(yaml_text)
    errs = sc.errors(sc.check(cfg, program=ECG_PROGRAM, cwd=REPO))
    assert not errs, [str(e) for e in errs]
    store, _ = create_or_join(tmp_path / "store", cfg, yaml_text, "test.yaml", count=count,
                              sweep_id=sweep_id)
    return store


def run_sweep(tmp_path, yaml_text, *, count=None, **opts):
    store = make_sweep(tmp_path, yaml_text, count=count)
    opts.setdefault("gpus", [])
    opts.setdefault("program", ECG_PROGRAM)
    r = Runner(store, Options(poll_s=0.05, cwd=str(REPO), kill_delay_s=5, **opts))
    rc = r.run()
    return store, rc


def grid_yaml(params, *, program=CURVE, extra=""):
    return (f"program: {program}\nmethod: grid\n"
            "metric: {name: val_macro_f1, goal: maximize}\n" + extra +
            "parameters:\n" + params)


def point(row, names):
    return tuple(row["params"][n]["value"] for n in names)


# ----------------------------------------------------------------------------- grid


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_grid_runs_every_point_exactly_once(tmp_path, monkeypatch, workers):
    monkeypatch.setenv("FAKE_EPOCH_S", "0.02")
    store, rc = run_sweep(tmp_path, grid_yaml(
        "  learning_rate: {values: [0.9, 0.5, 0.3]}\n"
        "  layer_1_size: {values: [16, 32]}\n"
        "  epochs: {value: 2}\n"), workers=workers)
    assert rc == 0
    rows = store.runs()
    points = Counter(point(r, ["learning_rate", "layer_1_size"]) for r in rows)
    assert set(points) == set(itertools.product([0.9, 0.5, 0.3], [16, 32]))
    assert all(n == 1 for n in points.values()), points
    assert [r["state"] for r in rows] == ["finished"] * 6
    for r in rows:
        hist = store.history(r["run_id"])
        assert [h["epoch"] for h in hist] == [1, 2]
        assert r["exit_code"] == 0 and len(r["run_id"]) == 8
        assert r["metric_best"] == pytest.approx(r["params"]["learning_rate"]["value"] * 0.75)
    assert store.get("state") == "finished"
    if workers == 2:  # the two slots were both used
        assert {r["slot"] for r in rows} == {0, 1}


def test_concurrent_claims_never_take_a_grid_point_twice(tmp_path):
    """Four runners on separate connections race for 24 grid points: BEGIN IMMEDIATE."""
    store = make_sweep(tmp_path, grid_yaml(
        "  learning_rate: {values: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]}\n"
        "  layer_1_size: {values: [8, 16, 32, 64]}\n"))
    claimed, errors = [], []

    def worker():
        from ecgsweep.sweep.store import Store

        try:
            mine = Store(store.path)
            engine_cfg = sc.engine_config(mine.meta()["config"])
            while True:
                got = claim(mine, engine_cfg, threading.current_thread().name, 0, 0.0, None)
                if isinstance(got, NoMore):
                    return
                claimed.append(point({"params": got[1]}, ["learning_rate", "layer_1_size"]))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(claimed) == 24 and len(set(claimed)) == 24
    assert len(store.runs()) == 24


def test_count_caps_the_sweep(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_EPOCH_S", "0.01")
    store, rc = run_sweep(tmp_path, grid_yaml("  learning_rate: {values: [0.1, 0.2, 0.3, 0.4]}\n"
                                              "  epochs: {value: 1}\n"), count=2)
    assert rc == 0 and len(store.runs()) == 2
    assert "cap" in store.get("finished_because")


# ----------------------------------------------------------------------------- bayes


@pytest.mark.slow
def test_bayes_proposes_inside_the_space_and_uses_finished_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_EPOCH_S", "0.01")
    seen = []
    real_next_run = engine_mod.sweeps.next_run

    def spy(cfg, runs, *a, **kw):
        seen.append([(r.state, len(r.history), r.summary_metrics.get("best_val_macro_f1"))
                     for r in runs])
        return real_next_run(cfg, runs, *a, **kw)

    monkeypatch.setattr(engine_mod.sweeps, "next_run", spy)
    store, rc = run_sweep(tmp_path, f"""\
program: {CURVE}
method: bayes
metric: {{name: val_macro_f1, goal: maximize}}
parameters:
  learning_rate: {{min: 0.1, max: 0.9}}
  layer_1_size: {{distribution: int_uniform, min: 8, max: 64}}
  pooling: {{values: [max, avg]}}
  epochs: {{value: 2}}
""", count=5)
    assert rc == 0
    rows = store.runs()
    assert len(rows) == 5 and all(r["state"] == "finished" for r in rows)
    for r in rows:
        p = {k: v["value"] for k, v in r["params"].items()}
        assert 0.1 <= p["learning_rate"] <= 0.9 and isinstance(p["learning_rate"], float)
        assert 8 <= p["layer_1_size"] <= 64 and isinstance(p["layer_1_size"], int)
        assert p["pooling"] in ("max", "avg") and p["epochs"] == 2
    # the engine saw every earlier run as finished, with its history and summary
    assert len(seen) == 5
    for i, runs in enumerate(seen):
        assert len(runs) == i
        assert all(state == "finished" and n == 2 and best is not None for state, n, best in runs)
    # and its Gaussian process had data: the later proposals carry a prediction
    info = rows[-1]["search_info"]
    assert isinstance(info["predicted_value"], float)
    assert "no valid samples" not in info["warnings"]


# ----------------------------------------------------------------------------- hyperband


@pytest.mark.slow
def test_hyperband_stops_the_run_that_lags(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_EPOCH_S", "0.15")
    store, rc = run_sweep(tmp_path, grid_yaml(
        "  learning_rate: {values: [0.9, 0.8, 0.3]}\n  epochs: {value: 8}\n",
        extra="early_terminate: {type: hyperband, min_iter: 2, eta: 2}\n"))
    assert rc == 0
    by_lr = {r["params"]["learning_rate"]["value"]: r for r in store.runs()}
    for lr in (0.9, 0.8):
        assert by_lr[lr]["state"] == "finished"
        assert len(store.history(by_lr[lr]["run_id"])) == 8
    lag = by_lr[0.3]
    hist = store.history(lag["run_id"])
    assert lag["state"] == "stopped", lag
    assert 2 <= len(hist) < 8  # stopped at the first band, metrics kept
    assert lag["exit_code"] == 0 and lag["summary"]["stopped"] is True
    assert "hyperband" in lag["stop_reason"]
    assert lag["metric_best"] == pytest.approx(max(h["val_macro_f1"] for h in hist))


def test_stopped_runs_count_as_finished_for_the_engine():
    rows = [{"run_id": "a", "state": "stopped", "params": {}, "summary": {"x": 1.0, "s": "t"}},
            {"run_id": "b", "state": "crashed", "params": {}, "summary": None}]
    runs = engine_mod.engine_runs(rows, {"a": [{"x": 0.5}]})
    assert runs[0].state == "finished" and runs[0].stopped is True
    assert runs[0].summary_metrics == {"x": 1.0} and runs[0].history == [{"x": 0.5}]
    assert runs[1].state == "crashed" and runs[1].stopped is False


# ----------------------------------------------------------------------------- failures


@pytest.mark.slow
def test_failed_runs_are_recorded_with_their_output_and_the_sweep_goes_on(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_EPOCH_S", "0.01")
    store, rc = run_sweep(tmp_path, grid_yaml(
        "  seed: {values: [1, 13, 3, 2, 9, 4]}\n  epochs: {value: 3}\n"))
    assert rc == 0
    by_seed = {r["params"]["seed"]["value"]: r for r in store.runs()}
    assert len(by_seed) == 6
    assert by_seed[1]["state"] == by_seed[4]["state"] == "finished"
    crash = by_seed[13]
    assert crash["state"] == "failed" and crash["exit_code"] == 1
    assert "ZeroDivisionError" in crash["error"]
    assert "Traceback" in crash["output_tail"] and "1 / 0" in crash["output_tail"]
    assert len(store.history(crash["run_id"])) == 1  # its epoch-1 metrics are kept
    nan = by_seed[3]
    assert nan["state"] == "failed" and nan["exit_code"] == 3
    assert nan["error"].startswith("diverged") and "NaN at epoch 2" in nan["error"]
    bad = by_seed[2]
    assert bad["exit_code"] == 2 and "error: config key 'data_dir'" in bad["error"]
    oom = by_seed[9]
    assert oom["state"] == "failed" and oom["exit_code"] == -9
    assert "SIGKILL" in oom["error"] and "out of memory" in oom["error"]
    assert store.get("state") == "finished"


def test_a_sweep_that_ends_with_every_run_failed_has_failed(tmp_path, monkeypatch):
    """Its cap reached before any repeated-failure rule applies: no run finished, so the
    sweep has no result, and it exits as failed rather than finished."""
    monkeypatch.setenv("FAKE_EPOCH_S", "0.01")
    store, rc = run_sweep(tmp_path, grid_yaml("  seed: {values: [2, 9, 1]}\n"
                                              "  epochs: {value: 1}\n"), count=2)
    assert rc == runner.EXIT_SWEEP_FAILED
    assert [r["state"] for r in store.runs()] == ["failed", "failed"]
    assert store.get("state") == "failed"
    assert store.get("failure").startswith("no run finished: the 2 that ended all failed; the last with: ")
    # one finished run among failed ones is a result: the sweep finished
    store, rc = run_sweep(tmp_path / "one", grid_yaml("  seed: {values: [2, 1]}\n"
                                                      "  epochs: {value: 1}\n"), count=2)
    assert rc == 0 and store.get("state") == "finished"


@pytest.mark.slow
def test_three_failures_in_a_row_with_the_same_error_stop_the_sweep(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_EPOCH_S", "0.01")
    store, rc = run_sweep(tmp_path, grid_yaml(
        "  seed: {values: [13, 14, 15, 1, 4]}\n  epochs: {value: 2}\n"))
    assert rc == runner.EXIT_SWEEP_FAILED
    rows = store.runs()
    assert [r["params"]["seed"]["value"] for r in rows] == [13, 14, 15]
    assert all(r["state"] == "failed" for r in rows)
    assert store.get("state") == "failed"
    assert "3 runs in a row" in store.get("failure") and "ZeroDivisionError" in store.get("failure")
    # once the cause is fixed, --resume goes on with the rest of the grid
    out = io.StringIO()
    rc = commands.run_sweep(yaml_path=None, store_root=str(tmp_path / "store"),
                            resume=store.get("sweep_id"),
                            opts=Options(poll_s=0.05, cwd=str(REPO), gpus=[]),
                            console=Console(file=out, width=200))
    assert rc == 0, out.getvalue()
    assert "the sweep had stopped: 3 runs in a row" in out.getvalue()
    assert sorted(r["params"]["seed"]["value"] for r in store.runs()
                  if r["state"] == "finished") == [1, 4]


def test_a_run_stopped_from_outside_the_sweep_is_lost_not_failed():
    """Ctrl-C or a kill by hand on one run: recorded crashed, as a run of an interrupted
    runner is, so three of them do not fail the sweep as three identical failures."""
    import signal

    from ecgsweep.sweep.store import CRASHED, FAILED
    from ecgsweep.sweep.supervision import LiveRun, end_state

    live = LiveRun(handle=None, slot=0, spec=None)
    tail = "epoch 1\nstopped: the run was stopped before its first fold finished"
    for rc in (130, 143, -signal.SIGTERM, -signal.SIGINT):
        state, error = end_state(live, rc, tail, None, lambda code: None)
        assert state == CRASHED and error.startswith("stopped from outside the sweep: ")
    assert end_state(live, 1, "Traceback\nValueError: x", None, lambda code: None)[0] == FAILED
    assert end_state(live, -signal.SIGKILL, "", None, lambda code: None)[0] == FAILED  # OOM?


def test_a_run_that_survives_a_stop_from_outside_is_lost_not_finished():
    """A kill by hand that the program turns into an early, orderly end (exit 0, its model
    marked stopped) is the same outside stop as one that kills it: lost, not finished."""
    from ecgsweep.sweep.store import CRASHED, FINISHED, STOPPED
    from ecgsweep.sweep.supervision import OUTSIDE_STOP, LiveRun, end_state
    from ecgsweep.sweep_models import stopped_by_request

    live = LiveRun(handle=None, slot=0, spec=None)
    state, error = end_state(live, 0, "", None, lambda code: None, stopped_by_request=True)
    assert state == CRASHED and error.startswith(f"{OUTSIDE_STOP}: ")
    assert end_state(live, 0, "", None, lambda code: None) == (FINISHED, None)
    sent = LiveRun(handle=None, slot=0, spec=None, stop_sent_at=1.0)  # the sweep's own stop
    assert end_state(sent, 0, "", None, lambda code: None, stopped_by_request=True) == (
        STOPPED, None)

    # what the run's summary says, whatever it kept on disk (a k-fold run stopped in its
    # second fold keeps fold 1's whole record and no model.keras)
    assert stopped_by_request({"stopped": True, "folds_completed": 1})
    assert not stopped_by_request({"stopped": False}) and not stopped_by_request(None)
    assert not stopped_by_request({}) and not ANY_PROGRAM.stopped_by_request({"stopped": True})


def test_a_run_stopped_by_hand_in_a_sweep_does_not_count_toward_its_cap(tmp_path):
    from ecgsweep.sweep.store import CRASHED, FINISHED
    from ecgsweep.sweep.supervision import OUTSIDE_STOP

    store = make_sweep(tmp_path, "program: tests/fake_programs/curve.py\nmethod: random\n"
                       "metric: {name: val_macro_f1, goal: maximize}\nparameters:\n"
                       "  learning_rate: {values: [0.1, 0.2]}\n  epochs: {value: 40}\n"
                       f"  epoch_s: {{value: 0.05}}\n  models_dir: {{value: {tmp_path / 'm'}}}\n",
                       count=2)
    runner_ = Runner(store, Options(poll_s=0.05, cwd=str(REPO), kill_delay_s=5, gpus=[],
                                    program=ECG_PROGRAM))
    stopper = threading.Thread(target=_stop_first_run_by_hand, args=(store,), daemon=True)
    stopper.start()
    assert runner_.run() == 0
    stopper.join(timeout=5)
    rows = store.runs()
    first = rows[0]
    assert first["state"] == CRASHED and first["error"].startswith(f"{OUTSIDE_STOP}: ")
    assert [r["state"] for r in rows[1:]] == [FINISHED, FINISHED]  # the cap of 2 still run
    assert store.count_runs() == 2


def _stop_first_run_by_hand(store) -> None:
    """SIGTERM, as `kill` by hand, to the sweep's first run once it has logged an epoch."""
    import os
    import signal
    import time

    deadline = time.time() + 60
    while time.time() < deadline:
        rows = store.runs()
        if rows and rows[0].get("files_dir") and (rows[0].get("epochs") or 0) >= 1:
            env = Path(rows[0]["files_dir"]) / "env.json"
            if env.is_file():
                os.kill(json.loads(env.read_text())["pid"], signal.SIGTERM)
                return
        time.sleep(0.05)


def test_a_run_of_an_interrupted_runner_that_had_reached_its_end_is_finished(tmp_path):
    """The runner's Ctrl-C reaching a run as it exits: finished when the program says the
    run ended by itself (its model's record is not marked stopped), else lost with it."""
    from ecgsweep.sweep.store import CRASHED, FINISHED
    from ecgsweep.sweep.supervision import LiveRun, end_state
    from ecgsweep.sweep_models import ended_by_itself

    live = LiveRun(handle=None, slot=0, spec=None, interrupted=True, stop_sent_at=1.0)
    assert end_state(live, 0, "", None, lambda code: None, ended_by_itself=True) == (
        FINISHED, None)
    assert end_state(live, 0, "", None, lambda code: None)[0] == CRASHED
    assert end_state(live, 143, "", None, lambda code: None, ended_by_itself=True)[0] == CRASHED

    files = tmp_path / "run" / "files"
    files.mkdir(parents=True)
    assert not ended_by_itself(files) and not ended_by_itself(None)  # no model: cannot say
    (files.parent / "fold1.keras").write_bytes(b"m")
    (files.parent / "fold1.json").write_text(json.dumps({"stopped": False}))
    assert not ended_by_itself(files)  # fold models alone: a k-fold run cut short
    (files.parent / "model.keras").write_bytes(b"m")
    (files.parent / "model.json").write_text(json.dumps({"stopped": False}))
    assert ended_by_itself(files) and not ANY_PROGRAM.ended_by_itself(files)
    (files.parent / "model.json").write_text(json.dumps({"stopped": True}))
    assert not ended_by_itself(files)
    (files.parent / "model.json").write_text("{damaged")
    assert not ended_by_itself(files)


def test_classify_exit():
    assert failures.classify_exit(130, "epoch 1\nstopped: the run was stopped before its "
                                       "first fold finished; nothing to keep") == (
        "interrupted (exit 130): stopped: the run was stopped before its first fold finished; "
        "nothing to keep")
    # what the program prints as it shuts down does not hide its stopped: line
    assert failures.classify_exit(130, "stopped: before its first fold\nshutting down") == (
        "interrupted (exit 130): stopped: before its first fold")
    assert failures.classify_exit(137, "").startswith("killed by SIGKILL")
    assert "SIGSEGV" in failures.classify_exit(-11, "")
    assert failures.classify_exit(3, "epoch 1\nerror: loss is NaN",
                                  ECG_PROGRAM.describe_exit) == \
        "diverged: NaN loss, weights or outputs (exit 3): error: loss is NaN"
    # any other program's exit 3 means nothing to the engine
    assert failures.classify_exit(3, "epoch 1\nerror: loss is NaN") == \
        "crashed (exit 3): error: loss is NaN"
    assert "CUDA out of memory" in failures.classify_exit(
        1, "Traceback\nRuntimeError: CUDA out of memory. Tried to allocate 2 GiB")
    assert failures.classify_exit(1, "Traceback\nValueError: bad\n").endswith("ValueError: bad")


def test_a_w_and_b_programs_own_last_line_is_its_error_not_wandbs_footer():
    def tail(run_id):
        return ("data file missing: /data/x.csv\n"
                f"\x1b[1;34mwandb\x1b[0m: Find logs at: st/wandb/offline-run-2026-{run_id}/logs\n")

    first, second = (failures.classify_exit(1, tail(i)) for i in ("urq6sbqr", "zz81kkq2"))
    assert first == "crashed (exit 1): data file missing: /data/x.csv"
    assert failures.same_error_key(first) == failures.same_error_key(second)
    assert failures.classify_exit(1, "RuntimeError: boom\nwandb: ERROR CUDA out of memory\n") == (
        "out of memory (exit 1): wandb: ERROR CUDA out of memory")
    only_wandb = failures.classify_exit(1, "\x1b[1;34mwandb\x1b[0m: Find logs at: st/logs\n")
    assert only_wandb == "crashed (exit 1): wandb: Find logs at: st/logs"


# ----------------------------------------------------------------------------- GPUs


@pytest.mark.slow
def test_each_worker_gets_its_own_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_EPOCH_S", "0.1")
    store, rc = run_sweep(tmp_path, grid_yaml("  learning_rate: {values: [0.1, 0.2, 0.3, 0.4]}\n"
                                              "  epochs: {value: 2}\n"), workers=2,
                          gpus=["3", "5"])
    assert rc == 0
    rows = store.runs()
    for r in rows:
        env = json.loads((Path(r["files_dir"]) / "env.json").read_text())["env"]
        assert env["CUDA_VISIBLE_DEVICES"] == r["gpu"] == ["3", "5"][r["slot"]]
    for a, b in itertools.combinations(rows, 2):
        overlap = a["started_at"] < b["ended_at"] and b["started_at"] < a["ended_at"]
        if overlap:
            assert a["gpu"] != b["gpu"]
    assert {r["gpu"] for r in rows} == {"3", "5"}


def test_visible_gpus():
    assert executor.visible_gpus({"CUDA_VISIBLE_DEVICES": "0,2"}) == ["0", "2"]
    assert executor.visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert executor.visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}) == []


# ----------------------------------------------------------------------------- output


def test_status_and_final_report(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_EPOCH_S", "0.01")
    from ecgsweep.artifacts import BestModelSlot

    store, rc = run_sweep(tmp_path, grid_yaml("  learning_rate: {values: [0.9, 0.2]}\n"
                                              "  models_dir: {value: models}\n"
                                              "  epochs: {value: 2}\n"))
    rows = store.runs()
    best = max(rows, key=lambda r: r["metric_best"])
    candidate = tmp_path / "best.keras"
    candidate.write_bytes(b"")
    BestModelSlot(tmp_path / "cwd" / "models", "cnn").promote_if_better(
        candidate, ModelRecord.from_json({
            "run_id": best["run_id"], "metric": "val_macro_f1", "value": 0.675,
            "dataset": {"name": "fake.csv", "fingerprint": "f" * 12}}))  # the stand-in's data
    buf = io.StringIO()
    commands.final_report(store, Console(file=buf, width=200), cwd=str(tmp_path / "cwd"),
                          program=ECG_PROGRAM)
    out = buf.getvalue()
    # named by its full path: the runs' folder is not the current one
    shown = str(tmp_path / "cwd" / "models/cnn/fake-ffffffffffff/best.keras")
    assert f"best cnn model: {shown} (from this sweep, run {best['run_id']}" in out
    # and its test data too: the command goes there first
    command = script_command("eval.py", "eval", tmp_path / "cwd")  # as it runs from there
    assert f"next: cd {tmp_path / 'cwd'} && {command} --model {shown}" in out
    assert f"wandb sync {store.folder / 'wandb'}" in out
    lb = out[out.index("leaderboard"):]
    assert lb.index(best["run_id"]) < lb.index([r for r in rows if r is not best][0]["run_id"])

    buf = io.StringIO()
    assert commands.status(store.get("sweep_id"), store_root=str(tmp_path / "store"),
                           console=Console(file=buf, width=200)) == 0
    out = buf.getvalue()
    assert all(r["run_id"] in out for r in rows) and "finished" in out
    buf = io.StringIO()
    commands.status(None, store_root=str(tmp_path / "store"), console=Console(file=buf, width=200))
    assert store.get("sweep_id") in buf.getvalue()
    with pytest.raises(FileNotFoundError, match="no sweep 'nope'"):
        commands.status("nope", store_root=str(tmp_path / "store"))


def test_resume_refuses_a_changed_yaml_and_join_refuses_a_different_one(tmp_path):
    from ecgsweep.cli import UserError

    text = grid_yaml("  learning_rate: {values: [0.1, 0.2]}\n")
    store = make_sweep(tmp_path, text, sweep_id="fixed001")
    changed = tmp_path / "changed.yaml"
    changed.write_text(text.replace("0.2", "0.3"))
    with pytest.raises(UserError, match="differs from the config sweep fixed001"):
        commands.run_sweep(yaml_path=str(changed), store_root=str(tmp_path / "store"),
                           resume="fixed001")
    with pytest.raises(sc.ConfigError, match="different config"):
        create_or_join(tmp_path / "store", sc.loads(changed.read_text()), changed.read_text(),
                       str(changed), sweep_id="fixed001")
    again, created = create_or_join(tmp_path / "store", sc.loads(text), text, "x.yaml",
                                    sweep_id="fixed001")
    assert not created and again.path == store.path


def test_a_metric_the_program_never_logs_stops_the_sweep_after_the_first_run(tmp_path):
    """A sweep on a metric nobody logs must not run blind."""
    store, rc = run_sweep(tmp_path, f"""\
program: {CURVE}
method: random
metric: {{name: validation/loss, goal: minimize}}
parameters:
  learning_rate: {{min: 0.1, max: 0.9}}
  epochs: {{value: 2}}
""", count=5)
    assert rc == runner.EXIT_SWEEP_FAILED
    rows = store.runs()
    assert len(rows) == 1 and rows[0]["state"] == "finished"
    failure = store.get("failure")
    assert store.get("state") == "failed"
    assert "'validation/loss'" in failure and "val_macro_f1" in failure, failure
    assert "'validation/loss'" in rows[0]["error"] and "val_loss" in rows[0]["error"], rows[0]


def test_the_counts_line_names_the_re_queued_runs_the_table_shows():
    from ecgsweep.sweep.table import counts_line

    rows = [{"state": "finished"}, {"state": "crashed", "requeued": 1}, {"state": "pending"}]
    assert counts_line(rows) == "2 runs (1 finished, 1 pending, 1 re-queued)"
    assert counts_line([{"state": "finished"}]) == "1 run (1 finished)"
