"""Run a W&B sweep YAML fully offline, with W&B's own search and early-stopping engine.

    python code/sweep.py sweep_conf/cnn_bayes.yaml --count 30 --workers 2
    python code/sweep.py --resume SWEEP_ID            # after a crash, kill or reboot
    python code/sweep.py FILE --ray auto --gpus-per-run 0.5   # runs on a Ray cluster
    python code/sweep.py check sweep_conf/*.yaml      # validate without running
    python code/sweep.py check --fix my_sweep.yaml    # write my_sweep.fixed.yaml
    python code/sweep.py status [SWEEP_ID]           # the runs table, any time
    python code/sweep.py status SWEEP_ID --json      # the same for scripts
    python code/sweep.py report SWEEP_ID [--out DIR] # the sweep as pictures (HTML + PNG)
    python code/sweep.py ensemble SWEEP_ID --top K   # the top K runs' models averaged

Each run is started as `wandb agent` starts it (the YAML's command: and its macros,
WANDB_SWEEP_ID, WANDB_RUN_ID, WANDB_SWEEP_PARAM_PATH) with WANDB_MODE=offline, so its
wandb run folder can be uploaded later with the `wandb sync` command printed at the end.
State lives in <store>/<SWEEP_ID>/sweep.db (SQLite); several runners may share it.
A sweep of code/train.py also gets its parameters checked and its best models promoted
and named in the summary (ecgsweep.sweep_hooks); any other program runs as W&B runs it.
"""

import sys

from ecgsweep.cli import run_main
from ecgsweep.sweep_cli import main

if __name__ == "__main__":
    sys.exit(run_main(main))
