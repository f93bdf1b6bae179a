"""Figures, the machine they were measured on, the printed table and the JSON file."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    section: str
    name: str
    value: float | None  # None: not measured (note says why)
    unit: str
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


class Results:
    """The figures of one bench run. With ``echo`` each figure is printed as it is measured,
    so a run killed before its table still leaves what it measured in its output."""

    def __init__(self, mode: str, machine: dict[str, Any], echo: bool = False):
        self.mode = mode
        self.machine = machine
        self.figures: list[Figure] = []
        self.started = time.time()
        self.echo = echo
        self.stopped = False  # True: stopped before its end; the figures measured until then

    def add(self, section: str, name: str, value: float | None, unit: str, note: str = "",
            **detail: Any) -> Figure:
        fig = Figure(section, name, None if value is None else float(value), unit, note, detail)
        self.figures.append(fig)
        if self.echo:
            print(f"    {section}: {name}: {format_value(fig.value, unit)} {unit}".rstrip(),
                  flush=True)
        return fig

    def not_measured(self, section: str, name: str, unit: str, why: str) -> Figure:
        return self.add(section, name, None, unit, f"not measured: {why}")

    def as_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "machine": self.machine, "stopped": self.stopped,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
                "wall_s": round(time.time() - self.started, 1),
                "figures": [asdict(f) for f in self.figures]}


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "x":
        return f"{value:.2f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {"cpu": cpu, "cores": os.cpu_count(),
                            "python": platform.python_version(), "platform": platform.platform()}
    if hasattr(os, "sched_getaffinity"):
        info["cores_usable"] = len(os.sched_getaffinity(0))
    info.update(framework_versions())
    import keras

    from ecgsweep import backend

    info["backend"] = keras.backend.backend()  # the in-process sections train on this one
    info["gpus"] = list(backend.visible_gpus(info["backend"]))
    if hasattr(os, "getloadavg"):
        info["load_average_start"] = [round(x, 2) for x in os.getloadavg()]
    return info


def framework_versions() -> dict[str, str]:
    """Installed versions of Keras and each backend ('not installed' where absent)."""
    from importlib import metadata

    dists = {"keras": ("keras",), "tensorflow": ("tensorflow", "tensorflow-cpu"),
             "jax": ("jax",), "torch": ("torch",)}
    versions = {}
    for name, candidates in dists.items():
        versions[name] = "not installed"
        for dist in candidates:
            try:
                versions[name] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                pass
    return versions


def machine_line(m: dict[str, Any]) -> str:
    gpus = ", ".join(m.get("gpus") or []) or "no GPU"
    load = m.get("load_average_start")
    return (f"{m['cpu']}, {m['cores']} cores ({m.get('cores_usable', m['cores'])} usable), {gpus}; "
            f"Keras {m.get('keras')} on {m.get('backend')}; TensorFlow {m.get('tensorflow')}, "
            f"JAX {m.get('jax')}, PyTorch {m.get('torch')}; Python {m['python']}"
            + (f"; load average at start {load[0]:.2f}" if load else ""))


def print_results(results: Results, console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console(highlight=False)
        if not console.is_terminal:
            console = Console(highlight=False, width=max(console.width, 160))
    stopped = ", stopped before its end" if results.stopped else ""
    table = Table(title=f"ecg-sweeps benchmark ({results.mode}{stopped})",
                  caption=machine_line(results.machine))
    for col, justify in (("section", "left"), ("figure", "left"), ("value", "right"),
                         ("unit", "left"), ("note", "left")):
        table.add_column(col, justify=justify, overflow="fold")
    last = None
    for f in results.figures:
        table.add_row(f.section if f.section != last else "", f.name, format_value(f.value, f.unit),
                      f.unit, f.note, end_section=False)
        last = f.section
    console.print(table)


def write_results(results: Results, path: Path) -> None:
    import json

    from ecgsweep.sweep.files import write_text_whole

    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_whole(path, json.dumps(results.as_json(), indent=2, sort_keys=True, default=str))
