"""Resolve and validate a run's configuration against the schema in ``params``.

W&B ignores config keys nobody reads, so a misspelled hyperparameter in a sweep would
silently train the default 50 times. Here an unknown key stops the run, and every value
is checked for type, range and allowed choices, with a message that says what is allowed.
"""

from __future__ import annotations

import difflib
import math
import os
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

from . import params
from .sweep.errors import ConfigError  # a config key or value the program cannot use
from .sweep.yaml_file import safe_load_unique


def defaults(model: str = "cnn") -> dict[str, Any]:
    """Default value of every parameter the given model family reads."""
    return {name: p.default for name, p in params.params_for(model).items()}


def coerce_value(p: params.Param, value: Any) -> Any:
    """Return ``value`` as ``p.kind`` or raise ConfigError naming the key and what is allowed."""
    where = f"config key '{p.name}'"
    v = value
    if p.kind is bool:
        if isinstance(v, str) and v.lower() in ("true", "false"):
            v = v.lower() == "true"
        if not isinstance(v, bool):
            raise ConfigError(f"{where}: {value!r} is not a boolean (use true or false)")
    elif p.kind is int:
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                raise ConfigError(f"{where}: {value!r} is not an integer") from None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not float(v).is_integer():
            raise ConfigError(f"{where}: {value!r} is not an integer")
        v = int(v)
    elif p.kind is float:
        if isinstance(v, str):
            # PyYAML reads 1e-4 (no dot) as a string; accept it here but say why it happened.
            try:
                v = float(v)
            except ValueError:
                raise ConfigError(f"{where}: {value!r} is not a number") from None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"{where}: {value!r} is not a finite number")
        v = float(v)
    elif p.kind is str:
        v = _text(p, v, where)
    if p.choices is not None and v not in p.choices:
        allowed = ", ".join(map(str, p.choices))
        raise ConfigError(f"{where}: {value!r} is not allowed; choose one of: {allowed}")
    if p.low is not None and v < p.low:
        raise ConfigError(f"{where}: {value!r} is below the minimum {p.low:g}")
    if p.high is not None and v > p.high:
        raise ConfigError(f"{where}: {value!r} is above the maximum {p.high:g}")
    return v


def _text(p: params.Param, v: Any, where: str) -> str:
    """A text value: empty (or YAML's null) only where the parameter's default is '' (off);
    a path with its ``~`` expanded, as a shell would have (``--models_dir=~/m`` reaches the
    program unexpanded)."""
    text = "" if v is None else str(v)
    if not text.strip() and p.default != "":
        raise ConfigError(f"{where}: empty; give a value (default {p.default!r})")
    if p.name in params.PATH_KEYS and text.startswith("~"):
        text = os.path.expanduser(text)
    return text


def unknown_key_message(key: str, model: str) -> str:
    known = sorted(params.params_for(model))
    close = difflib.get_close_matches(key, list(params.all_params()), n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return (f"config key '{key}' is not read by any part of the training program.{hint}\n"
            f"Known keys for model '{model}': {', '.join(known)}")


def read_config_file(path: str) -> dict[str, Any]:
    """The fixed values of a ``config_file``: a YAML mapping of config keys to values. A
    file that cannot be read, is not such a mapping, or names ``config_file`` itself is a
    ConfigError naming it; its keys are checked by ``resolve``."""
    import yaml

    where = f"config key 'config_file': {path}"
    try:
        text = Path(path).read_text()
    except (FileNotFoundError, IsADirectoryError):
        raise ConfigError(f"{where}: no such file (give a YAML file of key: value lines, "
                          "e.g. configs/inter_patient.yaml)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{where}: cannot be read ({e})") from None
    try:
        values = safe_load_unique(text, where)  # a key given twice is refused, as in sweeps
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: not valid YAML ({' '.join(str(e).split())})") from None
    if values is None:
        return {}
    if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
        raise ConfigError(f"{where}: expected key: value lines (a YAML mapping of config "
                          f"keys), found a {type(values).__name__}")
    if "config_file" in values:
        raise ConfigError(f"{where}: names config_file itself; a config file cannot include "
                          "another")
    return values


def resolve(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Fill defaults for the selected family and validate every given key.

    Keys starting with '_' (wandb's own, e.g. ``_wandb``) are ignored. A key that belongs
    only to another family is allowed with a warning, since one sweep may span families.
    ``config_file`` names a YAML of fixed values (``read_config_file``) read first: the
    values given here (the command line's, the sweep's) win over it, and an error in one
    of its own names the file.
    """
    given = {k: v for k, v in raw.items() if not str(k).startswith("_")}
    file_name = str(given.get("config_file") or "")
    from_file = {k: v for k, v in (read_config_file(file_name) if file_name else {}).items()
                 if k not in given}
    given = {**from_file, **given}

    def where(key: str) -> str:
        return f"{file_name}: " if key in from_file else ""

    model = given.get("model", params.TRAINING_PARAMS[0].default)
    if model not in params.FAMILY_PARAMS:
        raise ConfigError(f"{where('model')}config key 'model': {model!r} is not a known model "
                          f"family; choose one of: {', '.join(params.family_names())}")
    schema = params.params_for(model)
    every = params.all_params()
    resolved = defaults(model)
    for key, value in given.items():
        if key in schema:
            try:
                resolved[key] = coerce_value(schema[key], value)
            except ConfigError as e:
                raise ConfigError(f"{where(key)}{e}") from None
        elif key in every:
            warnings.warn(f"{where(key)}config key '{key}' is not read by model '{model}'; "
                          "ignored", stacklevel=2)
        else:
            raise ConfigError(f"{where(key)}{unknown_key_message(key, model)}")
    check_combinations(resolved)
    # a key of another family is warned of above, once
    for rule in params.unread_keys([k for k in given if k in schema], resolved):
        warnings.warn(f"{where(rule.key)}config key '{rule.key}' is read only {rule.needs}; "
                      "ignored", stacklevel=2)
    return resolved


def check_combinations(config: Mapping[str, Any]) -> None:
    """Rules that tie two keys together (each key alone is checked by ``coerce_value``)."""
    if config["model"] == "seq2seq" and config["seq_stride"] > config["seq_window"]:
        raise ConfigError(f"config key 'seq_stride': {config['seq_stride']} is above seq_window "
                          f"({config['seq_window']}), so beats between two windows would get no "
                          "prediction; use seq_stride <= seq_window")


def parse_settings(pairs: Sequence[str], where: str = "--set") -> dict[str, Any]:
    """``KEY=VALUE`` strings as config values of the steps after the model
    (``params.PER_RECORD_KEYS``), each checked as a config value is; a ConfigError names a
    malformed pair, a key that would need training again, or a value not allowed."""
    every = params.all_params()
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{where} {pair!r}: give KEY=VALUE, e.g. s_gate_irregularity=0.15")
        if key not in params.PER_RECORD_KEYS:
            reason = ("is read when the model is trained, so changing it means training again"
                      if key in every else "is not a config key")
            raise ConfigError(f"{where} {pair!r}: {key!r} {reason}; only the steps after the "
                              f"model can be set here: {', '.join(params.PER_RECORD_KEYS)}")
        try:
            settings[key] = coerce_value(every[key], value.strip())
        except ConfigError as e:
            raise ConfigError(f"{where} {pair!r}: {e}") from None
    return settings
