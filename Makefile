# ecg-sweeps: `make sweep` runs the main job, `make test` the tests (see README).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SWEEP_COUNT ?= 6
SWEEP_WORKERS ?= 1
SWEEP_FLAGS ?=
BENCH_FLAGS ?=

# Everything runs offline unless the caller says otherwise (no W&B account needed).
export WANDB_MODE ?= offline
export WANDB_SILENT ?= true
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install sweep sweep-check test test-fast bench data clean

# The package, editable (code/ is what runs), with the pins of requirements.txt, which
# pyproject.toml reads: .venv/bin/ecg-sweeps and the scripts in code/ run the same code.
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

install: $(VENV)/.installed

# The [test] extra: pytest, and PyTorch CPU for the torch-backend tests.
$(VENV)/.installed-test: requirements-test.txt requirements-torch.txt $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

# The [ray] extra (the --ray executor), installed for the tests so they run the Ray tests too.
$(VENV)/.installed-ray: requirements-ray.txt $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[ray]"
	touch $@

# Synthetic data in the Kaggle format, only when data/ holds no real files.
data/mitbih_train.csv: | $(VENV)/.installed
	$(PY) code/data.py synth --out data

data: data/mitbih_train.csv

sweep: $(VENV)/.installed data/mitbih_train.csv
	$(PY) code/sweep.py sweep_conf/quickstart_cnn_bayes.yaml --count $(SWEEP_COUNT) --workers $(SWEEP_WORKERS) $(SWEEP_FLAGS)
	$(PY) code/eval.py --model models/cnn/best.keras

sweep-check: $(VENV)/.installed
	$(PY) code/sweep.py check sweep_conf/*.yaml

test: $(VENV)/.installed-test $(VENV)/.installed-ray
	$(PY) -m pytest

test-fast: $(VENV)/.installed-test
	$(PY) -m pytest -m "not slow"

bench: $(VENV)/.installed
	$(PY) code/bench.py $(BENCH_FLAGS)

clean:
	rm -rf wandb .sweeps reports bench .pytest_cache
