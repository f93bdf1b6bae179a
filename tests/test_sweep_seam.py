"""The engine's layers: it imports nothing of the ECG side, learns what is ours through one
seam (ProgramHooks), keeps its SQL in the store, ranks runs in one place and writes files
whole in one way."""

import ast
import sqlite3
from pathlib import Path

import pytest

from ecgsweep.sweep import config as sc
from ecgsweep.sweep import files, ranking, ray_executor
from ecgsweep.sweep.bookkeeping import create_or_join
from ecgsweep.sweep.executor import RunSpec
from ecgsweep.sweep.failures import classify_exit
from ecgsweep.sweep.findings import Problem
from ecgsweep.sweep.program import ANY_PROGRAM, AnyProgram, ParamRule
from ecgsweep.sweep.store import DB_NAME, RUNNING, Store, db_path
from ecgsweep.sweep_hooks import ECG_PROGRAM

REPO = Path(__file__).resolve().parents[1]
ENGINE = REPO / "code" / "ecgsweep" / "sweep"
TRAIN = "program: code/train.py\nmethod: random\nmetric: {name: val_macro_f1, goal: maximize}\n"


def _imports(path: Path) -> list[str]:
    """The modules a file imports, absolute (``..x`` from ecgsweep/sweep/ is ecgsweep.x)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ["ecgsweep", "sweep"][:max(0, 2 - (node.level - 1))] if node.level else []
            out.append(".".join(base + ([node.module] if node.module else [])))
    return out


def test_the_engine_imports_nothing_of_the_ecg_side():
    outside = {f"{path.name}: {name}" for path in ENGINE.glob("*.py") for name in _imports(path)
               if name.split(".")[0] == "ecgsweep" and name.split(".")[:2] != ["ecgsweep", "sweep"]}
    assert outside == set()


# ----------------------------------------------------------------------------- the seam


def test_check_refuses_fixed_values_that_can_never_run_together():
    cfg = sc.loads(TRAIN + "parameters:\n  model: {value: seq2seq}\n  resample: {value: smote}\n"
                   "  learning_rate: {values: [0.001, 0.01]}\n")
    refused = sc.errors(sc.check(cfg, program=ECG_PROGRAM, cwd=REPO))
    assert [p.field for p in refused] == ["parameters"], [str(p) for p in refused]
    assert "model: seq2seq and resample: smote cannot run together" in refused[0].message


def test_check_warns_where_a_listed_value_cannot_run_with_the_fixed_ones():
    cfg = sc.loads(TRAIN + "parameters:\n  model: {value: seq2seq}\n"
                   "  resample: {values: [none, smote]}\n")
    found = sc.check(cfg, program=ECG_PROGRAM, cwd=REPO)
    assert sc.errors(found) == []
    (warned,) = [p for p in found if p.kind == "combination"]
    assert warned.field == "parameters.resample.values[1]" and warned.level == "warning"
    assert "model: seq2seq and resample: smote" in warned.message


def test_a_combination_with_another_searched_value_is_left_to_the_search():
    cfg = sc.loads(TRAIN + "parameters:\n  model: {values: [cnn, seq2seq]}\n"
                   "  resample: {values: [none, smote]}\n")
    found = sc.check(cfg, program=ECG_PROGRAM, cwd=REPO)
    assert [p for p in found if p.kind == "combination"] == []


def test_a_w_and_b_program_gets_none_of_our_checks():
    cfg = sc.loads("program: train.py\nmethod: random\nparameters:\n  model: {value: seq2seq}\n"
                   "  resample: {value: smote}\n  not_ours: {value: 1}\n")
    assert sc.check(cfg, program=ECG_PROGRAM, check_program=False) == []
    ours = sc.loads(TRAIN + "parameters:\n  not_ours: {value: 1}\n")
    assert sc.check(ours, program=ANY_PROGRAM, cwd=REPO) == []  # the engine knows no parameters
    assert sc.errors(sc.check(ours, program=ECG_PROGRAM, cwd=REPO))


class _Hooks(AnyProgram):
    """A program that describes one parameter and says one thing of every config."""

    def owns(self, cfg, cwd=None):
        return True

    def parameter(self, name):
        return ParamRule("depth", int, 1, 4, reject=lambda v: None if v in (1, 2) else "1 or 2")

    def check(self, cfg):
        return [Problem("metric", "jsonschema's words, with no form named", vague=True),
                Problem("metric", "the program's precise finding", "metric")]

    def describe_exit(self, code):
        return "ran out of patience" if code == 7 else None


def test_a_program_s_rules_and_findings_reach_check_through_the_seam():
    cfg = sc.loads("program: p.py\nmethod: random\nparameters:\n  depth: {values: [1, 3]}\n")
    found = sc.check(cfg, program=_Hooks(), check_program=False)
    assert [(p.field, p.message) for p in found] == [
        ("parameters.depth.values[1]", "1 or 2"),
        ("metric", "the program's precise finding")]  # the vague one beside it is dropped
    ranged = sc.loads("program: p.py\nmethod: random\nparameters:\n  depth: {min: 1, max: 9}\n")
    assert "above depth's maximum 4" in str(sc.check(ranged, program=_Hooks(),
                                                     check_program=False)[0])


def test_a_program_s_exit_codes_and_remote_variables_reach_the_runner():
    assert classify_exit(7, "error: no", _Hooks().describe_exit) == \
        "ran out of patience (exit 7): error: no"
    assert classify_exit(7, "error: no", ANY_PROGRAM.describe_exit) == \
        "crashed (exit 7): error: no"
    spec = RunSpec("r1", ["python", "/store/x"], {"WANDB_DIR": "/store"}, Path("/store/l"),
                   "/repo", 5.0)
    moved = ray_executor.relocate(spec, "/store", "/node", {"PATH": "/bin"},
                                  ECG_PROGRAM.remote_env())
    assert moved.env == {"PATH": "/bin", "WANDB_DIR": "/node", **ECG_PROGRAM.remote_env()}
    assert ray_executor.relocate(spec, "/store", "/node", {}).env == {"WANDB_DIR": "/node"}


# ----------------------------------------------------------------------------- the store


def _store(tmp_path) -> Store:
    text = "program: p.py\nmethod: grid\nparameters:\n  a: {values: [1, 2, 3]}\n"
    store, _ = create_or_join(tmp_path / "store", sc.loads(text), text, "s.yaml", sweep_id="s1")
    return store


def test_the_store_answers_by_named_filters(tmp_path):
    store = _store(tmp_path)
    with store.transaction():
        store.register_runner("me", host="h", pid=1, pid_start=None, boot_id="", workers=1)
        for i, state in enumerate(("running", "running", "failed", "pending")):
            store.insert_run(f"r{i}", {}, state=state, owner="me")
        store.update_run("r1", should_stop=1, stop_reason="lags")
        store.update_run("r2", error="boom", ended_at=5.0)
        store.add_history("r0", 0, [{"loss": 1.0}, {"loss": 0.5}])
    assert [r["run_id"] for r in store.runs(RUNNING)] == ["r0", "r1"]
    assert store.flagged_runs("me") == {"r1": "lags"}
    assert store.last_ended(3) == [{"state": "failed", "error": "boom"}]
    assert store.count_busy() == 3 and store.history_length("r0") == 2
    assert not store.any_metric_logged()
    store.runner_heartbeat("me", 9.0)
    store.end_runner("me", 10.0, "done")
    store.mark_runner_lost("me", 11.0)  # a runner that signed off is not lost
    me = store.runners()["me"]
    assert (me["heartbeat_at"], me["ended_at"], me["exit_reason"]) == (9.0, 10.0, "done")


def test_node_id_is_in_the_runs_table_and_an_older_store_gains_it(tmp_path):
    store = _store(tmp_path)
    store.close()
    with sqlite3.connect(db_path(tmp_path / "store", "s1")) as db:
        (made,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'runs'").fetchone()
        assert "node_id" in made
        db.execute("ALTER TABLE runs DROP COLUMN node_id")  # a store of an older version
    Store(tmp_path / "store" / "s1" / DB_NAME).update_run("nobody", node_id="n1")


# ----------------------------------------------------------------------------- facts once


def test_runs_are_ranked_in_one_place_with_explicit_filters():
    rows = [{"run_id": "a", "state": "finished", "metric_best": 0.7},
            {"run_id": "b", "state": "failed", "metric_best": None},
            {"run_id": "c", "state": "stopped", "metric_best": 0.9},
            {"run_id": "d", "state": "crashed", "metric_best": 0.95},
            {"run_id": "e", "state": "finished", "metric_best": 0.8}]
    ids = lambda runs: [r["run_id"] for r in runs]  # noqa: E731
    assert ids(ranking.ranked(rows, "maximize")) == ["c", "e", "a"]
    assert ids(ranking.ranked(rows, "minimize")) == ["a", "e", "c"]
    assert ids(ranking.ranked(rows, "maximize", states=None,
                              keep_unscored=True)) == ["d", "c", "e", "a", "b"]
    assert ranking.metric_and_goal({}) == (None, "minimize")
    assert ranking.metric_and_goal({"metric": {"name": "m", "goal": "maximize"}}) == (
        "m", "maximize")


def test_a_file_is_replaced_whole_or_not_at_all(tmp_path):
    target = tmp_path / "report.html"
    target.write_text("old")
    with pytest.raises(OSError):
        with files.replaced_whole(target) as tmp:
            tmp.write_text("half")
            raise OSError("disk full")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]
    files.write_text_whole(target, "new", durable=True)
    assert target.read_text() == "new" and list(tmp_path.iterdir()) == [target]
