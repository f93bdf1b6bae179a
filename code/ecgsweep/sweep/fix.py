"""The mechanical fixes of ``code/sweep.py check --fix``: a sweep config in, the fixed copy
and one ``Change`` per edit out. Nothing here reads or writes files.

Mechanical means one right answer, so the fix never guesses what the author meant:

1. numbers PyYAML reads as strings because of how their exponent is written (``1e-4`` is
   the string '1e-4', as is ``1.0e5``) in min, max, mu, sigma, q, a, b, value and values
   become floats;
2. old-style ``log_uniform``, ``q_log_uniform`` and ``inv_log_uniform`` (bounds are
   exponents of e) become their ``_values`` form when the bounds are surely values
   (``config.log_bounds_are_values``: 0 < min < max <= 1);
3. entries listed twice in ``values`` are dropped (kept when ``probabilities`` is given:
   which weight goes with which entry is for the author to say).

Everything else the linter reports is left as it is.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import config as sweep_config
from .program import ANY_PROGRAM, ProgramHooks


@dataclass(frozen=True)
class Change:
    """One edit: ``field`` is the path (parameters.lr.min), ``old`` and ``new`` its values."""

    field: str
    old: Any
    new: Any
    why: str

    def __str__(self) -> str:
        return f"{self.field}: {_show(self.old)} -> {_show(self.new)} ({self.why})"


def _show(v: Any) -> str:
    return repr(v) if isinstance(v, str) else str(v)


def fix(cfg: dict[str, Any], *,
        program: ProgramHooks = ANY_PROGRAM) -> tuple[dict[str, Any], list[Change]]:
    """The config with every mechanical fix applied, and the changes in file order."""
    fixed = copy.deepcopy(cfg)
    section = fixed.get("parameters")
    if not isinstance(section, dict):
        return fixed, []
    return fixed, _fix_section(section, "parameters", _text_params(fixed, section, program))


def _text_params(cfg: dict, section: dict, program: ProgramHooks) -> set[str]:
    """Parameters the program says take text: their `1e5` may well be meant as a string."""
    if not program.owns(cfg):
        return set()
    rules = (program.parameter(str(name)) for name in section)
    return {rule.name for rule in rules if rule is not None and rule.kind is str}


def _fix_section(section: dict, prefix: str, text_params: set[str]) -> list[Change]:
    """Fix each parameter spec of one `parameters:` mapping in place, nested ones included."""
    changes: list[Change] = []
    for name, spec in section.items():
        field = f"{prefix}.{name}"
        if not isinstance(spec, dict):
            continue
        if isinstance(spec.get("parameters"), dict):
            changes += _fix_section(spec["parameters"], f"{field}.parameters", set())
            continue
        changes += _fix_string_numbers(field, spec, takes_text=str(name) in text_params)
        changes += _fix_log_distribution(field, spec)
        changes += _fix_repeated_values(field, spec)
    return changes


def _as_number(v: Any) -> float | None:
    """The float a string such as '1e-4' was meant to be; None for anything else."""
    if isinstance(v, str) and sweep_config.STRING_EXPONENT_RE.match(v.strip()):
        return float(v)
    return None


def _fix_string_numbers(field: str, spec: dict, *, takes_text: bool) -> list[Change]:
    why = "YAML read it as a string"
    changes: list[Change] = []
    keys = list(sweep_config.NUMERIC_SPEC_KEYS) + ([] if takes_text else ["value"])
    for key in keys:
        number = _as_number(spec.get(key))
        if number is not None:
            changes.append(Change(f"{field}.{key}", spec[key], number, why))
            spec[key] = number
    values = spec.get("values")
    if isinstance(values, list) and not takes_text:
        for i, v in enumerate(values):
            number = _as_number(v)
            if number is not None:
                changes.append(Change(f"{field}.values[{i}]", v, number, why))
                values[i] = number
    return changes


def _fix_log_distribution(field: str, spec: dict) -> list[Change]:
    old = spec.get("distribution")
    new = sweep_config.OLD_LOG_TO_VALUES.get(old) if isinstance(old, str) else None
    lo, hi = spec.get("min"), spec.get("max")
    if new is None or not sweep_config.log_bounds_are_values(lo, hi):
        return []
    spec["distribution"] = new
    return [Change(f"{field}.distribution", old, new,
                   f"min {lo:g} and max {hi:g} are values, not exponents of e")]


def _fix_repeated_values(field: str, spec: dict) -> list[Change]:
    values = spec.get("values")
    if not isinstance(values, list) or "probabilities" in spec:
        return []
    drop = set(sweep_config.repeats(values))
    if not drop:
        return []
    kept = [v for i, v in enumerate(values) if i not in drop]
    spec["values"] = kept
    return [Change(f"{field}.values", values, kept, "repeated entries removed")]


def fixed_path(path: str | Path) -> Path:
    """Where the fixed copy of a sweep YAML goes: x.yaml -> x.fixed.yaml, beside it."""
    path = Path(path)
    return path.with_name(f"{path.stem}.fixed{path.suffix or '.yaml'}")


def to_yaml(cfg: dict[str, Any], source: str) -> str:
    """The fixed config as YAML text, keys in their original order."""
    head = (f"# {source} with the mechanical fixes of `code/sweep.py check --fix` "
            "(its comments are not kept)\n")
    return head + yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None,
                                 allow_unicode=True, width=100)
