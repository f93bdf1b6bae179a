"""config_file: a YAML of fixed values the training program reads first; values given on
the command line or by a sweep win, and a fault in the file names it."""

import subprocess
import sys

import pytest
import yaml

from conftest import REPO_ROOT, run_env
from ecgsweep.config import ConfigError, resolve

SHIPPED = REPO_ROOT / "configs" / "inter_patient.yaml"


def _file(tmp_path, text: str):
    path = tmp_path / "fixed.yaml"
    path.write_text(text)
    return str(path)


def test_the_files_values_are_read_and_given_values_win(tmp_path):
    path = _file(tmp_path, "model: cnet\nepochs: 3\nlearning_rate: 1e-4\nfolds: 2\n")
    config = resolve({"config_file": path, "epochs": 5})
    assert config["model"] == "cnet" and config["learning_rate"] == pytest.approx(1e-4)
    assert config["folds"] == 2 and config["epochs"] == 5  # the command line's value wins
    assert config["config_file"] == path
    assert resolve({})["epochs"] == 10  # no file: the defaults


def test_a_fault_in_the_file_names_the_file(tmp_path):
    path = _file(tmp_path, "epochs: 3\nlearnig_rate: 0.1\n")
    with pytest.raises(ConfigError, match=rf"^{path}: config key 'learnig_rate' is not read.*"
                                          "Did you mean: learning_rate"):
        resolve({"config_file": path})
    path = _file(tmp_path, "epochs: many\n")
    with pytest.raises(ConfigError, match=rf"^{path}: config key 'epochs': 'many' is not an"):
        resolve({"config_file": path})
    resolve({"config_file": path, "epochs": 2})  # given values replace the file's
    path = _file(tmp_path, "model: resnet9000\n")
    with pytest.raises(ConfigError, match=rf"^{path}: config key 'model': 'resnet9000'"):
        resolve({"config_file": path})
    # settings that cannot go together: the file is named when it set one of them
    from ecgsweep.cli import UserError
    from ecgsweep.run_start import check_combinations

    path = _file(tmp_path, "folds: 2\nfinal_model: refit\nlr_schedule: plateau\n")
    with pytest.raises(UserError, match=rf"^{path}: config key 'final_model': refit trains"):
        check_combinations(resolve({"config_file": path}))
    with pytest.raises(UserError, match=r"^config key 'final_model': refit trains"):
        check_combinations(resolve({"folds": 2, "final_model": "refit",
                                    "lr_schedule": "plateau"}))


@pytest.mark.parametrize("text, says", [
    ("- epochs\n- 3\n", "expected key: value lines"),
    ("epochs: [3\n", "not valid YAML"),
    ("config_file: other.yaml\n", "cannot include another"),
    ("epochs: 1\nepochs: 2\n", "line 2: epochs: given twice in one mapping"),
])
def test_a_file_that_is_not_a_mapping_of_values_is_refused(tmp_path, text, says):
    path = _file(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"config key 'config_file': {path}: .*{says}"):
        resolve({"config_file": path})


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="config_file.*no such file"):
        resolve({"config_file": str(tmp_path / "absent.yaml")})


def test_the_shipped_inter_patient_configuration_resolves():
    values = yaml.safe_load(SHIPPED.read_text())
    config = resolve({"config_file": str(SHIPPED)})
    assert {k: config[k] for k in values} == pytest.approx(values)
    assert config["folds"] == 4 and config["final_model"] == "ensemble"
    assert config["learning_rate"] == pytest.approx(0.0010809413135527595)
    assert config["models_dir"] == "models/inter_patient"


def test_train_reads_the_file_and_names_it_in_its_error(tmp_path):
    path = _file(tmp_path, "epochs: 0\n")
    proc = subprocess.run([sys.executable, "code/train.py", f"--config_file={path}"],
                          cwd=REPO_ROOT, env=run_env(tmp_path), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"error: {path}: config key 'epochs': 0 is below the minimum 1" in proc.stderr
