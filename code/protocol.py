"""The inter-patient protocol in one command: WFDB records in, a final model and its AAMI
EC57 report on records no choice looked at out (docs/inter-patient.md).

    python code/protocol.py --dev ../shared/data/mitdb-ds1 --external ../shared/data/svdb-even
    python code/protocol.py --dev DIR --external DIR --seed 42 --seed 7
    python code/protocol.py --dev DIR --external DIR --sweep sweep_conf/inter_patient_cv4_bayes.yaml --count 14
"""

import sys

from ecgsweep.cli import run_main
from ecgsweep.protocol import main

if __name__ == "__main__":
    sys.exit(run_main(main))
