"""The one downloader of the toolkit (``wsol zoo`` and ``wsol data fetch``).

Rules, for every file:

* **cache**: ``$WSOL_CACHE`` (default ``~/.cache/wsol``); :func:`cache_dir`.
* **mirror**: ``--mirror`` or ``$WSOL_MIRROR``, a folder (or ``file://`` URL) or an ``http(s)://``
  URL; the file is then read from ``<mirror>/<filename>`` instead of its published URL, with the
  same checks. :func:`mirror_location`.
* **atomic**: bytes go to ``<final>.partial`` and are renamed to the final name only once complete
  and verified; a failure removes the partial file. A complete file is never re-downloaded.
* **checks**: the length the server announced (a truncated transfer is refused), the published
  sha256 / md5 / sha256 prefix when known, and **trust on first use**: the sha256 of the first
  accepted download is recorded in ``<cache>/hashes.json`` (:class:`HashStore`, written
  atomically) and every later use of the file, downloaded again or read from the cache, must
  match it.
* **errors**: one line (:class:`~wsol.errors.UserError`, exit status 2 from the CLI) naming the
  URL and the exact path where a hand-downloaded file can be put (:func:`hand_download_hint`).
* **archives**: :func:`extract_member` copies one member of a zip or tar to a path of our
  choosing (the member's own path is never used); :func:`extract_all` unpacks a tar or zip after
  refusing absolute paths, ``..`` components, links and device files, into a temporary folder
  moved into place.

Only the standard library's ``urllib`` and ``tqdm`` are used (no torch).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from wsol.errors import UserError

__all__ = [
    "ENV_CACHE",
    "ENV_MIRROR",
    "Remote",
    "HashStore",
    "FetchResult",
    "cache_dir",
    "mirror_location",
    "file_problem",
    "is_url",
    "fetch",
    "verify_file",
    "file_digests",
    "hand_download_hint",
    "extract_member",
    "extract_all",
    "show_progress",
]

ENV_CACHE = "WSOL_CACHE"
ENV_MIRROR = "WSOL_MIRROR"
HASHES_FILE = "hashes.json"
TIMEOUT_S = 60.0
CHUNK = 1 << 20


def cache_dir() -> Path:
    """``$WSOL_CACHE``, else ``~/.cache/wsol`` (not created here)."""
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "wsol"


def mirror_location(mirror: str | None = None) -> str | None:
    """The mirror to read from: ``mirror`` when given, else ``$WSOL_MIRROR``; None for none."""
    value = mirror if mirror is not None else os.environ.get(ENV_MIRROR)
    value = value.strip() or None if value else None
    if value and "://" in value and urllib.parse.urlsplit(value).scheme not in ("http", "https", "file"):
        given = "--mirror" if mirror is not None else f"${ENV_MIRROR}"
        raise UserError(
            f"{given} {value}: unsupported URL scheme {urllib.parse.urlsplit(value).scheme!r}; "
            "give a folder, a file:// URL or an http(s):// URL"
        )
    return value


def is_url(text: str) -> bool:
    return urllib.parse.urlsplit(text).scheme in ("http", "https")


def show_progress(progress: bool) -> bool:
    """Progress bars only when asked for and stderr is a terminal."""
    return bool(progress) and sys.stderr.isatty()


@dataclass(frozen=True)
class Remote:
    """One published file.

    ``url``: where the publisher serves it; ``filename``: its name under a mirror
    (``<mirror>/<filename>``, may contain ``/``) and in the cache. ``sha256`` / ``md5`` /
    ``sha256_prefix``: published checksums (None where unknown). ``size``: approximate bytes (plans).
    ``key``: the trust-on-first-use key (default: ``url``; the same file from a mirror shares it).
    """

    url: str
    filename: str
    sha256: str | None = None
    md5: str | None = None
    sha256_prefix: str | None = None
    size: int | None = None
    key: str | None = None

    @property
    def tofu_key(self) -> str:
        return self.key or self.url

    def location(self, mirror: str | None) -> str:
        """Where to read it: ``<mirror>/<filename>`` with a mirror, else ``url``."""
        if not mirror:
            return self.url
        if is_url(mirror):
            return mirror.rstrip("/") + "/" + urllib.parse.quote(self.filename)
        return str(_mirror_folder(mirror) / self.filename)


def _mirror_folder(mirror: str) -> Path:
    if mirror.startswith("file://"):
        return Path(urllib.parse.unquote(urllib.parse.urlsplit(mirror).path))
    return Path(mirror).expanduser()


def hand_download_hint(remote: Remote, dest: Path) -> str:
    """The sentence telling where a hand-downloaded file goes."""
    return (
        f"download {remote.url} by hand and put it at {dest} (or point --mirror / ${ENV_MIRROR} at a folder "
        f"or http(s) URL holding {remote.filename})"
    )


# ------------------------------------------------------------------------------ hash records


class HashStore:
    """Trust-on-first-use sha256 records: ``{key: {"sha256", "size", "recorded", "origin"}}`` in a JSON
    file (written atomically, re-read before every write so concurrent records are kept)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else cache_dir() / HASHES_FILE

    def _read(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(
                f"cannot read the hash records {self.path}: {exc}; fix or delete the file "
                "(deleting it forgets every recorded checksum)"
            ) from None
        if not isinstance(data, dict):
            raise UserError(f"{self.path}: expected a JSON object of hash records; fix or delete the file")
        return data

    def get(self, key: str) -> dict[str, Any] | None:
        rec = self._read().get(key)
        return rec if isinstance(rec, dict) and isinstance(rec.get("sha256"), str) else None

    def record(self, key: str, sha256: str, size: int, origin: str) -> None:
        from eval.io import atomic_write_json

        data = self._read()
        old = data.get(key)
        if isinstance(old, dict) and old.get("sha256") == sha256:
            return
        data[key] = {
            "sha256": sha256,
            "size": int(size),
            "recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "origin": origin,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path, data)


# ------------------------------------------------------------------------------ verification


def file_digests(path: Path, algorithms: tuple[str, ...] = ("sha256", "md5")) -> dict[str, str]:
    hashers = {a: hashlib.new(a) for a in algorithms}
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            for h in hashers.values():
                h.update(block)
    return {a: h.hexdigest() for a, h in hashers.items()}


def _mismatch(remote: Remote, digests: dict[str, str], store: HashStore | None) -> str | None:
    """Why ``digests`` are not those of ``remote`` (None: they are)."""
    sha = digests["sha256"]
    if remote.sha256 and sha != remote.sha256.lower():
        return f"sha256 {sha} differs from the published {remote.sha256}"
    if remote.md5 and digests.get("md5") != remote.md5.lower():
        return f"md5 {digests.get('md5')} differs from the published {remote.md5}"
    if remote.sha256_prefix and not sha.startswith(remote.sha256_prefix.lower()):
        return f"sha256 {sha} does not start with {remote.sha256_prefix} (the hash in the file name)"
    rec = store.get(remote.tofu_key) if store is not None else None
    if rec is not None and rec["sha256"] != sha:
        return (
            f"sha256 {sha} differs from {rec['sha256']}, recorded on first download "
            f"({rec.get('recorded', '?')}) in {store.path}"
        )
    return None


def file_problem(path: Path, remote: Remote, store: HashStore | None = None) -> tuple[str, str | None]:
    """``(sha256, what is wrong)`` of a file checked against ``remote`` (None: nothing)."""
    digests = file_digests(path, ("sha256", "md5") if remote.md5 else ("sha256",))
    return digests["sha256"], _mismatch(remote, digests, store)


def verify_file(path: Path, remote: Remote, store: HashStore | None = None) -> str:
    """Check a file already at its final place against ``remote``; its sha256, or UserError."""
    sha, problem = file_problem(path, remote, store)
    if problem:
        raise UserError(
            f"refused {path} (the file of {remote.url}): {problem}; it was changed or corrupted "
            f"since: delete it to download it again, or put the right file there"
        )
    return sha


# ------------------------------------------------------------------------------ fetching


@dataclass(frozen=True)
class FetchResult:
    path: Path
    sha256: str
    downloaded: bool  # False: found in the cache (no request made)
    origin: str  # the URL or mirror path it came from (or the cache path)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        r = exc.reason
        return str(getattr(r, "strerror", None) or r)
    if isinstance(exc, http.client.IncompleteRead):
        return f"transfer cut short after {len(exc.partial)} more bytes"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}{': ' + text if text else ''}"


def _open(location: str) -> tuple[Any, int | None]:
    """A readable stream of ``location`` (URL or local path) and its announced length."""
    if is_url(location):
        from wsol import __version__

        req = urllib.request.Request(location, headers={"User-Agent": f"wsol-toolkit/{__version__}"})
        resp = urllib.request.urlopen(req, timeout=TIMEOUT_S)  # noqa: S310 - http(s) only (is_url)
        length = resp.headers.get("Content-Length")
        return resp, int(length) if length and length.isdigit() else None
    path = Path(location)
    if not path.is_file():
        raise FileNotFoundError(f"no file {path}")
    return open(path, "rb"), path.stat().st_size


def fetch(
    remote: Remote,
    dest: str | os.PathLike,
    *,
    mirror: str | None = None,
    progress: bool = True,
    store: HashStore | None = None,
    record: bool = True,
) -> FetchResult:
    """``dest`` holding ``remote``'s bytes, verified (see the module docstring).

    A file already at ``dest`` is verified and returned without any request. Otherwise it is
    read from ``remote.location(mirror)`` into ``<dest>.partial``, checked, renamed to ``dest``,
    and (``record``) its sha256 recorded in ``store`` when none was. ``record=False`` leaves
    recording to the caller (who checks the content first). ``store`` None: the cache's.
    """
    dest = Path(dest)
    store = store if store is not None else HashStore()
    if dest.is_file():
        sha = verify_file(dest, remote, store)
        if record:
            store.record(remote.tofu_key, sha, dest.stat().st_size, str(dest))
        return FetchResult(dest, sha, False, str(dest))
    mirror = mirror_location(mirror)
    location = remote.location(mirror)
    partial = dest.with_name(dest.name + ".partial")
    where = f"mirror {mirror}" if mirror else "its source"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the cache folder {dest.parent}: {exc.strerror or exc}") from None
    hashers = {"sha256": hashlib.sha256(), "md5": hashlib.md5()}
    received = 0
    try:
        stream, total = _open(location)
        with stream, open(partial, "wb") as out:
            bar = None
            if show_progress(progress):
                from tqdm import tqdm

                bar = tqdm(
                    total=total,
                    desc=PurePosixPath(remote.filename).name,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    leave=False,
                    dynamic_ncols=True,
                )
            try:
                while True:
                    block = stream.read(CHUNK)
                    if not block:
                        break
                    out.write(block)
                    for h in hashers.values():
                        h.update(block)
                    received += len(block)
                    if bar is not None:
                        bar.update(len(block))
            finally:
                if bar is not None:
                    bar.close()
        if total is not None and received != total:
            raise http.client.IncompleteRead(b"", total - received)
    except FileNotFoundError:
        partial.unlink(missing_ok=True)
        raise UserError(f"the {where} has no file {location}; {hand_download_hint(remote, dest)}") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, http.client.IncompleteRead):
            reason = (
                f"truncated transfer: {received} of {received + (exc.expected or 0)} bytes received"
                if total is not None
                else _reason(exc)
            )
        else:
            reason = _reason(exc)
        raise UserError(f"cannot download {location}: {reason}; {hand_download_hint(remote, dest)}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    digests = {k: h.hexdigest() for k, h in hashers.items()}
    problem = _mismatch(remote, digests, store)
    if problem:
        partial.unlink(missing_ok=True)
        raise UserError(
            f"refused the download of {location}: {problem}; nothing was kept. If the file "
            f"changed at its source, check it and {hand_download_hint(remote, dest)}"
        )
    os.replace(partial, dest)
    if record:
        store.record(remote.tofu_key, digests["sha256"], received, location)
    return FetchResult(dest, digests["sha256"], True, location)


# ------------------------------------------------------------------------------ archives


def _archive_names(archive: Path) -> tuple[str, list[str]]:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            return "zip", [i.filename for i in zf.infolist() if not i.is_dir()]
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            return "tar", [m.name for m in tf.getmembers() if m.isfile()]
    raise UserError(f"{archive} is not a zip or tar archive (a web page instead of the file?)")


def _find_member(names: list[str], member: str) -> str | None:
    """``member`` itself, else the one name ending in ``/<member>`` (a folder zip)."""
    clean = [n for n in names if not n.startswith("__MACOSX/")]
    if member in clean:
        return member
    hits = [n for n in clean if n.endswith("/" + member)]
    return hits[0] if len(hits) == 1 else None


def extract_member(archive: str | os.PathLike, member: str, dest: str | os.PathLike) -> Path:
    """Copy ``member`` (or the one ``*/member``) of a zip/tar ``archive`` to ``dest``, atomically.

    The member's own path is never used for writing, so no archive entry can land outside ``dest``.
    A missing member is a UserError listing what the archive holds.
    """
    archive, dest = Path(archive), Path(dest)
    try:
        kind, names = _archive_names(archive)
        name = _find_member(names, member)
        if name is None:
            shown = ", ".join(names[:8]) + (f", ... ({len(names) - 8} more)" if len(names) > 8 else "")
            raise UserError(f"the archive {archive} has no member {member!r} (it holds: {shown or 'nothing'})")
        partial = dest.with_name(dest.name + ".partial")
        try:
            if kind == "zip":
                with zipfile.ZipFile(archive) as zf, zf.open(name) as src, open(partial, "wb") as out:
                    shutil.copyfileobj(src, out, CHUNK)
            else:
                with tarfile.open(archive) as tf:
                    src = tf.extractfile(name)
                    if src is None:
                        raise UserError(f"{archive}: member {name!r} is not a regular file")
                    with src, open(partial, "wb") as out:
                        shutil.copyfileobj(src, out, CHUNK)
            os.replace(partial, dest)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise UserError(f"cannot extract {member!r} from {archive}: {_reason(exc)}") from None
    return dest


def _safe_name(name: str, archive: Path) -> PurePosixPath:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
        raise UserError(f"refused {archive}: member {name!r} would be written outside the target folder")
    return p


def extract_all(archive: str | os.PathLike, dest_dir: str | os.PathLike) -> list[Path]:
    """Unpack a tar (any compression) or zip into ``dest_dir``; returns the top-level paths created.

    Every member is checked first: absolute paths, ``..`` components, symbolic / hard links and
    device files refuse the whole archive. Members go to a temporary folder inside ``dest_dir``;
    each top-level entry is then renamed into place, and an entry that already exists there is
    refused (nothing is overwritten).
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".wsol-extract-", dir=dest_dir))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                for info in infos:
                    _safe_name(info.filename, archive)
                    mode = (info.external_attr >> 16) & 0o170000
                    if mode and mode not in (0o100000, 0o040000):
                        raise UserError(f"refused {archive}: member {info.filename!r} is a link or special file")
                zf.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                members = tf.getmembers()
                for m in members:
                    _safe_name(m.name, archive)
                    if not (m.isfile() or m.isdir()):
                        raise UserError(f"refused {archive}: member {m.name!r} is a link or special file")
                try:
                    tf.extractall(tmp, members=members, filter="data")
                except TypeError:  # Python < 3.10.12 / 3.11.4: no filters (the members were checked above)
                    tf.extractall(tmp, members=members)
        else:
            raise UserError(f"{archive} is not a tar or zip archive")
        tops = sorted(p.name for p in tmp.iterdir())
        clash = [n for n in tops if (dest_dir / n).exists()]
        if clash:
            raise UserError(
                f"not extracting {archive} into {dest_dir}: {', '.join(clash)} already exist(s) there; "
                "remove them or choose another folder"
            )
        for name in tops:
            os.replace(tmp / name, dest_dir / name)
        return [dest_dir / n for n in tops]
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise UserError(f"cannot extract {archive}: {_reason(exc)} (corrupt archive?)") from None
    except OSError as exc:
        raise UserError(f"cannot extract {archive} into {dest_dir}: {_reason(exc)}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
