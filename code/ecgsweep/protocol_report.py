"""protocol.md: the inter-patient protocol's record (``protocol.json``'s document) as
Markdown, each figure labelled with its side: chosen-on or never-seen."""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

CHOSEN_ON, NEVER_SEEN = "chosen-on", "never-seen"


def _cell(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    return "-" if value is None else (f"{100 * value:.1f}%" if key != "f1" else f"{value:.3f}")


def _interval(figures: dict[str, Any], class_name: str) -> str:
    """The class's F1 bootstrap interval (every call counted), or '-'."""
    ci = ((figures.get("confidence_intervals") or {}).get("per_class") or {}).get(class_name)
    f1 = (ci or {}).get("f1-score")
    return f"{f1[0]:.3f}-{f1[1]:.3f}" if f1 else "-"


def figures_table(figures: dict[str, Any]) -> list[str]:
    """One side's EC57 table as Markdown: Se, +P, FPR and F1 per class (N S V F order),
    and the bootstrap interval of F1 (every call counted), saying what it resampled."""
    from .data.records import CLASS_NAMES

    resampled = (figures.get("bootstrap") or {}).get("resampled")
    lines = [f"**{figures['label']}**", "",
             f"| class | Se | +P | FPR | F1 | F1 95% interval (every call counted"
             f"{f'; {resampled} resampled' if resampled else ''}) | beats |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name in (c for c in CLASS_NAMES if c in figures["ec57"]):
        row = figures["ec57"][name]
        lines.append(f"| {row['name']} | {_cell(row, 'se')} | {_cell(row, 'ppv')} | "
                     f"{_cell(row, 'fpr')} | {_cell(row, 'f1')} | {_interval(figures, name)} | "
                     f"{row['support']} |")
    macro = figures.get("macro_f1")
    lines += ["", f"macro-F1 (classes with beats or calls): "
                  f"{'-' if macro is None else f'{macro:.3f}'}", ""]
    return lines


def _f1_values(figures: dict[str, Any]) -> list[float]:
    """SVEB F1, VEB F1 and macro-F1 of one side's figures (NaN where undefined: no call)."""
    import numpy as np

    f1 = [figures["ec57"].get(c, {}).get("f1") for c in ("S", "V")]
    return [np.nan if v is None else v for v in (*f1, figures["macro_f1"])]


def _cells(values: list[float]) -> str:
    return " | ".join("-" if math.isnan(v) else f"{v:.3f}" for v in values)


def seeds_table(document: dict[str, Any],
                sides: tuple[str, ...] = (CHOSEN_ON, NEVER_SEEN)) -> list[str]:
    """SVEB and VEB F1 of each seed on each of ``sides``, their mean and spread, and those
    of the seeds' models averaged."""
    import numpy as np

    rows = ["| side | seed | SVEB F1 | VEB F1 | macro-F1 |", "|---|---:|---:|---:|---:|"]
    averaged = document.get("seeds_averaged")
    for side in sides:
        values = []
        for result in document["seeds"]:
            figures = result[side]
            values.append(_f1_values(figures))
            # (no call of a class: its +P and F1 are undefined, '-')
            rows.append(f"| {figures['label']} | {result['seed']} | {_cells(values[-1])} |")
        if len(values) > 1:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a column of '-' only
                mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
            rows.append(f"| {side}: mean +- spread | {len(values)} seeds | "
                        + " | ".join("-" if np.isnan(m) else f"{m:.3f} +- {s:.3f}"
                                     for m, s in zip(mean, std)) + " |")
        if averaged:
            rows.append(f"| **{side}: the seeds' models averaged (the final model)** | "
                        f"{' '.join(map(str, averaged['seeds']))} | "
                        f"{_cells(_f1_values(averaged[side]))} |")
    return rows


def final_model_line(document: dict[str, Any]) -> str:
    """What the protocol's final model is, in words."""
    each = f"{document['seeds'][0]['final_model']} of the folds"
    averaged = document.get("seeds_averaged")
    if not averaged:
        return each
    return f"{averaged['model']}: the {len(averaged['seeds'])} seeds' models averaged, each an {each}"


def leads_line(side: dict[str, Any], key: str = "leads") -> str:
    """Each lead a side's records were read in (``key`` second_leads: their rows' second
    lead), with its records."""
    by_lead: dict[str, list[str]] = {}
    for name, lead in side[key].items():
        by_lead.setdefault(lead, []).append(name)
    return "; ".join(f"{lead}: {' '.join(names)}" for lead, names in by_lead.items())


def inverted_line(side: dict[str, Any]) -> str:
    """Which records of a side were turned upside down, or why none was."""
    if not side["qrs_up"]:
        return "none (converted as recorded)"
    return " ".join(side["inverted"]) or "none (every QRS points up)"


HELD_BACK = "held back (--hold-external)"
# what comes after a run with the never-seen side held back: the terminal and protocol.md
THEN_SCORE = ("the same command without --hold-external reuses the models trained here and "
              "scores them")
HELD_BACK_NOTE = f"{HELD_BACK}: no external record was converted or scored; {THEN_SCORE}"


def skipped_lines(side: dict[str, Any] | None, which: str) -> list[str]:
    """A line naming the side's records the converter left out, with why; none when it
    kept every one."""
    skipped = (side or {}).get("skipped") or {}
    if not skipped:
        return []
    return [f"- {which} records left out (they could not be converted): "
            + "; ".join(f"{name}: {why}" for name, why in skipped.items())]


def _sides(document: dict[str, Any]) -> tuple[str, ...]:
    """The sides with figures: the never-seen one is missing while it is held back."""
    return (CHOSEN_ON,) if document["external"].get("held_back") else (CHOSEN_ON, NEVER_SEEN)


def _external_lines(document: dict[str, Any]) -> list[str]:
    """What the never-seen records were and how they were read, or that they are held back."""
    external = document["external"]
    if external.get("held_back"):
        return [f"- never-seen records ({external['source']}): {HELD_BACK_NOTE}"]
    return [f"- never-seen records ({external['source']}): {' '.join(external['records'])}",
            f"- never-seen records' leads ({external['lead_choice']}): {leads_line(external)}",
            f"- never-seen records turned upside down (QRS pointing down): "
            f"{inverted_line(external)}", *skipped_lines(external, "never-seen")]


def _lead_lines(document: dict[str, Any]) -> list[str]:
    """The development records' other lead, and each row's second lead, when used."""
    other = document.get("dev_other_lead")
    lines = [f"- chosen-on records' other lead, trained on as well (other_lead_data; never "
             f"validated on): {leads_line(other)}",
             *skipped_lines(other, "chosen-on records' other-lead")] if other else []
    if document["dev"].get("second_leads"):
        external = document["external"]
        never_seen = (HELD_BACK if external.get("held_back")
                      else leads_line(external, "second_leads"))
        lines.append(f"- second lead of each row (beat_leads 2; turned upright): chosen-on "
                     f"{leads_line(document['dev'], 'second_leads')}; never-seen {never_seen}")
    return lines


def markdown(document: dict[str, Any]) -> str:
    """protocol.md: what was run on what, and both sides' figures per seed."""
    sides = _sides(document)
    lines = [f"# Inter-patient protocol, {document['date']}", "",
             f"- machine: {document['machine']['platform']}, {document['machine']['cpus']} "
             f"CPUs; training device: {document['seeds'][0]['device']}",
             f"- configuration: {document['config_file']}"
             + (f", with the values of the best run {document['sweep']['run_id']} of sweep "
                f"{document['sweep']['sweep_id']}: {json.dumps(document['chosen'])}"
                if document["sweep"] else ""),
             f"- final model: {final_model_line(document)}",
             f"- chosen-on records ({document['dev']['source']}): "
             f"{' '.join(document['dev']['records'])}",
             *skipped_lines(document["dev"], "chosen-on"), *_external_lines(document),
             *_lead_lines(document), "", "## Over the seeds", "",
             *seeds_table(document, sides), ""]
    averaged = document.get("seeds_averaged")
    if averaged:
        lines += [f"## Seeds {' '.join(map(str, averaged['seeds']))} averaged", "",
                  f"model: {averaged['model']} (the final model: each seed's fold models "
                  "averaged; its chosen-on figure averages the seeds' models of each fold on "
                  "the records that fold held out)", ""]
        lines += [line for side in sides for line in figures_table(averaged[side])]
    for result in document["seeds"]:
        lines += [f"## Seed {result['seed']}", "", f"model: {result['model']}", ""]
        lines += [line for side in sides for line in figures_table(result[side])]
    return "\n".join(lines)
