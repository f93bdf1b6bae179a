"""Files and folders: one way to replace a file whole, and the checks of a folder flag.

A file is written to a temp file beside it and renamed onto it (``os.replace``), so a reader
sees the old file or the new one, never half of one, and a failed write (a full disk) leaves
neither a partial file nor the temp file. The temp file's name is unique to the process and
the call, so that several writers of one file (runners finishing one shared sweep) never
share one. ``durable`` also flushes the file and its folder to disk before returning, for
records that must survive a power cut.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

from .errors import UserError


@contextlib.contextmanager
def replaced_whole(path: str | Path, *, suffix: str = ".tmp",
                   durable: bool = False) -> Iterator[Path]:
    """A temp path beside ``path`` for the block to write; renamed onto ``path`` when the
    block succeeds, removed when it fails. ``suffix`` ends the temp name (a writer such as
    matplotlib picks the format from it)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}")
    try:
        yield tmp
        if durable:
            flush_to_disk(tmp)
        os.replace(tmp, path)
        if durable:
            flush_to_disk(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_whole(path: str | Path, text: str, *, durable: bool = False) -> None:
    """Write ``text`` (UTF-8) to ``path`` in one step (see ``replaced_whole``)."""
    with replaced_whole(path, durable=durable) as tmp:
        tmp.write_text(text, encoding="utf-8")


def flush_to_disk(path: Path) -> None:
    """Flush a file or folder to disk; a file system that cannot is left as it is."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def require_folder(path: str | Path, flag: str) -> Path:
    """The first of ``path`` and its parents that exists; UserError naming ``flag`` when that
    is a file, so that ``path`` can never be a folder."""
    folder = existing = Path(path)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "" if existing == folder else f": {existing}"
        raise UserError(f"{flag} {folder}{where} is a file, not a folder; give a folder (it is "
                        "made if missing)")
    return existing


def writable_folder(path: str | Path, flag: str) -> Path:
    """``path`` as a Path when files can be written there; UserError naming ``flag``
    otherwise. Checked before the work whose results go there, so that a bad folder costs
    nothing; nothing is made here."""
    existing = require_folder(path, flag)
    try:
        with tempfile.TemporaryFile(dir=existing):  # the one sure test: write a file there
            pass
    except OSError as e:
        raise UserError(f"{flag} {path}: cannot write in {existing} ({e.strerror or e}); "
                        "give a folder you can write") from e
    return Path(path)
