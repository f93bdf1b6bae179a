"""Steering a sweep from another shell (stop, cancel, pause, resume) and prior runs, with
W&B's meanings: each changes what a runner sharing the store does. The runs are the fast
stand-in program (tests/fake_programs/curve.py); the runner works in a thread, the control
comes through code/sweep.py's own entry (``sweep_cli.main``) on another connection."""

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest

import unprivileged
from ecgsweep import sweep_cli
from ecgsweep.cli import EXIT_USAGE, run_main
from ecgsweep.sweep import bookkeeping, controls, prior
from ecgsweep.sweep import config as sc
from ecgsweep.sweep.bookkeeping import create_or_join
from ecgsweep.sweep.errors import UserError
from ecgsweep.sweep.runner import Options, Runner
from ecgsweep.sweep.store import RUNNING, Store, db_path

REPO = Path(__file__).resolve().parents[1]
CURVE = "tests/fake_programs/curve.py"
WAIT_S = 60  # generous bound on waiting for a runner; never reached when all is well


def yaml_text(method: str, params: str) -> str:
    return (f"program: {CURVE}\nmethod: {method}\n"
            "metric: {name: val_macro_f1, goal: maximize}\nparameters:\n" + params)


RANDOM = yaml_text("random", "  learning_rate: {min: 0.1, max: 0.9}\n  epochs: {value: 10}\n")


class Events:
    """A view that keeps the runner's one-line messages."""
    plain = False

    def __init__(self):
        self.lines = []

    def event(self, msg):
        self.lines.append(msg)

    def update(self, rows):
        pass


def cli(argv, capsys):
    """code/sweep.py in this process: (exit code, stdout, stderr)."""
    rc = run_main(lambda: sweep_cli.main(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def make_sweep(root, text, sweep_id, *, count=None):
    store, _ = create_or_join(root, sc.loads(text), text, "test.yaml", count=count,
                              sweep_id=sweep_id)
    return store


def finished_runs(root, sweep_id, lrs, *, epochs=2):
    """A sweep whose runs with these learning rates finished, as a runner records them."""
    text = yaml_text("grid", f"  learning_rate: {{values: {list(lrs)}}}\n"
                             f"  epochs: {{value: {epochs}}}\n")
    store = make_sweep(root, text, sweep_id)
    with store.transaction():
        for i, lr in enumerate(lrs):
            run_id = f"run{i}"
            store.insert_run(run_id, {"learning_rate": {"value": lr}, "epochs": {"value": epochs}},
                             state="finished")
            store.add_history(run_id, 0, [{"val_macro_f1": lr / 2}, {"val_macro_f1": lr * 0.75}])
            store.update_run(run_id, exit_code=0, metric_best=lr * 0.75, epochs=2)
        store.set("state", "finished")
    store.close()


class RunnerThread:
    """A runner working on the sweep in a thread, as a runner in another shell would."""

    def __init__(self, store, **opts):
        self.events = Events()
        self.runner = Runner(store, Options(poll_s=0.05, cwd=str(REPO), kill_delay_s=5, gpus=[],
                                            live=False, **opts), view=self.events)
        self.rc = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.rc = self.runner.run()

    def join(self):
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive(), self.events.lines
        return self.rc


def wait_for(what, check):
    """Poll ``check`` (on its own connection) until it holds."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.02)
    raise AssertionError(f"waited {WAIT_S}s for {what}")


def reader(store):
    return Store(store.path, read_only=True)


def running_run(store, *, logged=0):
    """The id of a run that runs and has logged at least ``logged`` steps."""
    def check():
        s = reader(store)
        try:
            rows = [r for r in s.runs(RUNNING) if s.history_length(r["run_id"]) >= logged]
            return rows[0]["run_id"] if rows else None
        finally:
            s.close()
    return wait_for("a running run", check)


def status_json(root, sweep_id, capsys):
    rc, out, err = cli(["status", sweep_id, "--json", "--store", str(root)], capsys)
    assert rc == 0, err
    return json.loads(out)


# ----------------------------------------------------------------------------- stop, cancel


@pytest.mark.slow
def test_stop_lets_the_live_run_finish_and_starts_no_other(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_EPOCH_S", "0.1")
    root = tmp_path / "store"
    store = make_sweep(root, RANDOM, "stop0001", count=6)
    runner = RunnerThread(store)
    first = running_run(store)
    rc, out, err = cli(["stop", "stop0001", "--store", str(root)], capsys)
    assert rc == 0 and err == "" and "stop0001 stopped by" in out
    assert runner.join() == 0
    rows = store.runs()
    assert [(r["run_id"], r["state"]) for r in rows] == [(first, "finished")]
    assert len(store.history(first)) == 10  # it ran to its end
    assert any("stopped by" in line and "no new runs" in line for line in runner.events.lines)
    sweep = status_json(root, "stop0001", capsys)["sweep"]
    assert sweep["state"] == "stopped" and sweep["control"]["state"] == "stopped"
    assert sweep["control"]["by"] == controls.who()
    assert "stopped by" in sweep["finished_because"]


def test_cancel_stops_the_live_run_and_starts_no_other(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_EPOCH_S", "0.1")
    root = tmp_path / "store"
    text = yaml_text("random", "  learning_rate: {min: 0.1, max: 0.9}\n  epochs: {value: 100}\n")
    store = make_sweep(root, text, "cancel01", count=6)
    runner = RunnerThread(store)
    first = running_run(store, logged=1)  # its SIGTERM handler is in place
    rc, out, err = cli(["cancel", "cancel01", "--store", str(root)], capsys)
    assert rc == 0 and "cancel01 cancelled by" in out
    assert runner.join() == 0
    [row] = store.runs()
    assert row["run_id"] == first and row["state"] == "stopped"
    assert "cancelled by" in row["stop_reason"]
    assert row["exit_code"] == 0 and row["summary"]["stopped"] is True
    assert store.history_length(first) < 100
    assert status_json(root, "cancel01", capsys)["sweep"]["state"] == "cancelled"


# ----------------------------------------------------------------------------- pause, resume


@pytest.mark.slow
def test_pause_holds_new_runs_until_resume(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_EPOCH_S", "0.05")
    root = tmp_path / "store"
    text = yaml_text("random", "  learning_rate: {min: 0.1, max: 0.9}\n  epochs: {value: 3}\n")
    store = make_sweep(root, text, "pause001", count=2)
    runner = RunnerThread(store)
    first = running_run(store)
    rc, out, _ = cli(["pause", "pause001", "--store", str(root)], capsys)
    assert rc == 0 and "pause001 paused by" in out

    def turns_after_first_ended():
        """The runner's heartbeat once its first run has ended and it took three more turns."""
        s = reader(store)
        try:
            if s.run(first)["state"] != "finished":
                return None
            return [r["heartbeat_at"] for r in s.runners().values()][0]
        finally:
            s.close()

    seen = {wait_for("the first run's end", turns_after_first_ended)}

    def three_more_turns():
        seen.add(turns_after_first_ended())
        return len(seen) > 3

    wait_for("three turns of the runner", three_more_turns)
    assert [r["run_id"] for r in store.runs()] == [first]  # its slot is free, and stays so
    assert status_json(root, "pause001", capsys)["sweep"]["state"] == "paused"
    paused_lines = [line for line in runner.events.lines if "paused by" in line]
    assert len(paused_lines) == 1 and "code/sweep.py resume pause001" in paused_lines[0]

    rc, out, _ = cli(["resume", "pause001", "--store", str(root)], capsys)
    assert rc == 0 and "pause001 resumed" in out
    assert runner.join() == 0
    assert [r["state"] for r in store.runs()] == ["finished", "finished"]
    assert status_json(root, "pause001", capsys)["sweep"]["state"] == "finished"


# ----------------------------------------------------------------------------- the states


@pytest.mark.parametrize("state, action, after", [
    (None, "stop", "stopped"), (None, "cancel", "cancelled"), (None, "pause", "paused"),
    ("paused", "resume", None), ("paused", "stop", "stopped"), ("paused", "cancel", "cancelled"),
    ("stopped", "cancel", "cancelled"), ("cancelled", "stop", "cancelled"),
    (None, "resume", None), ("paused", "pause", "paused")])
def test_each_control_leads_to_w_and_b_s_state(state, action, after):
    assert controls.transition(state, action, "s") == after


@pytest.mark.parametrize("state, action", [("stopped", "resume"), ("cancelled", "resume"),
                                           ("stopped", "pause"), ("cancelled", "pause")])
def test_a_stopped_sweep_is_not_resumed_or_paused(state, action):
    with pytest.raises(UserError, match="--prior-runs s" if action == "resume" else "nothing"):
        controls.transition(state, action, "s")


def test_status_shows_stopping_while_runs_still_run():
    meta = {"state": "running", "control": {"state": "stopped", "at": 0, "by": "a@b"}}
    assert controls.shown_state(meta, [{"state": "running"}]) == "stopping"
    assert controls.shown_state(meta, [{"state": "finished"}]) == "stopped"
    assert controls.shown_state({"state": "finished", "control": None}, []) == "finished"


def test_a_stopped_sweep_with_no_runner_is_recorded_and_resume_starts_nothing(tmp_path, capsys):
    root = tmp_path / "store"
    make_sweep(root, RANDOM, "idle0001", count=6).close()
    rc, out, _ = cli(["stop", "idle0001", "--store", str(root)], capsys)
    assert rc == 0 and "no runner is working on it" in out
    rc, out, _ = cli(["--resume", "idle0001", "--store", str(root)], capsys)
    assert rc == 0 and "was stopped by" in out and "--prior-runs idle0001" in out
    store = Store(db_path(root, "idle0001"), read_only=True)
    assert store.runs() == [] and store.runners() == {}  # no runner started, no run
    rc, _, err = cli(["resume", "idle0001", "--store", str(root)], capsys)
    assert rc == EXIT_USAGE and err.startswith("error: sweep idle0001 is stopped")


def test_a_control_on_a_finished_sweep_is_refused_and_changes_nothing(tmp_path, capsys):
    root = tmp_path / "store"
    store = make_sweep(root, RANDOM, "done0001", count=2)
    with store.transaction():
        store.set("state", "finished")
        store.set("finished_because", "run cap of 2 reached")
    store.close()
    for action in ("stop", "cancel", "pause"):
        rc, _, err = cli([action, "done0001", "--store", str(root)], capsys)
        assert rc == EXIT_USAGE and err.strip() == (
            "error: sweep done0001 has already finished (run cap of 2 reached): it starts no "
            f"runs, so there is nothing to {action}")
    store = Store(db_path(root, "done0001"), read_only=True)
    assert store.get("state") == "finished" and store.get("control") is None


def test_a_control_on_an_unknown_sweep_is_one_error_line(tmp_path, capsys):
    root = tmp_path / "store"
    make_sweep(root, RANDOM, "known001").close()
    rc, _, err = cli(["pause", "nosuch01", "--store", str(root)], capsys)
    assert rc == EXIT_USAGE and len(err.strip().splitlines()) == 1
    assert err.startswith("error: no sweep 'nosuch01'") and "known001" in err


@pytest.mark.slow
def test_a_control_needs_write_access_to_the_store(tmp_path):
    root = tmp_path / "store"
    make_sweep(root, RANDOM, "ro000001").close()
    with unprivileged.read_only(root):
        [(rc, out, err)] = unprivileged.sweep_cli(["stop", "ro000001", "--store", str(root)])
    assert rc == EXIT_USAGE and out == ""
    assert err.startswith("error: sweep store") and "cannot be used" in err
    assert len(err.strip().splitlines()) == 1
    assert Store(db_path(root, "ro000001"), read_only=True).get("control") is None


def test_an_older_store_is_read_without_prior_runs_and_gains_them_when_written(tmp_path, capsys):
    root = tmp_path / "store"
    make_sweep(root, RANDOM, "old00001").close()
    with sqlite3.connect(db_path(root, "old00001")) as conn:
        conn.execute("DROP TABLE prior_runs")  # as a store made before prior runs
    sweep = status_json(root, "old00001", capsys)["sweep"]
    assert sweep["prior_runs"] == [] and sweep["state"] == "idle"  # no runner works on it
    assert cli(["pause", "old00001", "--store", str(root)], capsys)[0] == 0
    store = Store(db_path(root, "old00001"), read_only=True)
    assert store.prior_runs() == [] and controls.current(store).state == "paused"


# ----------------------------------------------------------------------------- prior runs


@pytest.mark.slow
def test_the_bayes_engine_is_given_the_prior_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_EPOCH_S", "0.01")
    root = tmp_path / "store"
    finished_runs(root, "earlier1", [0.1, 0.2, 0.3])
    seen = []
    real = bookkeeping.propose

    def spy(engine_cfg, rows, histories):
        seen.append({r["run_id"]: (r["state"], len(histories.get(r["run_id"], [])))
                     for r in rows})
        return real(engine_cfg, rows, histories)

    monkeypatch.setattr(bookkeeping, "propose", spy)
    new = tmp_path / "bayes.yaml"
    new.write_text(yaml_text("bayes", "  learning_rate: {min: 0.05, max: 0.9}\n"
                                      "  epochs: {value: 2}\n"))
    rc, out, err = cli([str(new), "--store", str(root), "--sweep-id", "warm0001", "--count", "1",
                        "--plain", "--prior-runs", "earlier1"], capsys)
    assert rc == 0, err
    assert seen[0] == {"earlier1/run0": ("finished", 2), "earlier1/run1": ("finished", 2),
                       "earlier1/run2": ("finished", 2)}
    assert "prior runs: 3 from sweep earlier1: bayes fits them" in out
    store = Store(db_path(root, "warm0001"), read_only=True)
    assert len(store.runs()) == 1  # they are not the sweep's runs, nor count toward --count
    sweep = status_json(root, "warm0001", capsys)["sweep"]
    assert [(p["id"], p["metric"]) for p in sweep["prior_runs"]] == [
        ("earlier1/run0", pytest.approx(0.075)), ("earlier1/run1", pytest.approx(0.15)),
        ("earlier1/run2", pytest.approx(0.225))]


def test_grid_skips_the_points_prior_runs_cover(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_EPOCH_S", "0.01")
    root = tmp_path / "store"
    finished_runs(root, "earlier1", [0.1, 0.2])
    new = tmp_path / "grid.yaml"
    new.write_text(yaml_text("grid", "  learning_rate: {values: [0.1, 0.2, 0.3]}\n"
                                     "  epochs: {value: 2}\n"))
    rc, _, err = cli([str(new), "--store", str(root), "--sweep-id", "grid0001", "--plain",
                      "-R", "earlier1/run0", "-R", "earlier1/run1"], capsys)
    assert rc == 0, err
    rows = Store(db_path(root, "grid0001"), read_only=True).runs()
    assert [r["params"]["learning_rate"]["value"] for r in rows] == [0.3]


def test_prior_runs_outside_the_new_space_are_refused_naming_them(tmp_path, capsys):
    root = tmp_path / "store"
    finished_runs(root, "earlier1", [0.1, 0.5])
    new = tmp_path / "narrow.yaml"
    new.write_text(yaml_text("bayes", "  learning_rate: {min: 0.3, max: 0.9}\n"
                                      "  epochs: {value: 2}\n"))
    rc, _, err = cli([str(new), "--store", str(root), "--sweep-id", "narrow01",
                      "--prior-runs", "earlier1"], capsys)
    assert rc == EXIT_USAGE and len(err.strip().splitlines()) == 1
    assert "1 of 2 run(s)" in err and "earlier1/run0 (learning_rate=0.1, outside [0.3, 0.9])" in err
    assert "earlier1/run1" not in err
    assert not (root / "narrow01").exists()  # refused before anything was made


@pytest.mark.parametrize("ref, says", [
    ("nosuch01", ["no sweep 'nosuch01'"]), ("earlier1/zzz", ["sweep earlier1 has no run 'zzz'"]),
    ("earlier1/run1", ["the run is failed"]),
    ("earlier1/zzz,nosuch01/x,earlier1/run1", ["sweep earlier1 has no run 'zzz'",
                                               "no sweep 'nosuch01'", "the run is failed"])])
def test_prior_runs_that_are_missing_or_did_not_end_are_named(tmp_path, capsys, ref, says):
    root = tmp_path / "store"
    finished_runs(root, "earlier1", [0.1, 0.5])
    store = Store(db_path(root, "earlier1"))
    with store.transaction():
        store.update_run("run1", state="failed")
    store.close()
    new = tmp_path / "b.yaml"
    new.write_text(yaml_text("bayes", "  learning_rate: {min: 0.05, max: 0.9}\n"
                                      "  epochs: {value: 2}\n"))
    rc, _, err = cli([str(new), "--store", str(root), "-R", ref], capsys)
    assert rc == EXIT_USAGE and len(err.strip().splitlines()) == 1
    assert all(each in err for each in says), err


def test_prior_runs_are_for_a_new_sweep_only(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        sweep_cli.main(["--resume", "abc", "--prior-runs", "def", "--store", str(tmp_path)])
    assert e.value.code == EXIT_USAGE
    assert "--prior-runs is for a new sweep" in capsys.readouterr().err


def test_the_space_check_reads_every_kind_of_parameter():
    parameters = sc.engine_config(sc.loads(
        "method: bayes\nmetric: {name: m, goal: maximize}\nparameters:\n"
        "  lr: {distribution: log_uniform_values, min: 0.001, max: 0.1}\n"
        "  units: {min: 8, max: 64}\n"
        "  act: {values: [relu, tanh]}\n"
        "  epochs: {value: 5}\n"
        "  opt: {parameters: {beta: {min: 0.5, max: 0.99}}}\n"))["parameters"]

    def problems(**values):
        params = {k: {"value": v} for k, v in values.items()}
        return prior.space_problems(parameters, params)

    inside = dict(lr=0.01, units=16, act="relu", epochs=5, opt={"beta": 0.9})
    assert problems(**inside) == []
    assert problems(**{**inside, "lr": 0.5}) == ["lr=0.5, outside [0.001, 0.1]"]
    assert problems(**{**inside, "units": 16.5}) == ["units=16.5, outside [8, 64]"]
    assert problems(**{**inside, "act": "gelu"}) == ["act='gelu', not one of ['relu', 'tanh']"]
    assert problems(**{**inside, "epochs": 3}) == ["epochs=3, not the fixed value 5"]
    assert problems(**{**inside, "opt": {"beta": 0.1}}) == ["opt.beta=0.1, outside [0.5, 0.99]"]
    assert problems(**{**inside, "dropout": 0.2}) == ["dropout: not a parameter of the new sweep"]
    del inside["units"]
    assert problems(**inside) == ["units: no value"]


def test_prior_references_are_parsed_once_each():
    assert prior.parse_refs(["a", "a/r1,b", "a"]) == [("a", None), ("a", "r1"), ("b", None)]
    with pytest.raises(UserError, match="--prior-runs"):
        prior.parse_refs(["../x"])


def test_a_paused_sweep_whose_run_cap_is_reached_ends_its_runner(tmp_path, capsys):
    from ecgsweep.sweep import bookkeeping as books

    root = tmp_path / "store"
    store = make_sweep(root, RANDOM, "capped01", count=1)
    with store.transaction():
        store.insert_run("run0", {"learning_rate": {"value": 0.5}}, state="finished")
    store.close()
    assert cli(["pause", "capped01", "--store", str(root)], capsys)[0] == 0
    store = Store(db_path(root, "capped01"))
    engine_cfg = sc.engine_config(store.get("config"))
    ended = books.claim(store, engine_cfg, "me", 0, 0.0, None)
    assert ended == books.NoMore("run cap of 1 reached")  # not paused: nothing more would run
    with store.transaction():
        store.set("run_cap", 2)
    assert books.claim(store, engine_cfg, "me", 0, 0.0, None).paused
