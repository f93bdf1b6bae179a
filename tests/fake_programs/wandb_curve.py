"""Like curve.py, but a real W&B program: parameters through wandb.init / wandb.config,
metrics through wandb.log only, so a test can check that a real wandb run, started by the
runner, sees the sweep's parameters, lands where expected and is read back by the runner.
"""

import json
import os
import sys
from pathlib import Path

import wandb


def main():
    cli = {}
    for arg in sys.argv[1:]:
        k, _, v = arg[2:].partition("=")
        cli[k] = v
    run = wandb.init(config=cli)
    files = Path(run.dir)
    cfg = dict(run.config)
    lr = float(cfg.get("learning_rate", 0.5))
    for epoch in range(1, int(cfg.get("epochs", 2)) + 1):
        f1 = lr * (1 - 0.5 ** epoch)
        run.log({"epoch": epoch, "val_macro_f1": f1})
    (files / "seen.json").write_text(json.dumps({
        "config": {k: v for k, v in cfg.items() if not k.startswith("_")},
        "run_id": run.id, "sweep_id": getattr(run, "sweep_id", None),
        "dir": run.dir, "mode": os.environ.get("WANDB_MODE")}))
    run.summary["best_val_macro_f1"] = f1
    run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
