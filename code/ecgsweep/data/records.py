"""MIT-BIH Arrhythmia Database record lists and the AAMI beat classes, in one place.

Sources
-------
- Records: Moody GB, Mark RG. "The impact of the MIT-BIH Arrhythmia Database."
  IEEE Eng Med Biol 20(3):45-50 (2001); https://physionet.org/content/mitdb/1.0.0/
  (48 half-hour two-lead records, 360 Hz).
- Inter-patient split: de Chazal P, O'Dwyer M, Reilly RB. "Automatic classification of
  heartbeats using ECG morphology and heartbeat interval features."
  IEEE Trans Biomed Eng 51(7):1196-1206 (2004). DS1 (training) and DS2 (testing) hold
  22 records each and share no patient; the four records with paced beats are left out.
- Classes and the paced-record exclusion: ANSI/AAMI EC57:1998/(R)2008 (and 2012),
  "Testing and reporting performance results of cardiac rhythm and ST segment
  measurement algorithms". Beat annotation symbols are PhysioNet's (``wfdb`` labels).

Records 201 and 202 come from the same patient; both DS lists follow de Chazal as
published (201 in DS1, 202 in DS2).
"""

from __future__ import annotations

from .classes import MITBIH_CLASSES

# All 48 records of the MIT-BIH Arrhythmia Database.
ALL_RECORDS: tuple[str, ...] = (
    "100", "101", "102", "103", "104", "105", "106", "107", "108", "109",
    "111", "112", "113", "114", "115", "116", "117", "118", "119", "121",
    "122", "123", "124", "200", "201", "202", "203", "205", "207", "208",
    "209", "210", "212", "213", "214", "215", "217", "219", "220", "221",
    "222", "223", "228", "230", "231", "232", "233", "234",
)

# de Chazal et al. 2004, Table I: training set.
DS1: tuple[str, ...] = (
    "101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122",
    "124", "201", "203", "205", "207", "208", "209", "215", "220", "223", "230",
)

# de Chazal et al. 2004, Table I: testing set.
DS2: tuple[str, ...] = (
    "100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210",
    "212", "213", "214", "219", "221", "222", "228", "231", "232", "233", "234",
)

# Records with paced beats, excluded by AAMI EC57 (and so from DS1 and DS2).
PACED: tuple[str, ...] = ("102", "104", "107", "217")

# AAMI EC57 classes, in label order: 0..4 as in the Kaggle CSVs.
CLASS_NAMES = MITBIH_CLASSES

# PhysioNet beat annotation symbol -> AAMI class name.
AAMI_CLASSES: dict[str, tuple[str, ...]] = {
    "N": ("N", "L", "R", "e", "j"),  # normal, LBBB, RBBB, atrial escape, nodal escape
    "S": ("A", "a", "J", "S"),  # atrial, aberrated atrial, nodal, supraventricular premature
    "V": ("V", "E"),  # premature ventricular contraction, ventricular escape
    "F": ("F",),  # fusion of ventricular and normal
    "Q": ("/", "f", "Q"),  # paced, fusion of paced and normal, unclassifiable
}

SYMBOL_TO_CLASS: dict[str, str] = {s: c for c, syms in AAMI_CLASSES.items() for s in syms}
SYMBOL_TO_LABEL: dict[str, int] = {s: CLASS_NAMES.index(c) for s, c in SYMBOL_TO_CLASS.items()}

# QRS annotations that AAMI does not map to a class (PhysioNet beat codes): they are not
# turned into training rows, but they are heartbeats, so they count for the RR interval.
# B: bundle branch block beat (unspecified), r: R-on-T PVC, n: supraventricular escape,
# ?: beat not classified during learning, !: ventricular flutter wave.
OTHER_QRS_SYMBOLS: tuple[str, ...] = ("B", "r", "n", "?", "!")
QRS_SYMBOLS: frozenset[str] = frozenset(SYMBOL_TO_CLASS) | frozenset(OTHER_QRS_SYMBOLS)


def _check_lists() -> None:
    assert len(ALL_RECORDS) == 48 and len(set(ALL_RECORDS)) == 48
    assert len(DS1) == len(DS2) == 22
    assert not set(DS1) & set(DS2)
    assert not (set(DS1) | set(DS2)) & set(PACED)
    assert set(DS1) | set(DS2) | set(PACED) == set(ALL_RECORDS)


_check_lists()


def listed_records(text: str, otherwise: str) -> list[str]:
    """The record names of a ``--records`` value, separated by commas; UserError when it
    names none (an empty value, say an unset shell variable), saying what ``otherwise``
    the option takes."""
    from ..cli import UserError

    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UserError(f"--records {text!r}: no record names; give them separated by commas "
                        f"(e.g. 100,101), {otherwise}")
    return names
