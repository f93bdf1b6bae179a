"""Read a sweep YAML, bounded for any file: its size, its values (aliases counted, not
expanded) and its nesting have limits, each named in the message that refuses a file. A
syntax error, a key given twice in one mapping, a value that cannot be built (a date such as
2001-13-45), an empty file or one that is not a mapping is a ``ConfigError`` naming the line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError


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


def safe_load_unique(text: str, source: str) -> Any:
    """``yaml.safe_load`` bounded in size, and a ConfigError naming ``source`` and the line of
    each key given twice in one mapping (PyYAML would keep the last silently)."""
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
        cfg = safe_load_unique(text, source)
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
