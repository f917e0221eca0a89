"""``wsol evaluate`` starts decoding before it loads the model, and stops the loader on every exit."""

from __future__ import annotations

import multiprocessing

import pytest

from wsol.cli import main


def _evaluate(synth, out, *args: str) -> int:
    argv = ["--dataset", "synthetic", "--data-root", str(synth), "--output", str(out), *args]
    return main(["evaluate", "--no-progress", "--device", "cpu", *argv])


def test_the_loader_starts_before_the_checkpoint_loads(tiny_checkpoint, tiny_synth, tmp_path, monkeypatch):
    import wsol.checkpoints
    import wsol.evaluate as we

    events: list[str] = []

    class Loader(we.DataLoader):
        def __iter__(self):
            events.append(f"loader started ({self.num_workers} workers)")
            return super().__iter__()

    load = wsol.checkpoints.load_checkpoint

    def recorded_load(*args, **kwargs):
        events.append("checkpoint loaded")
        return load(*args, **kwargs)

    monkeypatch.setattr(we, "DataLoader", Loader)
    monkeypatch.setattr(wsol.checkpoints, "load_checkpoint", recorded_load)
    assert _evaluate(tiny_synth, tmp_path / "r.json", "--checkpoint", str(tiny_checkpoint), "--workers", "2") == 0
    assert events == ["loader started (1 workers)", "checkpoint loaded"]


@pytest.mark.parametrize("workers", ["2", "1"])
def test_a_run_refused_after_the_loader_started_leaves_no_process(tiny_synth, tmp_path, capsys, workers):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert _evaluate(tiny_synth, tmp_path / "r.json", "--checkpoint", str(bad), "--workers", workers) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "Traceback" not in err
    assert multiprocessing.active_children() == []


def test_a_ctrl_c_while_the_loader_forks_comes_after_and_stops_it(tiny_synth, monkeypatch):
    import os
    import signal

    import wsol.evaluate as we
    from wsol.data import build_dataset

    events: list[str] = []

    class Loader(we.DataLoader):
        def __iter__(self):
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the worker forks
            it = super().__iter__()
            events.append(f"{len(multiprocessing.active_children())} worker(s) started")
            return it

    monkeypatch.setattr(we, "DataLoader", Loader)
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            we.BatchStream(build_dataset("synthetic", tiny_synth, "test"), range(4), batch_size=2, loader_workers=1)
    finally:
        signal.signal(signal.SIGINT, old)
    assert events == ["1 worker(s) started"]  # the interrupt came after the fork, not inside it
    assert multiprocessing.active_children() == []  # and the stream stopped its worker
