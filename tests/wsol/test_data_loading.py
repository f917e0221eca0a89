"""DataLoader workers of the toolkit: Ctrl-C is the main process's, tensors travel by file name."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from wsol.data.loading import worker_init

REPO = Path(__file__).resolve().parents[2]


class _WhatTheWorkerSees(Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> dict:
        ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        return {"sigint_ignored": ignored, "strategy": torch.multiprocessing.get_sharing_strategy(), "t": torch.ones(3)}


def test_worker_init_ignores_sigint_and_shares_by_file_name_in_the_worker_only():
    before = torch.multiprocessing.get_sharing_strategy()
    loader = DataLoader(_WhatTheWorkerSees(), batch_size=None, num_workers=1, worker_init_fn=worker_init)
    items = list(loader)
    assert [it["sigint_ignored"] for it in items] == [True, True]
    assert [it["strategy"] for it in items] == ["file_system", "file_system"]
    assert all(torch.equal(it["t"], torch.ones(3)) for it in items)  # the tensors arrive intact
    # the main process keeps its own settings
    assert torch.multiprocessing.get_sharing_strategy() == before
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN


def test_without_worker_init_a_worker_would_stop_on_sigint():  # the control: the check above can fail
    loader = DataLoader(_WhatTheWorkerSees(), batch_size=None, num_workers=1)
    assert [it["sigint_ignored"] for it in loader] == [False, False]


def test_the_toolkit_loaders_install_it():
    from wsol.robustness import make_loader

    assert make_loader(_WhatTheWorkerSees(), 1, num_workers=1).worker_init_fn is worker_init


_MANAGER_STDERR = """
import os, sys, torch
torch.multiprocessing.set_sharing_strategy("file_system")
if sys.argv[1] == "toolkit":
    from wsol.data.loading import _start_shm_manager
    _start_shm_manager()
else:  # what torch does by itself: the first shared tensor starts the manager
    torch.empty(1).share_memory_()
me = os.getpid()
kids = [int(k) for t in os.listdir(f"/proc/{me}/task") for k in open(f"/proc/{me}/task/{t}/children").read().split()]
names = {k: open(f"/proc/{k}/comm").read().strip() for k in kids}
(manager,) = [k for k, n in names.items() if "torch_shm_manager".startswith(n)]  # comm: 15 chars
print(os.readlink(f"/proc/{manager}/fd/2"))
print("stderr still works", file=sys.stderr)
"""


@pytest.mark.parametrize("how", ["toolkit", "torch"])
def test_the_shm_manager_does_not_hold_the_callers_stderr(how):
    """A pipe reading the CLI's stderr closes when the CLI exits, not 2 s later with the manager."""
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-c", _MANAGER_STDERR, how], capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 0, p.stderr
    assert p.stderr.strip().splitlines()[-1] == "stderr still works"
    manager_stderr = p.stdout.strip()
    if how == "toolkit":
        assert manager_stderr == os.devnull
    else:  # the control: left to torch, the manager holds the pipe
        assert manager_stderr.startswith("pipe:")
