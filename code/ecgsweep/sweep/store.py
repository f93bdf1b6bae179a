"""A sweep's state in one SQLite file: ``<store>/<sweep_id>/sweep.db``.

Beside it, the same folder holds what the runs write: ``wandb/`` (``WANDB_DIR`` of every
run: offline run folders and the agent-style parameter files) and ``logs/<run_id>.log``.

Tables
  meta(key, value)      the YAML text, config, settings, sweep state (JSON values)
  runs(run_id, ...)     one row per run: params, state, exit code, error, output tail,
                        summary, owner runner, pids, heartbeats, best metric
  history(run_id, step, data)   every per-epoch metrics line a run wrote
  runners(runner_id, ...)       every runner process that worked on the sweep, with
                        host, pid, boot id and heartbeat, so another runner can tell a
                        dead runner's runs from a live one's
  prior_runs(run_id, ...)       runs of earlier sweeps the search starts from
                        (``--prior-runs``), copied at the sweep's creation
The meta key ``control`` holds the last `stop`, `cancel`, `pause` or `resume` from any shell:
{"state", "at", "by"} (``controls``).

All of the sweep's SQL is here, behind named methods (``runs(state)``, ``flagged_runs``,
``last_ended``, ``end_runner``, ...); the modules above decide, the store reads and writes.

Every read-modify-write (taking a grid point, marking runs to stop) runs inside
``BEGIN IMMEDIATE``: SQLite then lets one writer at a time in, across threads, processes
and hosts sharing the file, so no two workers take the same grid point and no update is
lost. WAL journaling is used on local disks; on network filesystems (NFS, Lustre, ...),
where WAL's shared memory does not work across hosts, the classic rollback journal.

Reading (status, report, ensemble) opens the file read-only, with no schema or journal
change, so a store on a read-only disk or of another user can still be read (where it may
write there, SQLite keeps its WAL index beside the file, as for any reader). A store that
SQLite cannot read, or that holds no sweep, is a ``DamagedStore`` naming its file; one that
cannot be written (permissions, a full disk) a ``StoreError``: each is one line for the
user, never a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import json
import re
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator

from .errors import ConfigError, UserError
from .files import require_folder

DB_NAME = "sweep.db"
DEFAULT_STORE = ".sweeps"  # the folder of sweeps when no --store is given
SCHEMA_VERSION = 1

# Run states. `stopped` = ended on request (hyperband); metrics count like a finished run.
PENDING, RUNNING, FINISHED, STOPPED, FAILED, CRASHED = (
    "pending", "running", "finished", "stopped", "failed", "crashed")
TERMINAL = (FINISHED, STOPPED, FAILED, CRASHED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id       TEXT PRIMARY KEY,
    seq          INTEGER NOT NULL,
    params       TEXT NOT NULL,          -- JSON {name: {"value": v}}, as the program gets it
    state        TEXT NOT NULL,
    should_stop  INTEGER NOT NULL DEFAULT 0,
    stop_reason  TEXT,
    exit_code    INTEGER,
    error        TEXT,
    output_tail  TEXT,
    summary      TEXT,                   -- JSON, the program's ecgsweep-summary.json
    search_info  TEXT,                   -- JSON, what the engine said when proposing
    owner        TEXT,                   -- runner_id running it
    pid          INTEGER,                -- the program's pid (on the owner's host)
    pid_start    INTEGER,
    slot         INTEGER,
    gpu          TEXT,
    log_path     TEXT,
    command      TEXT,                   -- JSON argv the program was started with
    files_dir    TEXT,                   -- the wandb run's files folder, once found
    epochs       INTEGER NOT NULL DEFAULT 0,
    metric_best  REAL,
    metric_last  REAL,
    retry_of     TEXT,                   -- grid point re-queued from this crashed run
    requeued     INTEGER NOT NULL DEFAULT 0,
    runner_lost  INTEGER NOT NULL DEFAULT 0, -- crashed: its runner or node lost, or stopped from outside
    host         TEXT,                   -- where the program runs (a Ray run: its node)
    node_id      TEXT,                   -- the cluster node running it (a Ray run)
    created_at   REAL NOT NULL,
    started_at   REAL,
    heartbeat_at REAL,
    ended_at     REAL
);
CREATE INDEX IF NOT EXISTS runs_state ON runs(state);
CREATE TABLE IF NOT EXISTS history (
    run_id TEXT NOT NULL,
    step   INTEGER NOT NULL,
    data   TEXT NOT NULL,
    PRIMARY KEY (run_id, step)
);
CREATE TABLE IF NOT EXISTS runners (
    runner_id    TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    pid_start    INTEGER,
    boot_id      TEXT,
    workers      INTEGER,
    started_at   REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    ended_at     REAL,
    exit_reason  TEXT
);
CREATE TABLE IF NOT EXISTS prior_runs (
    run_id      TEXT PRIMARY KEY,        -- SWEEP/RUN: the run in the sweep it ran in
    params      TEXT NOT NULL,
    state       TEXT NOT NULL,
    summary     TEXT,
    history     TEXT NOT NULL,           -- JSON list of its logged rows
    metric_best REAL                     -- its value of this sweep's metric
);
"""

# Columns a store made by an older version of this module may lack: (name, declaration).
_ADDED_COLUMNS: tuple[tuple[str, str], ...] = (("command", "TEXT"),
                                               ("runner_lost", "INTEGER NOT NULL DEFAULT 0"),
                                               ("host", "TEXT"), ("node_id", "TEXT"))

_NETWORK_FS = ("nfs", "nfs4", "cifs", "smb", "smbfs", "smb3", "lustre", "gpfs", "beegfs",
               "ceph", "glusterfs", "panfs", "afs", "9p", "fuse")

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def valid_id(sweep_id: str) -> bool:
    return bool(_ID_RE.match(sweep_id))


def require_valid_id(sweep_id: str, flag: str = "sweep ID") -> None:
    """Refuse an ID that is not a plain name: it names a folder under --store, never a path."""
    if not valid_id(sweep_id):
        raise ConfigError(f"{flag} {sweep_id!r}: use letters, digits, '_', '-' or '.' "
                          "(at most 64, starting with a letter or digit)")


def network_fs_type(path: Path) -> str | None:
    """The file system type of the mount holding ``path`` when it is a network one, else None."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    best, fstype = "", ""
    p = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        mnt = parts[1].replace("\\040", " ")
        if (p == mnt or p.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best):
            best, fstype = mnt, parts[2]
    hit = any(fstype == t or fstype.startswith(t + ".") for t in _NETWORK_FS)
    return fstype if hit else None


def _is_network_fs(path: Path) -> bool:
    return network_fs_type(path) is not None


class StoreError(UserError):
    """A sweep's store that cannot be used here: not writable, or on a full disk."""


class DamagedStore(StoreError):
    """A sweep's store whose file SQLite cannot read, or that holds no sweep."""


# SQLite's messages when the file or its folder cannot be written, or the disk is full.
_ACCESS_ERRORS = ("readonly", "unable to open", "disk is full", "disk i/o error",
                  "authorization denied")


def store_error(path: str | Path, error: sqlite3.Error) -> StoreError:
    """The one-line error for a SQLite failure on the store at ``path``."""
    text = str(error)
    if any(s in text.lower() for s in _ACCESS_ERRORS):
        return StoreError(f"sweep store {path} cannot be used ({text}): check that you may write "
                          "it and its folder, and that its disk has free space")
    return DamagedStore(f"sweep store {path} is damaged ({text}): restore it from a backup, "
                        f"or move its folder {Path(path).parent} out of the store")


@contextlib.contextmanager
def sqlite_errors(path: str | Path) -> Iterator[None]:
    """Turn a SQLite failure inside the block into the store's one-line error."""
    try:
        yield
    except sqlite3.Error as e:
        raise store_error(path, e) from e


def refuse_network_store(root: str | Path) -> None:
    """Raise UserError when the store folder is on a network file system.

    SQLite's locks are unreliable or absent on NFS, Lustre and CIFS mounts, so runners on
    several hosts sharing one store could take the same grid point or corrupt it. Several
    runners on one host, one local disk, stay safe.
    """
    folder = Path(root)
    while not folder.exists() and folder != folder.parent:  # the store may not exist yet
        folder = folder.parent
    fstype = network_fs_type(folder)
    if fstype is not None:
        raise UserError(f"--store {root} is on a network file system ({fstype}), where SQLite's "
                        "locks are unreliable; put the store on a local disk (e.g. --store "
                        "/tmp/sweeps): scale on that machine with --workers, or across "
                        "machines with --ray ADDRESS (one coordinator, its store on its own disk)")


def sweep_dir(root: str | Path, sweep_id: str) -> Path:
    return Path(root) / sweep_id


def db_path(root: str | Path, sweep_id: str) -> Path:
    return sweep_dir(root, sweep_id) / DB_NAME


def list_sweeps(root: str | Path) -> list[str]:
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{DB_NAME}"))


class Store:
    """One sweep's SQLite database. One instance per thread or process.

    ``create``: make the folder and the file when missing (a sweep whose creation fails
    leaves neither behind); ``read_only``: open for reading only, writing nothing.
    """

    def __init__(self, path: str | Path, *, create: bool = False, read_only: bool = False,
                 timeout_s: float = 120.0):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise FileNotFoundError(f"no sweep store at {self.path}")
        made_folder = create and not self.path.parent.exists()
        if create:
            _make_folder(self.path.parent)
        try:
            with sqlite_errors(self.path):
                self._open(create=create, read_only=read_only, timeout_s=timeout_s)
        except BaseException:
            self.close()
            if made_folder:  # nothing half-made stays in the store
                shutil.rmtree(self.path.parent, ignore_errors=True)
            raise

    def _open(self, *, create: bool, read_only: bool, timeout_s: float) -> None:
        if read_only:
            self._conn = _connect_read_only(self.path, timeout_s)
            self.require_sweep()
            return
        self._conn = sqlite3.connect(str(self.path), timeout=timeout_s, isolation_level=None,
                                    check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        if not create:  # an existing sweep: refuse a damaged file before writing to it
            self.require_sweep()
        journal = "DELETE" if _is_network_fs(self.path.parent) else "WAL"
        with contextlib.suppress(sqlite3.OperationalError):
            self._conn.execute(f"PRAGMA journal_mode = {journal}")
        self._conn.execute("PRAGMA synchronous = NORMAL" if journal == "WAL"
                          else "PRAGMA synchronous = FULL")
        with self.transaction():
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    self._conn.execute(stmt)
            have = {r["name"] for r in self._conn.execute("PRAGMA table_info(runs)")}
            for col, decl in _ADDED_COLUMNS:
                if col not in have:  # a store made by an older version of this module
                    self._conn.execute(f"ALTER TABLE runs ADD COLUMN {col} {decl}")
            self._conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)",
                              ("schema_version", json.dumps(SCHEMA_VERSION)))

    def require_sweep(self) -> None:
        """DamagedStore unless SQLite reads the whole file and it holds a sweep's config."""
        with sqlite_errors(self.path):
            problems = [r[0] for r in self._conn.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise sqlite3.DatabaseError("; ".join(problems[:3]))
            tables = {r[0] for r in self._conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            have = (tables >= {"meta", "runs", "history", "runners"}
                    and {r[0] for r in self._conn.execute(
                        "SELECT key FROM meta WHERE key IN ('sweep_id', 'config')")}
                    == {"sweep_id", "config"})
        if not have:
            size = self.path.stat().st_size
            raise DamagedStore(f"sweep store {self.path} holds no sweep ({size} bytes, no sweep "
                               "config in it): its creation was cut short or the file was "
                               f"damaged; move its folder {self.folder} out of the store")

    @property
    def folder(self) -> Path:
        return self.path.parent

    def close(self) -> None:
        if hasattr(self, "_conn"):  # absent when opening failed
            self._conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT: the write lock is held for the whole block."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")

    # ------------------------------------------------------------------ meta
    def get(self, key: str, default: Any = None) -> Any:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row["value"])

    def set(self, key: str, value: Any) -> None:
        self._conn.execute("INSERT INTO meta(key, value) VALUES (?, ?) "
                          "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                          (key, json.dumps(value)))

    def meta(self) -> dict[str, Any]:
        return {r["key"]: json.loads(r["value"])
                for r in self._conn.execute("SELECT key, value FROM meta")}

    # ------------------------------------------------------------------ runs
    def runs(self, state: str | None = None) -> list[dict[str, Any]]:
        """Every run, oldest first; ``state``: only the runs in that state."""
        if state is None:
            rows = self._conn.execute("SELECT * FROM runs ORDER BY seq")
        else:
            rows = self._conn.execute("SELECT * FROM runs WHERE state = ? ORDER BY seq", (state,))
        return [_decode_run(r) for r in rows]

    def run(self, run_id: str) -> dict[str, Any] | None:
        r = self._conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if r is None else _decode_run(r)

    def next_seq(self) -> int:
        r = self._conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM runs").fetchone()
        return int(r["n"])

    def insert_run(self, run_id: str, params: dict, *, state: str, owner: str | None = None,
                   search_info: Any = None, retry_of: str | None = None,
                   slot: int | None = None) -> None:
        now = time.time()
        self._conn.execute(
            "INSERT INTO runs(run_id, seq, params, state, owner, search_info, retry_of, slot,"
            " created_at, started_at, heartbeat_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (run_id, self.next_seq(), json.dumps(params), state, owner,
             None if search_info is None else json.dumps(search_info, default=_jsonable),
             retry_of, slot, now, now if state == RUNNING else None,
             now if state == RUNNING else None))

    def update_run(self, run_id: str, **fields: Any) -> None:
        if not fields:
            return
        cols = []
        vals = []
        for k, v in fields.items():
            if k in ("summary", "params", "search_info") and v is not None and not isinstance(v, str):
                v = json.dumps(v, default=_jsonable)
            cols.append(f"{k} = ?")
            vals.append(v)
        self._conn.execute(f"UPDATE runs SET {', '.join(cols)} WHERE run_id = ?", (*vals, run_id))

    def flagged_runs(self, owner: str) -> dict[str, str | None]:
        """The running runs of runner ``owner`` that are flagged to stop, with the reason."""
        return {r["run_id"]: r["stop_reason"] for r in self._conn.execute(
            "SELECT run_id, stop_reason FROM runs WHERE owner = ? AND state = ? "
            "AND should_stop = 1", (owner, RUNNING))}

    def last_ended(self, n: int) -> list[dict[str, Any]]:
        """State and error of the ``n`` runs that ended by themselves (finished, stopped or
        failed) most recently, newest first."""
        return [dict(r) for r in self._conn.execute(
            "SELECT state, error FROM runs WHERE state IN (?, ?, ?) AND ended_at IS NOT NULL "
            "ORDER BY ended_at DESC LIMIT ?", (FINISHED, STOPPED, FAILED, n))]

    def any_metric_logged(self) -> bool:
        """Whether some run has a value of the sweep's metric."""
        return self._conn.execute(
            "SELECT 1 FROM runs WHERE metric_best IS NOT NULL LIMIT 1").fetchone() is not None

    def count_busy(self) -> int:
        """Runs that run or wait to."""
        return int(self._conn.execute("SELECT COUNT(*) FROM runs WHERE state IN (?, ?)",
                                      (RUNNING, PENDING)).fetchone()[0])

    def count_runs(self) -> int:
        """Runs that count towards the sweep's cap.

        A re-queued crash counts once (its retry counts); a run lost with its runner, or
        stopped from outside the sweep, counts not at all, so a killed runner or a Ctrl-C
        on one run does not cost a random or bayes sweep a run.
        """
        return int(self._conn.execute(
            "SELECT COUNT(*) FROM runs WHERE requeued = 0 AND runner_lost = 0").fetchone()[0])

    # ------------------------------------------------------------------ history
    def add_history(self, run_id: str, start_step: int, rows: list[dict]) -> None:
        self._conn.executemany(
            "INSERT OR REPLACE INTO history(run_id, step, data) VALUES (?, ?, ?)",
            [(run_id, start_step + i, json.dumps(r, default=_jsonable)) for i, r in enumerate(rows)])

    def history(self, run_id: str) -> list[dict]:
        return [json.loads(r["data"]) for r in self._conn.execute(
            "SELECT data FROM history WHERE run_id = ? ORDER BY step", (run_id,))]

    def history_length(self, run_id: str) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM history WHERE run_id = ?",
                                      (run_id,)).fetchone()[0])

    def histories(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for r in self._conn.execute("SELECT run_id, data FROM history ORDER BY run_id, step"):
            out.setdefault(r["run_id"], []).append(json.loads(r["data"]))
        return out

    # ------------------------------------------------------------------ prior runs
    def add_prior_runs(self, rows: list[dict[str, Any]]) -> None:
        self._conn.executemany(
            "INSERT INTO prior_runs(run_id, params, state, summary, history, metric_best) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(r["run_id"], json.dumps(r["params"], default=_jsonable), r["state"],
              json.dumps(r.get("summary"), default=_jsonable),
              json.dumps(r.get("history") or [], default=_jsonable), r.get("metric_best"))
             for r in rows])

    def prior_runs(self) -> list[dict[str, Any]]:
        """The runs of earlier sweeps this sweep's search starts from; none in a store made
        before there were prior runs (read-only, it gains no table)."""
        if self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                              "AND name = 'prior_runs'").fetchone() is None:
            return []
        out = []
        for r in self._conn.execute("SELECT * FROM prior_runs ORDER BY run_id"):
            d = dict(r)
            for k in ("params", "summary", "history"):
                d[k] = json.loads(d[k]) if d[k] is not None else None
            out.append(d)
        return out

    # ------------------------------------------------------------------ runners
    def register_runner(self, runner_id: str, *, host: str, pid: int, pid_start: int | None,
                        boot_id: str, workers: int) -> None:
        now = time.time()
        self._conn.execute(
            "INSERT INTO runners(runner_id, host, pid, pid_start, boot_id, workers, started_at,"
            " heartbeat_at) VALUES (?,?,?,?,?,?,?,?)",
            (runner_id, host, pid, pid_start, boot_id, workers, now, now))

    def runners(self) -> dict[str, dict[str, Any]]:
        return {r["runner_id"]: dict(r) for r in self._conn.execute("SELECT * FROM runners")}

    def runner_heartbeat(self, runner_id: str, now: float) -> None:
        self._conn.execute("UPDATE runners SET heartbeat_at = ? WHERE runner_id = ?",
                           (now, runner_id))

    def end_runner(self, runner_id: str, now: float, exit_reason: str) -> None:
        """Record that a runner stopped working on the sweep, and why."""
        self._conn.execute("UPDATE runners SET ended_at = ?, exit_reason = ? WHERE runner_id = ?",
                           (now, exit_reason, runner_id))

    def mark_runner_lost(self, runner_id: str, now: float) -> None:
        """Record a runner found dead as lost, unless it had signed off."""
        self._conn.execute("UPDATE runners SET ended_at = ?, exit_reason = 'lost' "
                           "WHERE runner_id = ? AND ended_at IS NULL", (now, runner_id))


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        hint = ("free space on its disk" if e.errno == errno.ENOSPC
                else "give --store a folder you can write")
        raise StoreError(f"cannot make the sweep folder {folder} ({e.strerror or e}): "
                         f"{hint}") from e


# SQLite's answers when a read-only connection needs to write the WAL index (``-shm``) that
# is missing beside a database in WAL mode, in a folder it may not write.
_NEEDS_WAL_INDEX = ("readonly", "unable to open")


def _connect_read_only(path: Path, timeout_s: float) -> sqlite3.Connection:
    """A connection that cannot write: ``mode=ro``; where the folder is read-only and the WAL
    index missing, ``immutable=1`` (then no runner can be writing there either)."""
    uri = path.resolve().as_uri()
    try:
        return _first_read(f"{uri}?mode=ro", timeout_s)
    except sqlite3.OperationalError as e:
        if not any(s in str(e).lower() for s in _NEEDS_WAL_INDEX):
            raise
    return _first_read(f"{uri}?immutable=1", timeout_s)


def _first_read(uri: str, timeout_s: float) -> sqlite3.Connection:
    """Connect to ``uri`` and read once: SQLite opens the file only at the first query."""
    conn = sqlite3.connect(uri, uri=True, timeout=timeout_s, isolation_level=None,
                           check_same_thread=False)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn


def _decode_run(r: sqlite3.Row) -> dict[str, Any]:
    d = dict(r)
    for k in ("params", "summary", "search_info"):
        if d.get(k):
            try:
                d[k] = json.loads(d[k])
            except ValueError:
                pass
    d["params"] = d.get("params") or {}
    return d


def _jsonable(o: Any) -> Any:
    """json.dumps default: numpy scalars and arrays, anything else as str."""
    if hasattr(o, "item") and callable(o.item):
        try:
            return o.item()
        except (ValueError, TypeError):
            pass
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def plain(o: Any) -> Any:
    """A JSON-safe copy of ``o`` with numpy scalars turned into Python numbers."""
    return json.loads(json.dumps(o, default=_jsonable))


def open_store(root: str | Path, sweep_id: str, flag: str = "sweep ID", *,
               read_only: bool = False) -> Store:
    """The sweep's store, checked: FileNotFoundError listing the others when it is missing,
    DamagedStore when it cannot be read, StoreError when it cannot be written."""
    require_valid_id(sweep_id, flag)
    require_folder(root, "--store")
    path = db_path(root, sweep_id)
    if not path.is_file():
        known = list_sweeps(root)
        hint = f" Sweeps in {root}: {', '.join(known)}" if known else f" {root} holds no sweeps."
        raise FileNotFoundError(f"no sweep {sweep_id!r} in {root} ({path} missing).{hint}")
    return Store(path, read_only=read_only)

