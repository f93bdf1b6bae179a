"""Train one model; the `program:` of every sweep YAML.

    python code/train.py --model=cnn --epochs=5            # by hand (offline: WANDB_MODE=offline)
    wandb agent <entity/project/sweep_id>                   # W&B runs it with --key=value args
    python code/sweep.py sweep_conf/cnn_bayes.yaml          # the offline runner does the same

`python code/train.py --help` lists every hyperparameter.
"""

import sys

from ecgsweep.run import program_main

if __name__ == "__main__":
    sys.exit(program_main())
