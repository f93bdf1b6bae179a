"""Validate a sweep config with W&B's own schema, and catch the usual mistakes.

Three layers, both reported one problem per line with the field it concerns:

1. The ``sweeps`` package's JSON schema and its engine's own checks (the ones the W&B
   server applies), with their messages turned into field paths
   (``parameters.learning_rate.min``) where the raw jsonschema message would only say "is
   not valid under any of the given schemas"; the runner reads the config through the
   same checks (``engine_config``), so whatever it would refuse, ``check`` refuses first.
2. Lints for mistakes the schema accepts but that waste a sweep: numbers PyYAML reads as
   strings (``1e-4``), ``log_uniform`` bounds written as values, repeated values, a metric
   goal that ranks runs backwards, ``command:`` macros ``wandb agent`` would drop.
3. For a program that describes itself (``program.ProgramHooks``): each parameter spec
   against the program's rule for it (integer bounds on a float parameter, where W&B then
   infers ``int_uniform``; float samples for an integer parameter; values outside its range
   or choices), and the program's own checks.

Which findings stop a sweep and which only warn is one table, ``findings.LEVELS``. Reading
the YAML, within bounds for any file, is ``yaml_file``'s.

``check --fix`` repairs the mechanical ones (``ecgsweep.sweep.fix``); their messages say so.

Nothing here imports wandb or TensorFlow: ``sweep.py check`` stays fast.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

from .errors import ConfigError
from .findings import LEVELS, Problem, errors  # noqa: F401 (LEVELS: part of this module's API)
from .program import ANY_PROGRAM, ParamRule, ProgramHooks, program_items
# Reading a YAML is yaml_file's; its names are part of this module's API too.
from .yaml_file import (MAX_YAML_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES, load,  # noqa: F401
                        loads, read_text, yaml_size_problem)

with warnings.catch_warnings():
    # sweeps 0.3.0 declares a pydantic v1-style Config that pydantic v2 warns about.
    warnings.simplefilter("ignore")
    from sweeps.config import ParamValidationError, schema_violations_from_proposed_config
    from sweeps.config import schema as sweeps_schema
    from sweeps.params import PARAM_DEPRECATION_MAP, HyperParameter


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
# A number with an exponent that YAML 1.1 (PyYAML) reads as a string: it wants a dot before
# the e and a sign after it (1.0e-4, 1.0e+5), so 1e-4 and 1.0e5 are strings.
STRING_EXPONENT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")

# The message ending of a problem `check --fix` repairs (see ecgsweep.sweep.fix).
FIX_HINT = "; `check --fix` does this"

# Old-style distributions (bounds are exponents of e) and their `_values` forms.
OLD_LOG_TO_VALUES = {"log_uniform": "log_uniform_values", "q_log_uniform": "q_log_uniform_values",
                     "inv_log_uniform": "inv_log_uniform_values"}
VALUES_TO_OLD_LOG = {new: old for old, new in OLD_LOG_TO_VALUES.items()}


def yaml_float(number: str) -> str:
    """``number`` (such as 1e-4 or 1e5) spelled so that YAML reads a float: 1.0e-4, 1.0e+5."""
    mantissa, exp = re.split("[eE]", number.strip())
    mantissa += "" if "." in mantissa else ".0"
    return f"{mantissa}e{exp if exp[0] in '+-' else '+' + exp}"


def log_bounds_are_values(lo: Any, hi: Any) -> bool:
    """Whether old-style log bounds are surely values, not exponents: 0 < min < max <= 1.

    Read as exponents of e, such bounds sample only between e^0 = 1 and e^1 = 2.72 (or, for
    inv_log_uniform, between 0.37 and 1), a range nobody searches on a log scale; read as
    values (min 1e-4, max 1e-2) they are the usual learning rate or decay range. Bounds
    outside (0, 1] can be meant either way, so they are never rewritten, only reported.
    """
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi))
    return numbers and 0 < lo < hi <= 1


def _hashable(v: Any) -> Any:
    """A hashable stand-in for a YAML value, equal for equal values (lists and mappings too)."""
    if isinstance(v, dict):
        return ("mapping", frozenset((_hashable(k), _hashable(x)) for k, x in v.items()))
    if isinstance(v, (list, tuple)):
        return ("list", tuple(_hashable(x) for x in v))
    if isinstance(v, (set, frozenset)):
        return ("set", frozenset(_hashable(x) for x in v))
    try:
        hash(v)
    except TypeError:  # nothing YAML builds; never equal to another entry
        return ("object", id(v))
    return v


def repeats(values: list[Any]) -> list[int]:
    """Indices of the entries equal (same type too: 1 and 1.0 differ) to an earlier one."""
    seen: set[Any] = set()
    out = []
    for i, v in enumerate(values):
        key = (type(v), _hashable(v))
        if key in seen:
            out.append(i)
        seen.add(key)
    return out


class SweepConfigError(ConfigError):
    """A sweep YAML that cannot run; the message lists every problem, one per line."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        lines = [f"{source}: {p}" for p in problems]
        super().__init__(f"{len(problems)} problem(s) in the sweep config:\n" + "\n".join(lines))


# ----------------------------------------------------------------------------- helpers


def _fmt(v: Any) -> str:
    return repr(v) if isinstance(v, str) else str(v)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """" Did you mean: a, b?" naming the candidates close to ``word``; "" when none is."""
    close = difflib.get_close_matches(word, list(candidates), n=3)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def _param_type(name: str, spec: dict) -> str | None:
    """The sweeps engine's type for a parameter spec (e.g. 'param_int_uniform'), or None."""
    try:
        result = sweeps_schema.fill_parameter(name, spec)
    except Exception:  # noqa: BLE001 - the engine raises several kinds on a bad spec
        return None
    return result[0] if result else None


def _string_number_problems(field: str, value: Any, takes: type | None,
                            finding: str) -> list[Problem]:
    """A string that is really a number: `1e-4` in YAML is the string '1e-4'. ``finding``:
    "schema" where W&B's schema wants a number (min, max, ...), "string_value" in value(s),
    which W&B hands the program as the string."""
    if not isinstance(value, str) or takes is str:
        return []
    s = value.strip()
    if not _NUMBER_RE.match(s):
        return []
    given = ("; W&B hands the program the string" if finding == "string_value" else "")
    if STRING_EXPONENT_RE.match(s):
        return [Problem(field, f"YAML reads {s} as the string {s!r}, not a number (an exponent "
                               f"needs a dot before the e and a sign after it){given}; write "
                               f"{yaml_float(s)} or {float(s):g}{FIX_HINT}", finding)]
    return [Problem(field, f"{value!r} is a quoted string, not a number{given}; remove the "
                           "quotes", finding)]


def _schema_problem(field: str, name: str, spec: dict) -> Problem:
    """Why the engine rejects a parameter spec, as specific as jsonschema can say."""
    message = _schema_message(name, spec)
    if isinstance(message, str):
        return Problem(field, message)
    where = ".".join(str(p) for p in message.absolute_path)
    return Problem(field, f"{where + ': ' if where else ''}{message.message}",
                   vague=_names_no_form(message))


def _schema_message(name: str, spec: dict) -> str | sweeps_schema.jsonschema.ValidationError:
    """Why the engine rejects a parameter spec: a sentence, or jsonschema's closest error."""
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
            return (f"unknown distribution {dist!r}.{did_you_mean(str(dist), known)} "
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
    return sweeps_schema.jsonschema.exceptions.best_match(best)


# ----------------------------------------------------------------------------- checks


def check(cfg: dict[str, Any], *, program: ProgramHooks = ANY_PROGRAM,
          cwd: str | Path | None = None, check_program: bool = True) -> list[Problem]:
    """Every problem found in a sweep config (errors first, then warnings); ``program``'s
    rules and checks apply when it owns the config."""
    owned = program.owns(cfg, cwd)
    rule_of = program.parameter if owned else _no_rule
    problems: list[Problem] = []
    problems += _not_json(cfg)
    problems += _check_top_level(cfg)
    params_section = cfg.get("parameters")
    if isinstance(params_section, dict):
        problems += _check_parameters(params_section, rule_of)
    problems += _check_method(cfg)
    problems += _check_metric(cfg)
    problems += _check_command(cfg, cwd=cwd, check_program=check_program, program=program)
    if owned:
        problems += program.check(cfg)
    if not errors(problems):
        # W&B's own checks as the runner applies them, should the rules above miss one
        problems += _engine_problems(cfg)
    out = _capped(_without_vague(_unique(problems)))
    return [p for p in out if p.level == "error"] + [p for p in out if p.level != "error"]


def _no_rule(name: str) -> ParamRule | None:
    return None


def _unique(problems: list[Problem]) -> list[Problem]:
    """The problems with repeats left out, in their order."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for p in problems:
        key = (p.level, p.field, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _without_vague(problems: list[Problem]) -> list[Problem]:
    """A vague schema refusal adds nothing next to a precise finding on the same field."""
    precise = {p.field for p in problems if not p.vague}
    return [p for p in problems if not (p.vague and p.field in precise)]


# Lines shown for the entries of one list (values[0], values[1], ...) with the same kind of
# problem; the rest are counted in one more line, so a long list reads in a screen.
MAX_LINES_PER_LIST = 10


def _capped(problems: list[Problem]) -> list[Problem]:
    out: list[Problem] = []
    shown: dict[tuple[str, str], int] = {}
    for p in problems:
        base = re.sub(r"\[\d+\]$", "", p.field)
        key = (p.kind, base)
        if base != p.field:
            shown[key] = shown.get(key, 0) + 1
            if shown[key] > MAX_LINES_PER_LIST:
                continue
        out.append(p)
    for (kind, base), n in shown.items():
        if n > MAX_LINES_PER_LIST:
            out.append(Problem(base, f"and {n - MAX_LINES_PER_LIST:,} more of its entries, as "
                                     "above", kind))
    return out


def _engine_problems(cfg: dict) -> list[Problem]:
    refusals = _refusals(cfg)
    if refusals:
        return [Problem("config", f"{SCHEMA_REFUSES}: {text}", vague=vague)
                for text, vague in refusals]
    try:
        engine_config(cfg)
    except ConfigError as e:
        return [Problem("config", line) for line in str(e).splitlines()]
    return []


_JSON_SCALARS = (str, int, float, bool, type(None))


def _not_json(value: Any, field: str = "") -> list[Problem]:
    """Values JSON cannot hold (a date YAML read from 2001-01-01, a !!set, !!binary): W&B
    and the runner's store keep the config as JSON."""
    if isinstance(value, dict):
        out = []
        for key, item in value.items():
            inner = f"{field}.{key}" if field else str(key)
            if not isinstance(key, _JSON_SCALARS):
                out.append(Problem(inner, f"YAML reads the key {key} as a {type(key).__name__},"
                                          " which JSON cannot hold; write it in quotes"))
            out += _not_json(item, inner)
        return out
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _not_json(item, f"{field}[{i}]")]
    if isinstance(value, _JSON_SCALARS):
        return []
    what = {"bytes": "binary data", "datetime": "a date and time"}.get(
        type(value).__name__, f"a {type(value).__name__}")
    return [Problem(field, f"YAML reads {value} as {what}, which JSON cannot hold (W&B and the "
                           "runner keep the config as JSON); write it in quotes for text")]


def _check_top_level(cfg: dict) -> list[Problem]:
    out: list[Problem] = []
    props = sweeps_schema.sweep_config_jsonschema["properties"]
    for key in cfg:
        if key not in props:
            out.append(Problem(str(key), f"not a sweep config key."
                                         f"{did_you_mean(str(key), props)} "
                                         f"Known: {', '.join(sorted(props))}"))
    cfg_wo_params = {k: v for k, v in cfg.items() if k != "parameters" and k in props}
    for err in sweeps_schema.validator.iter_errors(cfg_wo_params):
        if err.validator == "required" and "parameters" in str(err.message):
            continue
        path = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        if path == "early_terminate":  # W&B's schema says only "not valid under any schema"
            out += _early_terminate_problems(cfg["early_terminate"])
            continue
        out.append(Problem(path, err.message, vague=_names_no_form(err)))
    if "parameters" not in cfg:
        out.append(Problem("parameters", "missing: a sweep needs a `parameters:` section"))
    elif not isinstance(cfg["parameters"], dict) or not cfg["parameters"]:
        out.append(Problem("parameters", "must be a mapping of parameter name -> spec, "
                                         "with at least one parameter"))
    if "method" not in cfg:
        out.append(Problem("method", "missing: write `method: grid`, `random` or `bayes`"))
    elif cfg.get("method") == "custom":
        out.append(Problem("method", "`custom` needs a W&B Launch scheduler; the offline runner "
                                     "supports grid, random and bayes", "engine"))
    # The engine's own checks that are not in the JSON schema (min < max, probabilities,
    # deprecated distributions) are done per parameter below with field paths.
    return out


def _early_terminate_problems(section: Any) -> list[Problem]:
    """What W&B's hyperband schema refuses in ``early_terminate``, field by field."""
    example = "write `early_terminate: {type: hyperband, min_iter: 2}`"
    if not isinstance(section, dict):
        return [Problem("early_terminate", f"{section!r} is not a mapping; {example}")]
    if "type" not in section:
        return [Problem("early_terminate.type", f"missing; {example}")]
    if section["type"] != "hyperband":
        return [Problem("early_terminate.type", f"{section['type']!r}: the engine stops runs "
                                                f"early by hyperband only; {example}")]
    schema = sweeps_schema.sweep_config_jsonschema
    rules = {**schema["definitions"]["hyperband_stopping"], "definitions": schema["definitions"]}
    out = []
    for err in sweeps_schema.jsonschema.Draft7Validator(rules).iter_errors(section):
        if err.validator == "anyOf":  # no min_iter: _check_method says so, with an example
            continue
        field = ".".join(["early_terminate", *(str(p) for p in err.absolute_path)])
        out.append(Problem(field, err.message))
    return out


# The parameter names W&B's schema takes, from the schema itself (jsonschema, too, matches
# a pattern with re.search).
PARAM_NAME_PATTERN = (sweeps_schema.sweep_config_jsonschema["definitions"]["parameters"]
                      ["propertyNames"]["pattern"])


def _name_problems(field: str, name: Any) -> list[Problem]:
    """A parameter name W&B's schema refuses (or the engine cannot read: it wants text)."""
    if not isinstance(name, str):
        return [Problem(field, f"the name {name!r} is read as a {type(name).__name__}; a "
                               f"parameter name is text: write it in quotes, '{name}'")]
    if re.search(PARAM_NAME_PATTERN, name):
        return []
    return [Problem(field, f"{name!r} is not a parameter name W&B takes: a letter or _ first, "
                           "then letters, digits, _, . or -")]


def _check_parameters(section: dict, rule_of: Callable[[str], ParamRule | None],
                      prefix: str = "parameters") -> list[Problem]:
    """W&B-schema checks of each parameter spec, nested ones included; a top-level spec also
    against the program's rule for its parameter (``rule_of``)."""
    out: list[Problem] = []
    for name, spec in section.items():
        field = f"{prefix}.{name}"
        out += _name_problems(field, name)
        if not isinstance(spec, dict):
            out.append(Problem(field, f"a parameter spec is a mapping: write `{name}: "
                                      f"{{value: {_fmt(spec)}}}` for a constant or `{name}: "
                                      f"{{values: [...]}}` for a list"))
        elif isinstance(spec.get("parameters"), dict):
            out += _check_parameters(spec["parameters"], _no_rule, f"{field}.parameters")
        else:
            out += _check_one_param(field, str(name), spec, rule_of(str(name)))
    return out


def _check_one_param(field: str, name: str, spec: dict, rule: ParamRule | None) -> list[Problem]:
    out: list[Problem] = []
    kind = rule.kind if rule is not None else None
    for key in spec:
        if key not in SPEC_KEYS:
            out.append(Problem(f"{field}.{key}", f"not a parameter spec key."
                                                 f"{did_you_mean(str(key), SPEC_KEYS)}"
                                                 f" Known: {', '.join(SPEC_KEYS)}"))
    # numbers written so that YAML reads strings
    string_numbers: list[Problem] = []
    for key in NUMERIC_SPEC_KEYS:
        if key in spec:
            string_numbers += _string_number_problems(f"{field}.{key}", spec[key], None,
                                                      "schema")
    if "value" in spec:
        string_numbers += _string_number_problems(f"{field}.value", spec["value"], kind,
                                                  "string_value")
    if isinstance(spec.get("values"), list):
        for i, v in enumerate(spec["values"]):
            string_numbers += _string_number_problems(f"{field}.values[{i}]", v, kind,
                                                      "string_value")
    out += string_numbers + _value_shape_problems(field, spec)
    if errors(string_numbers):
        return out
    if errors(out):  # unknown spec keys: the schema message would only repeat them
        return out

    try:
        sweeps_schema.validate_min_max(name, spec)
        sweeps_schema.validate_categorical_prob(name, spec)
    except ValueError as e:
        out.append(Problem(field, str(e.args[0]).replace(f"Parameter {name}: ", "")
                                  .replace(f"{name}: ", "")))
        return out
    except TypeError:  # values or probabilities that are not lists: the schema says which
        pass
    ptype = _param_type(name, spec)
    if ptype is None:
        log_problems = _check_log_uniform(field, name, spec, "", rule)
        out += log_problems or [_schema_problem(field, name, spec)]
        return out
    log_problems = _check_log_uniform(field, name, spec, ptype, rule)
    out += log_problems
    if errors(log_problems):
        return out
    if rule is not None:
        out += _check_against_param(field, spec, ptype, rule)
    return out


def _value_shape_problems(field: str, spec: dict) -> list[Problem]:
    """`value:` given a list (every run gets the whole list) and repeated `values:` entries."""
    out: list[Problem] = []
    if isinstance(spec.get("value"), list):
        out.append(Problem(f"{field}.value", "a list: every run gets the whole list; to search "
                                             "these, write values:", "value_list"))
    values = spec.get("values")
    if isinstance(values, list):
        # with probabilities: which weight goes with which entry is not mechanical
        hint = "" if "probabilities" in spec else FIX_HINT
        for i in repeats(values):
            out.append(Problem(f"{field}.values[{i}]", f"{_fmt(values[i])} is listed twice: the "
                                                       f"search tries it more often; delete one"
                                                       f"{hint}", "repeated_value"))
    return out


def _check_log_uniform(field: str, name: str, spec: dict, ptype: str,
                       rule: ParamRule | None) -> list[Problem]:
    lo, hi = spec.get("min"), spec.get("max")
    dist = spec.get("distribution")
    dist = dist if isinstance(dist, str) else None
    values_form = OLD_LOG_TO_VALUES.get(dist) if ptype and dist else None
    if values_form:  # a valid old-style spec: its bounds are numbers
        if _bounds_mean_values(lo, hi, rule):
            span = (f"e^{lo:g}..e^{hi:g} = {math.exp(lo):.4g}..{math.exp(min(hi, 700)):.4g}"
                    + ("" if hi <= 700 else "+"))
            hint = FIX_HINT if log_bounds_are_values(lo, hi) else ""
            return [Problem(field, f"{dist} takes base-e exponents, so min {lo:g} and max {hi:g}"
                                   f" sample {span}. To sample between {lo:g} and {hi:g}, write"
                                   f" `distribution: {values_form}`{hint}", "log_exponents")]
        return [Problem(field, f"{dist} takes base-e exponents (samples "
                               f"{math.exp(lo):.4g}..{math.exp(min(hi, 700)):.4g}); "
                               f"W&B deprecates it: prefer `distribution: {values_form}` with "
                               f"min: {math.exp(lo):.4g} and max: {math.exp(min(hi, 700)):.4g}",
                        "log_exponents")]
    if dist in VALUES_TO_OLD_LOG and isinstance(lo, (int, float)) and lo <= 0:
        return [Problem(f"{field}.min", f"{dist} takes the values themselves and needs min > 0;"
                                        f" min {lo:g} looks like an exponent: write min: "
                                        f"{math.exp(lo):.4g} (e^{lo:g}), or use "
                                        f"`distribution: {VALUES_TO_OLD_LOG[dist]}` for "
                                        "exponents")]
    return []


def _bounds_mean_values(lo: float, hi: float, rule: ParamRule | None) -> bool:
    """Whether old-style log bounds were meant as values: within (0, 1], past what e^x can
    reach, or within the parameter's own range where their exponentials are not."""
    if lo <= 0:
        return False
    if hi <= 1 or hi > 700:
        return True
    return (rule is not None and rule.kind in (int, float) and rule.low is not None
            and rule.high is not None and rule.low <= lo and hi <= rule.high
            and not (rule.low <= math.exp(lo) and math.exp(min(hi, 700)) <= rule.high))


_INT_SAFE = {HyperParameter.CONSTANT, HyperParameter.CATEGORICAL, HyperParameter.CATEGORICAL_PROB,
             HyperParameter.INT_UNIFORM, HyperParameter.Q_UNIFORM, HyperParameter.Q_LOG_UNIFORM_V1,
             HyperParameter.Q_LOG_UNIFORM_V2, HyperParameter.Q_NORMAL,
             HyperParameter.Q_LOG_NORMAL, HyperParameter.Q_BETA}


def _rejected(field: str, spec: dict, ptype: str, rule: ParamRule) -> list[Problem] | None:
    """For a constant or a list of values: one problem per value the program rejects (None:
    the spec samples a distribution)."""
    if ptype == HyperParameter.CONSTANT:
        listed = [(".value", spec["value"])]
    elif ptype in (HyperParameter.CATEGORICAL, HyperParameter.CATEGORICAL_PROB):
        listed = [(f".values[{i}]", v) for i, v in enumerate(spec["values"])]
    else:
        return None
    found = ((sub, rule.reject(v)) for sub, v in listed)
    return [Problem(f"{field}{sub}", why, "rejected") for sub, why in found if why]


def _check_against_param(field: str, spec: dict, ptype: str, p: ParamRule) -> list[Problem]:
    rejected = _rejected(field, spec, ptype, p)
    if rejected is not None:
        return rejected
    out: list[Problem] = []
    if p.kind in (str, bool):
        what = "true/false" if p.kind is bool else "one of its choices"
        out.append(Problem(field, f"{p.name} takes {what}; a distribution samples numbers: "
                                  f"write `values: [...]`", "rejected"))
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
        out.append(Problem(field, fix, "rejected"))
        return out
    if (p.kind is float and ptype == HyperParameter.INT_UNIFORM and "distribution" not in spec):
        out.append(Problem(field, f"min {lo} and max {hi} are integers, so W&B infers int_uniform"
                                  f" and only tries the integers {lo}..{hi}; write min: "
                                  f"{float(lo)} and max: {float(hi)} for a continuous range "
                                  f"(or `distribution: int_uniform` if integers were meant)",
                           "int_bounds"))
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
                                           f"{p.low:g}", "rejected"))
    if p.high is not None and hi_v > p.high:
        out.append(Problem(f"{field}.max", f"samples up to {hi_v:g}, above {p.name}'s maximum "
                                           f"{p.high:g}", "rejected"))
    return out


def _check_method(cfg: dict) -> list[Problem]:
    out: list[Problem] = []
    method = cfg.get("method")
    section = cfg.get("parameters")
    if not isinstance(section, dict):
        return out
    types = {n: _param_type(str(n), s) for n, s in section.items() if isinstance(s, dict)}
    if method == "grid":
        for name, t in types.items():
            if t is None:
                continue
            points = _grid_points(section[name], t)
            if t in (HyperParameter.INT_UNIFORM, HyperParameter.Q_UNIFORM) and (
                    points is None or points > MAX_YAML_NODES):
                out.append(Problem(f"parameters.{name}",
                                   f"grid search lists every point of this range: more than "
                                   f"{MAX_YAML_NODES:,}, the most a sweep config may list; "
                                   "narrow the range" + (" or raise q" if "q" in section[name]
                                                         else ""), "engine"))
            elif t not in (HyperParameter.CONSTANT, HyperParameter.CATEGORICAL,
                           HyperParameter.INT_UNIFORM, HyperParameter.Q_UNIFORM):
                out.append(Problem(f"parameters.{name}",
                                   "grid search takes only value, values (without probabilities),"
                                   " int_uniform or q_uniform; write `values: [...]` with the "
                                   "points to try", "engine"))
    if method == "bayes":
        if "metric" not in cfg:
            out.append(Problem("metric", "bayes needs a metric to model: write `metric: {name: "
                                         "val_macro_f1, goal: maximize}`", "engine"))
        if types and all(t == HyperParameter.CONSTANT for t in types.values()):
            out.append(Problem("parameters", "bayes needs at least one searched parameter "
                                             "(values: or min/max), not only constants", "engine"))
    et = cfg.get("early_terminate")
    if isinstance(et, dict) and et.get("type") == "hyperband":
        if "metric" not in cfg:
            out.append(Problem("metric", "hyperband early termination compares runs by the "
                                         "metric: add `metric: {name: ..., goal: ...}`", "engine"))
        if "min_iter" not in et and "max_iter" not in et:
            out.append(Problem("early_terminate", "hyperband needs min_iter (e.g. min_iter: 2) "
                                                  "or max_iter"))
        low, high = et.get("min_iter"), et.get("max_iter")
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) \
                and low > high:
            out.append(Problem("early_terminate.min_iter", f"{low} is above max_iter {high}; "
                               "give one of them, or a min_iter below max_iter"))
    return out


def _check_metric(cfg: dict) -> list[Problem]:
    m = cfg.get("metric")
    if not isinstance(m, dict) or not isinstance(m.get("name"), str):
        return []
    out: list[Problem] = []
    name = m["name"]
    goal = m.get("goal")
    higher_better = re.search(r"(f1|acc|auc|precision|recall)", name) is not None
    if higher_better and goal != "maximize":
        why = "is missing, and W&B minimizes by default" if goal is None else f"is {goal}"
        out.append(Problem("metric.goal", f"{why}; {name} is better when higher: write "
                                          "`goal: maximize`", "metric"))
    if "loss" in name and goal == "maximize":
        out.append(Problem("metric.goal", f"{name} is better when lower: write `goal: minimize`",
                           "metric"))
    return out


def command_of(cfg: dict) -> list[str]:
    cmd = cfg.get("command")
    return [str(c) for c in cmd] if isinstance(cmd, list) and cmd else list(DEFAULT_COMMAND)


def _check_command(cfg: dict, *, cwd: str | Path | None, check_program: bool,
                   program: ProgramHooks = ANY_PROGRAM) -> list[Problem]:
    out: list[Problem] = []
    cmd = command_of(cfg)
    for i, chunk in enumerate(cmd):
        for m in re.finditer(r"\$\{([^}]*)\}", chunk):
            macro = m.group(1)
            if macro.startswith("envvar:"):
                continue
            if macro not in COMMAND_MACROS:
                out.append(Problem(f"command[{i}]", f"unknown macro ${{{macro}}} (wandb agent "
                                                    "would drop it)."
                                                    f"{did_you_mean(macro, COMMAND_MACROS)}",
                                   "command"))
            elif chunk != m.group(0):
                out.append(Problem(f"command[{i}]", f"{chunk!r}: wandb agent expands a macro only"
                                                    f" when it is the whole list item; write "
                                                    f"{m.group(0)!r} as its own item",
                                   "command"))
    args_macros = {f"${{{m}}}" for m in COMMAND_MACROS if m.startswith("args")}
    if searched_params(cfg) and not any(m in chunk for chunk in cmd for m in args_macros):
        out.append(Problem("command", "no args macro: the program gets the searched parameters "
                                      "only through wandb.config; add ${args} (or another "
                                      "${args...} macro) to pass them as arguments",
                           "command"))
    if "${program}" in cmd:
        if not cfg.get("program"):
            out.append(Problem("program", "missing: the command runs ${program}; write "
                                          "`program: code/train.py`", "program"))
        elif check_program:
            missing = program_not_found(cfg, cwd, program)
            if missing:
                out.append(Problem("program", missing, "program"))
    return out


def program_not_found(cfg: dict, cwd: str | Path | None,
                      program: ProgramHooks = ANY_PROGRAM) -> str | None:
    """Why the runs' command cannot start the YAML's ``program:`` from ``cwd`` (None: it
    can, or the command does not run it): no such file there, and no installed form of it
    (``ProgramHooks.run_as``)."""
    prog = cfg.get("program")
    if "${program}" not in command_of(cfg) or not isinstance(prog, str) or not prog:
        return None
    base = Path(cwd) if cwd is not None else Path.cwd()
    if program_items(cfg, base, program) is None and not (base / prog).is_file():
        return (f"{prog} not found from {base} (programs run from the current directory, like "
                f"`wandb agent`): start the sweep from the folder {prog} is relative to")
    return None


# ----------------------------------------------------------------------------- engine view


# How a refusal of W&B's schema or engine begins, in `check` and in the runner's error.
SCHEMA_REFUSES = "W&B's sweep schema refuses it"


def engine_refusals(cfg: dict) -> list[str]:
    """What W&B's schema and the sweeps engine's own checks refuse in a config, one line
    each, less the deprecation of the old-style log distributions, which W&B's server runs."""
    return [text for text, _ in _refusals(cfg)]


def _names_no_form(err: sweeps_schema.jsonschema.ValidationError) -> bool:
    """Whether a JSON-schema error only says that a value fits none of several forms (an
    ``anyOf`` or ``oneOf`` refusal, with each form's own error in its context)."""
    return err.validator in ("anyOf", "oneOf") and bool(err.context)


def _refusals(cfg: dict) -> list[tuple[str, bool]]:
    """``engine_refusals`` with, for each, whether it is vague (``_names_no_form``)."""
    deprecated = tuple(PARAM_DEPRECATION_MAP.values())
    try:
        found = schema_violations_from_proposed_config(cfg)
    except Exception as e:  # noqa: BLE001 - on a malformed section it raises several kinds
        return [(str(e), False)]
    vague = {e.message for e in sweeps_schema.validator.iter_errors(cfg) if _names_no_form(e)}
    return [(v, v in vague) for v in found if not v.endswith(deprecated)]


def engine_config(cfg: dict) -> dict:
    """The config as W&B's engine reads it, with its defaults filled in (hyperband's eta, a
    parameter's distribution, ...); raises ConfigError, one line per refusal, for what W&B's
    schema or engine refuses.

    It fills in what ``sweeps``' ``fill_validate_schema`` fills, and differs where W&B's server
    does: an old-style log distribution (bounds are exponents of e) runs, deprecated, where
    ``fill_validate_schema`` refuses it; nested parameters (``opt: {parameters: {...}}``) are
    kept as written, where it drops them, since ``sweeps.next_run`` samples them from the raw
    spec: the program receives ``opt`` as a dict, as from the server.
    """
    refusals = engine_refusals(cfg)
    if refusals:
        raise ConfigError("\n".join(f"{SCHEMA_REFUSES}: {r}" for r in refusals))
    filled = copy.deepcopy(cfg)
    if "parameters" in cfg:
        filled["parameters"] = {name: _filled_parameter(name, spec)
                                for name, spec in cfg["parameters"].items()}
    if "early_terminate" in filled:
        filled = sweeps_schema.fill_validate_early_terminate(filled)
    return filled


def _filled_parameter(name: str, spec: dict) -> dict:
    try:
        result = sweeps_schema.fill_parameter(name, spec)
    except ParamValidationError:  # nested parameters: kept as written
        return copy.deepcopy(spec)
    if result is None:
        raise ConfigError(f"parameters.{name}: {SCHEMA_REFUSES}")
    return result[1]


def searched_params(cfg: dict) -> list[str]:
    """Names of the parameters that vary between runs (not `value:` constants)."""
    return [str(name) for name, spec in _parameters(cfg).items()
            if isinstance(spec, dict) and "value" not in spec]


def _parameters(cfg: dict) -> dict:
    """The `parameters:` mapping, or an empty one when it is missing or not a mapping."""
    section = cfg.get("parameters")
    return section if isinstance(section, dict) else {}


def grid_size(cfg: dict) -> int | None:
    """Number of grid points (None when the method is not grid)."""
    if cfg.get("method") != "grid":
        return None
    n = 1
    for name, spec in _parameters(cfg).items():
        t = _param_type(str(name), spec) if isinstance(spec, dict) else None
        n *= _grid_points(spec, t) or 1
    return n


def _grid_points(spec: Any, ptype: str | None) -> int | None:
    """How many points grid search tries for one parameter (None: not a grid parameter).
    The engine lists every point of a range, so this is also how many it builds."""
    if ptype == HyperParameter.CATEGORICAL:
        return len(spec["values"])
    if ptype == HyperParameter.INT_UNIFORM:
        return max(0, spec["max"] - spec["min"] + 1)
    if ptype == HyperParameter.Q_UNIFORM:
        steps = (spec["max"] - spec["min"]) / spec.get("q", 1.0)
        return max(0, math.ceil(steps)) if math.isfinite(steps) else None
    return None
