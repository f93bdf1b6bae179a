"""Data commands: make synthetic data, convert PhysioNet records, download, check CSVs.

    python code/data.py synth --out data/
    python code/data.py check data/mitbih_train.csv
    python code/data.py wfdb --src data/mitdb --out data/ --split inter
    python code/data.py wfdb --download mitdb          # PhysioNet -> data/mitdb, then convert
    python code/data.py kaggle --out data/             # Kaggle heartbeat CSVs (needs a token)
"""

import sys

from ecgsweep.cli import run_main
from ecgsweep.data_cli import main

if __name__ == "__main__":
    sys.exit(run_main(main))
