"""The sweep report: a real small sweep with the fake program, drawn as HTML and PNG."""

import io
import os
import random
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from ecgsweep.sweep import commands, report, report_data as rd
from ecgsweep.sweep.runner import Options
from ecgsweep.sweep.store import open_store

REPO = Path(__file__).resolve().parents[1]
YAML = """program: tests/fake_programs/curve.py
method: grid
metric: {name: val_macro_f1, goal: maximize}
early_terminate: {type: hyperband, min_iter: 2, eta: 2}
parameters:
  learning_rate: {values: [0.9, 0.8, 0.3]}
  optimizer: {values: [adam]}
  epochs: {value: 6}
"""


class _Links(HTMLParser):
    """Every src/href attribute of a real tag (script bodies are not parsed as tags)."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        self.urls += [(tag, k, v) for k, v in attrs if k in ("src", "href") and v]


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    """A finished 3-run hyperband sweep of the fake program; (store root, sweep id, output)."""
    tmp = tmp_path_factory.mktemp("sweep")
    (tmp / "s.yaml").write_text(YAML)
    old = os.environ.get("FAKE_EPOCH_S")
    os.environ["FAKE_EPOCH_S"] = "0.12"
    buf = io.StringIO()
    try:
        rc = commands.run_sweep(yaml_path=str(tmp / "s.yaml"), store_root=str(tmp / "store"),
                                sweep_id="rep1", console=Console(file=buf, width=200),
                                opts=Options(poll_s=0.05, cwd=str(REPO), kill_delay_s=5,
                                             gpus=[], live=False))
    finally:
        if old is None:
            os.environ.pop("FAKE_EPOCH_S")
        else:
            os.environ["FAKE_EPOCH_S"] = old
    assert rc == 0
    return tmp / "store", "rep1", buf.getvalue()


def test_end_of_sweep_summary_prints_the_report_path(finished_sweep):
    root, sid, output = finished_sweep
    page = root / sid / report.REPORT_DIR / report.HTML_NAME
    assert f"report: {page}" in output
    assert page.is_file()


def test_report_holds_every_figure_and_loads_nothing_external(finished_sweep, tmp_path):
    root, sid, _ = finished_sweep
    assert commands.report(sid, store_root=str(root), out_dir=str(tmp_path),
                           console=Console(file=io.StringIO())) == 0
    text = (tmp_path / report.HTML_NAME).read_text()
    for name in report.FIGURES:
        assert f'id="fig-{name}"' in text and f'id="plot-{name}"' in text
        assert (tmp_path / f"{name}.png").stat().st_size > 5000
    runs = open_store(root, sid).runs()
    assert 'id="leaderboard"' in text and all(r["run_id"] in text for r in runs)
    assert "hyperband band threshold" in text
    assert "Plotly.newPlot" in text and "<script src" not in text.replace(" ", "")
    parser = _Links()
    parser.feed(text)
    assert [u for u in parser.urls if u[2].startswith(("http:", "https:", "//"))] == []


def test_an_out_named_like_a_page_is_refused_not_made_a_folder(finished_sweep, tmp_path):
    from ecgsweep.cli import UserError

    root, sid, _ = finished_sweep
    with pytest.raises(UserError, match=r"my\.html: give a folder; the report writes "
                                        r"report\.html and its PNGs into it"):
        commands.draw_report(open_store(root, sid), tmp_path / "my.html")
    assert not (tmp_path / "my.html").exists()


def test_stopped_run_is_marked_with_the_threshold_it_missed(finished_sweep):
    root, sid, _ = finished_sweep
    sweep = rd.read_sweep(open_store(root, sid))
    lag = next(r for r in sweep["runs"] if r["params"]["learning_rate"] == 0.3)
    assert lag["state"] == "stopped"
    band, thr = rd.stop_point(lag, {})
    assert band == 2 and thr > rd.metric_values(lag)[band - 1]


def test_band_thresholds_follow_the_hyperband_rule():
    bands, eta = rd.hyperband_bands({"type": "hyperband", "min_iter": 2, "eta": 2}, 9)
    assert (bands, eta) == ([2, 4, 8], 2.0)
    assert rd.hyperband_bands({"type": "hyperband", "max_iter": 27, "s": 2, "eta": 3}, 30)[0] == [3, 9]
    assert rd.hyperband_bands(None, 9) == ([], 0.0)
    curves = [[0.1, 0.2, 0.3, 0.4], [0.1, 0.5, 0.6, 0.7], [0.1, 0.4], [0.1, 0.3, 0.9, 0.95]]
    # at epoch 2, best first: 0.5 0.4 0.3 0.2; index int(4 / 2) = 2 -> 0.3
    # at epoch 4, best first: 0.95 0.7 0.4; index int(3 / 2) = 1 -> 0.7
    assert rd.band_thresholds(curves, [2, 4], 2.0, "maximize") == {2: 0.3, 4: 0.7}
    assert rd.band_thresholds(curves, [2], 2.0, "minimize") == {2: 0.4}


def test_a_k_fold_run_s_curve_is_drawn_per_fold_as_hyperband_counts_it():
    """A k-fold run logs each fold's epochs under fold<i>/ and its running mean after each
    fold: the curve's steps are those means, 1 and 2, not the rows' places."""
    rows = [{"epoch": 1, "fold1/val_macro_f1": 0.2}, {"epoch": 2, "fold1/val_macro_f1": 0.3},
            {"folds_completed": 1, "val_macro_f1": 0.3},
            {"epoch": 1, "fold2/val_macro_f1": 0.1}, {"epoch": 2, "fold2/val_macro_f1": 0.2},
            {"folds_completed": 2, "val_macro_f1": 0.25}, {"val_macro_f1": float("nan")}]
    assert rd.metric_steps(rows, "val_macro_f1") == [{"step": 1, "value": 0.3},
                                                     {"step": 2, "value": 0.25}]
    # a program logging its metric each epoch: the steps are its epochs
    epochs = [{"epoch": e, "loss": 1.0 / e, "val_macro_f1": 0.1 * e} for e in (1, 2, 3)]
    assert [h["step"] for h in rd.metric_steps(epochs, "val_macro_f1")] == [1, 2, 3]


def _synthetic_runs(n):
    rng = random.Random(1)
    runs = []
    for i in range(n):
        p = {"learning_rate": rng.uniform(0, 1), "batch_size": rng.choice([16, 32, 64]),
             "dropout": rng.uniform(0, 0.5), "optimizer": rng.choice(["adam", "sgd"])}
        runs.append({"id": f"r{i}", "state": "finished", "params": p,
                     "value": 2.0 * p["learning_rate"] + rng.gauss(0, 0.01), "history": []})
    return runs


def test_importance_ranks_the_one_parameter_that_drives_the_metric_first():
    runs = _synthetic_runs(40)
    rows = rd.importance(runs, ["batch_size", "dropout", "optimizer", "learning_rate"])
    assert rows[0]["param"] == "learning_rate"
    assert rows[0]["importance"] > 0.8 and rows[0]["correlation"] > 0.95
    assert rd.importance_caveat(runs) is None
    assert "only 5 runs" in rd.importance_caveat(runs[:5])


def test_importance_caveat_is_drawn_when_there_are_few_runs(tmp_path):
    runs = _synthetic_runs(4)
    sweep = {"id": "few", "metric": "val_macro_f1", "goal": "maximize", "runs": runs,
             "searched": ["learning_rate", "optimizer"], "early_terminate": None}
    text = report.write_sweep_report(sweep, tmp_path).read_text()
    assert "caveat: only 4 runs" in text


def _chromium():
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)


@pytest.mark.slow
def test_report_renders_in_a_headless_browser(finished_sweep, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium on PATH (.ci/run installs Debian's chromium when run as root)")
    root, sid, _ = finished_sweep
    page = root / sid / report.REPORT_DIR / report.HTML_NAME
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
                    "--window-size=1200,1600", "--virtual-time-budget=5000", page.as_uri()],
                   check=True, timeout=120, capture_output=True)
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[0] > 100
    # a blank page is one colour; drawn plots give many distinct colours
    assert len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50
