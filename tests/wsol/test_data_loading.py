"""DataLoader workers of the toolkit: Ctrl-C is the main process's, tensors travel by file name."""

from __future__ import annotations

import signal

import torch
from torch.utils.data import DataLoader, Dataset

from wsol.data.loading import worker_init


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
