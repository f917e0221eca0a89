"""Ctrl-C held while processes fork (``eval.signals``) and the CLI's exit status of a Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from eval.signals import ignore_sigint, sigint_deferred

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def python_sigint_handler():
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def test_a_sigint_inside_the_block_comes_at_its_end(python_sigint_handler):
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with sigint_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # Python runs signal handlers between bytecodes: plenty of chances
                pass
            reached.append("the rest of the block ran")
    assert reached == ["the rest of the block ran"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is back


def test_nothing_is_delivered_without_a_sigint(python_sigint_handler):
    with sigint_deferred():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_child_forked_inside_survives_a_sigint_before_it_ignores_them(python_sigint_handler):
    with pytest.raises(KeyboardInterrupt):  # the parent's comes at the end of the block
        with sigint_deferred():
            pid = os.fork()
            if pid == 0:  # the child, as a pool worker before its initializer runs
                try:
                    os.kill(os.getpid(), signal.SIGINT)
                    for _ in range(1000):
                        pass
                    ignore_sigint()
                    os.kill(os.getpid(), signal.SIGINT)
                    os._exit(0)
                except BaseException:
                    os._exit(4)
            os.kill(os.getpid(), signal.SIGINT)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_ctrl_c_in_exec_run_code_still_exits_130():
    # CPython marks a KeyboardInterrupt leaving exec'd code (dataclasses, during imports) as
    # unhandled and then ended the CLI by SIGINT (-2) although it returned 130
    code = (
        "import wsol.cli, wsol.commands.compare as c\n"
        "c.run = lambda args: exec('raise KeyboardInterrupt')\n"
        "raise SystemExit(wsol.cli.main(['compare', 'a.json']))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 130 and p.stderr == "wsol compare: interrupted\n", (p.returncode, p.stderr)
