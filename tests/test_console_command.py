"""The installed command, `ecg-sweeps`: its subcommands, their help, and the package that
`pip install .` builds from pyproject.toml."""

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import ecg_sweeps
from conftest import REPO_ROOT
from ecgsweep import cli
from ecgsweep.cli import UserError

EVERY_SUBCOMMAND = ("train", "sweep", "status", "stop", "cancel", "pause", "resume", "report",
                    "ensemble", "check", "eval", "data", "protocol", "bench")


@pytest.fixture
def as_scripts(monkeypatch):
    """Whatever a test does to the command names, the next test starts with the scripts'."""
    monkeypatch.setitem(cli._naming, "installed", False)


def test_help_lists_every_subcommand_on_one_line_each(capsys, as_scripts):
    assert ecg_sweeps.main(["--help"]) == 0
    out = capsys.readouterr().out
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("  ")]
    assert tuple(listed) == EVERY_SUBCOMMAND
    assert all(len(line) <= 80 for line in out.splitlines())


def test_no_subcommand_is_a_usage_error(capsys, as_scripts):
    assert ecg_sweeps.main([]) == cli.EXIT_USAGE
    assert "usage: ecg-sweeps SUBCOMMAND" in capsys.readouterr().err


@pytest.mark.parametrize("name", [n for n in EVERY_SUBCOMMAND if n != "train"])
def test_each_subcommand_has_help_naming_it_as_the_installed_command(name, capsys, as_scripts):
    with pytest.raises(SystemExit) as done:
        ecg_sweeps.main([name, "--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: ecg-sweeps {name} ")


def test_train_help_names_the_installed_command(capsys, as_scripts):
    assert ecg_sweeps.main(["train", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: ecg-sweeps train [--key=value ...]")


def test_the_scripts_keep_their_own_names(capsys, as_scripts):
    from ecgsweep import run_args, sweep_cli

    with pytest.raises(SystemExit):
        sweep_cli.main(["status", "--help"])
    assert capsys.readouterr().out.startswith("usage: code/sweep.py status ")
    assert run_args.usage().startswith("usage: code/train.py ")


def test_a_sweep_subcommand_reaches_the_sweep_script_with_its_name_first(monkeypatch, as_scripts):
    from ecgsweep import sweep_cli

    seen = []
    monkeypatch.setattr(sweep_cli, "main", lambda argv: seen.append(argv) or 0)
    assert ecg_sweeps.main(["pause", "abc123", "--store", "s"]) == 0
    assert ecg_sweeps.main(["sweep", "x.yaml", "--count", "2"]) == 0
    assert seen == [["pause", "abc123", "--store", "s"], ["x.yaml", "--count", "2"]]


def test_a_mistyped_subcommand_names_the_closest(capsys, as_scripts):
    assert ecg_sweeps.main(["stauts", "abc"]) == cli.EXIT_USAGE
    assert capsys.readouterr().err == ("error: unknown subcommand 'stauts'; did you mean "
                                       "'status'? (see `ecg-sweeps --help`)\n")
    with pytest.raises(UserError, match="did you mean 'eval'"):
        ecg_sweeps.find("evla")


def test_pyproject_reads_its_pins_from_the_requirements_files():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    assert project["project"]["scripts"] == {"ecg-sweeps": "ecg_sweeps:main"}
    assert set(project["project"]["dynamic"]) == {"dependencies", "optional-dependencies"}
    files = [setuptools["dynamic"]["dependencies"]["file"],
             *(extra["file"] for extra in setuptools["dynamic"]["optional-dependencies"].values())]
    assert all((REPO_ROOT / f).is_file() for group in files for f in group)
    assert set(setuptools["dynamic"]["optional-dependencies"]) == {"ray", "torch", "jax", "test"}
    runtime = (REPO_ROOT / "requirements.txt").read_text()
    assert "pytest" not in runtime  # a test-only pin belongs to the [test] extra


@pytest.mark.slow
def test_the_wheel_holds_the_packages_the_command_and_the_pins(tmp_path):
    """`pip install .` builds this wheel: both packages (the guard script too), the
    dispatcher, no script of code/ as a module, and requirements.txt's pins."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "MANIFEST.in", "README.md", *(p.name for p in
                 REPO_ROOT.glob("requirements*.txt"))):
        (source / name).write_bytes((REPO_ROOT / name).read_bytes())
    code = source / "code"
    code.mkdir()
    for path in (REPO_ROOT / "code").rglob("*.py"):
        if "__pycache__" not in path.parts:
            target = code / path.relative_to(REPO_ROOT / "code")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "dist"), str(source)], check=True,
                   capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("ecg_sweeps-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = z.read(next(n for n in names if n.endswith("/METADATA"))).decode()
        entry = z.read(next(n for n in names if n.endswith("/entry_points.txt"))).decode()
    assert {"ecg_sweeps.py", "ecgsweep/run.py", "ecgsweep/sweep/guard.py",
            "ecgbench/cli.py"} <= names
    assert not names & {"train.py", "sweep.py", "eval.py", "data.py", "bench.py"}
    assert "ecg-sweeps = ecg_sweeps:main" in entry
    assert "Requires-Dist: keras==3.15.1" in meta
    assert 'Requires-Dist: torch==2.13.0; extra == "test"' in meta
    assert "Requires-Python: <3.13,>=3.11" in meta


def test_the_training_program_runs_as_a_module(tmp_path):
    """What an installed package's sweep runs (`-m ecgsweep.run`), from any folder."""
    env = {**__import__("os").environ, "PYTHONPATH": str(REPO_ROOT / "code")}
    proc = subprocess.run([sys.executable, "-m", "ecgsweep.run", "--help"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: code/train.py [--key=value ...]")


def test_a_next_step_hint_names_what_runs_from_the_current_folder(tmp_path, monkeypatch):
    from ecgsweep.cli import script_command
    from ecgsweep.folds import eval_command

    monkeypatch.chdir(REPO_ROOT)
    assert script_command("eval.py", "eval") == "python code/eval.py"
    monkeypatch.chdir(tmp_path)  # no code/eval.py here: the installed command, on PATH
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "ecg-sweeps").write_text("#!/bin/sh\n")
    (tmp_path / "bin" / "ecg-sweeps").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert script_command("eval.py", "eval") == "ecg-sweeps eval"
    assert eval_command([Path("m/best.keras")]) == "ecg-sweeps eval --model m/best.keras"
    monkeypatch.setenv("PATH", "")  # not on PATH: this clone's script by its full path
    assert script_command("eval.py", "eval") == (
        f"{sys.executable} {REPO_ROOT / 'code' / 'eval.py'}")  # this interpreter has Keras
    from ecgsweep.sweep.hints import sweep_command

    assert sweep_command("status") == f"{sys.executable} {REPO_ROOT / 'code' / 'sweep.py'} status"
    # started as the command by its path (.venv/bin/ecg-sweeps): the same path again
    monkeypatch.setattr(sys, "argv", [".venv/bin/ecg-sweeps", "train"])
    assert script_command("eval.py", "eval") == f"{tmp_path / '.venv/bin/ecg-sweeps'} eval"
