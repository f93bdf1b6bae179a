"""The adapter to the `sweeps` engine: pure, no processes."""

from ecgsweep.sweep import engine

CFG = {"method": "grid", "metric": {"name": "acc", "goal": "maximize"},
       "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 2},
       "parameters": {"x": {"values": [1, 2, 3, 4]}}}


def run(run_id, state, accs):
    return ({"run_id": run_id, "state": state, "params": {"x": {"value": 1}}, "summary": None,
             "should_stop": 0, "exit_code": None}, [{"acc": a} for a in accs])


def test_each_stopped_run_is_told_its_own_numbers():
    """sweeps 0.3.0 shares one `lines` list between runs: its last line is another run's."""
    pairs = [run("good1", "finished", [0.9, 0.9, 0.9, 0.9]),
             run("good2", "finished", [0.8, 0.8, 0.8, 0.8]),
             run("good3", "finished", [0.7, 0.7, 0.7, 0.7]),
             run("good4", "finished", [0.6, 0.6, 0.6, 0.6]),
             run("lagA", "running", [0.11, 0.12]),
             run("lagB", "running", [0.21, 0.22])]
    rows = [r for r, _ in pairs]
    histories = {r["run_id"]: h for r, h in pairs}
    stops = engine.stop_decisions(CFG, rows, histories)
    assert set(stops) == {"lagA", "lagB"}, stops
    assert "0.12" in stops["lagA"] and "0.22" not in stops["lagA"], stops
    assert "0.22" in stops["lagB"] and "0.12" not in stops["lagB"], stops
    assert "hyperband" in stops["lagA"] and "epoch-2" in stops["lagA"]
