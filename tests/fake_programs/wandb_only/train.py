"""A W&B user's training program, as in W&B's examples: it knows nothing of ecg-sweeps.

Parameters come through wandb.config (the sweep's param file) and, depending on the sweep's
command, as arguments: --key=value (${args}), --key value (${args_no_equals}), --flag for
a true boolean (${args_no_boolean_flags}), key=value (${args_no_hyphens}), one JSON object
(${args_json}) or a JSON file's path (${args_json_file}); what the arguments held is
logged once as `from_args` so a test can compare. Metrics go through wandb.log only:
`val/loss` (lower with a higher learn_rate), `score with space` (= learn_rate) and `loss`.
Behaviour knobs (parameters): `crash` raises after the first step, `log_metric: false` logs
only `loss`, `slow_below` sleeps 1 s per step while learn_rate is below it, `steps`.
The environment variable FAKE_RUN_DIR passes wandb.init a folder of its own (``dir=``),
which wins over the WANDB_DIR the runner sets.
"""

import json
import os
import sys
import time

import wandb


def from_args(argv):
    out, pending = {}, None
    for arg in argv:
        if pending is not None and not arg.startswith("--"):
            out[pending], pending = arg, None  # --key value
        elif arg.startswith("{"):
            out.update(json.loads(arg))
        elif arg.endswith(".json") and os.path.exists(arg):
            with open(arg) as f:
                out.update(json.load(f))
        elif "=" in arg:
            key, value = arg.lstrip("-").split("=", 1)
            out[key] = value
        elif arg.startswith("--"):
            pending = arg[2:]
            out[pending] = True  # a boolean flag, unless a value follows
    return out


def main():
    args = from_args(sys.argv[1:])
    run_dir = os.environ.get("FAKE_RUN_DIR")
    if run_dir:
        os.makedirs(run_dir, exist_ok=True)
    run = wandb.init(dir=run_dir) if run_dir else wandb.init()
    cfg = run.config
    lr = float(cfg.get("learn_rate", 0.5))
    run.summary["from_args"] = json.dumps(args, sort_keys=True)
    run.summary["optimizer_seen"] = json.dumps(cfg.get("optimizer"), sort_keys=True)
    slow = float(cfg.get("slow_below", 0.0))
    for step in range(int(cfg.get("steps", 3))):
        val_loss = (1.0 - lr) + 0.5 ** (step + 1)
        row = {"loss": val_loss + 0.1}
        if cfg.get("log_metric", True):
            row.update({"val/loss": val_loss, "score with space": lr})
        wandb.log(row)
        if cfg.get("crash"):
            raise ZeroDivisionError("the stand-in crashed on purpose")
        if lr < slow:
            time.sleep(1.0)
    run.finish()


if __name__ == "__main__":
    main()
