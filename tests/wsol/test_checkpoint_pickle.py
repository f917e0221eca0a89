"""A checkpoint whose pickle would run code is refused, in plain words, whatever its protocol.

``torch.load(weights_only=True)`` rejects protocol-4/5 pickles at their first ``FRAME`` opcode
("Unsupported operand 149"), before it names any global; the toolkit must still say that the file
would run code (and which global), not call it truncated or corrupt, and must not run it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from wsol.cli import main
from wsol.models import create_model


def _plant(marker: str) -> None:
    """What the malicious pickles below would run on load (harmless: writes a marker file)."""
    Path(marker).write_text("code ran")


class _CallsFunction:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (_plant, (self.marker,))


class _CallsMethod:
    """Calls ``pathlib.Path.write_text`` (a dotted qualname, a stdlib callable)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "code ran"))


PAYLOADS = {"function": (_CallsFunction, "_plant"), "method": (_CallsMethod, "pathlib.Path")}


def _evaluate(ckpt: Path, data: Path, out: Path) -> int:
    return main(
        [
            "evaluate",
            "--no-progress",
            "--device",
            "cpu",
            "--workers",
            "0",
            "--checkpoint",
            str(ckpt),
            "--dataset",
            "synthetic",
            "--data-root",
            str(data),
            "--output",
            str(out),
        ]
    )


def _one_line_error(capsys, rc: int) -> str:
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wsol evaluate: error: "), err
    return lines[0]


def _save(obj, path: Path, protocol: int, zipped: bool) -> Path:
    torch.save(obj, path, pickle_protocol=protocol, _use_new_zipfile_serialization=zipped)
    return path


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("protocol", [5, 4, 2])
@pytest.mark.parametrize("zipped", [True, False])
@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_wsol_evaluate_refuses_a_pickle_that_would_run_code(protocol, zipped, payload, tiny_synth, tmp_path, capsys):
    cls, global_name = PAYLOADS[payload]
    marker = tmp_path / "pwned.txt"
    torch.manual_seed(0)
    obj = {"state_dict": create_model("small_cnn", 3).state_dict(), "extra": cls(str(marker))}
    ckpt = _save(obj, tmp_path / "evil.pt", protocol, zipped)

    # control: unrestricted unpickling of a copy really runs the payload (so the check below
    # means something); the copy's marker is removed again
    control = tmp_path / "control.pt"
    shutil.copy(ckpt, control)
    torch.load(control, weights_only=False)
    assert marker.read_text() == "code ran"
    marker.unlink()

    rc = _evaluate(ckpt, tiny_synth, tmp_path / "r.json")
    line = _one_line_error(capsys, rc)
    assert str(ckpt) in line
    assert "refused" in line and "would run code" in line and global_name in line, line
    assert "weights_only=True" in line and "truncated" not in line and "corrupt" not in line
    assert not marker.exists()  # nothing was unpickled
    assert not (tmp_path / "r.json").exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("protocol", [5, 2])
def test_a_truncated_checkpoint_is_still_called_truncated(protocol, tiny_synth, tmp_path, capsys):
    torch.manual_seed(0)
    ckpt = _save(create_model("small_cnn", 3).state_dict(), tmp_path / "cut.pt", protocol, True)
    raw = ckpt.read_bytes()
    ckpt.write_bytes(raw[: len(raw) // 2])
    line = _one_line_error(capsys, _evaluate(ckpt, tiny_synth, tmp_path / "r.json"))
    assert str(ckpt) in line and "truncated or corrupt" in line and "would run code" not in line


def test_a_plain_checkpoint_still_loads(tiny_synth, tiny_checkpoint, tmp_path):
    assert _evaluate(tiny_checkpoint, tiny_synth, tmp_path / "r.json") == 0
