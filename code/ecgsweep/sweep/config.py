"""Load a sweep YAML, validate it with W&B's own schema, and catch the usual mistakes.

Two layers, both reported one problem per line with the field it concerns:

1. The ``sweeps`` package's JSON schema and its engine's own checks (the ones the W&B
   server applies), with their messages turned into field paths
   (``parameters.learning_rate.min``) where the raw jsonschema message would only say "is
   not valid under any of the given schemas"; the runner reads the config through the
   same checks (``engine_config``), so whatever it would refuse, ``check`` refuses first.
2. Lints for mistakes the schema accepts but that waste a sweep: numbers PyYAML reads as
   strings (``1e-4``), ``log_uniform`` bounds written as values, integer bounds on a float
   parameter (W&B then infers ``int_uniform``), float samples for an integer parameter,
   values outside a parameter's range or choices, and parameters ``code/train.py`` does
   not read (from ``ecgsweep.params``, read at call time so new families count).

Which findings stop a sweep and which only warn is one table, ``LEVELS``. Reading is bounded
for any file: its size, its values (aliases counted, not expanded) and its nesting have
limits, each named in the message that refuses a file.

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


# What each kind of finding does to a sweep, in one table. An error stops it before its first
# run: W&B's server refuses it (its schema or its engine's own checks), the offline engine
# cannot run it, there is no program to start, or code/train.py rejects the runs it gets.
# Whatever W&B would run as written is a warning: `check` reports it and exits 0, the runner
# prints it and runs the sweep as W&B would.
LEVELS: dict[str, str] = {
    "schema": "error",           # W&B's schema or the sweeps engine's checks refuse it
    "engine": "error",           # the offline engine cannot run it (custom, a grid of ranges)
    "program": "error",          # the program to start is missing
    "train": "error",            # code/train.py rejects the value: its runs would fail
    "string_value": "warning",   # 1e-5 in value(s) is a string; W&B hands the program the string
    "log_exponents": "warning",  # old-style log bounds are exponents of e; W&B samples them so
    "value_list": "warning",     # value: [..] gives every run the whole list
    "repeated_value": "warning", # a value listed twice is tried more often
    "int_bounds": "warning",     # integer bounds make W&B search integers only
    "unread": "warning",         # a parameter the chosen model does not read
    "metric": "warning",         # a metric or goal that ranks the runs oddly
    "command": "warning",        # wandb agent drops an unknown macro, keeps a partial one verbatim,
                                 # and with no args macro the program reads wandb.config
    "listing": "note",           # the parameters code/train.py reads
}


@dataclass(frozen=True)
class Problem:
    """One finding; its ``kind`` (a key of LEVELS) says whether it is an error, which stops
    the sweep, a warning or a note."""

    field: str
    message: str
    kind: str = "schema"

    @property
    def level(self) -> str:
        return LEVELS[self.kind]

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


# Limits that keep `check` and the runner's start bounded for any input. Real sweep configs
# are a few KiB, a few hundred YAML nodes and under ten levels deep; each limit is far above
# that and far below what takes a noticeable time to read and check.
MAX_YAML_BYTES = 1024 * 1024
# Nodes counted with every alias expanded (a 500-byte file of aliases can stand for a billion):
# 100,000 holds a search over tens of thousands of values.
MAX_YAML_NODES = 100_000
# Nesting levels of YAML collections; a nested parameter takes two (its spec and its
# `parameters:`), so 32 holds fifteen levels of nested parameters.
MAX_YAML_DEPTH = 32

class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """PyYAML's safe loader, with libyaml's parser when PyYAML has it (its wheels do: the
    pure-Python one reads a large file about fifty times slower; both read the same YAML
    with the same resolver). A value its constructor cannot build (a date such as
    2001-13-45, `!!int x`) is a YAML error at that value, not a bare ValueError."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as e:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read this value ({e})", node.start_mark) from None


def _too_large(source: str) -> ConfigError:
    return ConfigError(f"{source}: larger than {MAX_YAML_BYTES // 1024} KiB, the limit for a "
                       "sweep config (they take a few KiB): is it the right file?")


def read_text(path: str | Path) -> str:
    """The text of a sweep YAML: UTF-8, at most MAX_YAML_BYTES, else one line saying which."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"sweep config not found: {path}")
    if not path.is_file():
        raise ConfigError(f"{path}: not a file; give the sweep YAML")
    try:
        with path.open("rb") as f:
            data = f.read(MAX_YAML_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read ({e.strerror})") from None
    if len(data) > MAX_YAML_BYTES:
        raise _too_large(str(path))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ConfigError(f"{path}: line {line}: byte 0x{data[e.start]:02x} (offset {e.start}) "
                          "is not UTF-8; save the file as UTF-8") from None


def load(path: str | Path) -> dict[str, Any]:
    """Read a sweep YAML into a dict; a YAML syntax error names the line and column."""
    return loads(read_text(path), source=str(path))


@dataclass
class _Open:
    """A collection the parser has opened and not yet closed."""

    anchor: str | None
    values_before: int  # values counted before it began
    depth: int = 0  # levels below it so far


def yaml_size_problem(text: str) -> str | None:
    """Why a YAML text is too large to read, or None: more than MAX_YAML_NODES values with
    aliases counted as what they stand for, nesting deeper than MAX_YAML_DEPTH, or an alias
    inside its own anchor. Walks the parser's events: nothing is built, and the walk stops at
    the first limit passed."""
    anchored: dict[str, tuple[int, int]] = {}  # anchor -> (values, depth) of its node
    opened: list[_Open] = []
    values = 0
    for ev in yaml.parse(text, Loader=_Loader):
        if isinstance(ev, yaml.CollectionEndEvent):
            done = opened.pop()
            if done.anchor is not None:
                anchored[done.anchor] = (values - done.values_before, done.depth + 1)
            if opened:
                opened[-1].depth = max(opened[-1].depth, done.depth + 1)
            continue
        line = ev.start_mark.line + 1
        reach = len(opened)  # the level this node ends at, counting what an alias holds
        if isinstance(ev, yaml.CollectionStartEvent):
            opened.append(_Open(ev.anchor, values))
            values, reach = values + 1, reach + 1
        elif isinstance(ev, yaml.ScalarEvent):
            values += 1
            if ev.anchor is not None:
                anchored[ev.anchor] = (1, 0)
        elif isinstance(ev, yaml.AliasEvent):
            if any(o.anchor == ev.anchor for o in opened):
                return (f"line {line}: alias *{ev.anchor} stands inside its own anchor "
                        f"&{ev.anchor}, an endless value; write the values out instead")
            size, depth = anchored.get(ev.anchor, (1, 0))  # undefined: the composer says so
            values, reach = values + size, reach + depth
            if opened:
                opened[-1].depth = max(opened[-1].depth, depth)
        if reach > MAX_YAML_DEPTH:
            return (f"line {line}: nested more than {MAX_YAML_DEPTH} levels deep, the limit "
                    "for a sweep config")
        if values > MAX_YAML_NODES:
            return (f"line {line}: more than {MAX_YAML_NODES:,} YAML values (an alias counts "
                    "as the values it stands for), the limit for a sweep config")
    return None


def _duplicate_keys(node: yaml.Node | None, path: str = "",
                    visited: set[int] | None = None) -> list[str]:
    """One line per key given twice in one mapping (PyYAML silently keeps the last). A node
    that aliases share is walked once."""
    visited = set() if visited is None else visited
    if node is None or id(node) in visited:
        return []
    visited.add(id(node))
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
            found += _duplicate_keys(value_node, field, visited)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found += _duplicate_keys(item, f"{path}[{i}]", visited)
    return found


def _safe_load_unique(text: str, source: str) -> Any:
    too_large = yaml_size_problem(text)
    if too_large:
        raise ConfigError(f"{source}: {too_large}")
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        duplicates = _duplicate_keys(node)
        if duplicates:
            raise ConfigError("\n".join(f"{source}: {d}" for d in duplicates))
        return None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()


def loads(text: str, source: str = "<yaml>") -> dict[str, Any]:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        raise _too_large(source)
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
    problems += _not_json(cfg)
    problems += _check_top_level(cfg)
    params_section = cfg.get("parameters")
    for_train = is_train_program(cfg)
    if isinstance(params_section, dict):
        problems += (_check_parameters(cfg, params_section) if for_train
                     else _check_any_parameters(params_section))
    problems += _check_method(cfg)
    problems += _check_metric(cfg, for_train=for_train)
    problems += _check_command(cfg, cwd=cwd, check_program=check_program)
    if not errors(problems):
        # W&B's own checks as the runner applies them, should the rules above miss one
        problems += _engine_problems(cfg)
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
    out = _capped([p for p in out
                   if not ("under any of the given schemas" in p.message and p.field in precise)])
    return [p for p in out if p.level == "error"] + [p for p in out if p.level != "error"]


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
                                     "supports grid, random and bayes", "engine"))
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


def _check_any_parameters(section: dict, prefix: str = "parameters") -> list[Problem]:
    """W&B-schema checks for any program's parameters, nested ones included."""
    out: list[Problem] = []
    for name, spec in section.items():
        field = f"{prefix}.{name}"
        out += _name_problems(field, name)
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
        if not _is_family(model):
            out.append(Problem("parameters.model",
                               f"{model!r} is not a model family.{_close(str(model), params_mod.family_names())} "
                               f"Known: {', '.join(params_mod.family_names())}", "train"))
    read_by_chosen: set[str] = set()
    for model in models:
        if _is_family(model):
            read_by_chosen |= set(params_mod.params_for(model))

    for name, spec in section.items():
        field = f"parameters.{name}"
        out += _name_problems(field, name)
        name = str(name)
        p = every.get(name)
        if p is None:
            msg = "not a parameter of the training program (code/train.py would reject it)."
            msg += _close(name, every)
            out.append(Problem(field, msg, "train"))
        elif read_by_chosen and name not in read_by_chosen:
            out.append(Problem(field, f"not read by model {', '.join(map(str, models))}; "
                                      "it will be ignored", "unread"))
        if not isinstance(spec, dict):
            out.append(Problem(field, f"a parameter spec is a mapping: write `{name}: "
                                      f"{{value: {_fmt(spec)}}}` for a constant or `{name}: "
                                      f"{{values: [...]}}` for a list"))
            continue
        out += _check_one_param(field, name, spec, p)
    if any("not a parameter of the training program" in p.message for p in out):
        known = sorted(set().union(*(params_mod.params_for(m) for m in models
                                     if _is_family(m))) or every)
        out.append(Problem("parameters", f"code/train.py reads: {', '.join(known)}", "listing"))
    return out


def _is_family(model: Any) -> bool:
    return isinstance(model, str) and model in params_mod.FAMILY_PARAMS


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
                                  "use flat snake_case keys", "train"))
        return out
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
                                   f" `distribution: {v1[ptype]}`{hint}", "log_exponents")]
        return [Problem(field, f"{dist} takes base-e exponents (samples "
                               f"{math.exp(lo):.4g}..{math.exp(min(hi, 700)):.4g}); "
                               f"W&B deprecates it: prefer `distribution: {v1[ptype]}` with "
                               f"min: {math.exp(lo):.4g} and max: {math.exp(min(hi, 700)):.4g}",
                        "log_exponents")]
    if isinstance(dist, str) and dist in v2 and isinstance(lo, (int, float)) and lo <= 0:
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
            out.append(Problem(f"{field}{sub}", _strip_key_prefix(str(e)), "train"))

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
                                  f"write `values: [...]`", "train"))
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
        out.append(Problem(field, fix, "train"))
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
                                           f"{p.low:g}", "train"))
    if p.high is not None and hi_v > p.high:
        out.append(Problem(f"{field}.max", f"samples up to {hi_v:g}, above {p.name}'s maximum "
                                           f"{p.high:g}", "train"))
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
                                          f"{', '.join(TRAIN_METRICS)}", "metric"))
    if for_train:
        out += _check_kept_metric(cfg, name)
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
                                          "kept epoch's value", "metric"))
    base = name.removeprefix("kept_").removeprefix("best_")
    summary_only = name != base and base in VAL_METRICS
    if summary_only and isinstance(et, dict) and et.get("type") == "hyperband":
        out.append(Problem("early_terminate", f"{name} is written once a run ends, so "
                                              "hyperband, which compares runs epoch by epoch, "
                                              "would stop none; drop early_terminate or name "
                                              f"{base}", "metric"))
    objectives = _param_values(section, "objective", params_mod.all_params()["objective"].default)
    wanted = [o for o, metric in OBJECTIVE_METRICS.items() if metric == base]
    if wanted and any(o != wanted[0] for o in objectives):
        given = ", ".join(map(str, objectives))
        out.append(Problem("parameters.objective", f"the sweep ranks runs by {name}, but runs "
                                                   f"with objective {given} keep epochs and "
                                                   "their best model by another metric; set "
                                                   f"`objective: {{value: {wanted[0]}}}`",
                           "metric"))
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
                                                    "would drop it)."
                                                    f"{_close(macro, COMMAND_MACROS)}", "command"))
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
        prog = cfg.get("program")
        if not prog:
            out.append(Problem("program", "missing: the command runs ${program}; write "
                                          "`program: code/train.py`", "program"))
        elif check_program and isinstance(prog, str):
            base = Path(cwd) if cwd is not None else Path.cwd()
            if not (base / prog).is_file():
                out.append(Problem("program", f"{prog} not found from {base} (programs run from "
                                              "the current directory, like `wandb agent`): "
                                              "start the sweep from the repository root",
                                   "program"))
    return out


# ----------------------------------------------------------------------------- engine view


def engine_refusals(cfg: dict) -> list[str]:
    """What W&B's schema and the sweeps engine's own checks refuse in a config, one line
    each, less the deprecation of the old-style log distributions, which W&B's server runs."""
    deprecated = tuple(PARAM_DEPRECATION_MAP.values())
    try:
        found = schema_violations_from_proposed_config(cfg)
    except Exception as e:  # noqa: BLE001 - on a malformed section it raises several kinds
        return [str(e)]
    return [v for v in found if not v.endswith(deprecated)]


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
        raise ConfigError("\n".join(f"W&B's sweep schema refuses it: {r}" for r in refusals))
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
        raise ConfigError(f"parameters.{name}: W&B's sweep schema refuses it")
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
