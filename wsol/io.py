"""Atomic file writes for the toolkit (the torch-free ones live in :mod:`eval.io`)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from eval.io import atomic_write_bytes, atomic_write_json, atomic_write_text, refuse_overwrite

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_json", "atomic_save_torch",
           "refuse_overwrite"]


def atomic_save_torch(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to memory, then an atomic write: a crash never leaves a half checkpoint."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())
