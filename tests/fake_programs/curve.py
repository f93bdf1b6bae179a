"""A fast stand-in for code/train.py that follows the same contract, without TensorFlow.

Parameters arrive as wandb agent passes them: the WANDB_SWEEP_PARAM_PATH file
({key: {value: v}}) and --key=value arguments (arguments win). It does not start wandb (too
slow for the many runs a test makes) but writes what wandb would: each epoch one history
record, and at the end the summary, to <WANDB_DIR>/wandb/offline-run-<ts>-<WANDB_RUN_ID>/
run-<WANDB_RUN_ID>.wandb (see wandb_record.py). SIGTERM stops it after the current epoch
with "stopped": true and exit 0.

The scripted curve: val_macro_f1 at epoch e is learning_rate * (1 - 0.5 ** e), so the
learning rate is the plateau a run reaches. Epochs last FAKE_EPOCH_S seconds (default 0.05),
or the ``epoch_s`` parameter's (which reaches a run on any executor, a Ray node's too).
The seed picks a failure: 13, 14, 15 crash (ZeroDivisionError), 3 logs NaN and exits 3,
2 exits 2 with an `error:` line, 9 kills itself with SIGKILL like the OOM killer.
It also writes env.json (argv, cwd, its pid, the WANDB_* variables and those that hand it a
GPU: GPU_VARIABLES), and with a `models_dir` parameter a stand-in model.keras + model.json in its run
folder.
"""

import json
import os
import signal
import sys
import time
from pathlib import Path

import yaml
from wandb_record import RecordWriter

stop = False
GPU_VARIABLES = ("CUDA_VISIBLE_DEVICES", "TF_FORCE_GPU_ALLOW_GROWTH",
                 "XLA_PYTHON_CLIENT_MEM_FRACTION", "SWEEP_GPU_MEMORY_FRACTION")


def on_term(signum, frame):
    global stop
    stop = True


def params():
    out = {}
    path = os.environ.get("WANDB_SWEEP_PARAM_PATH")
    if path:
        with open(path) as f:
            for k, v in (yaml.safe_load(f) or {}).items():
                if k != "wandb_version" and isinstance(v, dict) and "value" in v:
                    out[k] = v["value"]
    for arg in sys.argv[1:]:
        if arg.startswith("--") and "=" in arg:
            k, v = arg[2:].split("=", 1)
            out[k] = yaml.safe_load(v)
    return out


def atomic_json(path, obj):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def save_model(run_folder, p, run_id, value, stopped):
    """As code/train.py leaves a model: model.keras and its record model.json in the run
    folder (``stopped`` when a stop ended it early); promoted by this program unless
    ECGSWEEP_PROMOTE=coordinator (then the coordinator promotes it once the folder is back)."""
    (run_folder / "model.keras").write_bytes(f"fake model of {run_id}".encode())
    record = {"metric": "val_macro_f1", "value": value, "run_id": run_id,
              "config": {"models_dir": p["models_dir"], "model": p.get("model", "cnn")},
              "dataset": {"name": "fake.csv", "fingerprint": "f" * 12},
              "promoted_by_run": os.environ.get("ECGSWEEP_PROMOTE") != "coordinator",
              "stopped": stopped}
    atomic_json(run_folder / "model.json", record)


def main():
    signal.signal(signal.SIGTERM, on_term)
    p = params()
    run_id = os.environ["WANDB_RUN_ID"]
    mode = "offline-run" if os.environ.get("WANDB_MODE", "offline") == "offline" else "run"
    base = Path(os.environ.get("WANDB_DIR") or os.getcwd()) / "wandb"
    files = base / f"{mode}-{time.strftime('%Y%m%d_%H%M%S')}-{run_id}" / "files"
    files.mkdir(parents=True, exist_ok=True)
    atomic_json(files / "env.json", {
        "argv": sys.argv, "cwd": os.getcwd(), "params": p, "pid": os.getpid(),
        "env": {k: v for k, v in os.environ.items()
                if k.startswith("WANDB_") or k in GPU_VARIABLES},
        "start": time.time()})
    seed = p.get("seed", 0)
    lr = float(p.get("learning_rate", 0.5))
    epochs = int(p.get("epochs", 3))
    epoch_s = float(p.get("epoch_s", os.environ.get("FAKE_EPOCH_S", "0.05")))
    print(f"fake run {run_id}: lr={lr} epochs={epochs} seed={seed}", flush=True)
    if seed == 2:
        print("error: config key 'data_dir': folder not found", file=sys.stderr, flush=True)
        return 2
    if seed == 9:
        os.kill(os.getpid(), signal.SIGKILL)
    best, stopped = None, False
    log = RecordWriter(files.parent / f"run-{run_id}.wandb")
    for epoch in range(1, epochs + 1):
        deadline = time.time() + epoch_s
        while time.time() < deadline:
            time.sleep(min(0.01, max(0.0, deadline - time.time())))
        f1 = lr * (1 - 0.5 ** epoch)
        loss = 1.0 - f1
        if seed == 3 and epoch == 2:
            loss = float("nan")
        row = {"epoch": epoch, "loss": loss, "accuracy": f1, "val_loss": loss,
               "val_accuracy": f1, "val_macro_f1": f1}
        log.history(row, epoch - 1)
        print(f"epoch {epoch}: val_macro_f1={f1:.4f}", flush=True)
        if seed in (13, 14, 15) and epoch == 1:
            print("Traceback (most recent call last):", flush=True)
            1 / 0
        if seed == 3 and epoch == 2:
            print("error: loss is NaN at epoch 2", file=sys.stderr, flush=True)
            log.summary({"error": "NaN loss"})
            return 3
        best = f1 if best is None or f1 > best else best
        if stop:
            stopped = True
            break
    if "models_dir" in p:
        save_model(files.parent, p, run_id, best, stopped)
    log.summary({"best_val_macro_f1": best, "best_epoch": epoch, "val_macro_f1": best,
                 "stopped": stopped, "promoted": False, "model": p.get("model", "cnn")})
    log.exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
