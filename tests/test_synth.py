"""The synthetic heartbeat generator: format, determinism, class mix, files, difficulty."""

import numpy as np
import pytest

from ecgsweep.data import synth
from ecgsweep.data.kaggle_csv import BEAT_LENGTH, load_csv


@pytest.fixture(scope="module")
def mitbih():
    return synth.make_mitbih(6000, 0)


@pytest.fixture(scope="module")
def ptb():
    return synth.make_ptb(2000, 0)


def test_mitbih_same_seed_same_arrays_other_seed_differs():
    X1, y1 = synth.make_mitbih(300, 7)
    X2, y2 = synth.make_mitbih(300, 7)
    X3, y3 = synth.make_mitbih(300, 8)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)
    assert not np.array_equal(y1, y3)


def test_ptb_same_seed_same_arrays_other_seed_differs():
    X1, y1 = synth.make_ptb(200, 3)
    X2, y2 = synth.make_ptb(200, 3)
    X3, _ = synth.make_ptb(200, 4)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)


@pytest.mark.parametrize("make, n_classes", [(synth.make_mitbih, 5), (synth.make_ptb, 2)])
def test_shapes_dtypes_and_range(make, n_classes):
    X, y = make(500, 1)
    assert X.shape == (500, BEAT_LENGTH) and X.dtype == np.float32
    assert y.shape == (500,) and y.dtype == np.int64
    assert set(np.unique(y)) == set(range(n_classes))
    assert np.isfinite(X).all()
    assert X.min() == 0.0 and X.max() <= 1.0
    # min-max scaled per beat: every beat reaches 1 somewhere
    np.testing.assert_allclose(X.max(axis=1), 1.0)


def test_beats_look_like_kachuee_windows(mitbih):
    X, y = mitbih
    # zero padding after the 1.2 x RR window on most beats (slow hearts fill all 187)
    assert np.mean(X[:, -1] == 0.0) > 0.9
    assert np.mean(X[:, -20:].max(axis=1) == 0.0) > 0.8
    padded_from = BEAT_LENGTH - np.argmax(X[:, ::-1] != 0.0, axis=1)
    assert 80 < np.median(padded_from) < 140  # about 0.64-1.1 s at 125 Hz, like the real rows
    # the window opens on the R peak: normal beats start near 1 and fall quickly
    normal = X[y == 0]
    assert np.median(normal[:, 0]) > 0.8
    assert np.median(normal[:, 8]) < 0.4


def test_normal_beats_resemble_the_real_rows(mitbih, shared_data):
    real = np.loadtxt(shared_data / "kaggle_format_sample.csv", delimiter=",")[:, :BEAT_LENGTH]
    X, y = mitbih
    normal = X[y == 0]
    # same gross statistics as real normal beats: peak at the start, mostly low baseline
    for name, stat in [("start", lambda a: a[:, :2].max(axis=1)),
                       ("level", lambda a: np.median(np.where(a > 0, a, np.nan)[:, 5:60], axis=1))]:
        real_median = np.nanmedian(stat(real))
        synth_median = np.nanmedian(stat(normal))
        assert abs(real_median - synth_median) < 0.2, (name, real_median, synth_median)


def test_mitbih_class_proportions(mitbih):
    _, y = mitbih
    share = np.bincount(y, minlength=5) / len(y)
    np.testing.assert_allclose(share, synth.MITBIH_PROPORTIONS, atol=0.002)
    assert share[0] > 0.8 and share.argmax() == 0
    assert (share > 0).all()


@pytest.mark.parametrize("n", [15, 100, 137])
def test_tiny_sets_have_every_class(n):
    _, y = synth.make_mitbih(n, 5)
    counts = np.bincount(y, minlength=5)
    assert len(y) == n
    assert (counts >= 3).all(), counts
    _, yp = synth.make_ptb(n, 5)
    assert (np.bincount(yp, minlength=2) >= 3).all()


def test_zero_beats():
    X, y = synth.make_mitbih(0, 0)
    assert X.shape == (0, BEAT_LENGTH) and y.shape == (0,)


def test_a_part_of_zero_beats_is_not_written(tmp_path, capsys):
    from ecgsweep import data_cli

    data_cli.main(["synth", "--out", str(tmp_path), "--train", "0", "--ptb", "0",
                   "--test", "40"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mitbih_test.csv"]
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'mitbih_test.csv'}"
    assert len(load_csv(tmp_path / "mitbih_test.csv", use_cache=False)[1]) == 40
    data_cli.main(["synth", "--out", str(tmp_path), "--test", "0", "--ptb", "0",
                   "--train", "40"])  # the test file of before stays, and is named
    assert f"note: {tmp_path / 'mitbih_test.csv'} is left from before" in \
        capsys.readouterr().err


def test_ptb_labels_and_proportions(ptb):
    _, y = ptb
    assert set(np.unique(y)) == {0, 1}
    assert abs(np.mean(y == 0) - 0.28) < 0.01


def test_ptb_abnormal_beats_differ_from_normal(ptb):
    X, y = ptb
    # MI signs change the ST-T part of the window (samples ~10-50 after the R peak)
    st_t = X[:, 10:50]
    gap = np.abs(st_t[y == 1].mean(axis=0) - st_t[y == 0].mean(axis=0)).max()
    assert gap > 0.05


def test_write_dataset_round_trips(tmp_path):
    out = tmp_path / "new" / "folder"
    paths = synth.write_dataset(out, n_train=120, n_test=60, n_ptb=50, seed=3)
    names = [p.name for p in paths]
    assert names == ["mitbih_train.csv", "mitbih_test.csv", "ptbdb_normal.csv",
                     "ptbdb_abnormal.csv"]
    assert all(p.parent == out and p.is_file() for p in paths)

    seeds = synth.derived_seeds(3)
    assert len(set(seeds.values())) == 3
    X_train, y_train = load_csv(out / "mitbih_train.csv", n_classes=5, use_cache=False)
    X_test, y_test = load_csv(out / "mitbih_test.csv", n_classes=5, use_cache=False)
    for (X, y), (Xe, ye) in [((X_train, y_train), synth.make_mitbih(120, seeds["train"])),
                             ((X_test, y_test), synth.make_mitbih(60, seeds["test"]))]:
        np.testing.assert_allclose(X, Xe, atol=1e-7)
        np.testing.assert_array_equal(y, ye)
    assert X_train.shape == (120, BEAT_LENGTH) and X_test.shape == (60, BEAT_LENGTH)
    # different seeds: no test beat is a copy of a training beat
    assert not {tuple(row) for row in X_test[:, :5]} & {tuple(row) for row in X_train[:, :5]}

    X_norm, y_norm = load_csv(out / "ptbdb_normal.csv", n_classes=2, use_cache=False)
    X_abn, y_abn = load_csv(out / "ptbdb_abnormal.csv", n_classes=2, use_cache=False)
    assert (y_norm == 0).all() and (y_abn == 1).all()
    assert len(y_norm) + len(y_abn) == 50
    X_ptb, y_ptb = synth.make_ptb(50, seeds["ptb"])
    np.testing.assert_allclose(X_norm, X_ptb[y_ptb == 0], atol=1e-7)
    np.testing.assert_allclose(X_abn, X_ptb[y_ptb == 1], atol=1e-7)


def test_write_dataset_is_deterministic(tmp_path):
    a = synth.write_dataset(tmp_path / "a", n_train=30, n_test=20, n_ptb=20, seed=9)
    b = synth.write_dataset(tmp_path / "b", n_train=30, n_test=20, n_ptb=20, seed=9)
    for pa, pb in zip(a, b):
        assert pa.read_bytes() == pb.read_bytes()


def test_make_class_gives_beats_of_one_class():
    X = synth.make_class(2, 40, seed=1)
    assert X.shape == (40, BEAT_LENGTH) and X.dtype == np.float32
    assert X.min() >= 0.0 and X.max() <= 1.0
    np.testing.assert_array_equal(X, synth.make_class(2, 40, seed=1))
    assert not np.array_equal(X, synth.make_class(2, 40, seed=2))
    # V beats are wide: far more of the window sits high right after the R peak than for N
    normal = synth.make_class(0, 200, seed=1)
    ventricular = synth.make_class(2, 200, seed=1)
    assert (ventricular[:, 1:6] > 0.6).mean() > (normal[:, 1:6] > 0.6).mean() + 0.1
    assert synth.make_class(1, 10, seed=0, dataset="ptbdb").shape == (10, BEAT_LENGTH)
    with pytest.raises(ValueError, match="label 5"):
        synth.make_class(5, 10, seed=0)
    with pytest.raises(ValueError, match="label 2"):
        synth.make_class(2, 10, seed=0, dataset="ptbdb")
    with pytest.raises(ValueError, match="dataset"):
        synth.make_class(0, 10, seed=0, dataset="nope")


def test_classes_are_learnable_but_not_trivially_separable():
    from sklearn.linear_model import RidgeClassifier
    from sklearn.metrics import f1_score

    # A linear model on raw samples: well above chance (a constant guess scores ~0.18 on
    # 5 classes, ~0.42 on 2), well below perfect (the classes overlap on purpose).
    X, y = synth.make_mitbih(2000, 0)
    Xt, yt = synth.make_mitbih(2000, 1)
    clf = RidgeClassifier(alpha=10.0, class_weight="balanced").fit(X, y)
    macro_f1 = f1_score(yt, clf.predict(Xt), average="macro")
    assert 0.3 < macro_f1 < 0.95, macro_f1

    Xp, yp = synth.make_ptb(1000, 0)
    Xq, yq = synth.make_ptb(1000, 1)
    clf = RidgeClassifier(alpha=10.0).fit(Xp, yp)
    ptb_f1 = f1_score(yq, clf.predict(Xq), average="macro")
    assert 0.55 < ptb_f1 < 0.95, ptb_f1
