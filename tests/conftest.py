"""Shared test fixtures. Keep this file small: one fixture per shared need.

No silent skips: a run in which any test (or test module) was skipped fails, unless the test's
node id is in :data:`ALLOWED_SKIPS` with its reason (the same list as the README's test
section). A broken import or missing data must fail loudly, not turn into a skip.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"

# node id (as pytest prints it, relative to the repository root) -> why it may be skipped.
# Keep it empty or nearly so, and keep the README's test section in step with it.
ALLOWED_SKIPS: dict[str, str] = {}


class _SkipGuard:
    """Fails the run when a test or a test module was skipped and is not in :data:`ALLOWED_SKIPS`."""

    def __init__(self, allowed: dict[str, str]) -> None:
        self.allowed = allowed
        self.skipped: list[tuple[str, str]] = []

    def _note(self, report) -> None:
        if not report.skipped or hasattr(report, "wasxfail") or report.nodeid in self.allowed:
            return
        longrepr = report.longrepr
        reason = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        self.skipped.append((report.nodeid or "<collection>", reason.removeprefix("Skipped: ")))

    def pytest_runtest_logreport(self, report) -> None:
        self._note(report)

    def pytest_collectreport(self, report) -> None:
        self._note(report)

    def pytest_sessionfinish(self, session) -> None:
        if self.skipped and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.skipped:
            return
        terminalreporter.section("skipped tests not in ALLOWED_SKIPS (tests/conftest.py)", red=True)
        for nodeid, reason in self.skipped:
            terminalreporter.line(f"{nodeid}: {reason}")
        terminalreporter.line(
            f"{len(self.skipped)} unexpected skip(s) fail this run: fix the cause, or list "
            "the test with its reason in ALLOWED_SKIPS and in the README's test section"
        )


def pytest_configure(config) -> None:
    config.pluginmanager.register(_SkipGuard(ALLOWED_SKIPS), "wsol-skip-guard")
    _take_back_ctrl_c()


def _take_back_ctrl_c() -> None:
    """The suite tests Ctrl-C (in this process and in the ``wsol`` processes it starts). Started
    in the background of a non-interactive shell (``.ci/run &``), it inherits SIGINT ignored, and
    so would every child: Python's own handler is put back, which children start with as usual."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The team's shared folder (``<repo>/../shared``): real metadata and checkpoint manifests.
    It must be there (CI checks it out beside the clone): a missing folder fails the test."""
    if not SHARED_DIR.is_dir():
        pytest.fail(
            f"shared data folder {SHARED_DIR} is missing: check out the team's shared/ "
            "folder beside the repository (../shared)",
            pytrace=False,
        )
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

    def _make(
        relpath: str, size: tuple[int, int] = (8, 6), mode: str = "RGB", seed: int = 0, root: Path | None = None
    ) -> Path:
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
    generate_synthetic(root, SynthConfig(classes=3, train_per_class=12, val_per_class=2, test_per_class=6, seed=0))
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


@pytest.fixture(scope="session")
def write_metadata():
    """``write_metadata(dataset, folder)``: the dataset's records in the wsolevaluation metadata
    layout (``image_ids``, ``class_labels``, ``image_sizes`` = 64x64, ``localization`` in original
    pixels), for ``evaluate-scoremaps`` on maps of the tiny synthetic benchmark."""

    def _write(ds, folder: Path) -> Path:
        folder.mkdir(parents=True)
        recs = ds.records
        (folder / "image_ids.txt").write_text("\n".join(r.image_id for r in recs))
        (folder / "class_labels.txt").write_text("\n".join(f"{r.image_id},{r.label}" for r in recs))
        (folder / "image_sizes.txt").write_text("\n".join(f"{r.image_id},64,64" for r in recs))
        (folder / "localization.txt").write_text(
            "\n".join(f"{r.image_id},{b[0]},{b[1]},{b[2]},{b[3]}" for r in recs for b in r.boxes)
        )
        return folder

    return _write
