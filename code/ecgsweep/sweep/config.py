"""Load a sweep YAML, validate it with W&B's own schema, and catch the usual mistakes.

Two layers, both reported one problem per line with the field it concerns:

1. The ``sweeps`` package's JSON schema (the one the W&B server applies), with its
   messages turned into field paths (``parameters.learning_rate.min``) where the raw
   jsonschema message would only say "is not valid under any of the given schemas".
2. Lints for mistakes the schema accepts but that waste a sweep: numbers PyYAML reads as
   strings (``1e-4``), ``log_uniform`` bounds written as values, integer bounds on a float
   parameter (W&B then infers ``int_uniform``), float samples for an integer parameter,
   values outside a parameter's range or choices, and parameters ``code/train.py`` does
   not read (from ``ecgsweep.params``, read at call time so new families count).

``check --fix`` repairs the mechanical ones (``ecgsweep.sweep.fix``); their messages say so.

Nothing here imports wandb or TensorFlow: ``sweep.py check`` stays fast.
"""

from __future__ import annotations

import copy
import difflib
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from .. import params as params_mod
from ..config import ConfigError, coerce_value
from ..contract import OBJECTIVE_METRICS, TRAIN_METRICS, VAL_METRICS, kept_metric

with warnings.catch_warnings():
    # sweeps 0.3.0 declares a pydantic v1-style Config that pydantic v2 warns about.
    warnings.simplefilter("ignore")
    from sweeps.config import schema as sweeps_schema
    from sweeps.params import HyperParameter


# Macros `wandb agent` expands in `command:` (wandb/wandb_agent.py, Agent._command_run,
# and wandb/sdk/launch/sweeps/utils.py, create_sweep_command_args).
COMMAND_MACROS = ("env", "interpreter", "program", "args", "args_no_equals", "args_no_hyphens",
                  "args_no_boolean_flags", "args_json", "args_json_file", "args_dict",
                  "args_append_hydra", "args_override_hydra")
DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]

SPEC_KEYS = ("value", "values", "probabilities", "distribution", "min", "max", "mu", "sigma",
             "q", "a", "b", "parameters", "description")
NUMERIC_SPEC_KEYS = ("min", "max", "mu", "sigma", "q", "a", "b")

_NUMBER_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
EXPONENT_NO_DOT_RE = re.compile(r"^[+-]?\d+[eE][+-]?\d+$")

# The message ending of a problem `check --fix` repairs (see ecgsweep.sweep.fix).
FIX_HINT = "; `check --fix` does this"

# Old-style distributions (bounds are exponents of e) and their `_values` forms.
OLD_LOG_TO_VALUES = {"log_uniform": "log_uniform_values", "q_log_uniform": "q_log_uniform_values",
                     "inv_log_uniform": "inv_log_uniform_values"}


def log_bounds_are_values(lo: Any, hi: Any) -> bool:
    """Whether old-style log bounds are surely values, not exponents: 0 < min < max <= 1.

    Read as exponents of e, such bounds sample only between e^0 = 1 and e^1 = 2.72 (or, for
    inv_log_uniform, between 0.37 and 1), a range nobody searches on a log scale; read as
    values (min 1e-4, max 1e-2) they are the usual learning rate or decay range. Bounds
    outside (0, 1] can be meant either way, so they are never rewritten, only reported.
    """
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi))
    return numbers and 0 < lo < hi <= 1


def repeats(values: list[Any]) -> list[int]:
    """Indices of the entries equal (same type too: 1 and 1.0 differ) to an earlier one."""
    seen: list[Any] = []
    out = []
    for i, v in enumerate(values):
        if any(v == s and type(v) is type(s) for s in seen):
            out.append(i)
        seen.append(v)
    return out


@dataclass(frozen=True)
class Problem:
    """One finding: ``level`` is "error" (the sweep must not start), "warning" or "note"."""

    field: str
    message: str
    level: str = "error"

    def __str__(self) -> str:
        prefix = f"{self.level}: " if self.level != "error" else ""
        return f"{prefix}{self.field}: {self.message}"


class SweepConfigError(ConfigError):
    """A sweep YAML that cannot run; the message lists every problem, one per line."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        lines = [f"{source}: {p}" for p in problems]
        super().__init__(f"{len(problems)} problem(s) in the sweep config:\n" + "\n".join(lines))


# ----------------------------------------------------------------------------- loading


def load(path: str | Path) -> dict[str, Any]:
    """Read a sweep YAML into a dict; a YAML syntax error names the line and column."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sweep config not found: {path}")
    return loads(path.read_text(), source=str(path))


def _duplicate_keys(node: yaml.Node | None, path: str = "") -> list[str]:
    """One line per key given twice in one mapping (PyYAML silently keeps the last)."""
    found: list[str] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            field = f"{path}.{key}" if path else key
            if key in seen:
                found.append(f"line {key_node.start_mark.line + 1}: {field}: given twice in one "
                             "mapping; YAML keeps only the last: delete one")
            seen.add(key)
            found += _duplicate_keys(value_node, field)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found += _duplicate_keys(item, f"{path}[{i}]")
    return found


def _safe_load_unique(text: str, source: str) -> Any:
    duplicates = _duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader))
    if duplicates:
        raise ConfigError("\n".join(f"{source}: {d}" for d in duplicates))
    return yaml.safe_load(text)


def loads(text: str, source: str = "<yaml>") -> dict[str, Any]:
    try:
        cfg = _safe_load_unique(text, source)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{source}: {where}not valid YAML: {problem}") from None
    if cfg is None:
        raise ConfigError(f"{source}: the file is empty")
    if not isinstance(cfg, dict):
        raise ConfigError(f"{source}: a sweep config is a mapping (method:, parameters:, ...),"
                          f" not a {type(cfg).__name__}")
    return cfg


# ----------------------------------------------------------------------------- helpers


def _fmt(v: Any) -> str:
    return repr(v) if isinstance(v, str) else str(v)


def _close(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=3)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def _param_type(name: str, spec: dict) -> str | None:
    """The sweeps engine's type for a parameter spec (e.g. 'param_int_uniform'), or None."""
    try:
        result = sweeps_schema.fill_parameter(name, spec)
    except Exception:  # noqa: BLE001 - the engine raises several kinds on a bad spec
        return None
    return result[0] if result else None


def _strip_key_prefix(msg: str) -> str:
    return re.sub(r"^config key '[^']*': ", "", msg)


def _string_number_problems(field: str, value: Any, kind: type | None) -> list[Problem]:
    """A string that is really a number: `1e-4` in YAML is the string '1e-4'."""
    if not isinstance(value, str) or kind is str:
        return []
    s = value.strip()
    if not _NUMBER_RE.match(s):
        return []
    if EXPONENT_NO_DOT_RE.match(s):
        mantissa, exp = re.split("[eE]", s)
        fixed = f"{mantissa}.0e{exp}"
        return [Problem(field, f"YAML reads {s} as the string {s!r}, not a number (an exponent "
                               f"needs a dot before the e); write {fixed} or {float(s):g}"
                               f"{FIX_HINT}")]
    return [Problem(field, f"{value!r} is a quoted string, not a number; remove the quotes")]


def _schema_message(name: str, spec: dict) -> str:
    """Why the engine rejects a parameter spec, as specific as jsonschema can say."""
    defs = sweeps_schema.dereferenced_sweep_config_jsonschema["definitions"]
    dist = spec.get("distribution")
    names = [d["$ref"].split("/")[-1]
             for d in sweeps_schema.sweep_config_jsonschema["definitions"]["parameter"]["anyOf"]]
    if dist is not None:
        candidates = []
        for n in names:
            sub = defs[n]
            alts = sub.get("anyOf", [sub])
            if any(dist in a.get("properties", {}).get("distribution", {}).get("enum", [])
                   for a in alts):
                candidates.append(sub)
        if not candidates:
            known = sorted({e for n in names for a in defs[n].get("anyOf", [defs[n]])
                            for e in a.get("properties", {}).get("distribution", {})
                            .get("enum", [])})
            return (f"unknown distribution {dist!r}.{_close(str(dist), known)} "
                    f"Known: {', '.join(known)}")
    elif "values" in spec:
        candidates = [defs["param_categorical"], defs["param_categorical_w_probabilities"]]
    elif "value" in spec:
        candidates = [defs["param_single_value"]]
    elif "min" in spec or "max" in spec:
        candidates = [defs["param_int_uniform"], defs["param_uniform"]]
    else:
        return ("a parameter needs `value:`, `values: [...]`, or `min:`/`max:` "
                "(with an optional `distribution:`)")
    alternatives = [a for sub in candidates for a in sub.get("anyOf", [sub])]
    if dist is not None:
        alternatives = [a for a in alternatives
                        if dist in a.get("properties", {}).get("distribution", {}).get("enum", [])]
    best: list = []
    for alt in alternatives:
        v = sweeps_schema.Draft7Validator(alt, format_checker=sweeps_schema.format_checker)
        errs = list(v.iter_errors(spec))
        if errs and (not best or len(errs) < len(best)):
            best = errs
    if not best:
        return "not a valid parameter spec"
    err = sweeps_schema.jsonschema.exceptions.best_match(best)
    where = ".".join(str(p) for p in err.absolute_path)
    return f"{where + ': ' if where else ''}{err.message}"


# ----------------------------------------------------------------------------- checks


def check(cfg: dict[str, Any], *, cwd: str | Path | None = None,
          check_program: bool = True) -> list[Problem]:
    """Every problem found in a sweep config (errors first, then warnings)."""
    problems: list[Problem] = []
    problems += _check_top_level(cfg)
    params_section = cfg.get("parameters")
    for_train = is_train_program(cfg)
    if isinstance(params_section, dict):
        problems += (_check_parameters(cfg, params_section) if for_train
                     else _check_any_parameters(params_section))
    problems += _check_method(cfg)
    problems += _check_metric(cfg, for_train=for_train)
    problems += _check_command(cfg, cwd=cwd, check_program=check_program)
    # de-duplicate, keeping order; errors before warnings
    seen: set[tuple[str, str, str]] = set()
    out = []
    for p in problems:
        key = (p.level, p.field, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    # a vague "not valid under any of the given schemas" adds nothing next to a precise one
    precise = {p.field for p in out if "under any of the given schemas" not in p.message}
    out = [p for p in out
           if not ("under any of the given schemas" in p.message and p.field in precise)]
    return [p for p in out if p.level == "error"] + [p for p in out if p.level != "error"]


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.level == "error"]


def _check_top_level(cfg: dict) -> list[Problem]:
    out: list[Problem] = []
    props = sweeps_schema.sweep_config_jsonschema["properties"]
    for key in cfg:
        if key not in props:
            out.append(Problem(str(key), f"not a sweep config key.{_close(str(key), props)} "
                                         f"Known: {', '.join(sorted(props))}"))
    cfg_wo_params = {k: v for k, v in cfg.items() if k != "parameters" and k in props}
    for err in sweeps_schema.validator.iter_errors(cfg_wo_params):
        if err.validator == "required" and "parameters" in str(err.message):
            continue
        path = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        out.append(Problem(path, err.message))
    if "parameters" not in cfg:
        out.append(Problem("parameters", "missing: a sweep needs a `parameters:` section"))
    elif not isinstance(cfg["parameters"], dict) or not cfg["parameters"]:
        out.append(Problem("parameters", "must be a mapping of parameter name -> spec, "
                                         "with at least one parameter"))
    if "method" not in cfg:
        out.append(Problem("method", "missing: write `method: grid`, `random` or `bayes`"))
    elif cfg.get("method") == "custom":
        out.append(Problem("method", "`custom` needs a W&B Launch scheduler; the offline runner "
                                     "supports grid, random and bayes"))
    # The engine's own checks that are not in the JSON schema (min < max, probabilities,
    # deprecated distributions) are done per parameter below with field paths.
    return out


TRAIN_PROGRAM = "code/train.py"


def is_train_program(cfg: dict) -> bool:
    """Whether the sweep runs ecg-sweeps' own training program (its parameter checks apply)."""
    prog = cfg.get("program")
    if prog is None:  # no program: the default for this repository's sweeps
        return True
    return isinstance(prog, str) and os.path.normpath(prog) == os.path.normpath(TRAIN_PROGRAM)


def _check_any_parameters(section: dict, prefix: str = "parameters") -> list[Problem]:
    """W&B-schema checks for any program's parameters, nested ones included."""
    out: list[Problem] = []
    for name, spec in section.items():
        field = f"{prefix}.{name}"
        if not isinstance(spec, dict):
            out.append(Problem(field, f"a parameter spec is a mapping: write `{name}: "
                                      f"{{value: {_fmt(spec)}}}` for a constant"))
        elif isinstance(spec.get("parameters"), dict):
            out += _check_any_parameters(spec["parameters"], f"{field}.parameters")
        else:
            out += _check_one_param(field, str(name), spec, None)
    return out


def _check_parameters(cfg: dict, section: dict) -> list[Problem]:
    out: list[Problem] = []
    every = params_mod.all_params()
    models = _model_values(section)
    for model in models:
        if model not in params_mod.FAMILY_PARAMS:
            out.append(Problem("parameters.model",
                               f"{model!r} is not a model family.{_close(str(model), params_mod.family_names())} "
                               f"Known: {', '.join(params_mod.family_names())}"))
    read_by_chosen: set[str] = set()
    for model in models:
        if model in params_mod.FAMILY_PARAMS:
            read_by_chosen |= set(params_mod.params_for(model))

    for name, spec in section.items():
        field = f"parameters.{name}"
        name = str(name)
        p = every.get(name)
        if p is None:
            msg = "not a parameter of the training program (code/train.py would reject it)."
            msg += _close(name, every)
            out.append(Problem(field, msg))
        elif read_by_chosen and name not in read_by_chosen:
            out.append(Problem(field, f"not read by model {', '.join(map(str, models))}; "
                                      "it will be ignored", level="warning"))
        if not isinstance(spec, dict):
            out.append(Problem(field, f"a parameter spec is a mapping: write `{name}: "
                                      f"{{value: {_fmt(spec)}}}` for a constant or `{name}: "
                                      f"{{values: [...]}}` for a list"))
            continue
        out += _check_one_param(field, name, spec, p)
    if any("not a parameter of the training program" in p.message for p in out):
        known = sorted(set().union(*(params_mod.params_for(m) for m in models
                                     if m in params_mod.FAMILY_PARAMS)) or every)
        out.append(Problem("parameters", f"code/train.py reads: {', '.join(known)}", level="note"))
    return out


def _model_values(section: dict) -> list[Any]:
    return _param_values(section, "model", params_mod.TRAINING_PARAMS[0].default)


def _param_values(section: dict, name: str, default: Any) -> list[Any]:
    """The values a sweep gives parameter ``name``: its value or values, else the default."""
    spec = section.get(name)
    if not isinstance(spec, dict):
        return [default] if spec is None else []
    if "value" in spec:
        return [spec["value"]]
    if isinstance(spec.get("values"), list):
        return list(spec["values"])
    return []


def _check_one_param(field: str, name: str, spec: dict, p: params_mod.Param | None) -> list[Problem]:
    out: list[Problem] = []
    kind = p.kind if p is not None else None
    for key in spec:
        if key not in SPEC_KEYS:
            out.append(Problem(f"{field}.{key}", f"not a parameter spec key.{_close(str(key), SPEC_KEYS)}"
                                                 f" Known: {', '.join(SPEC_KEYS)}"))
    if "parameters" in spec:
        out.append(Problem(field, "nested parameters are not read by code/train.py; "
                                  "use flat snake_case keys"))
        return out
    # numbers written so that YAML reads strings
    string_numbers: list[Problem] = []
    for key in NUMERIC_SPEC_KEYS:
        if key in spec:
            string_numbers += _string_number_problems(f"{field}.{key}", spec[key], None)
    if "value" in spec:
        string_numbers += _string_number_problems(f"{field}.value", spec["value"], kind)
    if isinstance(spec.get("values"), list):
        for i, v in enumerate(spec["values"]):
            string_numbers += _string_number_problems(f"{field}.values[{i}]", v, kind)
    out += string_numbers + _value_shape_problems(field, spec)
    if string_numbers:
        return out
    if out:  # unknown spec keys: the schema message would only repeat them
        return out

    try:
        sweeps_schema.validate_min_max(name, spec)
        sweeps_schema.validate_categorical_prob(name, spec)
    except ValueError as e:
        out.append(Problem(field, str(e.args[0]).replace(f"Parameter {name}: ", "")
                                  .replace(f"{name}: ", "")))
        return out
    ptype = _param_type(name, spec)
    if ptype is None:
        log_problems = _check_log_uniform(field, name, spec, "", p)
        out += log_problems or [Problem(field, _schema_message(name, spec))]
        return out
    log_problems = _check_log_uniform(field, name, spec, ptype, p)
    out += log_problems
    if errors(log_problems):
        return out
    if p is not None:
        out += _check_against_param(field, spec, ptype, p)
    return out


def _value_shape_problems(field: str, spec: dict) -> list[Problem]:
    """`value:` given a list (every run gets the whole list) and repeated `values:` entries."""
    out: list[Problem] = []
    if isinstance(spec.get("value"), list):
        out.append(Problem(f"{field}.value", "a list: every run gets the whole list; to search "
                                             "these, write values:", level="warning"))
    values = spec.get("values")
    if isinstance(values, list):
        # with probabilities: which weight goes with which entry is not mechanical
        hint = "" if "probabilities" in spec else FIX_HINT
        for i in repeats(values):
            out.append(Problem(f"{field}.values[{i}]", f"{_fmt(values[i])} is listed twice: the "
                                                       f"search tries it more often; delete one"
                                                       f"{hint}", level="warning"))
    return out


def _check_log_uniform(field: str, name: str, spec: dict, ptype: str,
                       p: params_mod.Param | None) -> list[Problem]:
    lo, hi = spec.get("min"), spec.get("max")
    v1 = {HyperParameter.LOG_UNIFORM_V1: "log_uniform_values",
          HyperParameter.Q_LOG_UNIFORM_V1: "q_log_uniform_values",
          HyperParameter.INV_LOG_UNIFORM_V1: "inv_log_uniform_values"}
    v2 = {"log_uniform_values": "log_uniform", "q_log_uniform_values": "q_log_uniform",
          "inv_log_uniform_values": "inv_log_uniform"}
    dist = spec.get("distribution")
    if ptype in v1:
        means_values = lo > 0 and (hi <= 1 or hi > 700 or (
            p is not None and p.kind in (int, float) and p.low is not None and p.high is not None
            and p.low <= lo and hi <= p.high
            and not (p.low <= math.exp(lo) and math.exp(min(hi, 700)) <= p.high)))
        if means_values:
            span = (f"e^{lo:g}..e^{hi:g} = {math.exp(lo):.4g}..{math.exp(min(hi, 700)):.4g}"
                    + ("" if hi <= 700 else "+"))
            hint = FIX_HINT if log_bounds_are_values(lo, hi) else ""
            return [Problem(field, f"{dist} takes base-e exponents, so min {lo:g} and max {hi:g}"
                                   f" sample {span}. To sample between {lo:g} and {hi:g}, write"
                                   f" `distribution: {v1[ptype]}`{hint}")]
        return [Problem(field, f"{dist} takes base-e exponents (samples "
                               f"{math.exp(lo):.4g}..{math.exp(min(hi, 700)):.4g}); "
                               f"W&B deprecates it: prefer `distribution: {v1[ptype]}` with "
                               f"min: {math.exp(lo):.4g} and max: {math.exp(min(hi, 700)):.4g}",
                        level="warning")]
    if dist in v2 and isinstance(lo, (int, float)) and lo <= 0:
        return [Problem(f"{field}.min", f"{dist} takes the values themselves and needs min > 0;"
                                        f" min {lo:g} looks like an exponent: write min: "
                                        f"{math.exp(lo):.4g} (e^{lo:g}), or use "
                                        f"`distribution: {v2[dist]}` for exponents")]
    return []


_INT_SAFE = {HyperParameter.CONSTANT, HyperParameter.CATEGORICAL, HyperParameter.CATEGORICAL_PROB,
             HyperParameter.INT_UNIFORM, HyperParameter.Q_UNIFORM, HyperParameter.Q_LOG_UNIFORM_V1,
             HyperParameter.Q_LOG_UNIFORM_V2, HyperParameter.Q_NORMAL,
             HyperParameter.Q_LOG_NORMAL, HyperParameter.Q_BETA}
_DISCRETE = {HyperParameter.CONSTANT, HyperParameter.CATEGORICAL, HyperParameter.CATEGORICAL_PROB}


def _check_against_param(field: str, spec: dict, ptype: str, p: params_mod.Param) -> list[Problem]:
    out: list[Problem] = []

    def coerce(sub: str, v: Any) -> None:
        try:
            coerce_value(p, v)
        except ConfigError as e:
            out.append(Problem(f"{field}{sub}", _strip_key_prefix(str(e))))

    if ptype == HyperParameter.CONSTANT:
        coerce(".value", spec["value"])
        return out
    if ptype in (HyperParameter.CATEGORICAL, HyperParameter.CATEGORICAL_PROB):
        for i, v in enumerate(spec["values"]):
            coerce(f".values[{i}]", v)
        return out
    if p.kind in (str, bool):
        what = "true/false" if p.kind is bool else "one of its choices"
        out.append(Problem(field, f"{p.name} takes {what}; a distribution samples numbers: "
                                  f"write `values: [...]`"))
        return out
    lo, hi = spec.get("min"), spec.get("max")
    if p.kind is int and ptype not in _INT_SAFE:
        if ptype == HyperParameter.UNIFORM and "distribution" not in spec:
            fix = (f"min and max are not both integers, so W&B infers `uniform` and samples floats"
                   f" (e.g. {(lo + hi) / 2:g}) that {p.name}, an integer, rejects; write "
                   f"min: {int(lo)} and max: {int(hi)} (int_uniform)")
        else:
            fix = (f"{spec.get('distribution')} samples floats that {p.name}, an integer, rejects;"
                   f" use int_uniform, `values: [...]`, or the q_ form with q: 1")
        out.append(Problem(field, fix))
        return out
    if (p.kind is float and ptype == HyperParameter.INT_UNIFORM and "distribution" not in spec):
        out.append(Problem(field, f"min {lo} and max {hi} are integers, so W&B infers int_uniform"
                                  f" and only tries the integers {lo}..{hi}; write min: "
                                  f"{float(lo)} and max: {float(hi)} for a continuous range "
                                  f"(or `distribution: int_uniform` if integers were meant)",
                           level="warning"))
    # sampled range inside the parameter's bounds
    if lo is None or hi is None:
        return out
    if ptype in (HyperParameter.LOG_UNIFORM_V1, HyperParameter.Q_LOG_UNIFORM_V1):
        lo_v, hi_v = math.exp(lo), math.exp(min(hi, 700))
    elif ptype in (HyperParameter.INV_LOG_UNIFORM_V1,):
        lo_v, hi_v = math.exp(-hi), math.exp(-lo)
    elif ptype == HyperParameter.INV_LOG_UNIFORM_V2:
        lo_v, hi_v = 1 / hi, 1 / lo
    else:
        lo_v, hi_v = lo, hi
    if p.low is not None and lo_v < p.low:
        out.append(Problem(f"{field}.min", f"samples down to {lo_v:g}, below {p.name}'s minimum "
                                           f"{p.low:g}"))
    if p.high is not None and hi_v > p.high:
        out.append(Problem(f"{field}.max", f"samples up to {hi_v:g}, above {p.name}'s maximum "
                                           f"{p.high:g}"))
    return out


def _check_method(cfg: dict) -> list[Problem]:
    out: list[Problem] = []
    method = cfg.get("method")
    section = cfg.get("parameters")
    if not isinstance(section, dict):
        return out
    types = {str(n): _param_type(str(n), s) for n, s in section.items() if isinstance(s, dict)}
    if method == "grid":
        for name, t in types.items():
            if t is None:
                continue
            if t not in (HyperParameter.CONSTANT, HyperParameter.CATEGORICAL,
                         HyperParameter.INT_UNIFORM, HyperParameter.Q_UNIFORM):
                out.append(Problem(f"parameters.{name}",
                                   "grid search takes only value, values (without probabilities),"
                                   " int_uniform or q_uniform; write `values: [...]` with the "
                                   "points to try"))
    if method == "bayes":
        if "metric" not in cfg:
            out.append(Problem("metric", "bayes needs a metric to model: write `metric: {name: "
                                         "val_macro_f1, goal: maximize}`"))
        if types and all(t == HyperParameter.CONSTANT for t in types.values()):
            out.append(Problem("parameters", "bayes needs at least one searched parameter "
                                             "(values: or min/max), not only constants"))
    et = cfg.get("early_terminate")
    if isinstance(et, dict) and et.get("type") == "hyperband":
        if "metric" not in cfg:
            out.append(Problem("metric", "hyperband early termination compares runs by the "
                                         "metric: add `metric: {name: ..., goal: ...}`"))
        if "min_iter" not in et and "max_iter" not in et:
            out.append(Problem("early_terminate", "hyperband needs min_iter (e.g. min_iter: 2) "
                                                  "or max_iter"))
    return out


def _check_metric(cfg: dict, *, for_train: bool = True) -> list[Problem]:
    m = cfg.get("metric")
    if not isinstance(m, dict) or not isinstance(m.get("name"), str):
        return []
    out: list[Problem] = []
    name = m["name"]
    if for_train and name not in TRAIN_METRICS:
        out.append(Problem("metric.name", f"{name!r} is not a metric code/train.py logs."
                                          f"{_close(name, TRAIN_METRICS)} Logged: "
                                          f"{', '.join(TRAIN_METRICS)}", level="warning"))
    if for_train:
        out += _check_kept_metric(cfg, name)
    goal = m.get("goal")
    higher_better = re.search(r"(f1|acc|auc|precision|recall)", name) is not None
    if higher_better and goal != "maximize":
        why = "is missing, and W&B minimizes by default" if goal is None else f"is {goal}"
        out.append(Problem("metric.goal", f"{why}; {name} is better when higher: write "
                                          "`goal: maximize`", level="warning"))
    if "loss" in name and goal == "maximize":
        out.append(Problem("metric.goal", f"{name} is better when lower: write `goal: minimize`",
                           level="warning"))
    return out


def _check_kept_metric(cfg: dict, name: str) -> list[Problem]:
    """W&B's engine judges a run by its metric's extremum over history and summary: runs
    that keep their last epoch are judged by the epoch they keep only through
    ``kept_<metric>``, which only the summary holds (so hyperband, reading the history,
    stops nothing on it). And the runs themselves keep epochs and offer their model to the
    best-model slot by their ``objective``: the sweep should rank them by the same metric."""
    section = cfg.get("parameters") if isinstance(cfg.get("parameters"), dict) else {}
    keeps_last = "last" in _param_values(section, "keep_epoch",
                                         params_mod.all_params()["keep_epoch"].default)
    et = cfg.get("early_terminate")
    out = []
    if keeps_last and name in VAL_METRICS:
        out.append(Problem("metric.name", "with keep_epoch last, W&B's engine still judges "
                                          f"each run by its best epoch's {name} (the "
                                          f"highest it logged); name {kept_metric(name)}, the "
                                          "kept epoch's value", level="warning"))
    base = name.removeprefix("kept_").removeprefix("best_")
    summary_only = name != base and base in VAL_METRICS
    if summary_only and isinstance(et, dict) and et.get("type") == "hyperband":
        out.append(Problem("early_terminate", f"{name} is written once a run ends, so "
                                              "hyperband, which compares runs epoch by epoch, "
                                              "would stop none; drop early_terminate or name "
                                              f"{base}", level="warning"))
    objectives = _param_values(section, "objective", params_mod.all_params()["objective"].default)
    wanted = [o for o, metric in OBJECTIVE_METRICS.items() if metric == base]
    if wanted and any(o != wanted[0] for o in objectives):
        given = ", ".join(map(str, objectives))
        out.append(Problem("parameters.objective", f"the sweep ranks runs by {name}, but runs "
                                                   f"with objective {given} keep epochs and "
                                                   "their best model by another metric; set "
                                                   f"`objective: {{value: {wanted[0]}}}`",
                           level="warning"))
    return out


def command_of(cfg: dict) -> list[str]:
    cmd = cfg.get("command")
    return [str(c) for c in cmd] if isinstance(cmd, list) and cmd else list(DEFAULT_COMMAND)


def _check_command(cfg: dict, *, cwd: str | Path | None, check_program: bool) -> list[Problem]:
    out: list[Problem] = []
    cmd = command_of(cfg)
    for i, chunk in enumerate(cmd):
        for m in re.finditer(r"\$\{([^}]*)\}", chunk):
            macro = m.group(1)
            if macro.startswith("envvar:"):
                continue
            if macro not in COMMAND_MACROS:
                out.append(Problem(f"command[{i}]", f"unknown macro ${{{macro}}} (wandb agent "
                                                    f"would drop it).{_close(macro, COMMAND_MACROS)}"))
            elif chunk != m.group(0):
                out.append(Problem(f"command[{i}]", f"{chunk!r}: wandb agent expands a macro only"
                                                    f" when it is the whole list item; write "
                                                    f"{m.group(0)!r} as its own item",
                                   level="warning"))
    args_macros = {f"${{{m}}}" for m in COMMAND_MACROS if m.startswith("args")}
    if searched_params(cfg) and not any(m in chunk for chunk in cmd for m in args_macros):
        out.append(Problem("command", "no args macro: the program gets the searched parameters "
                                      "only through wandb.config; add ${args} (or another "
                                      "${args...} macro) to pass them as arguments",
                           level="warning"))
    if "${program}" in cmd:
        prog = cfg.get("program")
        if not prog:
            out.append(Problem("program", "missing: the command runs ${program}; write "
                                          "`program: code/train.py`"))
        elif check_program and isinstance(prog, str):
            base = Path(cwd) if cwd is not None else Path.cwd()
            if not (base / prog).is_file():
                out.append(Problem("program", f"{prog} not found from {base} (programs run from "
                                              "the current directory, like `wandb agent`): "
                                              "start the sweep from the repository root"))
    return out


# ----------------------------------------------------------------------------- engine view


def engine_config(cfg: dict) -> dict:
    """The config with the engine's defaults filled in (metric goal, hyperband eta, ...).

    Uses ``fill_validate_schema`` rather than ``SweepConfig``: the latter rejects the
    deprecated-but-working ``log_uniform``, which W&B's server only warns about.
    ``fill_validate_schema`` (sweeps 0.3.0) drops nested parameters (``opt: {parameters:
    {...}}``) without a word, while ``sweeps.next_run`` samples them from the raw spec: they
    are put back as written, so the program receives ``opt`` as a dict, as from the server.
    """
    filled = sweeps_schema.fill_validate_schema(copy.deepcopy(cfg))
    nested = {name: copy.deepcopy(spec) for name, spec in (cfg.get("parameters") or {}).items()
              if isinstance(spec, dict) and "parameters" in spec}
    if nested:
        filled["parameters"] = {name: filled["parameters"].get(name, nested.get(name))
                                for name in cfg["parameters"]}
    return filled


def searched_params(cfg: dict) -> list[str]:
    """Names of the parameters that vary between runs (not `value:` constants)."""
    out = []
    for name, spec in (cfg.get("parameters") or {}).items():
        if isinstance(spec, dict) and "value" not in spec:
            out.append(str(name))
    return out


def grid_size(cfg: dict) -> int | None:
    """Number of grid points (None when the method is not grid)."""
    if cfg.get("method") != "grid":
        return None
    n = 1
    for name, spec in (cfg.get("parameters") or {}).items():
        t = _param_type(str(name), spec) if isinstance(spec, dict) else None
        if t == HyperParameter.CATEGORICAL:
            n *= len(spec["values"])
        elif t == HyperParameter.INT_UNIFORM:
            n *= spec["max"] - spec["min"] + 1
        elif t == HyperParameter.Q_UNIFORM:
            n *= len(range(0, int(math.ceil((spec["max"] - spec["min"]) / spec["q"]))))
    return n
