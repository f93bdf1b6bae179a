"""`code/sweep.py check` on hostile files: bounded time and memory for any input, and one line
naming the file and the limit instead of a hang or a traceback."""

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ecgsweep import sweep_cli
import unprivileged
from ecgsweep.cli import run_main
from ecgsweep.sweep import config as sc
from ecgsweep.sweep_hooks import ECG_PROGRAM

REPO = Path(__file__).resolve().parents[1]
PROGRAM = "tests/fake_programs/curve.py"


def laughs(levels: int, width: int = 10) -> str:
    """Aliases of aliases: a few hundred bytes that stand for width ** levels values."""
    lines = [f"l0: &l0 [{', '.join(['x'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def nested_parameters(levels: int) -> str:
    """A sweep whose one parameter is nested ``levels`` deep (two YAML levels each)."""
    inner = "{values: [1, 2]}"
    spec = "{parameters: {p: " * levels + inner + "}}" * levels
    return f"program: {PROGRAM}\nmethod: grid\nparameters:\n  a: {spec}\n"


def check_cli(argv, capsys):
    rc = run_main(lambda: sweep_cli.main(["check", *argv]))
    out, err = capsys.readouterr()
    return rc, out, err


# ----------------------------------------------------------------------------- aliases


def test_aliases_are_counted_as_what_they_stand_for_not_expanded():
    text = laughs(6)  # 10 ** 6 values in under 400 bytes
    assert len(text) < 400
    with pytest.raises(sc.ConfigError, match=f"more than {sc.MAX_YAML_NODES:,} YAML values"):
        sc.loads(text, source="laughs.yaml")
    with pytest.raises(sc.ConfigError, match="laughs.yaml: line 5: more than"):
        sc.loads(laughs(9), source="laughs.yaml")  # a billion: refused where the limit is passed


def test_the_value_limit_counts_every_use_of_an_anchor():
    anchor = f"base: &v [{', '.join(['1'] * 9_000)}]\n"
    fits = anchor + "".join(f"u{i}: *v\n" for i in range(9))  # 90,000 values and a few keys
    assert len(sc.loads(fits)["u8"]) == 9_000
    with pytest.raises(sc.ConfigError, match="100,000"):
        sc.loads(fits + "u9: *v\nu10: *v\n")  # 108,000


def test_an_alias_inside_its_own_anchor_is_refused():
    with pytest.raises(sc.ConfigError, match="inside its own anchor &a"):
        sc.loads("method: grid\nparameters: &a {x: {value: *a}}\n", source="s.yaml")


def test_a_node_shared_by_aliases_is_checked_once_for_duplicate_keys():
    text = ("program: p.py\nmethod: grid\nspec: &s {values: [1, 2], values: [3]}\n"
            "parameters: {a: *s, b: *s}\n")
    with pytest.raises(sc.ConfigError) as e:
        sc.loads(text)
    assert str(e.value).count("given twice") == 1, str(e.value)


def test_ordinary_anchors_still_load():
    cfg = sc.loads("program: p.py\nmethod: grid\nparameters:\n  a: &two {values: [1, 2]}\n"
                   "  b: *two\n  c: {<<: *two}\n")
    assert cfg["parameters"]["b"] == cfg["parameters"]["c"] == {"values": [1, 2]}


# ----------------------------------------------------------------------------- nesting


def test_deep_nesting_is_refused_naming_the_depth_limit(tmp_path, capsys):
    path = tmp_path / "deep.yaml"
    path.write_text(nested_parameters(5000))
    rc, out, _ = check_cli([str(path)], capsys)
    assert rc == 2
    assert out.strip() == (f"{path}: line 4: nested more than {sc.MAX_YAML_DEPTH} levels deep, "
                           "the limit for a sweep config")


def test_the_deepest_config_allowed_passes_every_step_the_runner_takes():
    """At the depth limit, check, W&B's engine view and the store's JSON all still work: the
    limit sits below every recursion that follows it."""
    levels = (sc.MAX_YAML_DEPTH - 4) // 2  # top, parameters, a's spec at the bottom, values
    cfg = sc.loads(nested_parameters(levels))
    assert sc.errors(sc.check(cfg, program=ECG_PROGRAM, cwd=REPO)) == []
    json.dumps(sc.engine_config(cfg))
    with pytest.raises(sc.ConfigError, match="nested more than"):
        sc.loads(nested_parameters(levels + 1))


# ----------------------------------------------------------------------------- size


def test_a_file_over_the_size_limit_is_refused_naming_the_limit(tmp_path, capsys):
    path = tmp_path / "huge.yaml"
    head = f"program: {PROGRAM}\nmethod: grid\nparameters:\n  a: {{values: [1, 2]}}\n"
    path.write_text(head + "#" * (sc.MAX_YAML_BYTES - len(head)) + "\n")
    rc, out, _ = check_cli([str(path)], capsys)
    assert rc == 2
    assert out.strip() == (f"{path}: larger than 1024 KiB, the limit for a sweep config (they "
                           "take a few KiB): is it the right file?")
    with pytest.raises(sc.ConfigError, match="1024 KiB"):
        sc.loads(path.read_text())


def test_the_repeat_check_compares_each_value_with_a_hash_not_with_every_other():
    compared = []

    class Value:
        def __init__(self, n):
            self.n = n

        def __eq__(self, other):
            compared.append(1)
            return self.n == other.n

        def __hash__(self):
            return hash(self.n)

    values = [Value(i % 1000) for i in range(2000)]
    assert sc.repeats(values) == list(range(1000, 2000))
    assert len(compared) <= len(values)


def test_repeats_finds_equal_lists_and_mappings_but_not_1_and_1_0():
    values = [1, 1.0, 1, True, [1, 2], [1, 2], {"a": 1, "b": [2]}, {"b": [2], "a": 1},
              "x", "x", None, None]
    assert sc.repeats(values) == [2, 5, 7, 9, 11]


def test_a_long_list_of_repeats_is_reported_in_a_screen(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)  # where the program is found
    path = tmp_path / "many.yaml"
    values = ", ".join(str(i % 50) for i in range(5_000))
    path.write_text(f"program: {PROGRAM}\nmethod: grid\nparameters:\n  a: {{values: [{values}]}}\n")
    rc, out, _ = check_cli([str(path)], capsys)
    assert rc == 0
    lines = out.strip().splitlines()
    assert len(lines) == sc.MAX_LINES_PER_LIST + 2, out
    assert lines[-2] == (f"{path}: warning: parameters.a.values: and 4,940 more of its "
                         "entries, as above")


def test_a_grid_range_too_large_to_list_is_refused_before_the_engine_lists_it():
    cfg = sc.loads(f"program: {PROGRAM}\nmethod: grid\n"
                   "parameters:\n  a: {min: 0, max: 1000000000}\n"
                   "  b: {distribution: q_uniform, min: 0.0, max: 1.0e+300, q: 1.0e-300}\n")
    refused = {p.field: p.message for p in sc.errors(sc.check(cfg, program=ECG_PROGRAM, cwd=REPO))}
    assert set(refused) == {"parameters.a", "parameters.b"}, refused
    assert "100,000" in refused["parameters.a"] and "raise q" in refused["parameters.b"]


# ----------------------------------------------------------------------------- bytes


def test_bytes_that_are_not_utf8_are_one_line_naming_the_file(tmp_path, capsys):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(f"program: {PROGRAM}\nmethod: grid\n# caf\xe9\n".encode("latin-1"))
    rc, out, err = check_cli([str(path)], capsys)
    assert rc == 2 and err == ""
    assert out.strip() == (f"{path}: line 3: byte 0xe9 (offset {len(PROGRAM) + 28}) is not "
                           "UTF-8; save the file as UTF-8")


# ----------------------------------------------------------------------------- check --fix


FIXABLE = f"program: {PROGRAM}\nmethod: grid\nparameters:\n  a: {{values: [1e-5, 1e-6]}}\n"


@pytest.mark.slow
def test_fix_in_a_read_only_folder_is_one_error_line_and_writes_nothing(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    (folder / "s.yaml").write_text(FIXABLE)
    with unprivileged.read_only(folder):
        [(rc, out, err)] = unprivileged.sweep_cli(["check", "--fix", str(folder / "s.yaml")])
    assert rc == 2
    assert err.startswith(f"error: {folder / 's.fixed.yaml'}: cannot write the fixed copy "
                          "(Permission denied); nothing was written"), err
    assert len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in folder.iterdir()) == ["s.yaml"]


@pytest.mark.slow
def test_fix_that_runs_out_of_space_leaves_no_partial_file(tmp_path):
    """A write cut short (here by a file-size limit, as by a full disk) leaves neither the
    fixed copy nor a temp file, and says so in one line."""
    (tmp_path / "s.yaml").write_text(FIXABLE)

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))

    res = subprocess.run([sys.executable, str(REPO / "code" / "sweep.py"), "check", "--fix",
                          "s.yaml"], cwd=tmp_path, capture_output=True, text=True,
                         preexec_fn=small_files, timeout=120,
                         env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.startswith("error: s.fixed.yaml: cannot write the fixed copy (File too "
                                 "large); nothing was written"), res.stderr
    assert "Traceback" not in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("text, field", [
    ("method: grid\nparameters: q_uniform\n", "parameters"),
    (f"program: {PROGRAM}\nmethod: grid\nparameters: {{x: {{distribution: [1], min: 0}}}}\n",
     "parameters.x"),
    (f"program: {PROGRAM}\nmethod: grid\n"
     "parameters: {x: {values: [1, 2], probabilities: 0.5}}\n", "parameters.x"),
    (f"program: {PROGRAM}\nmethod: grid\n"
     "parameters: {x: {values: [1, 2], probabilities: [a, b]}}\n", "parameters.x"),
    ("program: code/train.py\nmethod: grid\nparameters: {model: {value: [cnn]}}\n",
     "parameters.model"),
    (f"program: {PROGRAM}\nmethod: grid\nparameters: {{x: {{value: 2001-01-01}}}}\n",
     "parameters.x.value"),
    (f"program: {PROGRAM}\nmethod: grid\nparameters: {{x: {{values: [!!set {{a}}, 1]}}}}\n",
     "parameters.x.values[0]"),
    (f"program: {PROGRAM}\nmethod: grid\nparameters: {{x: {{value: {{2001-01-01: 1}}}}}}\n",
     "parameters.x.value.2001-01-01"),
])
def test_any_shape_is_reported_by_field_never_raised(text, field):
    found = {p.field: p for p in sc.check(sc.loads(text), program=ECG_PROGRAM, cwd=REPO)}
    assert field in found and found[field].level == "error", [str(p) for p in found.values()]


@pytest.mark.parametrize("value", ["2001-13-45", "9999-12-31 25:00:00", "!!int x",
                                   "!!bool maybe", "!!timestamp zz"])
def test_a_value_yaml_cannot_build_is_a_yaml_error_at_its_line(value):
    with pytest.raises(sc.ConfigError, match=r"s.yaml: line 3, column \d+: not valid YAML: "
                                             "cannot read this value"):
        sc.loads(f"method: grid\nparameters:\n  x: {{value: {value}}}\n", source="s.yaml")
