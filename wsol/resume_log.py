"""The per-image resume log of ``wsol evaluate``: one JSON line per scored (or skipped) image.

The first line is the header ``{"header": {...}}``: the resolved configuration the run was
started with (checkpoint sha256 included). Every later line is one image::

    {"index": 7, "image_id": "...", "label": 3, "topk": [3, 1, ...], "hits": <base64 bit-packed>,
     "hits_shape": [D, T], "old_iou": 0.61, "hist": [[...], [...]]}
    {"index": 8, "image_id": "...", "skipped": "<why>"}

Lines are flushed after every batch; a torn last line (a crash mid-write) is ignored on reading.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from eval.evaluator import ImageScore

__all__ = ["ResumeLog", "read_log", "encode_score", "decode_score", "config_differences"]


def encode_score(score: ImageScore) -> dict[str, Any]:
    """JSON-ready fields of one image's score (hits bit-packed)."""
    d: dict[str, Any] = {}
    if score.hits is not None:
        d["hits"] = base64.b64encode(np.packbits(score.hits.ravel()).tobytes()).decode("ascii")
        d["hits_shape"] = list(score.hits.shape)
        d["old_iou"] = score.old_iou
    if score.hist is not None:
        d["hist"] = score.hist.tolist()
    return d


def decode_score(d: Mapping[str, Any]) -> ImageScore:
    """The inverse of :func:`encode_score` (bit-exact)."""
    s = ImageScore()
    if "hits" in d:
        shape = tuple(d["hits_shape"])
        bits = np.unpackbits(np.frombuffer(base64.b64decode(d["hits"]), dtype=np.uint8), count=int(np.prod(shape)))
        s.hits, s.old_iou = bits.reshape(shape).astype(bool), float(d["old_iou"])
    if "hist" in d:
        s.hist = np.asarray(d["hist"], dtype=np.int64)
    return s


def read_log(path: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """``(header, rows)`` of a resume log: the header (None when the file has none) and the complete
    image lines (a torn last line from a crash is ignored)."""
    header: dict[str, Any] | None = None
    rows: list[dict[str, Any]] = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                break
            if "header" in row and header is None and not rows:
                header = row["header"]
            else:
                rows.append(row)
    return header, rows


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Keys whose values differ (or that only one side has), as ``key: old -> new``, sorted."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "(absent)"), new.get(key, "(absent)")
        if json.dumps(a, sort_keys=True, default=str) != json.dumps(b, sort_keys=True, default=str):
            out.append(f"{key}: {a!r} -> {b!r}")
    return out


class ResumeLog:
    """Appends image lines to ``path`` (writing ``header`` first when the file is new)."""

    def __init__(self, path: Path, header: Mapping[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._f = open(self.path, "a", encoding="utf-8")
        if new and header is not None:
            self._f.write(json.dumps({"header": dict(header)}, default=str) + "\n")
            self._f.flush()

    def scored(self, rows: Sequence[tuple[int, str, int, Sequence[int], ImageScore]]) -> None:
        """``(index, image_id, label, topk, score)`` per image; flushed."""
        if rows:
            self._f.write(
                "\n".join(
                    json.dumps({"index": i, "image_id": iid, "label": lab, "topk": list(top), **encode_score(sc)})
                    for i, iid, lab, top, sc in rows
                )
                + "\n"
            )
            self._f.flush()

    def skipped(self, index: int, image_id: str, reason: str) -> None:
        self._f.write(json.dumps({"index": index, "image_id": image_id, "skipped": reason}) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> ResumeLog:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
