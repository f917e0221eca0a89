"""Atomic file writes for the toolkit (the torch-free ones live in :mod:`eval.io`)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from eval.io import (
    WriteError,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_many,
    atomic_write_text,
    ensure_output_dir,
    refuse_overwrite,
)

__all__ = [
    "WriteError",
    "atomic_save_torch",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_many",
    "atomic_write_text",
    "ensure_output_dir",
    "refuse_overwrite",
]


def atomic_save_torch(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to memory, then an atomic write: a crash never leaves a half checkpoint."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())
