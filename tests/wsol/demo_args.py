"""The argument list of a toy-size ``wsol demo`` run, shared by the demo tests."""

from __future__ import annotations

from pathlib import Path


def demo_args(
    out: Path, *extra: str, classes: int, train_per_class: int, test_per_class: int, batch_size: int
) -> list[str]:
    """``wsol demo`` at toy size: the baseline and CutMix, one epoch each, then ``extra``."""
    return [
        "demo",
        "--out",
        str(out),
        "--augs",
        "none",
        "cutmix",
        "--classes",
        str(classes),
        "--train-per-class",
        str(train_per_class),
        "--test-per-class",
        str(test_per_class),
        "--set",
        "epochs=1",
        "--set",
        f"batch_size={batch_size}",
        *extra,
    ]
