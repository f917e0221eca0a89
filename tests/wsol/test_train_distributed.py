"""DistributedDataParallel on CPU: 2 processes under torchrun (gloo) == 1 process, same global batch.

What is compared: the final weights and SGD momentum buffers after 2 epochs x 3 steps of a global
batch of 8 (4 per process), and the logged per-epoch loss. Tolerance: 1e-6 absolute + 1e-5
relative (float32 summation order differs: DDP averages the two half-batch gradients with an
all-reduce, one process takes the mean over the full batch). The model has no BatchNorm: BN
statistics are per process under DDP (SyncBatchNorm does not run on CPU), so a BN model would
legitimately differ. Augmentation is off (mixing partners are drawn within each process's share)
and the in-memory data path is used (its crops and flips are drawn per global batch).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]

MODEL = textwrap.dedent('''
    from torch import nn
    from wsol.models import MODELS
    from wsol.models.base import WSOLModel, linear_class_maps

    class NoBNCNN(WSOLModel):
        """Five conv-ReLU stages (no BatchNorm), GAP, fc."""
        arch = "nobn_cnn"
        cam_layer = "s4"

        def __init__(self, num_classes):
            super().__init__(num_classes, {})
            ch = [3, 4, 8, 8, 8, 8]
            for i in range(5):
                self.add_module(f"s{i}", nn.Sequential(
                    nn.Conv2d(ch[i], ch[i + 1], 3, stride=2 if i in (0, 2) else 1, padding=1),
                    nn.ReLU()))
            self.fc = nn.Linear(8, num_classes)

        def stages(self):
            return [getattr(self, f"s{i}") for i in range(5)]

        def forward_head(self, f):
            return self.fc(f.mean((2, 3)))

        def class_maps(self, f, t):
            return linear_class_maps(f, self.fc.weight, t)

    def nobn_cnn(num_classes):
        return NoBNCNN(num_classes)

    if "nobn_cnn" not in MODELS:
        MODELS.register("nobn_cnn")(nobn_cnn)
''')

SCRIPT = textwrap.dedent("""
    import json, sys
    import nobn_model  # registers nobn_cnn
    from wsol.train import TrainConfig, train
    train(TrainConfig(**json.loads(sys.argv[1])), sys.argv[2])
""")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from wsol.data.synthetic import SynthConfig, generate_synthetic

    root = tmp_path_factory.mktemp("synth_dist")
    generate_synthetic(
        root, SynthConfig(classes=3, train_per_class=8, val_per_class=0, test_per_class=1, size=32, seed=2)
    )
    return root


def test_two_process_gloo_matches_single_process(synth, tmp_path, monkeypatch):
    from wsol.checkpoints import read_checkpoint
    from wsol.train import TrainConfig, train

    (tmp_path / "nobn_model.py").write_text(MODEL)
    script = tmp_path / "run_train.py"
    script.write_text(SCRIPT)
    values = dict(
        model="nobn_cnn",
        dataset="synthetic",
        data_root=str(synth),
        cache_images=True,
        epochs=2,
        batch_size=8,
        lr=0.1,
        momentum=0.9,
        weight_decay=1e-4,
        aug="none",
        threads=1,
        progress=False,
        device="cpu",
        seed=5,
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    }
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path), env.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    two = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(script),
            json.dumps(values),
            str(tmp_path / "two"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # the single-process reference runs here meanwhile (same code path, WORLD_SIZE unset)
        monkeypatch.syspath_prepend(str(tmp_path))
        import nobn_model  # noqa: F401  registers nobn_cnn in this process

        train(TrainConfig(**values), tmp_path / "one")
        out_two = two.communicate(timeout=120)[0]
    finally:
        if two.poll() is None:
            two.kill()
    assert two.returncode == 0, out_two[-3000:]

    a = read_checkpoint(tmp_path / "one" / "last.pt")
    b = read_checkpoint(tmp_path / "two" / "last.pt")
    assert a["world_size"] == 1 and b["world_size"] == 2 and a["epoch"] == b["epoch"] == 2
    moved = 0.0
    for k, v in a["state_dict"].items():
        assert torch.allclose(v, b["state_dict"][k], atol=1e-6, rtol=1e-5), k
    for k, s in a["optimizer"]["state"].items():
        buf_b = b["optimizer"]["state"][k]["momentum_buffer"]
        assert torch.allclose(s["momentum_buffer"], buf_b, atol=1e-6, rtol=1e-5), k
        moved += float(s["momentum_buffer"].abs().sum())
    assert moved > 1e-3  # training did move the weights
    log_a = [json.loads(x) for x in (tmp_path / "one" / "log.jsonl").read_text().splitlines()]
    log_b = [json.loads(x) for x in (tmp_path / "two" / "log.jsonl").read_text().splitlines()]
    assert [r["images"] for r in log_b] == [24, 24]  # counted over both processes
    for ra, rb in zip(log_a, log_b):
        assert rb["loss"] == pytest.approx(ra["loss"], rel=1e-5, abs=1e-6)
        assert rb["acc"] == ra["acc"]
