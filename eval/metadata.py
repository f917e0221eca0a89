"""Parser of the wsolevaluation metadata layout (protocol section 4). No torch.

A split folder ``metadata/<DATASET>/<split>/`` holds comma-separated text files without header
(Unix or Windows newlines, with or without a trailing newline):

* ``image_ids.txt``     ``<image_id>``                       (required)
* ``class_labels.txt``  ``<image_id>,<label>``               (required; 0-based int labels)
* ``image_sizes.txt``   ``<image_id>,<width>,<height>``      (required for box datasets; may be
  empty for mask datasets and datasets without localization, as upstream OpenImages is)
* ``localization.txt``  boxes ``<image_id>,<x0>,<y0>,<x1>,<y1>`` (inclusive original pixels, one
  line per box) **or** masks ``<image_id>,<mask_png>,<ignore_png>`` (one line per instance mask;
  the ignore path is given on the image's first line, later lines leave it empty). Empty or
  missing: no localization (kind ``"none"``).

:func:`read_split` parses all four, cross-checks them and collects every problem with the file
and 1-based line at fault. With ``strict=True`` any problem raises :class:`InputError`; with
``strict=False`` the problems are returned in :attr:`SplitMetadata.problems` and the offending
lines are left out of the result (each message says so).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path

import numpy as np

from eval.errors import InputError

__all__ = [
    "Problem",
    "SplitMetadata",
    "read_split",
    "read_lines",
    "format_problems",
    "METADATA_FILES",
    "MAX_CLASSES",
]

METADATA_FILES = ("image_ids.txt", "class_labels.txt", "image_sizes.txt", "localization.txt")
_SHOWN_PROBLEMS = 10
#: the most classes a dataset may have (0-based labels 0 .. MAX_CLASSES - 1): a larger label is a
#: typo, and every reader allocates per class (names, per-class accuracy), so it is refused first
MAX_CLASSES = 100_000
#: integers in the annotation files are int64 (boxes and sizes are stored as numpy int64)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
#: at most this many digits in a field the fast parser reads: any such integer fits int64
_FAST_DIGITS = 18


@dataclass(frozen=True)
class Problem:
    """One problem in an annotation file. ``line`` is 1-based, ``None`` for whole-file problems."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}"

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "message": self.message}


@dataclass
class SplitMetadata:
    """The parsed metadata of one split.

    ``image_ids`` keeps file order; ``labels`` maps id -> 0-based class; ``sizes`` maps id ->
    ``(width, height)`` in original pixels (empty for mask datasets without sizes); ``boxes``
    maps id -> int64 ``[K, 4]`` inclusive ``(x0, y0, x1, y1)`` boxes in original pixels (box
    datasets); ``masks`` maps id -> instance-mask paths and ``ignore`` maps id -> ignore-mask path
    or ``None`` (mask datasets; paths relative to the data root, as written in the file).
    ``kind`` is ``"boxes"``, ``"masks"`` or ``"none"``.
    """

    root: Path
    image_ids: list[str] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)
    boxes: dict[str, np.ndarray] = field(default_factory=dict)
    masks: dict[str, list[str]] = field(default_factory=dict)
    ignore: dict[str, str | None] = field(default_factory=dict)
    kind: str = "none"
    problems: list[Problem] = field(default_factory=list)
    id_lines: dict[str, int] = field(default_factory=dict)  # image id -> 1-based line in image_ids.txt
    label_lines: dict[str, int] = field(default_factory=dict)  # image id -> 1-based line in class_labels.txt

    @property
    def num_boxes(self) -> int:
        return sum(len(b) for b in self.boxes.values())

    @property
    def num_masks(self) -> int:
        return sum(len(m) for m in self.masks.values())

    @property
    def num_classes(self) -> int:
        """``max(label) + 1`` (0 when there are no labels)."""
        return (max(self.labels.values()) + 1) if self.labels else 0


def format_problems(problems: list[Problem], what: str, shown: int = _SHOWN_PROBLEMS) -> str:
    """One message listing the first ``shown`` problems and the total count (one line for one problem)."""
    if len(problems) == 1:  # "<what>: <file>: ...", or "<file>: ..." when the problem is ``what`` itself
        return str(problems[0]) if problems[0].file == what else f"{what}: {problems[0]}"
    lines = [str(p) for p in problems[:shown]]
    more = f"\n  ... and {len(problems) - shown} more" if len(problems) > shown else ""
    return f"{len(problems)} problem(s) in {what}:\n  " + "\n  ".join(lines) + more


def read_lines(path: Path, problems: list[Problem], required: bool) -> list[str] | None:
    """Lines of ``path`` without newline characters (``\\n`` or ``\\r\\n``); a final newline adds no
    line. ``None`` when the file is missing (a problem if ``required``)."""
    if path.is_dir():
        problems.append(Problem(str(path), None, "is a folder, not a file; skipped"))
        return None
    if not path.is_file():
        if required:
            problems.append(Problem(str(path), None, "file is missing"))
        return None
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        problems.append(Problem(str(path), line, f"not valid UTF-8 text ({exc.reason}); file skipped"))
        return None
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if "\r" in text:
        lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    return lines


def _fields(line: str, n: int, fmt: str, fname: str, lineno: int, problems: list[Problem]) -> list[str] | None:
    if not line.strip():
        problems.append(Problem(fname, lineno, f"empty line (expected {fmt}); line skipped"))
        return None
    parts = line.split(",")
    if len(parts) != n:
        problems.append(
            Problem(
                fname,
                lineno,
                f"expected {n} comma-separated fields {fmt}, got {len(parts)}: {line[:120]!r}; line skipped",
            )
        )
        return None
    if not parts[0]:
        problems.append(Problem(fname, lineno, f"empty image id (expected {fmt}); line skipped"))
        return None
    return parts


def _ints(
    parts: list[str], names: tuple[str, ...], fmt: str, fname: str, lineno: int, problems: list[Problem]
) -> list[int] | None:
    try:
        return [_int64(p) for p in parts]
    except ValueError:
        pass
    name, text = next((n, p) for n, p in zip(names, parts) if not _is_int(p))
    if _is_big_int(text):  # reported as written, never clamped
        problems.append(
            Problem(fname, lineno, f"{name}={text.strip()} does not fit a 64-bit integer (in {fmt}); line skipped")
        )
    else:
        problems.append(Problem(fname, lineno, f"expected integers in {fmt}, got {name}={text!r}; line skipped"))
    return None


def _int64(s: str) -> int:
    """``int(s)``, refusing (ValueError) an integer outside int64."""
    v = int(s)
    if not _INT64_MIN <= v <= _INT64_MAX:
        raise ValueError(f"{s!r} does not fit a 64-bit integer")
    return v


def _is_int(s: str) -> bool:
    try:
        _int64(s)
    except ValueError:
        return False
    return True


def _is_big_int(s: str) -> bool:
    """An integer as Python reads it, but outside int64."""
    try:
        int(s)
    except ValueError:
        return False
    return not _is_int(s)


def read_split(metadata_dir: str | os.PathLike, *, strict: bool = True) -> SplitMetadata:
    """Parse one wsolevaluation metadata split folder (see the module docstring).

    Checks: file presence (a folder in a file's place), an empty split, line format (field count,
    integers, which must fit int64), duplicate ids, ids in one file
    but not in ``image_ids.txt`` (and images without label / size / box / mask), negative labels and
    labels ``>= MAX_CLASSES``,
    sizes <= 0, boxes with ``x1 < x0``, ``y1 < y0``, negative coordinates or outside the recorded
    image size (all such boxes are **rejected**, never clipped), conflicting ignore paths.
    ``strict=True`` raises :class:`InputError` listing the first problems and the count;
    ``strict=False`` returns them in ``.problems`` (offending lines left out, as each message says).
    """
    root = Path(metadata_dir)
    meta = SplitMetadata(root=root)
    problems = meta.problems
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "metadata folder does not exist"
        problems.append(Problem(str(root), None, what))
        if strict:
            raise InputError(format_problems(problems, str(root)))
        return meta

    _parse_ids(root, meta)
    if not meta.image_ids and (root / "image_ids.txt").is_file():
        meta.problems.append(
            Problem(
                str(root / "image_ids.txt"), None, "lists no image: the split is empty, there is nothing to evaluate"
            )
        )
    known = set(meta.image_ids)
    _parse_labels(root, meta, known)
    sizes_present = _parse_sizes(root, meta, known)
    _parse_localization(root, meta, known, sizes_present)

    if strict and problems:
        raise InputError(format_problems(problems, f"wsolevaluation metadata {root}"))
    return meta


def _fast_table(lines: list[str], nfields: int) -> tuple[list[str], np.ndarray] | None:
    """Fast path for clean files: ``(ids, int64 [n, nfields - 1])`` when every line has exactly
    ``nfields`` comma-separated fields, a non-empty id and integer values; else ``None`` (the
    line-by-line parser then reports exactly what is wrong)."""
    commas = nfields - 1
    if not lines or list(map(str.count, lines, repeat(",", len(lines)))).count(commas) != len(lines):
        return None
    flat = ",".join(lines).split(",")
    ids = flat[0::nfields]
    if not all(ids):
        return None
    cols = []
    for k in range(1, nfields):
        field_k = flat[k::nfields]
        if max(map(len, field_k)) > _FAST_DIGITS:  # may overflow int64 (np.fromstring clamps it)
            return None
        body = ",".join(field_k)
        if not body.replace(",", "").replace("-", "").isdigit():  # digits, '-' and separators only
            return None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                col = np.fromstring(body, dtype=np.int64, sep=",")
        except (DeprecationWarning, ValueError, AttributeError):
            return None
        if col.size != len(lines):
            return None
        cols.append(col)
    return ids, np.stack(cols, axis=1)


def _clean_ids(ids: list[str], meta: SplitMetadata, known: set[str], *, unique: bool) -> bool:
    """Every id is in image_ids.txt (and, with ``unique``, each image appears exactly once)."""
    if unique:
        return len(ids) == len(meta.image_ids) and set(ids) == known
    return all(i in known for i in ids)


def _parse_ids(root: Path, meta: SplitMetadata) -> None:
    fname = str(root / "image_ids.txt")
    lines = read_lines(root / "image_ids.txt", meta.problems, required=True)
    if lines and all(map(str.strip, lines)) and not any("," in line for line in lines):
        fast = dict(zip(lines, range(1, len(lines) + 1)))
        if len(fast) == len(lines):  # no duplicates
            meta.image_ids = list(lines)
            meta.id_lines = fast
            return
    first_line: dict[str, int] = {}
    for i, line in enumerate(lines or (), 1):
        if not line.strip():
            meta.problems.append(Problem(fname, i, "empty line (expected <image_id>); line skipped"))
            continue
        if "," in line:
            meta.problems.append(Problem(fname, i, f"expected one field <image_id>, got {line[:120]!r}; line skipped"))
            continue
        if line in first_line:
            meta.problems.append(
                Problem(fname, i, f"duplicate image id {line!r} (first on line {first_line[line]}); line skipped")
            )
            continue
        first_line[line] = i
        meta.image_ids.append(line)
    meta.id_lines = first_line


def _parse_labels(root: Path, meta: SplitMetadata, known: set[str]) -> None:
    path = root / "class_labels.txt"
    fname = str(path)
    lines = read_lines(path, meta.problems, required=True)
    if lines is None:
        return
    fast = _fast_table(lines, 2)
    if (
        fast is not None
        and _clean_ids(fast[0], meta, known, unique=True)
        and (fast[1] >= 0).all()
        and (fast[1] < MAX_CLASSES).all()
    ):
        meta.labels = dict(zip(fast[0], fast[1][:, 0].tolist()))
        meta.label_lines = dict(zip(fast[0], range(1, len(lines) + 1)))
        return
    fmt = "<image_id>,<label>"
    first_line: dict[str, int] = {}
    mentioned: set[str] = set()
    for i, line in enumerate(lines, 1):
        parts = line.split(",")
        if len(parts) != 2 or not parts[0]:
            _fields(line, 2, fmt, fname, i, meta.problems)  # records the problem
            continue
        iid = parts[0]
        try:
            label = _int64(parts[1])
        except ValueError:
            _ints(parts[1:], ("label",), fmt, fname, i, meta.problems)
            continue
        if iid not in known:
            meta.problems.append(Problem(fname, i, f"image id {iid!r} is not in image_ids.txt; line skipped"))
            continue
        mentioned.add(iid)
        if iid in first_line:
            meta.problems.append(
                Problem(fname, i, f"duplicate label line for {iid!r} (first on line {first_line[iid]}); line skipped")
            )
            continue
        if label < 0:
            meta.problems.append(
                Problem(fname, i, f"label {label} of {iid!r} is negative (labels are 0-based); line skipped")
            )
            continue
        if label >= MAX_CLASSES:
            meta.problems.append(
                Problem(
                    fname,
                    i,
                    f"label {label} of {iid!r} is too large (0-based labels, at most {MAX_CLASSES} classes: "
                    f"0..{MAX_CLASSES - 1}); line skipped",
                )
            )
            continue
        first_line[iid] = i
        meta.labels[iid] = label
    meta.label_lines = first_line
    missing = [iid for iid in meta.image_ids if iid not in mentioned]
    _report_missing(meta, fname, missing, "has no valid label line")


def _report_missing(meta: SplitMetadata, fname: str, missing: list[str], what: str) -> None:
    """One problem per image id listed in image_ids.txt but absent from ``fname``."""
    for iid in missing:
        meta.problems.append(Problem(fname, None, f"image {iid!r} (in image_ids.txt) {what}"))


def _parse_sizes(root: Path, meta: SplitMetadata, known: set[str]) -> bool:
    path = root / "image_sizes.txt"
    fname = str(path)
    lines = read_lines(path, meta.problems, required=False)
    if not lines:
        return False
    fast = _fast_table(lines, 3)
    if fast is not None and _clean_ids(fast[0], meta, known, unique=True) and (fast[1] > 0).all():
        meta.sizes = dict(zip(fast[0], map(tuple, fast[1].tolist())))
        return True
    fmt = "<image_id>,<width>,<height>"
    first_line: dict[str, int] = {}
    mentioned: set[str] = set()
    for i, line in enumerate(lines, 1):
        parts = line.split(",")
        if len(parts) != 3 or not parts[0]:
            _fields(line, 3, fmt, fname, i, meta.problems)  # records the problem
            continue
        iid = parts[0]
        try:
            vals = [_int64(parts[1]), _int64(parts[2])]
        except ValueError:
            _ints(parts[1:], ("width", "height"), fmt, fname, i, meta.problems)
            continue
        if iid not in known:
            meta.problems.append(Problem(fname, i, f"image id {iid!r} is not in image_ids.txt; line skipped"))
            continue
        mentioned.add(iid)
        if iid in first_line:
            meta.problems.append(
                Problem(fname, i, f"duplicate size line for {iid!r} (first on line {first_line[iid]}); line skipped")
            )
            continue
        w, h = vals
        if w <= 0 or h <= 0:
            meta.problems.append(Problem(fname, i, f"size {w}x{h} of {iid!r} must be positive; line skipped"))
            continue
        first_line[iid] = i
        meta.sizes[iid] = (w, h)
    missing = [iid for iid in meta.image_ids if iid not in mentioned]
    _report_missing(meta, fname, missing, "has no valid size line")
    return True


def _detect_kind(lines: list[str]) -> str:
    for line in lines:
        n = line.count(",") + 1
        if n == 5:
            return "boxes"
        if n == 3:
            return "masks"
    return "boxes"  # nothing recognizable: report against the box format


def _parse_localization(root: Path, meta: SplitMetadata, known: set[str], sizes_present: bool) -> None:
    path = root / "localization.txt"
    lines = read_lines(path, meta.problems, required=False)
    if not lines:
        meta.kind = "none"
        return
    meta.kind = _detect_kind(lines)
    if meta.kind == "boxes":
        _parse_boxes(str(path), lines, meta, known, sizes_present)
    else:
        _parse_masks(str(path), lines, meta, known)


def _parse_boxes(fname: str, lines: list[str], meta: SplitMetadata, known: set[str], sizes_present: bool) -> None:
    fmt = "<image_id>,<x0>,<y0>,<x1>,<y1>"
    if not sizes_present:
        meta.problems.append(
            Problem(
                str(meta.root / "image_sizes.txt"),
                None,
                "box annotations need image sizes, but image_sizes.txt is missing or empty",
            )
        )
    elif _fast_boxes(lines, meta, known):
        return
    collected: dict[str, list[list[int]]] = {}
    seen_ids: set[str] = set()
    probs = meta.problems
    sizes = meta.sizes
    for i, line in enumerate(lines, 1):
        parts = line.split(",")
        if len(parts) != 5 or not parts[0]:
            _fields(line, 5, fmt, fname, i, probs)  # records the problem
            continue
        iid = parts[0]
        try:
            box = [_int64(parts[1]), _int64(parts[2]), _int64(parts[3]), _int64(parts[4])]
        except ValueError:
            _ints(parts[1:], ("x0", "y0", "x1", "y1"), fmt, fname, i, probs)
            continue
        if iid not in known:
            probs.append(Problem(fname, i, f"image id {iid!r} is not in image_ids.txt; box rejected"))
            continue
        seen_ids.add(iid)
        x0, y0, x1, y1 = box
        if x0 < 0 or y0 < 0 or x1 < x0 or y1 < y0:
            probs.append(
                Problem(
                    fname,
                    i,
                    f"invalid inclusive box {tuple(box)} of {iid!r} "
                    "(need 0 <= x0 <= x1 and 0 <= y0 <= y1); box rejected",
                )
            )
            continue
        size = sizes.get(iid)
        if size is not None and (x1 > size[0] - 1 or y1 > size[1] - 1):
            probs.append(
                Problem(
                    fname,
                    i,
                    f"box {tuple(box)} of {iid!r} lies outside the recorded "
                    f"{size[0]}x{size[1]} image (need x1 <= W-1, y1 <= H-1); "
                    "box rejected (not clipped)",
                )
            )
            continue
        lst = collected.get(iid)
        if lst is None:
            collected[iid] = [box]
        else:
            lst.append(box)
    meta.boxes = {iid: np.asarray(collected[iid], dtype=np.int64) for iid in meta.image_ids if iid in collected}
    missing = [iid for iid in meta.image_ids if iid not in seen_ids]
    _report_missing(meta, fname, missing, "has no box line")


def _fast_boxes(lines: list[str], meta: SplitMetadata, known: set[str]) -> bool:
    """Fill ``meta.boxes`` from a clean file (every box valid and inside its recorded image, every
    image with at least one box) and return True; otherwise change nothing and return False."""
    fast = _fast_table(lines, 5)
    if fast is None or len(meta.sizes) != len(meta.image_ids):
        return False
    ids, b = fast
    pos = {iid: k for k, iid in enumerate(meta.image_ids)}
    try:
        idx = np.fromiter(map(pos.__getitem__, ids), dtype=np.int64, count=len(ids))
    except KeyError:
        return False  # an id not in image_ids.txt
    wh = np.array([meta.sizes[i] for i in meta.image_ids], dtype=np.int64).reshape(-1, 2)[idx]
    ok = (
        (b[:, 0] >= 0)
        & (b[:, 1] >= 0)
        & (b[:, 2] >= b[:, 0])
        & (b[:, 3] >= b[:, 1])
        & (b[:, 2] < wh[:, 0])
        & (b[:, 3] < wh[:, 1])
    )
    counts = np.bincount(idx, minlength=len(meta.image_ids))
    if not ok.all() or not counts.all():
        return False  # invalid boxes or images without a box: the line-by-line parser reports them
    if (np.diff(idx) < 0).any():
        b = b[np.argsort(idx, kind="stable")]
    ends = np.cumsum(counts).tolist()
    starts = [0] + ends[:-1]
    meta.boxes = {iid: b[s:e] for iid, s, e in zip(meta.image_ids, starts, ends)}
    return True


def _parse_masks(fname: str, lines: list[str], meta: SplitMetadata, known: set[str]) -> None:
    fmt = "<image_id>,<mask_png>,<ignore_png>"
    first_line: dict[str, int] = {}
    mentioned: set[str] = set()
    for i, line in enumerate(lines, 1):
        parts = _fields(line, 3, fmt, fname, i, meta.problems)
        if parts is None:
            continue
        iid, mask, ign = parts
        if iid not in known:
            meta.problems.append(Problem(fname, i, f"image id {iid!r} is not in image_ids.txt; line skipped"))
            continue
        mentioned.add(iid)
        if not mask:
            meta.problems.append(Problem(fname, i, f"empty mask path for {iid!r} (expected {fmt}); line skipped"))
            continue
        if iid not in first_line:
            first_line[iid] = i
            meta.masks[iid] = [mask]
            meta.ignore[iid] = ign or None
            continue
        meta.masks[iid].append(mask)
        if ign:
            prev = meta.ignore[iid]
            if prev is None:
                meta.ignore[iid] = ign
            elif prev != ign:
                meta.problems.append(
                    Problem(
                        fname,
                        i,
                        f"ignore path {ign!r} of {iid!r} differs from {prev!r} given earlier; the first is kept",
                    )
                )
    missing = [iid for iid in meta.image_ids if iid not in mentioned]
    _report_missing(meta, fname, missing, "has no mask line")
