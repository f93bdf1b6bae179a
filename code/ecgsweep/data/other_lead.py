"""Training beats from another lead of the development records (config key
``other_lead_data``).

The same records converted in another lead (``code/data.py wfdb --split train --lead
other``) show the model each beat as a second lead sees it, so it learns shapes that do not
belong to MLII alone. Their beats join a fold's training part only for the records that
fold trains on, so a held-out patient is never seen in any lead; they never join the
validation part, which stays in the development data's own lead. Each record's beats in
the other lead count as a record of their own (``<record>+other-lead``), so what is
computed per record (the median beat of ``beat_normalization``, the rhythm's reference)
is computed per lead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..cli import UserError
from .datasets import Split

RECORD_SUFFIX = "+other-lead"


def base_records(records: np.ndarray) -> np.ndarray:
    """The development records the other-lead beats come from (the suffix taken off)."""
    return np.array([str(r).removesuffix(RECORD_SUFFIX) for r in records])


def checked(other: Split, dev: Split, where: str | Path) -> Split:
    """``other`` with its records renamed ``<record>+other-lead``, after checking that it
    has a sidecar, rows as wide as ``dev``'s and no record that ``dev`` lacks; UserError
    naming ``where`` otherwise."""
    if dev.records is None:
        raise UserError("config key 'other_lead_data': the development data has no beat "
                        "sidecar naming each beat's record, so no fold knows which of "
                        f"{where}'s beats it may train on")
    if other.records is None:
        raise UserError(f"config key 'other_lead_data': {where} has no beat sidecar naming "
                        "each beat's record; convert it with `python code/data.py wfdb "
                        "--split train --lead other`")
    if other.X.shape[1] != dev.X.shape[1]:
        raise UserError(f"config key 'other_lead_data': {where} has rows of "
                        f"{other.X.shape[1]} samples, the development data "
                        f"{dev.X.shape[1]}; convert both with the same --beat-samples")
    unknown = sorted(set(map(str, other.records)) - set(map(str, dev.records)))
    if unknown:
        raise UserError(f"config key 'other_lead_data': {where} holds records the development "
                        f"data does not ({', '.join(unknown)}); convert the same records")
    renamed = np.array([f"{r}{RECORD_SUFFIX}" for r in other.records])
    return Split(other.X, other.y, renamed, other.rr, other.r_peak)


def for_training(other: Split, train: Split) -> Split:
    """The beats of ``other`` from the records ``train`` holds."""
    keep = np.isin(base_records(other.records), np.unique(train.records.astype(str)))
    return other.take(keep)
