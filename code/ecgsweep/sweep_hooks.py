"""ecg-sweeps' training program, ``code/train.py``, as the sweep engine sees it.

The engine (``ecgsweep.sweep``) runs any W&B program. ``code/sweep.py`` hands it
``ECG_PROGRAM``, whose hooks (``sweep.program.ProgramHooks``) add what is ours:

- each parameter's rule (type, bounds, the values ``config.coerce_value`` takes), from
  ``params``, so that ``check`` refuses what a run would refuse;
- checks of a sweep of ``code/train.py``: model families, parameters no chosen model reads,
  settings that cannot run together (``params.combination_problems``: fixed values that can
  never run are an error, a listed value that cannot run with them a warning), and the
  metric the runs log and keep;
- for runs on other machines, the best-model promotion on the coordinator
  (``sweep_models``), and the best-model lines of the closing summary;
- exit code 3: the training diverged.
"""

from __future__ import annotations

import os
import re
from functools import partial
from pathlib import Path
from typing import Any, Mapping

from . import params, sweep_models
from .config import ConfigError, coerce_value
from .contract import (EXIT_NAN, OBJECTIVE_METRICS, PROMOTE_BY_COORDINATOR, PROMOTE_ENV,
                       TRAIN_METRICS, VAL_METRICS, kept_metric)
from .folds import FOLDS_DONE
from .sweep.config import did_you_mean
from .sweep.findings import Problem
from .sweep.hints import CLONE_CODE
from .sweep.program import ParamRule

TRAIN_PROGRAM = "code/train.py"
# The same program as installed (`pip install .`): run as `python -m ecgsweep.run`.
TRAIN_MODULE = "ecgsweep.run"
CLONE_SCRIPTS = ("sweep.py", "eval.py", "data.py")  # beside train.py in a clone's code/
# The line each epoch of a run prints (folds.EpochLog and its k-fold and refit forms).
EPOCH_LINE = re.compile(r"^(?:fold (?P<fold>\d+)/(?P<folds>\d+) |(?P<refit>refit) )?"
                        r"epoch (?P<epoch>\d+)/(?P<epochs>\d+)\b")


class EcgProgram:
    """The hooks of ``code/train.py`` (see the module's docstring)."""

    def owns(self, cfg: Mapping[str, Any], cwd: str | Path | None = None) -> bool:
        prog = cfg.get("program")
        if prog is None:  # then the command names what runs: ours as installed, or not ours
            return runs_train_module(cfg.get("command"))
        if not names_train_program(prog):
            return False
        # a project of one's own may have a code/train.py too; without one, ours runs (run_as)
        script = Path(cwd or ".") / prog
        return not script.is_file() or is_train_script(script)

    def parameter(self, name: str) -> ParamRule | None:
        p = params.all_params().get(name)
        if p is None:
            return None
        return ParamRule(p.name, p.kind, p.low, p.high, reject=partial(_rejection, p))

    def check(self, cfg: Mapping[str, Any]) -> list[Problem]:
        section = cfg.get("parameters")
        section = section if isinstance(section, dict) else {}
        return (parameter_problems(section) + combination_findings(section)
                + metric_problems(cfg, section))

    def remote_env(self) -> dict[str, str]:
        # The coordinator, not the node, offers the run's model to the best-model slot.
        return {PROMOTE_ENV: PROMOTE_BY_COORDINATOR}

    def on_shipped_run(self, run_folder: Path, cwd: str) -> str | None:
        return sweep_models.promote_shipped(run_folder, cwd)

    def ended_by_itself(self, files_dir: Path | None) -> bool:
        return sweep_models.ended_by_itself(files_dir)

    def stopped_by_request(self, summary: Mapping[str, Any] | None) -> bool:
        return sweep_models.stopped_by_request(summary)

    def closing_lines(self, rows: list[dict[str, Any]], cwd: str | None) -> list[str]:
        return [line for rec in sweep_models.best_models(rows, cwd=cwd)
                for line in sweep_models.best_model_lines(rec)]

    def describe_exit(self, code: int) -> str | None:
        return "diverged: NaN loss, weights or outputs" if code == EXIT_NAN else None

    def run_as(self, program: str) -> list[str] | None:
        # asked only when the runs' folder has no such file: the name alone decides
        return train_program() if names_train_program(program) else None

    def progress(self, output_tail: str) -> str | None:
        return epoch_progress(output_tail)


ECG_PROGRAM = EcgProgram()


def names_train_program(program: Any) -> bool:
    """Whether a YAML's ``program:`` names ecg-sweeps' training script by its path."""
    return (isinstance(program, str)
            and os.path.normpath(program) == os.path.normpath(TRAIN_PROGRAM))


def runs_train_module(command: Any) -> bool:
    """Whether a sweep's ``command:`` runs the installed training program
    (``${interpreter} -m ecgsweep.run``)."""
    items = [str(item) for item in command] if isinstance(command, list) else []
    return any(a == "-m" and b == TRAIN_MODULE for a, b in zip(items, items[1:]))


def is_train_script(path: Path) -> bool:
    """Whether the file at ``path`` is ecg-sweeps' training script (it runs
    ``ecgsweep.run``), not another project's program of the same name."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return f"from {TRAIN_MODULE} import" in text or f"import {TRAIN_MODULE}" in text


def train_program() -> list[str]:
    """The training program for a sweep started away from the clone's root: the clone's own
    ``code/train.py`` beside this package (a clone, installed or not), else the installed
    module (``pip install .`` puts no scripts beside the package)."""
    scripts = [CLONE_CODE / Path(TRAIN_PROGRAM).name,
               *(CLONE_CODE / name for name in CLONE_SCRIPTS)]
    if all(path.is_file() for path in scripts):
        return [str(scripts[0])]
    return ["-m", TRAIN_MODULE]


def epoch_progress(output: str) -> str | None:
    """The last epoch line of a run's output as ``3/10`` (``3/10 f2/4`` in fold 2 of 4,
    ``refit 3/10``), or a k-fold run's ``done:`` line as ``2/4 folds``; None when it has
    none yet."""
    for line in reversed(output.splitlines()):
        done = FOLDS_DONE.match(line.strip())
        if done:
            return f"{done['completed']}/{done['folds']} folds"
        m = EPOCH_LINE.match(line.strip())
        if m:
            shown = f"{m['epoch']}/{m['epochs']}"
            if m["fold"]:
                return f"{shown} f{m['fold']}/{m['folds']}"
            return f"refit {shown}" if m["refit"] else shown
    return None


def _rejection(p: params.Param, value: Any) -> str | None:
    """Why code/train.py rejects ``value`` for ``p`` (None: it takes it)."""
    try:
        coerce_value(p, value)
    except ConfigError as e:
        return re.sub(r"^config key '[^']*': ", "", str(e))
    return None


# ----------------------------------------------------------------------------- parameters


def values_given(section: Mapping[str, Any], name: str, default: Any) -> list[Any]:
    """The values a sweep gives parameter ``name``: its value or values, else the default."""
    spec = section.get(name)
    if not isinstance(spec, dict):
        return [default] if spec is None else []
    if "value" in spec:
        return [spec["value"]]
    if isinstance(spec.get("values"), list):
        return list(spec["values"])
    return []


def _is_family(model: Any) -> bool:
    return isinstance(model, str) and model in params.FAMILY_PARAMS


def parameter_problems(section: Mapping[str, Any]) -> list[Problem]:
    """Model families that do not exist, parameters code/train.py does not read (with the
    list of those it reads), parameters the chosen models ignore, nested parameters."""
    every = params.all_params()
    models = values_given(section, "model", every["model"].default)
    out = [Problem("parameters.model", f"{model!r} is not a model family."
                                       f"{did_you_mean(str(model), params.family_names())} "
                                       f"Known: {', '.join(params.family_names())}", "rejected")
           for model in models if not _is_family(model)]
    read_by_chosen = set().union(*(params.params_for(m) for m in models if _is_family(m)))
    unknown = False
    for name, spec in section.items():
        field, name = f"parameters.{name}", str(name)
        if name not in every:
            unknown = True
            out.append(Problem(field, "not a parameter of the training program (code/train.py "
                                      f"would reject it).{did_you_mean(name, every)}",
                               "rejected"))
        elif read_by_chosen and name not in read_by_chosen:
            out.append(Problem(field, f"not read by model {', '.join(map(str, models))}; "
                                      "it will be ignored", "unread"))
        if isinstance(spec, dict) and "parameters" in spec:
            out.append(Problem(field, "nested parameters are not read by code/train.py; "
                                      "use flat snake_case keys", "rejected"))
    if unknown:
        known = sorted(read_by_chosen or every)
        out.append(Problem("parameters", f"code/train.py reads: {', '.join(known)}", "listing"))
    return out


# ----------------------------------------------------------------------------- combinations


def _taken(name: str, value: Any) -> tuple[bool, Any]:
    """(whether code/train.py takes ``value`` for ``name``, the value as it reads it)."""
    p = params.all_params().get(name)
    if p is None:
        return False, value
    try:
        return True, coerce_value(p, value)
    except ConfigError:
        return False, value


def _shown(config: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    return " and ".join(f"{k}: {config.get(k, params.all_params()[k].default)}" for k in keys)


def _searched(section: Mapping[str, Any]) -> set[str]:
    return {str(n) for n, spec in section.items()
            if not (isinstance(spec, dict) and "value" in spec)}


def _fixed_config(section: Mapping[str, Any]) -> dict[str, Any]:
    """The sweep's fixed values as code/train.py reads them (values it rejects left out:
    `check` reports them already)."""
    fixed = {}
    for name, spec in section.items():
        if isinstance(spec, dict) and "value" in spec:
            ok, value = _taken(str(name), spec["value"])
            if ok:
                fixed[str(name)] = value
    return fixed


def combination_findings(section: Mapping[str, Any]) -> list[Problem]:
    """An error when the fixed values (with the defaults) can never run together; a warning
    for a fixed value read only with a setting they rule out (``params.READ_ONLY_WITH``),
    and for each listed value of a searched parameter that cannot run with them."""
    searched, fixed = _searched(section), _fixed_config(section)
    out = [Problem("parameters", f"{_shown(fixed, c.keys)} cannot run together, so no run of "
                                 f"this sweep can start: {c.message}", "rejected")
           for c in params.combination_problems(fixed) if not searched & set(c.keys)]
    out += [Problem(f"parameters.{rule.key}", f"read only {rule.needs}, which the fixed values "
                                            "rule out: it changes no run", "unread")
            for rule in params.unread_keys(list(fixed), fixed)
            if rule.needed_key not in searched]
    for name in sorted(searched):
        values = section[name].get("values") if isinstance(section[name], dict) else None
        for i, value in enumerate(values if isinstance(values, list) else []):
            out += _value_clashes(f"parameters.{name}.values[{i}]", name, value, fixed,
                                  searched - {name})
    return out


def _value_clashes(field: str, name: str, value: Any, fixed: Mapping[str, Any],
                   others: set[str]) -> list[Problem]:
    """A warning for each rule that ``name: value`` breaks with the fixed values (rules that
    involve another searched parameter depend on what the search draws for it)."""
    ok, value = _taken(name, value)
    if not ok:  # a value code/train.py rejects: `check` reports it already
        return []
    drawn = {**fixed, name: value}
    return [Problem(field, f"{_shown(drawn, c.keys)} cannot run together: the runs that draw "
                           f"it fail ({c.message})", "combination")
            for c in params.combination_problems(drawn)
            if name in c.keys and not others & set(c.keys)]


# ----------------------------------------------------------------------------- metric


def metric_problems(cfg: Mapping[str, Any], section: Mapping[str, Any]) -> list[Problem]:
    """A metric code/train.py does not log, and one that judges its runs by another epoch or
    metric than they keep (``_kept_metric_problems``)."""
    m = cfg.get("metric")
    if not isinstance(m, dict) or not isinstance(m.get("name"), str):
        return []
    name = m["name"]
    out = []
    if name not in TRAIN_METRICS:
        out.append(Problem("metric.name", f"{name!r} is not a metric code/train.py logs."
                                          f"{did_you_mean(name, TRAIN_METRICS)} Logged: "
                                          f"{', '.join(TRAIN_METRICS)}", "metric"))
    return out + _kept_metric_problems(cfg, section, name)


def _kept_metric_problems(cfg: Mapping[str, Any], section: Mapping[str, Any],
                          name: str) -> list[Problem]:
    """W&B's engine judges a run by its metric's extremum over history and summary: runs
    that keep their last epoch are judged by the epoch they keep only through
    ``kept_<metric>``, which only the summary holds (so hyperband, reading the history,
    stops nothing on it). And the runs themselves keep epochs and offer their model to the
    best-model slot by their ``objective``: the sweep should rank them by the same metric.
    A k-fold run logs the plain and the ``kept_`` name once per fold, with its kept epochs'
    mean (``folds``), so neither problem arises when every run has folds."""
    every = params.all_params()
    keeps_last = "last" in values_given(section, "keep_epoch", every["keep_epoch"].default)
    folds = values_given(section, "folds", every["folds"].default)
    kfold = bool(folds) and all(isinstance(f, int) and f >= 2 for f in folds)
    et = cfg.get("early_terminate")
    out = []
    if keeps_last and name in VAL_METRICS and not kfold:
        out.append(Problem("metric.name", "with keep_epoch last, W&B's engine still judges "
                                          f"each run by its best epoch's {name} (the "
                                          f"highest it logged); name {kept_metric(name)}, the "
                                          "kept epoch's value", "metric"))
    base = name.removeprefix("kept_").removeprefix("best_")
    summary_only = name != base and base in VAL_METRICS
    per_fold = kfold and name == kept_metric(base)
    if summary_only and not per_fold and isinstance(et, dict) and et.get("type") == "hyperband":
        kfold_hint = (", or set folds: 2 or more (a k-fold run logs it after each fold)"
                      if name == kept_metric(base) else "")
        out.append(Problem("early_terminate", f"{name} is written once a run ends, so "
                                              "hyperband, which compares runs epoch by epoch, "
                                              "would stop none; drop early_terminate or name "
                                              f"{base}{kfold_hint}", "metric"))
    objectives = values_given(section, "objective", every["objective"].default)
    wanted = [o for o, metric in OBJECTIVE_METRICS.items() if metric == base]
    if wanted and any(o != wanted[0] for o in objectives):
        given = ", ".join(map(str, objectives))
        out.append(Problem("parameters.objective", f"the sweep ranks runs by {name}, but runs "
                                                   f"with objective {given} keep epochs and "
                                                   "their best model by another metric; set "
                                                   f"`objective: {{value: {wanted[0]}}}`",
                           "metric"))
    return out
