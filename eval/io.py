"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename.

A write that fails (folder cannot be created, disk full, permission denied, ...) leaves nothing at
the final path (an older file there is kept whole) and no temporary file, and raises
:class:`WriteError`: an :class:`~eval.errors.InputError`, so the CLI prints one line naming the
path and the reason. :func:`atomic_write_many` writes several files of one result so that a failure
while writing any of them changes none of them.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eval.errors import InputError

__all__ = [
    "WriteError",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_many",
    "atomic_write_text",
    "check_output_file",
    "ensure_output_dir",
    "nearest_existing",
    "refuse_overwrite",
]


class WriteError(InputError):
    """Writing an output failed; ``errno`` and ``path`` tell which and why."""

    def __init__(self, message: str, *, path: str | os.PathLike | None = None, errno: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.errno = errno


def _write_error(path: Path, exc: OSError, what: str = "cannot write") -> WriteError:
    reason = exc.strerror or str(exc)
    if exc.filename is not None and Path(os.fsdecode(exc.filename)) != path:
        reason += f" ({os.fsdecode(exc.filename)})"
    return WriteError(f"{what} {path}: {reason}", path=path, errno=exc.errno)


def ensure_output_dir(path: str | os.PathLike) -> Path:
    """Create the folder of output file ``path`` and check that a file can be written in it (a
    temporary file is made and removed), so a run fails before it computes anything rather than at
    its end. Raises :class:`WriteError` naming the folder."""
    folder = Path(path).parent
    _mkdir(folder, "cannot create output folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".wsol-write-test.", dir=folder)
    except OSError as exc:
        raise _write_error(folder, exc, "cannot write in output folder") from None
    os.close(fd)
    os.unlink(tmp)
    return folder


def nearest_existing(path: str | os.PathLike) -> Path | None:
    """``path`` or its nearest parent that exists (None: none does). A folder to be created at
    ``path`` is blocked exactly when this is not a folder."""
    path = Path(path)
    return next((p for p in (path, *path.parents) if p.exists()), None)


def _mkdir(folder: Path, what: str, named: Path | None = None) -> None:
    """``folder.mkdir(parents=True, exist_ok=True)``; failures raise :class:`WriteError` naming
    ``named`` (default: the folder)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:  # the folder or one above it is a file
        existing = nearest_existing(folder)
        culprit = existing if existing is not None and not existing.is_dir() else None
        reason = f"{culprit} is a file, not a folder" if culprit is not None else (exc.strerror or str(exc))
        raise WriteError(f"{what} {named or folder}: {reason}", path=named or folder, errno=errno.ENOTDIR) from None
    except OSError as exc:
        raise _write_error(named or folder, exc, what) from None


def _mkdir_parent(path: Path) -> None:
    _mkdir(path.parent, "cannot write", named=path)


def _write_temp(path: Path, data: bytes) -> str:
    """``data`` in a fsynced temporary file beside ``path`` (removed again on any failure)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from None
        raise
    return tmp


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (readers see the old file or the whole new one).
    Failures raise :class:`WriteError` and leave ``path`` as it was."""
    path = Path(path)
    _mkdir_parent(path)
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from None
        raise
    return path


def atomic_write_many(files: Mapping[str | os.PathLike, bytes | str]) -> list[Path]:
    """Write several files of one result (e.g. a result JSON and its CSVs) as one unit.

    Every file is first written and fsynced to a temporary file beside its final path, where a full
    disk or a permission problem shows; only when all are written are they renamed into place, in
    the given order (put the file that marks the result complete, the JSON, last). If a rename
    fails, the files already renamed are rolled back (removed, or the older file restored from a
    hard link kept until the end), so a failure leaves every final path as it was; temporaries never
    stay behind. ``str`` values are written as UTF-8."""
    items = [(Path(p), d.encode("utf-8") if isinstance(d, str) else d) for p, d in files.items()]
    temps: list[tuple[str, Path]] = []
    backups: dict[Path, str | None] = {}  # final path -> hard link to its older file (None: none)
    done: list[Path] = []
    try:
        for path, data in items:
            _mkdir_parent(path)
            temps.append((_write_temp(path, data), path))
        for _, path in temps:
            backups[path] = _backup(path)
        while temps:
            tmp, path = temps[0]
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise _write_error(path, exc) from None
            temps.pop(0)
            done.append(path)
    except BaseException:
        for path in reversed(done):  # roll back what was renamed
            old = backups.get(path)
            try:
                if old is not None:
                    os.replace(old, path)
                    backups[path] = None
                else:
                    path.unlink(missing_ok=True)
            except OSError:
                pass
        raise
    finally:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)
        for old in backups.values():
            if old is not None:
                Path(old).unlink(missing_ok=True)
    return [p for p, _ in items]


def _backup(path: Path) -> str | None:
    """A hard link to the file at ``path`` (to restore it), or ``None`` if there is none (or the
    file system cannot link: then a failed rename cannot bring the older file back)."""
    if not path.is_file():
        return None
    tmp = tempfile.mktemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent)
    try:
        os.link(path, tmp)
    except OSError:
        return None
    return tmp


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def refuse_overwrite(path: str | os.PathLike, overwrite: bool) -> None:
    """Raise :class:`InputError` if ``path`` exists and ``overwrite`` is false."""
    if Path(path).exists() and not overwrite:
        raise InputError(f"{path} exists; pass --overwrite to replace it")


def check_output_file(path: str | os.PathLike, option: str = "--output", example: str = "result.json") -> Path:
    """Refuse, before any work, an output path that cannot name a file: an empty path, one that
    ends in a path separator (``out/``: a folder), one whose last part is ``.`` or ``..``, or an
    existing folder. Raises :class:`InputError` with one line naming ``option`` and the path;
    returns the path."""
    text = os.fspath(path)
    seps = tuple({os.sep, os.altsep or os.sep, "/"})
    if not text.strip():
        raise InputError(f"{option} {text!r}: empty path; give a file name such as {example}")
    p = Path(text)
    if text.endswith(seps) or p.name in ("", ".", "..") or text.endswith(("/.", "/..")) or text in (".", ".."):
        raise InputError(f"{option} {text}: names a folder; give a file name such as {p / example}")
    if p.is_dir():
        raise InputError(f"{option} {text}: is an existing folder; give a file name such as {p / example}")
    return p
