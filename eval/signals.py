"""Ctrl-C around process starts.

A SIGINT that lands while a process forks is lost or misdirected: raised in the parent inside an
at-fork hook (``logging``'s lock release), Python prints "Exception ignored" and the run goes on;
landing in a child before the child ignores SIGINT, it kills that worker. :func:`sigint_deferred`
swaps the SIGINT handler for one that only notes the signal during the fork, and delivers it to
the previous handler when the block ends: a ``KeyboardInterrupt`` at a point where the caller's
clean-up sees the new processes. A child forked inside inherits the noting handler until it
ignores SIGINT (:func:`ignore_sigint`). (Blocking the signal instead would not do: the kernel
hands a process-wide SIGINT to any thread that does not block it, and torch has threads.)
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ignore_sigint", "sigint_deferred"]


@contextmanager
def sigint_deferred() -> Iterator[None]:
    """Note a SIGINT (Ctrl-C) inside the block and deliver it to the previous handler at its end
    (the default Python handler raises ``KeyboardInterrupt`` there). A no-op off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def note(signum: int, frame: object) -> None:
        caught.append(signum)

    old = signal.signal(signal.SIGINT, note)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        if caught:
            if callable(old):
                old(signal.SIGINT, None)
            elif old == signal.SIG_DFL:
                os.kill(os.getpid(), signal.SIGINT)


def ignore_sigint() -> None:
    """In a worker process: ignore SIGINT (the parent handles Ctrl-C and stops the workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
