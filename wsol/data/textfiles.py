"""Reading whitespace-separated annotation tables (CUB files, ImageNet lists) with problems collected."""

from __future__ import annotations

from pathlib import Path

from eval.metadata import Problem, read_lines

__all__ = ["read_table"]


def read_table(
    path: Path, ncols: int, fmt: str, problems: list[Problem], *, required: bool = True, split_max: int | None = None
) -> list[tuple[int, list[str]]]:
    """``(line_number, fields)`` of every well-formed line of a whitespace-separated table.

    A line must have exactly ``ncols`` fields (or, with ``split_max``, at least ``ncols``: the line
    is split at most ``split_max`` times, so the last field may contain spaces, e.g. class names).
    Malformed and empty lines become problems (``fmt`` describes the expected line); a UTF-8 BOM,
    CRLF and a missing final newline are fine. A missing file is a problem when ``required``.
    """
    lines = read_lines(path, problems, required=required)
    out: list[tuple[int, list[str]]] = []
    for i, line in enumerate(lines or (), 1):
        if split_max is not None:
            parts = line.split(None, split_max)
            if parts:
                parts[-1] = parts[-1].rstrip()  # trailing blanks are not part of the last field
        else:
            parts = line.split()
        if len(parts) != ncols:
            what = "empty line" if not parts else f"{len(parts)} field(s) in {line[:120]!r}"
            problems.append(Problem(str(path), i, f"expected {fmt}, got {what}; line skipped"))
            continue
        out.append((i, parts))
    return out
