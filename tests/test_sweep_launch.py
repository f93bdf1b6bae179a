"""Runs start exactly as `wandb agent` starts them: same argv, param files and env."""

import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import yaml

from ecgsweep.sweep import launch

PARAMS = {
    "learning_rate": {"value": 0.00125},
    "batch_norm": {"value": False},
    "bidirectional": {"value": True},
    "pooling": {"value": "max"},
    "layer_1_size": {"value": 32},
}
ALL_MACROS = ["${env}", "${interpreter}", "${program}", "${args}", "${args_no_hyphens}",
              "${args_json}", "${args_json_file}", "${args_no_boolean_flags}",
              "${args_no_equals}", "${args_append_hydra}", "--tag=${envvar:MYVAR}",
              "${not_a_macro}", "literal"]


def agent_command(monkeypatch, tmp_path, command):
    """Run wandb's own Agent._command_run and capture the argv and env it would start."""
    from wandb import wandb_agent

    captured = {}

    class Recorder:
        def __init__(self, command=None, env=None, **kwargs):
            captured["argv"] = command
            captured["env"] = env

    monkeypatch.setattr(wandb_agent, "AgentProcess", Recorder)
    # _command_run writes these into os.environ; monkeypatch restores them afterwards
    for k in ("WANDB_RUN_ID", "WANDB_SWEEP_PARAM_PATH"):
        monkeypatch.setenv(k, "unset")
    fake_agent = SimpleNamespace(_sweep_command=list(command) if command else None,
                                 _function=None, _in_jupyter=False, _run_processes={},
                                 _forward_signals=False, _last_report_time=None)
    wandb_agent.Agent._command_run(fake_agent, {"run_id": "run12345", "program": "code/train.py",
                                                "args": PARAMS})
    return captured


def test_every_macro_expands_as_wandb_agent_expands_it(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SWEEP_ID", "swp12345")
    monkeypatch.setenv("MYVAR", "hello")
    theirs = agent_command(monkeypatch, tmp_path, ALL_MACROS)
    param_path = tmp_path / "wandb" / "sweep-swp12345" / "config-run12345.yaml"
    json_path = param_path.with_suffix(".json")
    their_yaml, their_json = param_path.read_text(), json_path.read_text()
    param_path.unlink()
    json_path.unlink()

    ours = launch.prepare({"command": list(ALL_MACROS), "program": "code/train.py"}, PARAMS,
                          sweep_id="swp12345", run_id="run12345", wandb_dir=str(tmp_path),
                          base_env=dict(os.environ))
    # the one documented difference: ${interpreter} is this Python, not `python`
    expected = [sys.executable if a == "python" else a for a in theirs["argv"]]
    assert ours.argv == expected
    assert param_path.read_text() == their_yaml
    assert json_path.read_text() == their_json
    for k in ("WANDB_SWEEP_ID", "WANDB_RUN_ID", "WANDB_SWEEP_PARAM_PATH"):
        assert ours.env[k] == theirs["env"][k], k
    # spot checks, so a change in wandb itself shows here too
    assert "--learning_rate=0.00125" in ours.argv
    assert "batch_norm=False" in ours.argv
    values = {k: v["value"] for k, v in PARAMS.items()}
    assert json.loads(their_json) == values
    assert [json.loads(a) for a in ours.argv if a.startswith("{")] == [values]
    assert str(json_path) in ours.argv
    # ${args_no_boolean_flags} drops false booleans; only ${args_no_equals} has --batch_norm
    assert "--bidirectional" in ours.argv and ours.argv.count("--batch_norm") == 1
    assert "--tag=hello" in ours.argv and "literal" == ours.argv[-1]
    assert not any("not_a_macro" in a for a in ours.argv)


def test_default_command_when_the_yaml_has_none(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SWEEP_ID", "swp12345")
    theirs = agent_command(monkeypatch, tmp_path, None)
    ours = launch.prepare({"program": "code/train.py"}, PARAMS, sweep_id="swp12345",
                          run_id="run12345", wandb_dir=str(tmp_path))
    assert theirs["argv"][:3] == ["/usr/bin/env", "python", "code/train.py"]
    assert ours.argv == ["/usr/bin/env", sys.executable] + theirs["argv"][2:]


def test_param_file_is_what_wandb_init_reads(tmp_path):
    prep = launch.prepare({"program": "x.py"}, PARAMS, sweep_id="abcd1234", run_id="efgh5678",
                          wandb_dir=str(tmp_path), base_env={"WANDB_SERVICE": "x", "KEEP": "1"},
                          project="proj", gpu="1")
    path = Path(prep.param_path)
    assert path == tmp_path / "wandb" / "sweep-abcd1234" / "config-efgh5678.yaml"
    data = yaml.safe_load(path.read_text())
    assert data["wandb_version"] == 1
    assert {k: v for k, v in data.items() if k != "wandb_version"} == PARAMS
    env = prep.env
    assert env["WANDB_MODE"] == "offline" and env["WANDB_DIR"] == str(tmp_path)
    assert env["WANDB_PROJECT"] == "proj" and env["CUDA_VISIBLE_DEVICES"] == "1"
    assert "WANDB_SERVICE" not in env and env["KEEP"] == "1"
    # ${args_json_file} is not in the default command, so no json file is written
    assert not Path(prep.json_path).exists()
    online = launch.prepare({"program": "x.py"}, PARAMS, sweep_id="abcd1234", run_id="r2",
                            wandb_dir=str(tmp_path), base_env={}, online=True)
    assert online.env["WANDB_MODE"] == "online" and "CUDA_VISIBLE_DEVICES" not in online.env


def test_find_files_dir_globs_the_run_id(tmp_path):
    assert launch.find_files_dir(tmp_path, "abc", cwd=tmp_path) is None
    d = tmp_path / "wandb" / "offline-run-20250101_000000-abc" / "files"
    d.mkdir(parents=True)
    (tmp_path / "wandb" / "offline-run-20250101_000000-abcd" / "files").mkdir(parents=True)
    assert launch.find_files_dir(tmp_path, "abc", cwd=tmp_path) == d


def test_syncable_runs_carry_a_group_instead_of_the_sweep_id(tmp_path):
    prep = launch.prepare({"program": "x.py"}, PARAMS, sweep_id="abcd1234", run_id="efgh5678",
                          wandb_dir=str(tmp_path), base_env={"WANDB_SWEEP_ID": "stale"},
                          syncable=True)
    assert "WANDB_SWEEP_ID" not in prep.env
    assert prep.env["WANDB_RUN_GROUP"] == "sweep-abcd1234"
    assert prep.env["WANDB_SWEEP_PARAM_PATH"] == prep.param_path and Path(prep.param_path).exists()
