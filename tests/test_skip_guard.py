"""The skip guard of ``tests/conftest.py``: a skipped test not in ``ALLOWED_SKIPS`` fails the run.

Each case runs pytest in a subprocess on a throw-away folder whose conftest is a copy of ours
(no fixture of it is used: it imports only pytest at the top), so it is cheap.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CONFTEST = Path(__file__).resolve().parent / "conftest.py"

TESTS = """
import pytest

def test_ok():
    pass

def test_skipped():
    pytest.skip("the thing is not there yet")

@pytest.mark.skipif(True, reason="never on this machine")
def test_marked():
    pass

@pytest.mark.xfail(reason="known bug", strict=True)
def test_xfail():
    raise AssertionError
"""


def _run(tmp_path: Path, allowed: str, files: dict[str, str]) -> subprocess.CompletedProcess:
    conftest = CONFTEST.read_text()
    marker = "ALLOWED_SKIPS: dict[str, str] = {}"
    assert marker in conftest
    (tmp_path / "conftest.py").write_text(conftest.replace(marker, f"ALLOWED_SKIPS: dict[str, str] = {allowed}"))
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:nbmake",
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


def test_a_skip_not_allowed_fails_the_run_and_is_named(tmp_path):
    mod = "import pytest\npytest.skip('module not importable', allow_module_level=True)\n"
    res = _run(tmp_path, "{}", {"test_a.py": TESTS, "test_mod.py": mod})
    out = res.stdout
    assert res.returncode == 1, out
    assert "skipped tests not in ALLOWED_SKIPS" in out
    for name, reason in [
        ("test_a.py::test_skipped", "the thing is not there yet"),
        ("test_a.py::test_marked", "never on this machine"),
        ("test_mod.py", "module not importable"),
    ]:
        assert f"{name}: {reason}" in out, out
    assert "test_xfail" not in out.split("skipped tests not in ALLOWED_SKIPS")[1]  # xfail is no skip
    assert "3 unexpected skip(s)" in out


def test_allowed_skips_pass(tmp_path):
    allowed = '{"test_a.py::test_skipped": "why", "test_a.py::test_marked": "why"}'
    res = _run(tmp_path, allowed, {"test_a.py": TESTS})
    assert res.returncode == 0, res.stdout
    assert "ALLOWED_SKIPS" not in res.stdout
