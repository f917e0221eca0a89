"""``zoo:NAME`` -> a verified local checkpoint file, its architecture and options.

A cache entry (``<cache>/zoo/<name>/``) counts as complete only once its weights passed the strict
check against the entry's architecture (:func:`wsol.checkpoints.load_checkpoint` on the meta
device: every name and shape, no weight read); ``complete.json`` then records the file and its
sha256, and every later use re-hashes the file against that record (and the trust-on-first-use
record in ``<cache>/hashes.json``).

* ``download`` entries: the downloader (:mod:`wsol.zoo.download`) fetches ``url`` (or
  ``<mirror>/<filename>``) to ``<cache>/zoo/<name>/<filename>``; an archive's ``member`` is then
  extracted beside it and the archive removed once the entry is complete. The trust-on-first-use
  hash is that of the checkpoint file (the member for an archive, keyed ``<url>#<member>``): a
  Dropbox folder zip is built on the fly, so only its content is stable.
* ``torchvision`` entries: torchvision's weights API (``weights.get_state_dict``) downloads into
  the torch hub cache (``torch.hub.get_dir()/checkpoints/<file>``, under ``$TORCH_HOME``) and checks
  the sha256 prefix of the file name. With a mirror, ``<mirror>/<file>`` is first fetched to
  that very path (same checks), so the weights API finds it and makes no request.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from wsol.errors import UserError
from wsol.zoo.catalog import ZooEntry, get_entry
from wsol.zoo.download import (
    HashStore,
    Remote,
    cache_dir,
    fetch,
    file_problem,
    hand_download_hint,
    mirror_location,
    show_progress,
    verify_file,
)

__all__ = [
    "resolve_checkpoint",
    "ensure_entry",
    "entry_dir",
    "checkpoint_path",
    "download_path",
    "is_complete",
    "remote_of",
    "torchvision_weights",
    "MARKER",
]

MARKER = "complete.json"


def entry_dir(entry: ZooEntry) -> Path:
    return cache_dir() / "zoo" / entry.name


def torchvision_weights(entry: ZooEntry) -> Any:
    """The torchvision ``WeightsEnum`` member of a torchvision entry (tests replace this)."""
    from torchvision.models import get_weight

    return get_weight(entry.torchvision_weights)


def _hub_checkpoints() -> Path:
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def download_path(entry: ZooEntry) -> Path:
    """Where the download (archive or file) goes: the path to put a hand-downloaded file at."""
    if entry.kind == "torchvision":
        return _hub_checkpoints() / os.path.basename(torchvision_weights(entry).url)
    return entry_dir(entry) / entry.filename


def checkpoint_path(entry: ZooEntry) -> Path:
    """The checkpoint file that ``load_checkpoint`` reads."""
    if entry.kind == "download" and entry.member:
        return entry_dir(entry) / os.path.basename(entry.member)
    return download_path(entry)


def remote_of(entry: ZooEntry) -> Remote:
    if entry.kind == "torchvision":
        url = torchvision_weights(entry).url
        name = os.path.basename(url)
        import re

        m = re.search(r"-([a-f0-9]{8,})\.", name)  # torch.hub.HASH_REGEX, as check_hash reads it
        return Remote(
            url=url,
            filename=name,
            sha256=entry.sha256,
            sha256_prefix=m.group(1) if m else None,
            size=int(entry.size_mb * 1e6) if entry.size_mb else None,
        )
    return Remote(
        url=entry.url,
        filename=entry.filename,
        sha256=None if entry.member else entry.sha256,
        size=int(entry.size_mb * 1e6) if entry.size_mb else None,
    )


def _member_remote(entry: ZooEntry, remote: Remote) -> Remote:
    """The trust-on-first-use identity of an archive's extracted member."""
    return Remote(
        url=remote.url,
        filename=entry.member or remote.filename,
        sha256=entry.sha256 if entry.member else None,
        key=f"{remote.url}#{entry.member}",
    )


def _marker(entry: ZooEntry) -> Path:
    return entry_dir(entry) / MARKER


def _read_marker(entry: ZooEntry) -> dict | None:
    path = _marker(entry)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("sha256"), str) else None


def is_complete(entry: ZooEntry) -> bool:
    """Whether the cache holds the entry's checked weights (without re-hashing them)."""
    return _read_marker(entry) is not None and checkpoint_path(entry).is_file()  # a copied cache counts too


def _strict_check(entry: ZooEntry, path: Path, origin: str) -> None:
    from wsol.checkpoints import load_checkpoint

    try:
        load_checkpoint(
            path, arch=entry.arch, map_location="meta", num_classes=entry.num_classes, **dict(entry.arch_options)
        )
    except UserError as exc:
        raise UserError(
            f"the file of zoo:{entry.name} ({origin}) does not hold the {entry.arch} weights the "
            f"catalog describes: {exc}"
        ) from None


def _verify_complete(entry: ZooEntry, marker: dict, store: HashStore) -> Path:
    path = checkpoint_path(entry)
    remote = remote_of(entry)
    ident = _member_remote(entry, remote) if entry.kind == "download" and entry.member else remote
    sha = verify_file(path, ident, store)
    if sha != marker["sha256"]:
        raise UserError(
            f"refused {path} (zoo:{entry.name}): sha256 {sha} differs from {marker['sha256']}, "
            f"recorded when the entry was completed ({_marker(entry)}); it was changed since: delete "
            f"{entry_dir(entry)} to download it again"
        )
    return path


def ensure_entry(entry: ZooEntry | str, *, mirror: str | None = None, progress: bool = True) -> Path:
    """The entry's checkpoint file in the cache, downloaded and checked if needed (see the module
    docstring). UserError (one line: URL, reason, where a hand-downloaded file goes) on failure."""
    entry = get_entry(entry) if isinstance(entry, str) else entry
    store = HashStore()
    marker = _read_marker(entry)
    if marker is not None and checkpoint_path(entry).is_file():
        return _verify_complete(entry, marker, store)
    mirror = mirror_location(mirror)
    remote = remote_of(entry)
    target = checkpoint_path(entry)
    if entry.kind == "torchvision":
        origin = _fetch_torchvision(entry, remote, mirror, progress, store)
        sha = verify_file(target, remote, store)
        try:
            _strict_check(entry, target, origin)
        except UserError as exc:
            target.unlink(missing_ok=True)  # nothing of a refused file is kept
            raise UserError(f"{exc}; it was removed from the torch hub cache") from None
        store.record(remote.tofu_key, sha, target.stat().st_size, origin)
    else:
        got = fetch(remote, download_path(entry), mirror=mirror, progress=progress, store=store, record=False)
        origin = got.origin
        if entry.member:
            from wsol.zoo.download import extract_member

            try:
                extract_member(got.path, entry.member, target)
            except UserError as exc:
                got.path.unlink(missing_ok=True)  # not the archive the catalog describes
                raise UserError(
                    f"zoo:{entry.name}: {exc}; the download was removed. {hand_download_hint(remote, got.path)}"
                ) from None
            member_ident = _member_remote(entry, remote)
            sha, problem = file_problem(target, member_ident, store)
            try:
                if problem:
                    raise UserError(f"refused {entry.member} of {got.path} (zoo:{entry.name}): {problem}")
                _strict_check(entry, target, origin)
            except UserError as exc:
                target.unlink(missing_ok=True)
                got.path.unlink(missing_ok=True)  # nothing of a refused file is kept
                raise UserError(
                    f"{exc}; it was removed from the cache. {hand_download_hint(remote, got.path)}"
                ) from None
            # only the member's hash is recorded: a folder zip is built on the fly (its bytes, unlike
            # the checkpoint inside, may differ between two downloads)
            store.record(member_ident.tofu_key, sha, target.stat().st_size, f"{origin}#{entry.member}")
        else:
            sha = got.sha256
            try:
                _strict_check(entry, target, origin)
            except UserError as exc:
                target.unlink(missing_ok=True)  # nothing of a refused file is kept
                raise UserError(f"{exc}; it was removed from the cache") from None
            store.record(remote.tofu_key, sha, target.stat().st_size, origin)
    from eval.io import atomic_write_json

    atomic_write_json(
        _marker(entry),
        {
            "name": entry.name,
            "file": str(target),
            "sha256": sha,
            "size": target.stat().st_size,
            "arch": entry.arch,
            "arch_options": dict(entry.arch_options),
            "num_classes": entry.num_classes,
            "origin": origin,
            "completed": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )
    if entry.kind == "download" and entry.member:
        download_path(entry).unlink(missing_ok=True)  # the member is all that is needed now
    return target


def _fetch_torchvision(entry: ZooEntry, remote: Remote, mirror: str | None, progress: bool, store: HashStore) -> str:
    """Make the torch hub cache hold the entry's file through torchvision's weights API."""
    target = download_path(entry)
    origin = remote.url
    if mirror and not target.is_file():
        origin = fetch(remote, target, mirror=mirror, progress=progress, store=store, record=False).origin
    if target.is_file():  # torchvision checks the hash in the name on download only: check it first
        _, problem = file_problem(target, remote, store)
        if problem:
            target.unlink()  # nothing of a refused file is kept
            raise UserError(
                f"refused {target} (zoo:{entry.name}, found in the torch hub cache): {problem}; it was "
                f"removed. {hand_download_hint(remote, target)}"
            )
    weights = torchvision_weights(entry)
    try:
        # finds the file in the hub cache, else downloads it (temp file, then renamed) and checks
        # the sha256 prefix in its name; map_location="meta" reads no weight data
        weights.get_state_dict(
            progress=show_progress(progress), check_hash=True, map_location="meta", weights_only=True
        )
    except Exception as exc:  # network, hash, disk: one line
        from wsol.zoo.download import _reason

        if isinstance(exc, RuntimeError) and "hash" in str(exc):
            reason = f"refused: {str(exc).splitlines()[0]}"
        else:
            reason = _reason(exc)
        raise UserError(
            f"cannot fetch zoo:{entry.name} through torchvision's weights API from {remote.url}: "
            f"{reason}; {hand_download_hint(remote, target)}"
        ) from None
    return origin


def resolve_checkpoint(
    spec: str, *, mirror: str | None = None, progress: bool = True
) -> tuple[Path, str, dict[str, Any]]:
    """``"zoo:NAME"`` -> ``(local file, arch, arch options incl. num_classes)``; downloads on first use."""
    name = spec.removeprefix("zoo:")
    entry = get_entry(name)
    path = ensure_entry(entry, mirror=mirror, progress=progress)
    return path, entry.arch, {**dict(entry.arch_options), "num_classes": entry.num_classes}
