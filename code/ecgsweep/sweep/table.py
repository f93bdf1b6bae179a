"""What the user sees: the runs table (live or printed), the leaderboard, the closing notes."""

from __future__ import annotations

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


def _params_text(params: dict, searched: list[str]) -> str:
    return " ".join(f"{n}={_fmt(params[n].get('value'))}" for n in searched
                    if isinstance(params.get(n), dict))


def runs_table(rows: list[dict], *, metric: str | None, searched: list[str],
               title: str | None = None, max_rows: int | None = None,
               now: float | None = None, param_columns: int = 4) -> Table:
    """One row per run; searched parameters get a column each when there are few of them,
    else they share one folded ``params`` column."""
    now = time.time() if now is None else now
    t = Table(title=title, title_justify="left", expand=False, pad_edge=False)
    t.add_column("run", no_wrap=True, min_width=8)
    t.add_column("state", no_wrap=True, min_width=8)
    separate = len(searched) <= param_columns
    if separate:
        for name in searched:
            t.add_column(_short(name), no_wrap=True, justify="right")
    t.add_column("epoch", justify="right", no_wrap=True)
    if metric:
        t.add_column(metric, justify="right", no_wrap=True, min_width=6)
    t.add_column("time", justify="right", no_wrap=True)
    if not separate:
        t.add_column("params", overflow="fold", ratio=2)
    t.add_column("note", overflow="fold", ratio=1)
    shown = rows
    if max_rows is not None and len(rows) > max_rows:
        live = [r for r in rows if r["state"] in ("running", "pending")]
        ended = [r for r in rows if r["state"] not in ("running", "pending")]
        keep = max(0, max_rows - len(live))
        shown = ended[-keep:] + live if keep else live[:max_rows]
        shown.sort(key=lambda r: r["seq"])
    for r in shown:
        p = r.get("params") or {}
        note = r.get("error") or r.get("stop_reason") or ""
        if r.get("state") == "running" and r.get("should_stop"):
            note = "stopping: " + note
        if r.get("requeued"):
            note = "re-queued; " + note
        cells: list[Any] = [r["run_id"], Text(r["state"], style=STATE_STYLE.get(r["state"], ""))]
        if separate:
            cells += [_fmt((p.get(n) or {}).get("value")) if isinstance(p.get(n), dict) else ""
                      for n in searched]
        cells.append(str(r.get("epochs") or 0))
        if metric:
            cells.append(_fmt(r.get("metric_best")))
        cells.append(_duration(r, now))
        if not separate:
            cells.append(_params_text(p, searched))
        cells.append(note.splitlines()[0][:200] if note else "")
        t.add_row(*cells)
    return t


def leaderboard(rows: list[dict], *, metric: str, goal: str, searched: list[str],
                top: int = 10) -> Table | None:
    best = ranked(rows, goal)[:top]
    if not best:
        return None
    t = Table(title=f"leaderboard: {metric} ({goal})", title_justify="left", pad_edge=False)
    t.add_column("#", justify="right")
    t.add_column("run", no_wrap=True)
    t.add_column(metric, justify="right")
    t.add_column("epochs", justify="right")
    t.add_column("state")
    t.add_column("params", overflow="fold")
    for i, r in enumerate(best, 1):
        p = r.get("params") or {}
        ps = _params_text(p, searched)
        t.add_row(str(i), r["run_id"], _fmt(r["metric_best"]), str(r.get("epochs") or 0),
                  r["state"], ps)
    return t


def counts_line(rows: list[dict]) -> str:
    from collections import Counter

    c = Counter(r["state"] for r in rows if not r.get("requeued"))
    order = ("finished", "stopped", "failed", "crashed", "running", "pending")
    parts = [f"{c[s]} {s}" for s in order if c.get(s)]
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
        height = self.console.size.height
        table = runs_table(rows, metric=self.metric, searched=self.searched,
                           max_rows=max(5, height - 8))
        self._live.update(Group(Text(f"{self.header}   {counts_line(rows)}"), table),
                          refresh=True)
