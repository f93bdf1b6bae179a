"""Synthetic heartbeats in the Kaggle "ECG Heartbeat Categorization" format.

Each beat is drawn as a sum of Gaussian waves (P, Q, R, S, T), in the spirit of ECGSYN
(McSharry et al., "A dynamical model for generating synthetic electrocardiogram signals",
IEEE Trans. Biomed. Eng. 50(3), 2003), then cut the way Kachuee et al. cut the real data
("ECG Heartbeat Classification: A Deep Transferable Representation", IEEE ICHI 2018):
the window starts at the R peak and spans 1.2 x the median RR interval (so the next
beat's P wave and QRS can show near its end), is min-max scaled to [0, 1] and zero-padded
to 187 samples at 125 Hz.

Classes follow AAMI EC57 for MIT-BIH (N S V F Q = 0..4) and normal/abnormal (0/1) for
PTB. The classes overlap on purpose (bundle-branch-block and atrial-fibrillation beats in
N, isolated supraventricular beats that look sinus, fusion beats anywhere between N and
V), so a classifier scores well but not perfectly, as on the real data.

Everything is vectorised over beats: one (n, waves, 187) evaluation per data set.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .classes import MITBIH_CLASSES, MITBIH_FILES, PTBDB_FILES, PTBDB_CLASSES as PTB_CLASSES
from .kaggle_csv import BEAT_LENGTH, SAMPLE_RATE_HZ, WINDOW_RR, write_csv

FS = float(SAMPLE_RATE_HZ)

# Class shares of the Kaggle mitbih_train.csv (72471, 2223, 5788, 641, 6431 of 87554 beats).
MITBIH_PROPORTIONS = (0.8277, 0.0254, 0.0661, 0.0073, 0.0735)
# ptbdb_normal.csv holds 4046 beats, ptbdb_abnormal.csv 10506.
PTB_PROPORTIONS = (0.2779, 0.7221)
MIN_PER_CLASS = 3  # every class present (for stratified splits) once n allows it

# Wave slots of one beat. EXTRA is a spare slot: R' notch, retrograde P, ST-segment shift.
P, Q, R, S, T, EXTRA, SPIKE = range(7)
N_WAVES = 7


# --------------------------------------------------------------------------- helpers


def _class_counts(n: int, proportions: tuple[float, ...]) -> np.ndarray:
    """Exact class sizes: largest-remainder rounding, then a floor taken from the biggest."""
    p = np.asarray(proportions, dtype=np.float64)
    exact = n * p / p.sum()
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    floor = min(MIN_PER_CLASS, n // len(p))
    for c in range(len(p)):
        while counts[c] < floor:
            counts[c] += 1
            counts[np.argmax(counts)] -= 1
    return counts


def _labels(rng: np.random.Generator, n: int, proportions: tuple[float, ...]) -> np.ndarray:
    counts = _class_counts(n, proportions)
    return rng.permutation(np.repeat(np.arange(len(counts), dtype=np.int64), counts))


class _Beat:
    """Wave parameters of one beat per row: amplitude (mV), centre (s from R), left/right width (s)."""

    def __init__(self, n: int) -> None:
        self.amp = np.zeros((n, N_WAVES))
        self.mu = np.zeros((n, N_WAVES))
        self.sl = np.full((n, N_WAVES), 0.01)
        self.sr = np.full((n, N_WAVES), 0.01)

    def copy(self) -> _Beat:
        other = _Beat(0)
        other.amp, other.mu = self.amp.copy(), self.mu.copy()
        other.sl, other.sr = self.sl.copy(), self.sr.copy()
        return other

    def take(self, mask: np.ndarray, other: _Beat) -> None:
        """Rows in mask get other's waves (other has the same n)."""
        for name in ("amp", "mu", "sl", "sr"):
            getattr(self, name)[mask] = getattr(other, name)[mask]

    def set(self, wave: int, amp=None, mu=None, sl=None, sr=None) -> None:
        """Set one wave's parameters; sr defaults to sl (a symmetric wave)."""
        if amp is not None:
            self.amp[:, wave] = amp
        if mu is not None:
            self.mu[:, wave] = mu
        if sl is not None:
            self.sl[:, wave] = sl
            self.sr[:, wave] = sl if sr is None else sr
        elif sr is not None:
            self.sr[:, wave] = sr


def _sinus(rng: np.random.Generator, rr: np.ndarray) -> _Beat:
    """Normal sinus beats with per-wave amplitude, position and width jitter."""
    n = len(rr)
    u = rng.uniform
    b = _Beat(n)
    r_amp = rng.lognormal(0.0, 0.25, n)
    qt_scale = np.sqrt(rr / 0.8)  # QT shortens with heart rate (Bazett)
    b.set(P, amp=u(0.06, 0.25, n), mu=-u(0.12, 0.20, n), sl=u(0.018, 0.03, n))
    b.set(Q, amp=-u(0.0, 0.15, n) * r_amp, mu=-u(0.02, 0.035, n), sl=u(0.007, 0.012, n))
    b.set(R, amp=r_amp, mu=rng.normal(0.0, 0.002, n), sl=u(0.008, 0.014, n))
    # S depth varies a lot between leads and people: mostly shallow, sometimes deep
    b.set(S, amp=-r_amp * 1.1 * rng.beta(1.3, 3.5, n), mu=u(0.02, 0.04, n),
          sl=u(0.008, 0.014, n))
    # T rises slowly and falls faster: an asymmetric Gaussian
    b.set(T, amp=u(0.08, 0.45, n), mu=u(0.20, 0.30, n) * qt_scale,
          sl=u(0.04, 0.07, n) * qt_scale, sr=u(0.03, 0.05, n) * qt_scale)
    # a small non-specific ST shift on everyone
    b.set(EXTRA, amp=rng.normal(0.0, 0.02, n), mu=u(0.08, 0.14, n), sl=u(0.03, 0.05, n),
          sr=u(0.05, 0.08, n))
    b.set(SPIKE, amp=0.0, mu=0.0, sl=0.005)
    return b


def _wide(rng: np.random.Generator, rr: np.ndarray, sign: np.ndarray, scale: float = 1.0) -> _Beat:
    """A wide, bizarre ventricular complex with a discordant T and no P wave."""
    n = len(rr)
    u = rng.uniform
    b = _Beat(n)
    qt_scale = np.sqrt(rr / 0.8)
    main = sign * u(0.9, 2.2, n) * scale
    b.set(P, amp=0.0, mu=-0.16, sl=0.025)
    b.set(Q, amp=-sign * u(0.0, 0.5, n), mu=-u(0.04, 0.07, n), sl=u(0.015, 0.03, n))
    b.set(R, amp=main, mu=rng.normal(0.0, 0.003, n), sl=u(0.02, 0.04, n), sr=u(0.025, 0.05, n))
    b.set(S, amp=-sign * u(0.1, 0.9, n), mu=u(0.05, 0.09, n), sl=u(0.02, 0.04, n))
    b.set(T, amp=-sign * u(0.2, 0.8, n), mu=u(0.26, 0.36, n) * qt_scale,
          sl=u(0.06, 0.09, n) * qt_scale, sr=u(0.04, 0.06, n) * qt_scale)
    b.set(EXTRA, amp=0.0, mu=0.1, sl=0.04)
    b.set(SPIKE, amp=0.0, mu=0.0, sl=0.005)
    return b


def _blend(a: _Beat, b: _Beat, w: np.ndarray) -> _Beat:
    """Parameter-wise mix: w=1 gives a, w=0 gives b (fusion of two activation fronts)."""
    out = _Beat(0)
    w = w[:, None]
    out.amp = w * a.amp + (1 - w) * b.amp
    out.mu = w * a.mu + (1 - w) * b.mu
    out.sl = w * a.sl + (1 - w) * b.sl
    out.sr = w * a.sr + (1 - w) * b.sr
    return out


def _jitter(rng: np.random.Generator, b: _Beat, scale: float = 1.0) -> _Beat:
    """Small independent changes, so the next beat is not an exact copy of this one."""
    out = b.copy()
    n = out.amp.shape[0]
    out.amp *= rng.lognormal(0.0, 0.08 * scale, (n, N_WAVES))
    out.mu += rng.normal(0.0, 0.003 * scale, (n, N_WAVES))
    widen = rng.lognormal(0.0, 0.05 * scale, (n, N_WAVES))
    out.sl *= widen
    out.sr *= widen
    return out


def _render(rng: np.random.Generator, this: _Beat, nxt: _Beat, rr_med: np.ndarray,
            rr_next: np.ndarray, fiducial: np.ndarray,
            af: np.ndarray | None = None) -> np.ndarray:
    """Sample both beats plus noise on each beat's window, then scale and pad like Kachuee."""
    n = len(rr_med)
    u = rng.uniform
    k = np.arange(BEAT_LENGTH)
    # the R-peak detector is off by a sample or so; paced beats may lock onto the spike
    t0 = fiducial + u(-0.014, 0.006, n)
    t = t0[:, None] + k[None, :] / FS  # (n, 187) seconds from this beat's R peak
    length = np.minimum(BEAT_LENGTH, np.round(WINDOW_RR * rr_med * FS).astype(np.int64))
    valid = k[None, :] < length[:, None]

    # The waves in float32: its exp is vectorised (SIMD) and ~10x faster than float64's;
    # z is capped so far tails do not fall into slow denormal arithmetic.
    def stack(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.concatenate([a, b], axis=1).astype(np.float32)[:, :, None]

    amp = stack(this.amp, nxt.amp)
    mu = stack(this.mu, nxt.mu + rr_next[:, None])
    sl, sr = stack(this.sl, nxt.sl), stack(this.sr, nxt.sr)
    t32 = t.astype(np.float32)[:, None, :]
    x = np.empty((n, BEAT_LENGTH))
    for i in range(0, n, 512):  # in blocks that stay in cache
        rows = slice(i, i + 512)
        d = t32[rows] - mu[rows]
        z = d / np.where(d < 0, sl[rows], sr[rows])
        e = np.exp(-np.minimum(np.float32(0.5) * z * z, np.float32(60.0)))
        x[rows] = (amp[rows] * e).sum(axis=1)

    # baseline wander (respiration, electrode motion): a slow sine, often just a slope here
    x += u(0.0, 0.2, n)[:, None] * np.sin(
        2 * np.pi * u(0.1, 0.6, n)[:, None] * t + u(0, 2 * np.pi, n)[:, None])
    # measurement noise
    x += u(0.005, 0.03, n)[:, None] * rng.standard_normal((n, BEAT_LENGTH))
    # occasional muscle (EMG) noise: a burst of broadband noise somewhere in the window
    emg = (rng.random(n) < 0.12) * u(0.03, 0.12, n)
    centre = u(0.0, 1.0, n) * length / FS + t0
    envelope = np.exp(-0.5 * ((t - centre[:, None]) / u(0.1, 0.4, n)[:, None]) ** 2)
    x += emg[:, None] * envelope * rng.standard_normal((n, BEAT_LENGTH))
    # atrial fibrillation: fibrillatory f-waves at 4-8 Hz instead of P waves
    f_amp = u(0.02, 0.08, n) * (af if af is not None else 0.0)
    x += f_amp[:, None] * np.sin(2 * np.pi * u(4, 8, n)[:, None] * t + u(0, 2 * np.pi, n)[:, None])

    # min-max over the window only, then the zero padding of the Kaggle files
    lo = np.where(valid, x, np.inf).min(axis=1, keepdims=True)
    hi = np.where(valid, x, -np.inf).max(axis=1, keepdims=True)
    scaled = (x - lo) / np.maximum(hi - lo, 1e-9)
    return np.where(valid, scaled, 0.0).astype(np.float32)


def _base_rr(rng: np.random.Generator, n: int) -> np.ndarray:
    """Median RR (s) of the beat's 10-s strip: heart rate around 75 bpm, 45 to 150."""
    hr = np.clip(rng.lognormal(np.log(75.0), 0.18, n), 45.0, 150.0)
    return 60.0 / hr


# --------------------------------------------------------------------------- MIT-BIH


def make_mitbih(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic MIT-BIH beats: X float32 (n, 187) in [0, 1], y int64 in 0..4 (N S V F Q).

    Class shares follow the Kaggle training file; with n >= 15 every class has at least
    3 beats. The same (n, seed) always gives the same arrays.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    y = _labels(rng, n, MITBIH_PROPORTIONS)
    return _mitbih_beats(rng, y), y


def _mitbih_beats(rng: np.random.Generator, y: np.ndarray) -> np.ndarray:
    """The beats of the given MIT-BIH labels (the random stream depends only on len(y)).

    Every template is drawn for all n rows and then selected by class, so the random stream
    (and hence the output) depends only on (n, seed); the class steps below run in a fixed
    order for the same reason.
    """
    rr_med = _base_rr(rng, len(y))
    sinus = _sinus(rng, rr_med)
    this, nxt, rr_next, af = _normal(rng, y, sinus, rr_med)
    rr_med, rr_next = _supraventricular(rng, y == 1, sinus, rr_med, rr_next, this, nxt)
    rr_next = _ventricular(rng, y == 2, sinus, rr_med, rr_next, this, nxt)
    rr_next = _fusion(rng, y == 3, sinus, rr_med, rr_next, this, nxt)
    rr_med, rr_next, fiducial = _paced(rng, y == 4, sinus, rr_med, rr_next, this, nxt)
    return _render(rng, this, nxt, rr_med, rr_next, fiducial, af=af.astype(np.float64))


def _normal(rng: np.random.Generator, y: np.ndarray, sinus, rr_med: np.ndarray):
    """N for every row: sinus rhythm with heart-rate variability, plus the N-labelled
    look-alikes of MIT-BIH: bundle branch block (wide QRS, P present) and atrial
    fibrillation (no P). Returns (this beat, next beat, next RR, AF mask)."""
    n, u = len(y), rng.uniform
    this = sinus.copy()
    bbb = rng.random(n) < 0.12
    widen = u(1.8, 3.0, n)
    this.sl[bbb, R] *= widen[bbb]
    this.sr[bbb, R] *= widen[bbb]
    this.sl[bbb, S] *= widen[bbb]
    this.sr[bbb, S] *= widen[bbb]
    rsr = bbb & (rng.random(n) < 0.5)  # RBBB: an R' notch after the R
    this.amp[rsr, EXTRA] = (this.amp[:, R] * u(0.3, 0.8, n))[rsr]
    this.mu[rsr, EXTRA] = u(0.04, 0.07, n)[rsr]
    this.sl[rsr, EXTRA] = this.sr[rsr, EXTRA] = u(0.012, 0.022, n)[rsr]
    discordant = bbb & (rng.random(n) < 0.6)
    this.amp[discordant, T] *= -u(0.3, 1.0, n)[discordant]
    af = (rng.random(n) < 0.05) & (y == 0)
    this.amp[af, P] = 0.0
    rr_next = rr_med * (1.0 + rng.normal(0.0, 0.05, n))
    rr_next = np.where(af, rr_med * u(0.7, 1.35, n), rr_next)
    return this, _jitter(rng, this), rr_next, af


def _supraventricular(rng: np.random.Generator, s: np.ndarray, sinus, rr_med: np.ndarray,
                      rr_next: np.ndarray, this, nxt) -> tuple[np.ndarray, np.ndarray]:
    """S rows (``s``): supraventricular premature beats. Isolated ones are sinus-looking,
    followed by a non-compensatory pause; runs (SVT) raise the rate and the next beat is
    ectopic too, with an inverted or early P; junctional ones show a retrograde P after the
    QRS. Updates ``this``/``nxt``; returns (RR, next RR)."""
    n, u = len(s), rng.uniform
    run = s & (rng.random(n) < 0.5)
    s_rr = np.where(run, rr_med * u(0.55, 0.8, n), rr_med)
    s_this = sinus.copy()
    aberrant = rng.random(n) < 0.15
    s_this.sl[aberrant, R] *= 1.6
    s_this.sr[aberrant, R] *= 1.6
    s_this.amp[:, T] *= u(0.7, 1.2, n)
    s_this.amp[:, P] = -u(0.0, 0.15, n)  # ectopic P (before the window, kept for truth)
    s_this.mu[:, P] = -u(0.08, 0.14, n)
    junctional = rng.random(n) < 0.4
    s_this.amp[junctional, EXTRA] = -u(0.08, 0.2, n)[junctional]
    s_this.mu[junctional, EXTRA] = u(0.06, 0.12, n)[junctional]
    s_this.sl[junctional, EXTRA] = s_this.sr[junctional, EXTRA] = u(0.015, 0.025, n)[junctional]
    s_next = _jitter(rng, sinus)
    ectopic_next = _jitter(rng, s_this)
    ectopic_next.amp[:, P] = np.where(rng.random(n) < 0.8, -u(0.08, 0.25, n), u(0.0, 0.06, n))
    ectopic_next.mu[:, P] = -u(0.08, 0.13, n)
    s_next.take(run, ectopic_next)
    s_rr_next = np.where(run, s_rr * (1.0 + rng.normal(0.0, 0.03, n)), rr_med * u(1.15, 1.45, n))
    this.take(s, s_this)
    nxt.take(s, s_next)
    return np.where(s, s_rr, rr_med), np.where(s, s_rr_next, rr_next)


def _ventricular(rng: np.random.Generator, v: np.ndarray, sinus, rr_med: np.ndarray,
                 rr_next: np.ndarray, this, nxt) -> np.ndarray:
    """V rows: premature ventricular complexes, mostly followed by a compensatory pause (so
    the next sinus beat falls at or past the window's end); a few are interpolated."""
    n, u = len(v), rng.uniform
    sign = np.where(rng.random(n) < 0.7, 1.0, -1.0)
    v_this = _wide(rng, rr_med, sign)
    coupling = u(0.5, 0.85, n)
    interpolated = rng.random(n) < 0.1
    v_rr_next = np.where(interpolated, rr_med * (1.0 - coupling) + 0.1, rr_med * (2.0 - coupling))
    this.take(v, v_this)
    nxt.take(v, _jitter(rng, sinus))
    return np.where(v, v_rr_next, rr_next)


def _fusion(rng: np.random.Generator, f: np.ndarray, sinus, rr_med: np.ndarray,
            rr_next: np.ndarray, this, nxt) -> np.ndarray:
    """F rows: fusion of a sinus and a ventricular beat, anywhere between the two shapes;
    the atria fire normally so the P wave stays."""
    n, u = len(f), rng.uniform
    w = u(0.25, 0.75, n)
    f_this = _blend(sinus, _wide(rng, rr_med, np.ones(n)), w)
    f_this.amp[:, P] = sinus.amp[:, P]
    f_this.mu[:, P] = sinus.mu[:, P]
    # the ventricular front arrives a little later than the sinus one: a slurred, notched QRS
    f_this.set(EXTRA, amp=(1 - w) * u(0.4, 1.0, n), mu=u(0.02, 0.06, n), sl=u(0.02, 0.035, n))
    this.take(f, f_this)
    nxt.take(f, _jitter(rng, sinus))
    return np.where(f, rr_med * u(1.0, 1.2, n), rr_next)


def _paced(rng: np.random.Generator, q: np.ndarray, sinus, rr_med: np.ndarray,
           rr_next: np.ndarray, this, nxt) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Q rows: paced beats at a fixed pacemaker rate: a sharp spike just before a wide
    complex, the same again at the end of the window. Half track a sinus P (dual chamber).
    Returns (RR, next RR, fiducial offset: where the window starts, 0 but on a spike)."""
    n, u = len(q), rng.uniform
    q_rr = 60.0 / u(58.0, 85.0, n)
    q_this = _wide(rng, q_rr, np.where(rng.random(n) < 0.85, 1.0, -1.0), scale=0.8)
    spike_sign = np.where(rng.random(n) < 0.75, 1.0, -1.0)
    q_this.set(SPIKE, amp=spike_sign * u(0.2, 2.5, n), mu=-u(0.03, 0.06, n), sl=u(0.003, 0.007, n))
    tracked = rng.random(n) < 0.5
    q_this.amp[tracked, P] = sinus.amp[tracked, P]
    q_this.mu[:, P] = -u(0.12, 0.2, n)
    q_this.sl[:, P] = q_this.sr[:, P] = sinus.sl[:, P]
    # a big spike is what the R-peak detector finds: the window then starts there
    on_spike = (np.abs(q_this.amp[:, SPIKE]) > np.abs(q_this.amp[:, R])) & (rng.random(n) < 0.7)
    this.take(q, q_this)
    nxt.take(q, _jitter(rng, q_this, scale=0.5))
    rr_med = np.where(q, q_rr, rr_med)
    rr_next = np.where(q, q_rr * (1.0 + rng.normal(0.0, 0.005, n)), rr_next)
    return rr_med, rr_next, np.where(q & on_spike, q_this.mu[:, SPIKE], 0.0)


# --------------------------------------------------------------------------- PTB


def make_ptb(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic PTB beats: X float32 (n, 187) in [0, 1], y int64 (0 normal, 1 abnormal).

    Abnormal beats carry one or more signs of myocardial infarction, each of random
    severity (mild ones look nearly normal): ST elevation or depression, T-wave
    inversion, a pathological (deep, wide) Q wave with loss of R height. The signs are
    persistent, so the next beat at the window's end carries them too.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    y = _labels(rng, n, PTB_PROPORTIONS)
    return _ptb_beats(rng, y), y


def _ptb_beats(rng: np.random.Generator, y: np.ndarray) -> np.ndarray:
    """The beats of the given PTB labels (the random stream depends only on len(y))."""
    n = len(y)
    u = rng.uniform
    rr_med = _base_rr(rng, n)
    this = _sinus(rng, rr_med)
    mi = y == 1

    st_elev = rng.random(n) < 0.4
    st_dep = ~st_elev & (rng.random(n) < 0.35)
    t_inv = rng.random(n) < 0.45
    path_q = rng.random(n) < 0.45
    none = ~(st_elev | st_dep | t_inv | path_q)
    pick = rng.integers(0, 4, n)  # an abnormal beat shows at least one sign
    st_elev |= none & (pick == 0)
    st_dep |= none & (pick == 1)
    t_inv |= none & (pick == 2)
    path_q |= none & (pick == 3)
    severity = rng.beta(2.0, 2.0, n)  # 0 = barely visible, 1 = textbook

    r_amp = this.amp[:, R]
    # ST elevation: the ST segment lifts into the T wave ("tombstone" when severe)
    m = mi & st_elev
    this.amp[m, EXTRA] = (r_amp * (0.05 + 0.45 * severity))[m]
    this.mu[m, EXTRA] = u(0.09, 0.14, n)[m]
    this.sl[m, EXTRA] = u(0.04, 0.06, n)[m]
    this.sr[m, EXTRA] = u(0.07, 0.11, n)[m]
    # ST depression: a sagging ST segment with a flattened T
    m = mi & st_dep
    this.amp[m, EXTRA] = -(r_amp * (0.04 + 0.3 * severity))[m]
    this.amp[m, T] *= (1.0 - 0.6 * severity)[m]
    # T-wave inversion
    m = mi & t_inv
    this.amp[m, T] = -np.abs(this.amp[m, T]) * (0.3 + 0.9 * severity[m])
    # pathological Q with loss of R: deeper, wider Q, smaller R (visible in the next beat;
    # in this beat the smaller R makes everything after it relatively bigger)
    m = mi & path_q
    this.amp[m, Q] = -(r_amp * (0.25 + 0.6 * severity))[m]
    this.sl[m, Q] = this.sr[m, Q] = u(0.015, 0.025, n)[m]
    this.mu[m, Q] = -u(0.025, 0.04, n)[m]
    this.amp[m, R] *= (1.0 - 0.6 * severity)[m]

    rr_next = rr_med * (1.0 + rng.normal(0.0, 0.05, n))
    nxt = _jitter(rng, this)
    return _render(rng, this, nxt, rr_med, rr_next, np.zeros(n))


# --------------------------------------------------------------------------- one class


def make_class(label: int, n: int, seed: int, dataset: str = "mitbih") -> np.ndarray:
    """``n`` synthetic beats of one class: X float32 (n, 187), for augmenting rare classes.

    ``dataset`` picks the generator: "mitbih" (labels 0..4, N S V F Q) or "ptbdb"
    (0 normal, 1 abnormal). The morphology is that of ``make_mitbih`` / ``make_ptb``; only
    the class mix differs. The same (label, n, seed, dataset) always gives the same beats.
    """
    generators = {"mitbih": (MITBIH_CLASSES, _mitbih_beats), "ptbdb": (PTB_CLASSES, _ptb_beats)}
    if dataset not in generators:
        raise ValueError(f"dataset must be one of {', '.join(generators)}, got {dataset!r}")
    classes, beats = generators[dataset]
    if not 0 <= label < len(classes):
        raise ValueError(f"label {label} is not a {dataset} class (0..{len(classes) - 1})")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return beats(np.random.default_rng(seed), np.full(n, label, dtype=np.int64))


# --------------------------------------------------------------------------- files


def derived_seeds(seed: int) -> dict[str, int]:
    """Independent seeds for the train, test and PTB files (numpy SeedSequence spawn)."""
    children = np.random.SeedSequence(seed).spawn(3)
    return {name: int(child.generate_state(1, dtype=np.uint32)[0])
            for name, child in zip(("train", "test", "ptb"), children)}


def write_dataset(out_dir: str | os.PathLike, n_train: int = 6000, n_test: int = 2000,
                  n_ptb: int = 2000, seed: int = 0) -> list[Path]:
    """Write mitbih_train.csv, mitbih_test.csv, ptbdb_normal.csv and ptbdb_abnormal.csv;
    a part asked for 0 beats is not written (an empty CSV is no data set).

    The three parts use different seeds from ``derived_seeds(seed)``, so no test beat is
    a copy of a training beat. Returns the paths written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seeds = derived_seeds(seed)
    written = []
    for part, n in (("train", n_train), ("test", n_test)):
        if n > 0:
            written.append(write_csv(out / MITBIH_FILES[part], *make_mitbih(n, seeds[part])))
    if n_ptb > 0:
        X_ptb, y_ptb = make_ptb(n_ptb, seeds["ptb"])
        for label, part in enumerate(("normal", "abnormal")):
            if (y_ptb == label).any():
                written.append(write_csv(out / PTBDB_FILES[part], X_ptb[y_ptb == label],
                                         y_ptb[y_ptb == label]))
    return written
