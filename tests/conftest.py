"""Shared test fixtures. Keep this file small: one fixture per shared need."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The team's shared folder (``<repo>/../shared``): real metadata and checkpoint manifests."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"shared data folder {SHARED_DIR} is missing")
    return SHARED_DIR


@pytest.fixture
def one_torch_thread():
    """One intra-op torch thread for the test, restored after: tiny models on a busy 2-core machine
    stall on OpenMP barriers otherwise (measured 3 ms vs 120 ms per forward)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def make_image(tmp_path):
    """Factory ``make_image(relpath, size=(w, h), mode="RGB", seed=0) -> Path``: writes a tiny
    seeded random image (PNG unless the suffix says otherwise) under ``tmp_path``."""
    import numpy as np
    from PIL import Image

    def _make(relpath: str, size: tuple[int, int] = (8, 6), mode: str = "RGB", seed: int = 0,
              root: Path | None = None) -> Path:
        path = (root or tmp_path) / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        w, h = size
        arr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        Image.fromarray(arr, "RGB").convert(mode).save(path)
        return path

    return _make


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory) -> Path:
    """A tiny synthetic benchmark (3 classes, 64 px; 12 train / 2 val / 6 test images per class)."""
    from wsol.data import SynthConfig, generate_synthetic

    root = tmp_path_factory.mktemp("tiny_synth") / "data"
    generate_synthetic(root, SynthConfig(classes=3, train_per_class=12, val_per_class=2,
                                         test_per_class=6, seed=0))
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """An untrained, seeded ``small_cnn`` (3 classes) saved in the toolkit's checkpoint format."""
    import torch

    from wsol.checkpoints import save_checkpoint
    from wsol.models import create_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny_ckpt") / "small.pt"
    save_checkpoint(path, create_model("small_cnn", 3))
    return path
