"""DataLoaders whose user errors read the same at every ``--workers`` value.

A user error raised inside a DataLoader worker process reaches the main process re-wrapped by
torch as ``Caught UserError in DataLoader worker process 0. Original Traceback ...``. Here the
dataset and the collate function hand such an error back *as a value* instead, and
:func:`iterate` raises the original exception in the main process: the CLI then prints the same
single line as with ``--workers 0``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from torch.utils.data import Dataset

from eval.errors import InputError

__all__ = ["CarriedError", "CarryErrors", "carry_collate", "iterate", "worker_init", "CARRIED"]

# what a worker hands back instead of raising (user errors and unreadable files)
CARRIED: tuple[type[BaseException], ...] = (InputError, OSError)


class CarriedError:
    """A user error raised in a worker, carried to the main process (picklable)."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def __reduce__(self):
        try:  # the original exception when it pickles; else its message as an InputError
            import pickle

            pickle.dumps(self.exc)
            return (CarriedError, (self.exc,))
        except Exception:
            return (CarriedError, (InputError(str(self.exc)),))

    def reraise(self) -> None:
        raise self.exc


class CarryErrors(Dataset):
    """``dataset[i]``, or a :class:`CarriedError` when reading item ``i`` raises a user error."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> Any:
        try:
            return self.dataset[i]
        except CARRIED as exc:
            return CarriedError(exc)

    def __getattr__(self, name: str) -> Any:  # records, num_classes, ... of the wrapped dataset
        # never forward dunders: DataLoader would find the wrapped ``__getitems__`` and bypass us
        if name == "dataset" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.dataset, name)


def carry_collate(collate: Callable[[list], Any]) -> Callable[[list], Any]:
    """``collate`` that returns the first :class:`CarriedError` of the batch (or the one it raises)."""
    return _CarryCollate(collate)


class _CarryCollate:
    def __init__(self, collate: Callable[[list], Any]) -> None:
        self.collate = collate

    def __call__(self, items: list) -> Any:
        for it in items:
            if isinstance(it, CarriedError):
                return it
        try:
            return self.collate(items)
        except CARRIED as exc:
            return CarriedError(exc)


def iterate(loader: Iterable) -> Iterator:
    """The batches of ``loader``; a carried error is raised here, in the main process."""
    for batch in loader:
        if isinstance(batch, CarriedError):
            batch.reraise()
        yield batch


def worker_init(worker_id: int) -> None:
    """DataLoader ``worker_init_fn`` of every loader of the toolkit: Ctrl-C is the main process's.

    * SIGINT is ignored here: the worker runs until the main process shuts the loader down (one
      held by :func:`eval.signals.sigint_deferred` during the fork is dropped).
    * Tensors go to the main process as shared-memory *file names* (torch's ``file_system``
      strategy, set in this worker process only) rather than as file descriptors: with
      descriptors, a main process interrupted while fetching a batch left the worker's
      ``multiprocessing.resource_sharer`` thread printing a ``BrokenPipeError`` traceback after
      the CLI's one-line message (14 runs in 40 under a Ctrl-C at a random time; 0 in 30 with this).
    * That strategy goes through ``torch_shm_manager``, a process the worker starts, which stays
      up 2 s after its last client leaves. It is started here, at once, with its stderr on
      ``/dev/null`` (:func:`_start_shm_manager`): inheriting the CLI's stderr, it held a pipe
      reading the CLI (``wsol evaluate 2>&1 | tee log``, ``subprocess.run``) open 2 s past the
      CLI's exit.
    """
    import torch.multiprocessing

    from eval.signals import ignore_sigint

    del worker_id
    ignore_sigint()
    torch.multiprocessing.set_sharing_strategy("file_system")
    _start_shm_manager()


def _start_shm_manager() -> None:
    """Start this process's ``torch_shm_manager`` now, its stderr on ``/dev/null``.

    The manager is started by the first tensor this process puts in shared memory under the
    ``file_system`` strategy and inherits the process's file descriptors; fd 2 points to
    ``/dev/null`` only for that moment, then comes back. Call it with that strategy set, before
    any other thread of the process writes to stderr (a DataLoader worker's ``worker_init_fn``).
    """
    import os

    import torch

    sys_err = os.dup(2)
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
        finally:
            os.close(null)
        torch.empty(1).share_memory_()
    finally:
        os.dup2(sys_err, 2)
        os.close(sys_err)
