"""Holter-style beat templates: within one record, beats of one shape share one V verdict.

A ventricular beat is told by its shape (a wide QRS that did not come down the conduction
system); a premature supraventricular beat looks like the patient's normal beats and is told
by its timing. Holter systems therefore group each recording's beats into morphology
templates and label the templates, not single beats. ``v_template_clusters`` does the same
after the model: each record's beats are clustered by waveform (k-means over the first
``TEMPLATE_SECONDS`` of each row: the QRS and ST segment, in the Kaggle layout that starts at
the R peak), and every beat's V probability becomes the mean over its template; the other
classes are rescaled to fill the rest, so S, told by timing, keeps its share of it. A
normal-looking beat the model alone calls V, among a template of beats it calls N, loses the
call. Each record is clustered on its own: no beat's verdict depends on another patient.

The same templates find the ventricular beats a model trained on one lead misses in
another (``v_novel_templates``): a Holter system calls ventricular a class of beats that
both look unlike the patient's dominant beat and come early, whatever the lead. A template
is novel when its mean shape lies far from the dominant template's, measured in the
dominant template's own spread, so the rule scales with each record's noise and amplitude.
"""

from __future__ import annotations

import hashlib

import numpy as np

from .data.kaggle_csv import SAMPLE_RATE_HZ

TEMPLATE_SECONDS = 0.4  # from the R peak: the end of the QRS and the ST segment
TEMPLATE_SAMPLES = round(TEMPLATE_SECONDS * SAMPLE_RATE_HZ)
KMEANS_SEED = 0  # templates depend on the beats alone, never on the run's seed


# A run validates the same beats every epoch: their templates are clustered once, keyed by
# the beats' content (a digest), so the cache can never hand one split's labels to another.
_CACHED_LABELS: dict[tuple[str, int], np.ndarray] = {}
_CACHE_ENTRIES = 4


def template_labels(X: np.ndarray, records: np.ndarray, n_clusters: int) -> np.ndarray:
    """Per beat, the id of its template: k-means with ``n_clusters`` (fewer in a record of
    fewer beats) over the first ``TEMPLATE_SAMPLES`` of each row, run record by record; ids
    are unique across records."""
    shapes = np.ascontiguousarray(np.asarray(X)[:, :TEMPLATE_SAMPLES], dtype=np.float64)
    records = np.asarray(records).astype(str)
    digest = hashlib.blake2b(shapes.tobytes() + "\0".join(records).encode(),
                             digest_size=16).hexdigest()
    key = (digest, int(n_clusters))
    if key not in _CACHED_LABELS:
        if len(_CACHED_LABELS) >= _CACHE_ENTRIES:
            _CACHED_LABELS.pop(next(iter(_CACHED_LABELS)))  # the oldest
        _CACHED_LABELS[key] = _cluster_by_record(shapes, records, int(n_clusters))
    return _CACHED_LABELS[key].copy()


def _cluster_by_record(shapes: np.ndarray, records: np.ndarray, n_clusters: int) -> np.ndarray:
    """k-means of each record's rows of ``shapes`` on its own; ids offset per record."""
    from sklearn.cluster import KMeans

    labels = np.empty(len(records), dtype=np.int64)
    next_id = 0
    for record in np.unique(records):
        rows = np.flatnonzero(records == record)
        k = min(n_clusters, len(rows))
        found = (KMeans(n_clusters=k, n_init=3, random_state=KMEANS_SEED).fit_predict(shapes[rows])
                 if k > 1 else np.zeros(len(rows), dtype=np.int64))
        labels[rows] = next_id + found
        next_id += k
    return labels


def share_v_probability(probs: np.ndarray, labels: np.ndarray, v_index: int) -> np.ndarray:
    """``probs`` (n, k) with each beat's V probability replaced by its template's mean and
    its other classes rescaled, in proportion, to the rest: rows still sum to 1."""
    probs = np.asarray(probs, dtype=np.float64)
    counts = np.bincount(labels)
    mean_v = np.bincount(labels, weights=probs[:, v_index]) / np.maximum(counts, 1)
    shared_v = mean_v[labels]
    others = np.delete(np.arange(probs.shape[1]), v_index)
    rest = probs[:, others]
    rest_sum = rest.sum(axis=1, keepdims=True)
    # a beat whose other classes sum to 0 (the model was sure of V) shares the rest evenly
    scaled = np.where(rest_sum > 0, rest / np.where(rest_sum > 0, rest_sum, 1.0),
                      1.0 / len(others))
    out = np.empty_like(probs)
    out[:, others] = scaled * (1.0 - shared_v)[:, None]
    out[:, v_index] = shared_v
    return out


def novel_premature_templates(X: np.ndarray, records: np.ndarray, labels: np.ndarray,
                              premature: np.ndarray, novelty: float,
                              premature_share: float) -> np.ndarray:
    """Per beat, whether it belongs to a novel, premature template of its record: not the
    record's dominant template (the one of most beats), its mean shape more than
    ``novelty`` spreads of the dominant template from the dominant's mean shape (the
    spread: the dominant's beats' median distance from their mean), and at least
    ``premature_share`` of its beats ``premature``. Shapes are the rows' first
    ``TEMPLATE_SAMPLES``, as the templates were clustered on."""
    shapes = np.asarray(X)[:, :TEMPLATE_SAMPLES].astype(np.float64)
    records = np.asarray(records).astype(str)
    labels, premature = np.asarray(labels), np.asarray(premature, dtype=bool)
    chosen = np.zeros(len(labels), dtype=bool)
    for record in np.unique(records):
        rows = np.flatnonzero(records == record)
        chosen[rows] = _novel_premature_in_record(shapes[rows], labels[rows], premature[rows],
                                                  novelty, premature_share)
    return chosen


def _novel_premature_in_record(shapes: np.ndarray, labels: np.ndarray, premature: np.ndarray,
                               novelty: float, premature_share: float) -> np.ndarray:
    ids, counts = np.unique(labels, return_counts=True)
    dominant = ids[counts.argmax()]
    centre = shapes[labels == dominant].mean(axis=0)
    spread = float(np.median(np.linalg.norm(shapes[labels == dominant] - centre, axis=1)))
    chosen = np.zeros(len(labels), dtype=bool)
    for template in ids[ids != dominant]:
        members = labels == template
        distance = float(np.linalg.norm(shapes[members].mean(axis=0) - centre))
        if distance > novelty * spread and premature[members].mean() >= premature_share:
            chosen[members] = True
    return chosen

