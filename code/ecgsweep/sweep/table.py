"""What the user sees: the runs table (live or printed), the leaderboard, the closing notes."""

from __future__ import annotations

import textwrap
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .ranking import ranked

STATE_STYLE = {"running": "bold cyan", "pending": "dim", "finished": "green",
               "stopped": "yellow", "failed": "bold red", "crashed": "red"}


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def _short(name: str) -> str:
    """A column header short enough for a table: learning_rate -> learning_rate, but
    layer_FC_size -> layer_FC_size; only very long names are cut."""
    return name if len(name) <= 14 else name[:13] + "…"


def _duration(row: dict, now: float) -> str:
    start = row.get("started_at")
    if not start:
        return ""
    end = row.get("ended_at") or now
    s = max(0, int(end - start))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _pairs(params: dict, searched: list[str]) -> list[str]:
    return [f"{n}={_fmt(params[n].get('value'))}" for n in searched
            if isinstance(params.get(n), dict)]


# The note column's least width before the parameters share one column; what a table spends
# on borders and padding for n columns (rich's default box, pad_edge off) is 3n - 1.
NOTE_MIN_WIDTH = 12
UNBOUNDED = 10_000


def _table_width(columns: list[tuple[str, str, list[str]]]) -> int:
    """Width of a table of one-line, unwrapped columns (header, justify, cells)."""
    return sum(_column_width(c) for c in columns) + 3 * len(columns) - 1


def _column_width(column: tuple[str, str, list[str]]) -> int:
    header, _, cells = column
    return max([len(header), *(len(line) for c in cells for line in c.splitlines())])


def pack(pairs: list[str], width: int) -> str:
    """``name=value`` pairs on lines of at most ``width`` characters (a pair wider than that
    alone on its line): a value is never split across lines."""
    lines: list[str] = []
    for pair in pairs:
        if lines and len(lines[-1]) + 1 + len(pair) <= width:
            lines[-1] += " " + pair
        else:
            lines.append(pair)
    return "\n".join(lines)


def _shown(rows: list[dict], max_rows: int | None) -> list[dict]:
    """The rows that fit: every live run, then the latest ended ones, in their order."""
    if max_rows is None or len(rows) <= max_rows:
        return rows
    live = [r for r in rows if r["state"] in ("running", "pending")]
    ended = [r for r in rows if r["state"] not in ("running", "pending")]
    keep = max(0, max_rows - len(live))
    shown = ended[-keep:] + live if keep else live[:max_rows]
    return sorted(shown, key=lambda r: r["seq"])


def _note(r: dict) -> str:
    note = r.get("error") or r.get("stop_reason") or ""
    if r.get("state") == "running" and r.get("should_stop"):
        note = "stopping: " + note
    if r.get("requeued"):
        note = "re-queued; " + note
    return note.splitlines()[0][:200] if note else ""


def _run_columns(shown: list[dict], metric: str | None, searched: list[str], now: float
                 ) -> tuple[list, list, list]:
    """(leading, one per searched parameter, trailing) columns as (header, justify, cells)."""
    leading = [("run", "left", [r["run_id"] for r in shown]),
               ("state", "left", [f"{r['state']:<8}" for r in shown])]
    if any(r.get("gpu") is not None for r in shown):  # runs were handed GPUs: which one
        leading.append(("gpu", "right", [r.get("gpu") or "" for r in shown]))
    by_name = [(_short(n), "right",
                [_fmt((r.get("params") or {}).get(n, {}).get("value"))
                 if isinstance((r.get("params") or {}).get(n), dict) else "" for r in shown])
               for n in searched]
    # A live run's epoch as its own output says it (run_progress), else the rows it logged.
    trailing = [("epoch", "right", [str(r.get("progress") or r.get("epochs") or 0)
                                    for r in shown])]
    if metric:
        trailing.append((metric, "right", [_fmt(r.get("metric_best")) for r in shown]))
    trailing.append(("time", "right", [_duration(r, now) for r in shown]))
    return leading, by_name, trailing


def _folded_params(shown: list[dict], searched: list[str], notes: list[str],
                   columns: list, width: int) -> tuple[list, tuple[str, str, list[str]], bool]:
    """The columns kept, the shared ``params`` column and whether the notes share it too.

    Its values are packed to the room left and never split; where that room is short, the
    time column goes first, then the notes move under the values in the same cell."""
    pairs = [_pairs(r.get("params") or {}, searched) for r in shown]
    longest = max((len(p) for ps in pairs for p in ps), default=6)
    if _table_width(columns) + 3 + longest > width:
        columns = [c for c in columns if c[0] != "time"]
    room = width - _table_width(columns) - 3
    merged = any(notes) and room - longest < NOTE_MIN_WIDTH + 3
    if any(notes) and not merged:
        room -= NOTE_MIN_WIDTH + 3
    room = max(room, longest)
    cells = [pack(ps, room) for ps in pairs]
    if merged:
        cells = [c + ("\n" + textwrap.fill(f"note: {n}", room) if n else "")
                 for c, n in zip(cells, notes)]
    return columns, ("params · note" if merged else "params", "left", cells), merged


def runs_table(rows: list[dict], *, metric: str | None, searched: list[str],
               title: str | None = None, max_rows: int | None = None,
               now: float | None = None, param_columns: int = 4,
               width: int | None = None) -> Table:
    """One row per run, fitted to ``width`` characters: searched parameters get a column
    each when there are few of them and they fit, else they share one ``params`` column,
    packed so that no value is split; notes (errors, stop reasons) get a column of the room
    left, or share the params column when there is too little."""
    now = time.time() if now is None else now
    shown = _shown(rows, max_rows)
    leading, by_name, trailing = _run_columns(shown, metric, searched, now)
    notes = [_note(r) for r in shown]
    width = width or UNBOUNDED
    note_room = NOTE_MIN_WIDTH + 3 if any(notes) else 0
    separate = (len(searched) <= param_columns
                and _table_width(leading + by_name + trailing) + note_room <= width)
    columns, params, merged = leading + by_name + trailing, None, False
    if not separate:
        columns, params, merged = _folded_params(shown, searched, notes, leading + trailing,
                                                 width)
    t = Table(title=title, title_justify="left", expand=False, pad_edge=False)
    for header, justify, _ in columns:
        t.add_column(header, justify=justify, no_wrap=True)
    if params is not None:  # the one column rich may narrow further, should all else fail
        t.add_column(params[0], overflow="fold")
    with_notes = any(notes) and not merged
    if with_notes:
        t.add_column("note", overflow="fold")
    for i, r in enumerate(shown):
        cells: list[Any] = [c[2][i] for c in columns]
        cells[1] = Text(r["state"], style=STATE_STYLE.get(r["state"], ""))
        t.add_row(*cells, *([params[2][i]] if params else []),
                  *([notes[i]] if with_notes else []))
    return t


def leaderboard(rows: list[dict], *, metric: str, goal: str, searched: list[str],
                top: int = 10, width: int | None = None) -> Table | None:
    best = ranked(rows, goal)[:top]
    if not best:
        return None
    columns = [("#", "right", [str(i) for i in range(1, len(best) + 1)]),
               ("run", "left", [r["run_id"] for r in best]),
               (metric, "right", [_fmt(r["metric_best"]) for r in best]),
               ("epochs", "right", [str(r.get("epochs") or 0) for r in best]),
               ("state", "left", [r["state"] for r in best])]
    pairs = [_pairs(r.get("params") or {}, searched) for r in best]
    room = (width or UNBOUNDED) - _table_width(columns) - 3
    longest = max((len(p) for ps in pairs for p in ps), default=6)
    columns.append(("params", "left", [pack(ps, max(room, longest)) for ps in pairs]))
    t = Table(title=f"leaderboard: {metric} ({goal})", title_justify="left", pad_edge=False)
    for header, justify, _ in columns:
        t.add_column(header, justify=justify, no_wrap=header != "params", overflow="fold")
    for i in range(len(best)):
        t.add_row(*(c[2][i] for c in columns))
    return t


def counts_line(rows: list[dict]) -> str:
    from collections import Counter

    c = Counter(r["state"] for r in rows if not r.get("requeued"))
    order = ("finished", "stopped", "failed", "crashed", "running", "pending")
    parts = [f"{c[s]} {s}" for s in order if c.get(s)]
    requeued = sum(1 for r in rows if r.get("requeued"))
    if requeued:  # the table shows them too: a lost grid point's run, given out again
        parts.append(f"{requeued} re-queued")
    n = sum(c.values())
    return f"{n} run{'s' if n != 1 else ''}" + (f" ({', '.join(parts)})" if parts else "")


class View:
    """Live table on a terminal, one line per event otherwise (tests, CI, log files)."""

    def __init__(self, console: Console, *, live: bool, metric: str | None,
                 searched: list[str], header: str = ""):
        self.console = console
        self.plain = not live
        self.metric = metric
        self.searched = searched
        self.header = header
        self._live: Live | None = None

    def __enter__(self) -> "View":
        if not self.plain:
            self._live = Live(console=self.console, auto_refresh=False, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def event(self, msg: str) -> None:
        target = self._live.console if self._live is not None else self.console
        target.print(Text(msg) if not self.plain else msg, markup=False, highlight=False,
                     soft_wrap=True)

    def update(self, rows: list[dict]) -> None:
        if self._live is None:
            return
        width, height = self.console.size
        table = runs_table(rows, metric=self.metric, searched=self.searched,
                           max_rows=max(5, height - 8), width=width)
        self._live.update(Group(Text(f"{self.header}   {counts_line(rows)}"), table),
                          refresh=True)
