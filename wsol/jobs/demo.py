"""``wsol demo``: the embedded end-to-end job that ``make demo`` runs.

synthetic benchmark -> train baseline / Cutout / Mixup / CutMix (``synthetic_cpu``) -> evaluate the
four -> compare (intervals, paired p-values) -> figures -> ``report.md``.

Generation, trainings and evaluations run the public CLI in subprocesses (what users run, and
the way to use both cores); comparison and figures call the same library functions in-process.
Trainings run two at a time with one thread each (on a 2-core machine two single-threaded
processes are far faster than one process with two threads fighting over the cores).
A stage that finished leaves a ``.done`` stamp; a re-run skips it (``--fresh`` starts over).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wsol.errors import UserError

AUGS = ("none", "cutout", "mixup", "cutmix")
DISPLAY = {"none": "baseline", "cutout": "Cutout", "mixup": "Mixup", "cutmix": "CutMix"}


@dataclass
class DemoConfig:
    out: str = "runs/demo"
    augs: Sequence[str] = AUGS
    classes: int = 10
    train_per_class: int = 300
    test_per_class: int = 50
    size: int = 64
    seed: int = 0
    parallel: int = 2
    train_set: list[str] = field(default_factory=list)  # extra --set key=value for every training
    fresh: bool = False


class _Stages:
    """Runs named stages once: a stage's stamp file marks it finished."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.t0 = time.monotonic()

    def stamp(self, name: str) -> Path:
        return self.root / ".stages" / f"{name}.done"

    def done(self, name: str) -> bool:
        return self.stamp(name).exists()

    def mark(self, name: str) -> None:
        self.stamp(name).parent.mkdir(parents=True, exist_ok=True)
        self.stamp(name).write_text("ok\n")

    def say(self, text: str) -> None:
        print(f"[demo {time.monotonic() - self.t0:6.1f}s] {text}", flush=True)


def _wsol(*args: str) -> list[str]:
    return [sys.executable, "-m", "wsol", *args]


def _run_parallel(jobs: dict[str, list[str]], logs: Path, parallel: int, env: dict[str, str]) -> None:
    """Run the commands of ``jobs`` (name -> argv), ``parallel`` at a time; raise on any failure."""
    logs.mkdir(parents=True, exist_ok=True)
    pending = list(jobs.items())
    running: dict[str, tuple[subprocess.Popen, object]] = {}
    failed: list[str] = []
    while pending or running:
        while pending and len(running) < parallel:
            name, argv = pending.pop(0)
            fh = open(logs / f"{name}.log", "w")
            running[name] = (subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env), fh)
        time.sleep(0.2)
        for name, (proc, fh) in list(running.items()):
            if proc.poll() is not None:
                fh.close()
                del running[name]
                if proc.returncode != 0:
                    failed.append(name)
    if failed:
        tails = "\n".join(f"--- {n} (log {logs / (n + '.log')}):\n" +
                          "\n".join((logs / f"{n}.log").read_text().splitlines()[-15:]) for n in failed)
        raise UserError(f"demo stage failed for {', '.join(failed)}\n{tails}")


def run_demo(cfg: DemoConfig) -> Path:
    """Run (or finish) the demo in ``cfg.out``; return the path of ``report.md``."""
    root = Path(cfg.out)
    if cfg.fresh and root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    st = _Stages(root)
    data = root / "data"
    single = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    n_cores = os.cpu_count() or 1

    if not st.done("synth"):
        st.say(f"1/5 generating the synthetic benchmark in {data}")
        if data.exists():
            shutil.rmtree(data)
        subprocess.run(_wsol("data", "synth", "--out", str(data), "--classes", str(cfg.classes),
                             "--train-per-class", str(cfg.train_per_class),
                             "--test-per-class", str(cfg.test_per_class), "--size", str(cfg.size),
                             "--seed", str(cfg.seed)), check=True)
        st.mark("synth")
    else:
        st.say("1/5 synthetic benchmark: reusing")

    todo = [a for a in cfg.augs if not st.done(f"train_{a}")]
    st.say(f"2/5 training {len(cfg.augs)} models with synthetic_cpu ({len(todo)} to do, "
           f"{cfg.parallel} in parallel, 1 thread each)")
    jobs = {}
    for aug in todo:
        sets = [f"data_root={data}", "threads=1", f"seed={cfg.seed}", *cfg.train_set]
        jobs[f"train_{aug}"] = _wsol("train", "--recipe", "synthetic_cpu", "--aug", aug, "--resume",
                                     "--out", str(root / "train" / aug), *sum((["--set", s] for s in sets), []))
    _run_parallel(jobs, root / "logs", cfg.parallel, single)
    for name in jobs:
        st.mark(name)

    todo = [a for a in cfg.augs if not st.done(f"eval_{a}")]
    st.say(f"3/5 evaluating {len(cfg.augs)} models ({len(todo)} to do)")
    jobs = {}
    for aug in todo:
        jobs[f"eval_{aug}"] = _wsol("evaluate", "--checkpoint", str(root / "train" / aug / "last.pt"),
                                    "--dataset", "synthetic", "--data-root", str(data), "--split", "test",
                                    "--device", "cpu", "--workers", "0", "--overwrite",
                                    "--output", str(root / "eval" / aug / "result.json"))
    _run_parallel(jobs, root / "logs", min(cfg.parallel, n_cores), single)
    for name in jobs:
        st.mark(name)

    results = [str(root / "eval" / a / "result.json") for a in cfg.augs]
    names = [DISPLAY.get(a, a) for a in cfg.augs]
    st.say("4/5 comparing and drawing figures")
    from eval.tables import compare_results, write_comparison
    from wsol import figure_job

    write_comparison(compare_results(results, names), root / "comparison.md", root / "comparison.csv")
    ckpts = [str(root / "train" / a / "last.pt") for a in cfg.augs]
    figure_job.render_cam_grid(figure_job.GridConfig(
        checkpoints=ckpts, names=names, dataset="synthetic", data_root=str(data), split="test", images=6,
        select="disagree", results=results, seed=cfg.seed, device="cpu", out=str(root / "cam_grid.png")))
    figure_job.render_curves(results, root / "boxacc_curves.png", names=names)
    figure_job.render_per_class(results, root / "per_class.png", names=names)

    st.say("5/5 writing the report")
    report = write_report(root, cfg, names, results)
    st.say(f"done: {report}")
    return report


HEADLINE = (("MaxBoxAccV2", "MaxBoxAccV2"), ("top1_loc", "top-1 loc"), ("gt_known_loc", "GT-known loc"),
            ("top1_cls", "classification top-1"))


def summarize(comp) -> str:
    """One paragraph written from the numbers and their paired tests (no claim is assumed).

    ``comp``: an :class:`eval.tables.Comparison` whose first model is the baseline.
    """
    names = comp.names
    base = names[0]

    def value(model: str, metric: str) -> float | None:
        try:
            return comp.row(model, metric).value
        except KeyError:
            return None

    v2 = {n: value(n, "MaxBoxAccV2") for n in names}
    best = max((n for n in names if v2[n] is not None), key=lambda n: v2[n], default=base)
    parts = [f"{best} has the highest MaxBoxAccV2 ({v2[best]:.1f}, baseline {v2[base]:.1f})."]
    for name in names[1:]:
        claims, noise = [], []
        for metric, label in HEADLINE:
            try:
                row = comp.row(name, metric)
            except KeyError:
                continue
            if row.delta is None:
                continue
            text = f"{label} {row.delta:+.1f}"
            if row.p_value is not None and row.p_value < 0.05:
                claims.append(f"{text} (p = {row.p_value:.3g})")
            else:
                noise.append(text)
        sentence = f"{name} vs {base}: "
        sentence += ("significant: " + ", ".join(claims)) if claims else "no difference significant at p < 0.05"
        if noise:
            sentence += "; not significant: " + ", ".join(noise)
        parts.append(sentence + ".")
    parts.append("Each method was trained once (one seed) on a small synthetic benchmark, so these are "
                 "findings about this run, not a verdict on the methods; whether CutMix's claimed "
                 "localization gain appears here is exactly what the table measures.")
    return " ".join(parts)


def write_report(root: Path, cfg: DemoConfig, names: Sequence[str], result_paths: Sequence[str]) -> Path:
    from eval.io import atomic_write_text

    from eval.tables import compare_results

    comp = compare_results(list(result_paths), names)
    table_md = (root / "comparison.md").read_text() if (root / "comparison.md").exists() else ""
    lines = ["# wsol-toolkit demo: baseline vs Cutout vs Mixup vs CutMix on the synthetic benchmark", "",
             f"{cfg.classes} classes, {cfg.train_per_class} training and {cfg.test_per_class} test images per "
             f"class, {cfg.size}x{cfg.size} px, seed {cfg.seed}; recipe `synthetic_cpu` (small_cnn). "
             "Metrics in percent with 95 % bootstrap intervals; p-values are exact McNemar tests "
             "against the baseline on the same images.", "",
             "## Results", "", table_md, "",
             "## What the numbers show", "", summarize(comp), "",
             "## Figures", "",
             "CAMs of the four models on the images where they disagree most (green: GT box, red: "
             "predicted box):", "", "![CAM grid](cam_grid.png)", "",
             "BoxAcc against the CAM threshold:", "", "![BoxAcc curves](boxacc_curves.png)", "",
             "Per-class accuracy:", "", "![per-class](per_class.png)", ""]
    return atomic_write_text(root / "report.md", "\n".join(lines))
