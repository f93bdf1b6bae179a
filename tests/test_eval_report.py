"""The eval report's statistics and pictures, on labels and scores made up here (no model)."""

import io
import json
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score

from ecgsweep import ec57, evaluation
from ecgsweep.model_record import ModelRecord

NAMES = ["N", "S", "V", "F", "Q"]
SHARES = [0.6, 0.1, 0.15, 0.05, 0.1]


def _scored(n: int, seed: int, skill: float = 2.5) -> tuple[np.ndarray, np.ndarray]:
    """Labels and softmax scores of a decent but imperfect classifier."""
    rng = np.random.default_rng(seed)
    y = rng.choice(len(NAMES), size=n, p=SHARES)
    logits = rng.normal(size=(n, len(NAMES)))
    logits[np.arange(n), y] += skill
    probs = np.exp(logits)
    return y, probs / probs.sum(axis=1, keepdims=True)


def _width(interval):
    return interval[1] - interval[0]


def test_rates_from_counts_match_scikit_learn():
    y, probs = _scored(3000, seed=1)
    pred = probs.argmax(axis=1)
    cm = np.bincount(y * 5 + pred, minlength=25).reshape(5, 5)
    rates = evaluation.rates_from_counts(cm)
    assert rates["accuracy"] == pytest.approx((pred == y).mean())
    assert rates["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert rates["recall"] == pytest.approx(recall_score(y, pred, average=None))
    assert rates["precision"] == pytest.approx(precision_score(y, pred, average=None))
    # leading axes are kept: a stack of two matrices gives two results
    both = evaluation.rates_from_counts(np.stack([cm, cm]))
    assert both["macro_f1"].shape == (2,) and both["recall"].shape == (2, 5)


def test_bootstrap_intervals_contain_the_estimate_and_narrow_with_more_beats():
    small = evaluation.compute_report(*_scored(200, seed=2), NAMES, bootstrap=1000, seed=0)
    large = evaluation.compute_report(*_scored(2000, seed=2), NAMES, bootstrap=1000, seed=0)
    for report in (small, large):
        ci = report["confidence_intervals"]
        assert ci["accuracy"][0] <= report["accuracy"] <= ci["accuracy"][1]
        assert ci["macro_f1"][0] <= report["macro_f1"] <= ci["macro_f1"][1]
        for name in NAMES:
            low, high = ci["per_class"][name]["recall"]
            assert low <= report["per_class"][name]["recall"] <= high
        assert report["bootstrap"] == {"draws": 1000, "seed": 0, "level": 0.95,
                                       "method": "percentile; test beats resampled with replacement",
                                       "resampled": "beats"}
    s, l = small["confidence_intervals"], large["confidence_intervals"]
    assert _width(l["accuracy"]) < _width(s["accuracy"])
    assert _width(l["macro_f1"]) < _width(s["macro_f1"])
    # the standard error shrinks like 1/sqrt(n): ten times the beats, about a third the width
    assert _width(l["accuracy"]) < 0.5 * _width(s["accuracy"])
    assert _width(l["per_class"]["N"]["recall"]) < _width(s["per_class"]["N"]["recall"])


def test_bootstrap_is_the_same_as_resampling_beats():
    """The multinomial draw over confusion cells has the distribution of index resampling."""
    y, probs = _scored(1500, seed=3)
    pred = probs.argmax(axis=1)
    cm = np.bincount(y * 5 + pred, minlength=25).reshape(5, 5)
    fast = evaluation.rates_from_counts(evaluation.bootstrap_confusion(cm, 4000, seed=0))
    rng = np.random.default_rng(1)
    idx = rng.integers(0, len(y), size=(4000, len(y)))
    slow_acc = (pred[idx] == y[idx]).mean(axis=1)
    assert fast["accuracy"].mean() == pytest.approx(slow_acc.mean(), abs=0.002)
    assert fast["accuracy"].std() == pytest.approx(slow_acc.std(), rel=0.1)
    assert (evaluation.bootstrap_confusion(cm, 10, seed=0).sum(axis=(1, 2)) == len(y)).all()


def test_with_records_the_bootstrap_resamples_whole_records():
    """Beats of one patient move together: a record where every S beat is missed and one
    where every S beat is found give a wide interval over records, a narrow one over beats."""
    y = np.repeat([0, 1] * 4, 50)  # 4 records, each 50 N beats then 50 S beats
    records = np.repeat(["a", "b", "c", "d"], 100)
    pred = y.copy()
    pred[(records == "a") & (y == 1)] = 0  # record a's S beats all missed
    pred[(records == "b") & (y == 1)] = 0  # and b's
    probs = np.eye(2)[pred]
    over_beats = evaluation.compute_report(y, probs, ["N", "S"], bootstrap=2000, seed=0)
    over_records = evaluation.compute_report(y, probs, ["N", "S"], bootstrap=2000, seed=0,
                                             confusion_by_record=ec57.confusion_by_record(
                                                 y, pred, records, 2))
    assert over_records["bootstrap"]["resampled"] == "records"
    assert over_records["bootstrap"]["records"] == 4
    assert "4 records" in over_records["bootstrap"]["method"]
    beats_ci = over_beats["confidence_intervals"]["per_class"]["S"]["recall"]
    records_ci = over_records["confidence_intervals"]["per_class"]["S"]["recall"]
    assert records_ci[0] <= 0.5 <= records_ci[1]
    assert _width(records_ci) > 3 * _width(beats_ci)
    # a draw of records a and b alone finds no S beat; one of c and d finds every one
    assert records_ci[0] == 0.0 and records_ci[1] == 1.0


def test_one_record_is_resampled_by_its_beats_and_few_records_are_named(capsys):
    from rich.console import Console

    y, probs = _scored(400, seed=5)
    one = evaluation.compute_report(y, probs, NAMES, bootstrap=200, seed=0,
                                    confusion_by_record=ec57.confusion_by_record(
                                        y, probs.argmax(axis=1), np.full(len(y), "100"), 5))
    assert one["bootstrap"]["resampled"] == "beats"  # not intervals of one point
    low, high = one["confidence_intervals"]["accuracy"]
    assert low < one["accuracy"] < high
    few = evaluation.compute_report(y, probs, NAMES, bootstrap=200, seed=0,
                                    confusion_by_record=ec57.confusion_by_record(
                                        y, probs.argmax(axis=1),
                                        np.repeat(["a", "b", "c", "d"], 100), 5))
    out = io.StringIO()
    evaluation.print_report(few, console=Console(file=out, width=200))
    assert "only 4 records to resample: a coarse interval" in out.getvalue()


def test_the_terminal_says_on_how_many_draws_the_macro_f1_interval_stands():
    from rich.console import Console

    y = np.repeat([0, 1, 2], [60, 30, 1])  # one beat of class 2: absent from many draws
    report = evaluation.compute_report(y, np.eye(3)[y], ["N", "S", "V"], bootstrap=500, seed=0)
    used = report["confidence_intervals"]["macro_f1_draws"]
    assert 0 < used < 500
    out = io.StringIO()
    evaluation.print_report(report, console=Console(file=out, width=200))
    assert f"macro-F1's on {used} of 500 draws (those with every class of the test set)" in \
        out.getvalue()


def test_a_paired_difference_draws_the_same_records_for_both():
    """Two ways of scoring the same records that differ on one record only: the paired
    interval is narrow, though each one's own interval over records is wide."""
    rng = np.random.default_rng(0)
    b = np.zeros((20, 2, 2), dtype=np.int64)
    b[:, 0, 0] = 100
    found = rng.integers(0, 20, size=20)  # S beats found per record: patients differ widely
    b[:, 1, 1], b[:, 1, 0] = found, 20 - found
    a = b.copy()
    a[0, 1, 1], a[0, 1, 0] = 20, 0  # a finds every S beat of record 0
    paired = evaluation.paired_differences(a, b, ["N", "S"], draws=1000, seed=0)
    expected = ec57.class_f1(a.sum(axis=0))[1] - ec57.class_f1(b.sum(axis=0))[1]
    assert paired["per_class"]["S"]["difference"] == pytest.approx(expected)
    low, high = paired["per_class"]["S"]["interval"]
    assert 0 <= low <= expected <= high  # never below 0: a is never worse on any record
    own = evaluation.bootstrap_intervals(b.sum(axis=0), ["N", "S"], 1000, 0, by_record=b)
    assert high - low < 0.5 * _width(own["per_class"]["S"]["f1-score"])
    same = evaluation.paired_differences(b, b, ["N", "S"])
    assert same["macro_f1"] == {"difference": 0.0, "interval": [0.0, 0.0]}


def test_record_replicates_pool_records_drawn_with_replacement():
    by_record = np.array([[[5, 0], [0, 1]], [[7, 1], [2, 0]], [[3, 0], [1, 4]]])
    replicates = evaluation.bootstrap_confusion_by_record(by_record, 500, seed=0)
    assert replicates.shape == (500, 2, 2)
    totals = by_record.sum(axis=(1, 2))  # 6, 10, 8 beats
    sizes = replicates.sum(axis=(1, 2))
    # three records drawn each time: every size is a sum of three of the records' sizes
    possible = {a + b + c for a in totals for b in totals for c in totals}
    assert set(sizes.tolist()) <= possible and len(set(sizes.tolist())) > 3


def test_every_draw_averages_the_classes_of_the_whole_test_set():
    """A class whose only beats lie in one record is absent from some draws: those draws
    have no macro-F1 over the test set's classes, rather than a mean over fewer classes."""
    by_record = np.zeros((3, 3, 3), dtype=np.int64)
    by_record[:, 0, 0] = 40                    # N, right, in every record
    by_record[:, 1, 1], by_record[:, 1, 0] = 5, 5  # S, half found, in every record
    by_record[2, 2, 2] = 3                     # V in record 2 alone, all found
    cm = by_record.sum(axis=0)
    replicates = evaluation.bootstrap_confusion_by_record(by_record, 300, seed=1)
    rates = evaluation.rates_from_counts(replicates,
                                         classes=ec57.present_classes(cm))
    without_v = replicates[:, 2, 2] == 0
    assert without_v.any() and (~without_v).any()
    assert np.isnan(rates["macro_f1"][without_v]).all()
    assert np.isfinite(rates["macro_f1"][~without_v]).all()
    assert np.isnan(rates["f1-score"][without_v, 2]).all()
    assert np.isnan(rates["precision"][without_v, 2]).all()
    ci = evaluation.bootstrap_intervals(cm, ["N", "S", "V"], 300, seed=1, by_record=by_record)
    # every kept draw has V's F1 of 1 in its mean: none falls to the mean of N and S alone
    two_classes = ec57.macro_f1(cm[:2, :2])
    assert ci["macro_f1"][0] > two_classes + 0.03 and ci["macro_f1"][0] == pytest.approx(
        ec57.macro_f1(cm), abs=1e-9)
    assert 0 < ci["macro_f1_draws"] < 300


def test_bootstrap_is_seeded_and_can_be_turned_off():
    y, probs = _scored(500, seed=4)
    a = evaluation.compute_report(y, probs, NAMES, bootstrap=200, seed=7)
    b = evaluation.compute_report(y, probs, NAMES, bootstrap=200, seed=7)
    c = evaluation.compute_report(y, probs, NAMES, bootstrap=200, seed=8)
    assert a["confidence_intervals"] == b["confidence_intervals"]
    assert a["confidence_intervals"] != c["confidence_intervals"]
    off = evaluation.compute_report(y, probs, NAMES, bootstrap=0)
    assert off["confidence_intervals"] is None and off["bootstrap"] is None
    assert off["macro_f1"] == a["macro_f1"]


def test_roc_auc_of_a_perfect_scorer_is_one_and_of_a_random_scorer_about_half():
    rng = np.random.default_rng(5)
    y = rng.choice(5, size=4000, p=SHARES)
    perfect = np.full((len(y), 5), 0.01)
    perfect[np.arange(len(y)), y] = 0.96
    report = evaluation.compute_report(y, perfect, NAMES, bootstrap=0)
    assert all(report["roc_auc"][n] == 1.0 for n in NAMES)
    assert all(report["average_precision"][n] == 1.0 for n in NAMES)
    assert report["macro_roc_auc"] == 1.0

    noise = rng.dirichlet(np.ones(5), size=len(y))  # scores independent of the labels
    report = evaluation.compute_report(y, noise, NAMES, bootstrap=0)
    for name, share in zip(NAMES, SHARES):
        assert report["roc_auc"][name] == pytest.approx(0.5, abs=0.06)
        # a random ranking's average precision is about the class's share
        assert report["average_precision"][name] == pytest.approx(share, abs=0.05)
    assert report["macro_roc_auc"] == pytest.approx(0.5, abs=0.03)


def test_curves_are_downsampled_and_span_the_axes():
    y, probs = _scored(5000, seed=6, skill=1.0)
    report = evaluation.compute_report(y, probs, NAMES, bootstrap=0, curve_points=50)
    for name in NAMES:
        roc, pr = report["curves"]["roc"][name], report["curves"]["pr"][name]
        assert 2 <= len(roc["fpr"]) == len(roc["tpr"]) <= 50
        assert len(pr["recall"]) == len(pr["precision"]) <= 50
        assert (roc["fpr"][0], roc["tpr"][0]) == (0.0, 0.0)
        assert (roc["fpr"][-1], roc["tpr"][-1]) == (1.0, 1.0)
        assert np.all(np.diff(roc["fpr"]) >= 0) and np.all(np.diff(pr["recall"]) >= 0)
    json.dumps(report)  # everything in it is plain JSON


def test_macro_f1_is_over_the_classes_with_beats_or_calls_as_in_training():
    """Ten N beats all called N: macro-F1 1.0, as val_macro_f1 and the EC57 tables say, not
    a mean with four classes that have neither beats nor calls counted as 0."""
    y = np.zeros(10, dtype=int)
    probs = np.tile([0.9, 0.025, 0.025, 0.025, 0.025], (10, 1))
    report = evaluation.compute_report(y, probs, NAMES, bootstrap=50)
    assert report["macro_f1"] == 1.0 and report["macro_avg"]["f1-score"] == 1.0
    assert report["confidence_intervals"]["macro_f1"] == [1.0, 1.0]
    y, probs = _scored(800, seed=7)
    keep = (y != 3) & (probs.argmax(axis=1) != 3)  # no F beats, no F calls
    report = evaluation.compute_report(y[keep], probs[keep], NAMES, bootstrap=0)
    pred = probs[keep].argmax(axis=1)
    assert report["macro_f1"] == pytest.approx(f1_score(y[keep], pred, average="macro"))
    cm = np.bincount(y[keep] * 5 + pred, minlength=25).reshape(5, 5)
    assert evaluation.rates_from_counts(cm)["macro_f1"] == pytest.approx(report["macro_f1"])


def test_every_macro_f1_is_scikit_learns_over_the_classes_with_beats_or_calls():
    from ecgsweep import ec57, sweep_ensemble

    y, probs = _scored(800, seed=3)
    keep = y != 3  # F has neither beats nor calls
    probs = probs[keep]
    probs[:, 3] = 0.0
    y, pred = y[keep], probs.argmax(axis=1)
    expected = f1_score(y, pred, average="macro")  # labels present in y or pred
    cm = np.bincount(y * 5 + pred, minlength=25).reshape(5, 5)
    assert ec57.macro_f1(cm) == pytest.approx(expected)
    assert sweep_ensemble.scores(y, probs)["macro_f1"] == pytest.approx(expected)
    assert evaluation.compute_report(y, probs, NAMES, bootstrap=0)["macro_f1"] == pytest.approx(
        expected)
    assert list(ec57.macro_f1(np.stack([cm, np.eye(5, dtype=int)]))) == pytest.approx([expected, 1])


def test_a_class_missing_from_the_test_set_has_no_auc():
    y, probs = _scored(800, seed=7)
    keep = y != 3  # no F beats
    report = evaluation.compute_report(y[keep], probs[keep], NAMES, bootstrap=100)
    assert report["roc_auc"]["F"] is None and report["average_precision"]["F"] is None
    defined = [report["roc_auc"][n] for n in NAMES if n != "F"]
    assert report["macro_roc_auc"] == pytest.approx(np.mean(defined))
    assert report["confidence_intervals"]["per_class"]["F"]["recall"] is None
    assert "F" not in report["curves"]["roc"]


def test_misclassified_pairs_list_real_mistakes_most_confident_first():
    y, probs = _scored(1000, seed=8, skill=1.5)
    pred = probs.argmax(axis=1)
    pairs = evaluation.misclassified_pairs(y, probs, NAMES, per_pair=4)
    assert sum(p["count"] for p in pairs) == int((pred != y).sum())
    assert [p["count"] for p in pairs] == sorted((p["count"] for p in pairs), reverse=True)
    for p in pairs:
        t, q = NAMES.index(p["true"]), NAMES.index(p["predicted"])
        assert p["count"] == int(((y == t) & (pred == q)).sum()) > 0
        assert len(p["indices"]) == min(4, p["count"])
        assert all(y[i] == t and pred[i] == q for i in p["indices"])
        assert p["confidence"] == sorted(p["confidence"], reverse=True)


def _beats(y: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 187)
    return (np.sin(2 * np.pi * (y[:, None] + 1) * t) * 0.4 + 0.5
            + rng.normal(0, 0.03, (len(y), 187))).astype(np.float32)


def test_the_misclassified_beats_picture_is_written_when_there_are_errors(tmp_path):
    y, probs = _scored(600, seed=9, skill=2.5)
    report = evaluation.compute_report(y, probs, NAMES, bootstrap=100, examples_per_pair=3)
    assert report["misclassified"]
    paths = evaluation.write_report(report, tmp_path / "rep", beats=_beats(y), y_true=y)
    png = paths["misclassified_beats"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert paths["roc_pr_curves"].read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert saved["files"]["misclassified_beats"] == str(paths["misclassified_beats"])
    assert saved["confidence_intervals"] == report["confidence_intervals"]
    assert saved["roc_auc"] == report["roc_auc"]

    # No mistakes: no picture (and an old one in the same folder is removed).
    perfect = np.eye(5)[y] * 0.9 + 0.02
    clean = evaluation.compute_report(y, perfect, NAMES, bootstrap=100)
    assert clean["misclassified"] == []
    paths = evaluation.write_report(clean, tmp_path / "rep", beats=_beats(y), y_true=y)
    assert "misclassified_beats" not in paths
    assert not (tmp_path / "rep" / "misclassified_beats.png").exists()

    # One class among the test beats: no curves, and the earlier report's are removed.
    one_class = evaluation.compute_report(np.zeros(20, int), perfect[:20], NAMES, bootstrap=0)
    paths = evaluation.write_report(one_class, tmp_path / "rep")
    assert "roc_pr_curves" not in paths and not (tmp_path / "rep" / "roc_pr_curves.png").exists()


def test_the_default_report_folder_names_the_model_and_the_data_scored(tmp_path):
    from ecgsweep.evaluation.members import LoadedModel

    def member(path, dataset):
        return LoadedModel(Path(path), None, ModelRecord(config={"model": "cnn",
                                                                 "dataset": dataset}))

    mitbih, ptbdb = member("models/cnn/best.keras", "mitbih"), member("m/cnn/best.keras", "ptbdb")
    # the data set's own test file, named as when it is given by --test
    assert evaluation.default_out_dir([mitbih], None) == Path("reports/cnn-best-mitbih_test")
    assert evaluation.default_out_dir([mitbih], "data/mitbih_test.csv") == Path(
        "reports/cnn-best-mitbih_test")
    assert evaluation.default_out_dir([ptbdb], None) == Path("reports/cnn-best-ptbdb")
    assert evaluation.default_out_dir([mitbih, ptbdb], "x/svdb_test.csv.gz") == Path(
        "reports/ensemble-svdb_test")
    out = tmp_path / "rep"
    out.mkdir()
    report = {"models": ["models/cnn/best.keras"], "test_data": "the mitbih test data"}
    assert evaluation.replaced_report(out, report, False) is None  # nothing there yet
    (out / "report.json").write_text(json.dumps(report))
    assert evaluation.replaced_report(out, report, False) is None  # the same model, same data
    spelled = {**report, "models": [str(Path.cwd() / "models/cnn/best.keras")]}
    assert evaluation.replaced_report(out, spelled, False) is None  # however the path is spelled
    other = {**report, "test_data": "x/svdb_test.csv"}
    assert evaluation.replaced_report(out, other, False) == (
        f"{out / 'report.json'} held the report of models/cnn/best.keras on the mitbih test "
        "data; it is replaced: pass --out DIR to keep reports apart")
    assert evaluation.replaced_report(out, other, True).endswith(
        "pass another --out to keep reports apart")


def test_terminal_summary_shows_aucs_and_intervals():
    from rich.console import Console

    y, probs = _scored(1000, seed=10)
    report = evaluation.compute_report(y, probs, NAMES, bootstrap=300, seed=1)
    out = io.StringIO()
    evaluation.print_report(report, console=Console(file=out, width=160))
    text = out.getvalue()
    lo, hi = report["confidence_intervals"]["macro_f1"]
    assert f"macro-F1 {report['macro_f1']:.4f} [{lo:.4f}, {hi:.4f}]" in text
    assert "ROC AUC" in text and f"{report['roc_auc']['V']:.3f}" in text
    assert f"macro ROC AUC {report['macro_roc_auc']:.4f}" in text
    assert "95% bootstrap interval, 300 draws of the test beats, seed 1" in text
    assert "Confusion matrix" in text and "misclassified:" in text
    # the axes are named in the matrix's corner, whole even at 80 columns
    narrow = io.StringIO()
    evaluation.print_report(report, console=Console(file=narrow, width=80))
    assert "true \\ predicted" in narrow.getvalue()


# ----------------------------------------------------------------------- W&B offline


def wandb_records(path: Path):
    """Records of a .wandb file (LevelDB-log framing: 32 KiB blocks, 7-byte chunk headers)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        _, size, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if pos + 7 + size > len(data):
            break  # still being written
        chunk, pos = data[pos + 7:pos + 7 + size], pos + 7 + size
        if kind == 0:
            break  # zero padding at the end of a block
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def logged_summary(run_folder: Path, expect: str, timeout_s: float = 60.0) -> dict:
    """The summary a run's .wandb file holds, once it holds ``expect``.

    wandb-core may still be writing the file when ``run.finish()`` returns (seen with
    wandb 0.31: a 7-byte file for up to a second), so this polls.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        summary = {}
        for log in run_folder.glob("*.wandb"):
            for record in wandb_records(log):
                if record.WhichOneof("record_type") == "summary":
                    for item in record.summary.update:
                        key = item.key or ".".join(item.nested_key)
                        summary[key] = json.loads(item.value_json)
        if expect in summary or time.monotonic() > deadline:
            return summary
        time.sleep(0.2)


@pytest.mark.slow
def test_wandb_offline_logs_to_the_training_run_and_to_a_new_eval_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    for key in ("WANDB_RUN_ID", "WANDB_SWEEP_ID", "WANDB_SWEEP_PARAM_PATH", "WANDB_RESUME"):
        monkeypatch.delenv(key, raising=False)
    y, probs = _scored(400, seed=11, skill=1.5)
    report = evaluation.compute_report(y, probs, NAMES, bootstrap=200)
    paths = evaluation.write_report(report, tmp_path / "rep", beats=_beats(y), y_true=y)
    trained = evaluation.LoadedModel(Path("m.keras"), None,
                                     ModelRecord(run_id="trainrun1", project="ecg-test",
                                                 class_names=list(NAMES)))

    info = evaluation.log_to_wandb(report, paths, [trained], y, probs)
    assert info["run_id"] == "trainrun1" and info["resumed"] and info["offline"]
    assert info["project"] == "ecg-test"
    folder = Path(info["run_dir"])
    assert folder.parent == tmp_path / "wandb" and folder.name.startswith("offline-run-")
    assert folder.name.endswith("-trainrun1")
    copied = json.loads((folder / "files" / evaluation.WANDB_REPORT_FILE).read_text())
    assert copied["macro_f1"] == report["macro_f1"]
    summary = logged_summary(folder, expect="test_macro_f1")
    assert summary["test_macro_f1"] == pytest.approx(report["macro_f1"])
    assert summary["test_accuracy_ci_low"] == pytest.approx(report["confidence_intervals"]["accuracy"][0])
    assert summary["test_macro_roc_auc"] == pytest.approx(report["macro_roc_auc"])
    assert summary["test_recall_S"] == pytest.approx(report["per_class"]["S"]["recall"])
    images = list((folder / "files" / "media" / "images").rglob("*.png"))
    assert len(images) == 3  # confusion matrix, curves, misclassified beats

    other = evaluation.LoadedModel(Path("n.keras"), None, ModelRecord(class_names=list(NAMES)))
    info = evaluation.log_to_wandb(report, paths, [trained, other], y, probs)
    assert not info["resumed"] and info["run_id"] != "trainrun1"
    assert logged_summary(Path(info["run_dir"]), expect="test_n_beats")["test_n_beats"] == 400
