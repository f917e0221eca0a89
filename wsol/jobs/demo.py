"""``wsol demo``: the embedded end-to-end job that ``make demo`` runs.

synthetic benchmark -> train baseline / Cutout / Mixup / CutMix (``synthetic_cpu``) -> evaluate the
four -> compare (intervals, paired p-values) -> figures -> ``report.md``. With ``seeds = N > 1`` every
method is trained and evaluated with training seeds ``seed .. seed + N - 1`` (same benchmark, data
seed ``seed``) and :mod:`wsol.jobs.study` adds the table across seeds (mean, 95 % t-interval,
per-seed paired tests) and the sentence on whether the CutMix effect appears.

Generation, trainings and evaluations run the public CLI in subprocesses (what users run, and
the way to use both cores); comparison and figures call the same library functions in-process.
Trainings run two at a time with one thread each (on a 2-core machine two single-threaded
processes are far faster than one process with two threads fighting over the cores).
A stage that finished leaves a ``.done`` stamp recording the settings it was made with; a re-run
with the same settings skips it, one with other settings is refused (``--fresh`` starts over, and
deletes only a folder the demo wrote: one with ``.stages``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wsol.errors import Interrupted, UserError

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
    seeds: int = 1  # training seeds seed .. seed + seeds - 1 (the benchmark's data seed stays `seed`)
    parallel: int = 2
    train_set: list[str] = field(default_factory=list)  # extra --set key=value for every training
    fresh: bool = False


class _Stages:
    """Runs named stages once: a stage's stamp file marks it finished and records the settings it
    was made with (JSON), so that a re-run with other settings is refused, not silently reused."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.t0 = time.monotonic()

    def stamp(self, name: str) -> Path:
        return self.root / STAGES / f"{name}.done"

    def done(self, name: str) -> bool:
        return self.stamp(name).exists()

    def recorded(self, name: str) -> dict | None:
        """The settings the finished stage ``name`` recorded (``None``: it recorded none, as the
        stamps of older versions, or it is unreadable)."""
        try:
            data = json.loads(self.stamp(name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        settings = data.get("settings") if isinstance(data, dict) else None
        return settings if isinstance(settings, dict) else None

    def mark(self, name: str, settings: dict) -> None:
        self.stamp(name).parent.mkdir(parents=True, exist_ok=True)
        self.stamp(name).write_text(json.dumps({"stage": name, "settings": settings}, sort_keys=True) + "\n")

    def say(self, text: str) -> None:
        print(f"[demo {time.monotonic() - self.t0:6.1f}s] {text}", flush=True)


#: the folder of stage stamps: its presence marks a folder the demo wrote (``--fresh`` deletes only such)
STAGES = ".stages"


def _set_words(sets: Sequence[str]) -> str:
    return " ".join(f"--set {s}" for s in sets) if sets else "no --set"


def _synth_settings(cfg: DemoConfig) -> dict:
    """What the benchmark depends on, by the flag that sets it."""
    return {
        "--classes": cfg.classes,
        "--train-per-class": cfg.train_per_class,
        "--test-per-class": cfg.test_per_class,
        "--size": cfg.size,
        "--seed": cfg.seed,
    }


def _normalized_sets(sets: Sequence[str]) -> list[str]:
    """The ``--set`` overrides as ``key=value``, one per key (the last given wins), in key order:
    the same overrides in another order are the same training."""
    last: dict[str, str] = {}
    for text in sets:
        key, _, value = text.partition("=")
        last[key.strip()] = value.strip()
    return [f"{k}={last[k]}" for k in sorted(last)]


def _run_settings(cfg: DemoConfig, aug: str, seed: int) -> dict:
    """What one training (and its evaluation) depends on besides the benchmark."""
    return {"--augs": aug, "training seed": seed, "--set": _normalized_sets(cfg.train_set)}


def _check_reuse(st: _Stages, cfg: DemoConfig, runs: list[tuple[str, int]]) -> None:
    """Refuse (one line, before anything runs) to reuse a finished stage made with other settings."""
    root = cfg.out
    fix = "pass --fresh or another --out"
    stages = [("synth", _synth_settings(cfg))]
    for aug, seed in runs:
        name = run_name(cfg, aug, seed)
        stages += [(f"train_{name}", _run_settings(cfg, aug, seed)), (f"eval_{name}", _run_settings(cfg, aug, seed))]
    for name, want in stages:
        if not st.done(name):
            continue
        have = st.recorded(name)
        if have is None:
            raise UserError(
                f"{root} holds a demo run that did not record its settings ({st.stamp(name)}, an older version): {fix}"
            )
        for key, value in want.items():
            if have.get(key) == value:
                continue
            if key == "--set":
                made, now = _set_words(have.get(key) or []), _set_words(value)
            else:
                made, now = f"{key} {have.get(key, '?')}", f"{value}"
            raise UserError(f"{root} was made with {made}, not {now}: {fix}")


def _prepare_out(root: Path, fresh: bool) -> None:
    """Refuse an ``--out`` the demo did not write (a file, or a non-empty folder without the demo's
    ``.stages``): nothing of it is deleted or written into; ``--fresh`` then deletes a demo folder."""
    if root.exists() and not root.is_dir():
        raise UserError(f"--out {root} is a file, not a folder")
    if root.is_dir() and any(root.iterdir()) and not (root / STAGES).is_dir():
        what = "--fresh would delete it" if fresh else "the demo would write into it"
        raise UserError(
            f"--out {root} is not empty and was not written by `wsol demo` (no {STAGES} folder); "
            f"{what}: pass an empty or new folder"
        )
    if fresh and root.exists():
        shutil.rmtree(root)


def _wsol(*args: str) -> list[str]:
    return [sys.executable, "-m", "wsol", *args]


def _run_parallel(jobs: dict[str, list[str]], logs: Path, parallel: int, env: dict[str, str]) -> None:
    """Run the commands of ``jobs`` (name -> argv), ``parallel`` at a time; raise on any failure."""
    logs.mkdir(parents=True, exist_ok=True)
    pending = list(jobs.items())
    running: dict[str, tuple[subprocess.Popen, object]] = {}
    failed: list[str] = []
    try:
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
    except BaseException:  # Ctrl-C (or an error) here: no child is left running on its own
        _stop([proc for proc, _ in running.values()])
        for _, fh in running.values():
            fh.close()
        raise
    if failed:
        tails = "\n".join(
            f"--- {n} (log {logs / (n + '.log')}):\n" + "\n".join((logs / f"{n}.log").read_text().splitlines()[-15:])
            for n in failed
        )
        raise UserError(f"demo stage failed for {', '.join(failed)}\n{tails}")


def _stop(procs: list[subprocess.Popen], grace: float = 10.0) -> None:
    """Interrupt ``procs`` as Ctrl-C would (a training keeps its last finished epoch), then kill
    whatever still runs after ``grace`` seconds."""
    import signal

    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace
    try:
        for proc in procs:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    except (subprocess.TimeoutExpired, KeyboardInterrupt):  # too slow, or a second Ctrl-C
        pass
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def train_seeds(cfg: DemoConfig) -> list[int]:
    """The training seeds of the demo: ``cfg.seed .. cfg.seed + cfg.seeds - 1``."""
    return [cfg.seed + i for i in range(max(1, cfg.seeds))]


def run_name(cfg: DemoConfig, aug: str, seed: int) -> str:
    """Folder / stage name of one run: ``aug`` for the first seed (the one-seed demo's layout, so a
    ``--seeds N`` re-run reuses it), ``aug_seedK`` for the others."""
    return aug if seed == cfg.seed else f"{aug}_seed{seed}"


def result_paths(root: Path, cfg: DemoConfig, seed: int) -> list[str]:
    return [str(root / "eval" / run_name(cfg, a, seed) / "result.json") for a in cfg.augs]


def run_demo(cfg: DemoConfig) -> Path:
    """Run (or finish) the demo in ``cfg.out``; return the path of ``report.md``. After Ctrl-C the
    same call continues: finished stages are reused and trainings resume from their last epoch."""
    try:
        return _run_demo(cfg)
    except KeyboardInterrupt:
        raise Interrupted(
            f"finished stages are kept in {cfg.out}; rerun the same command (without --fresh) to "
            "continue: trainings resume from their last finished epoch"
        ) from None


# the demo sets these for every training itself (the benchmark it made, one thread, the run's seed)
_DEMO_SETS = ("data_root", "threads", "seed", "aug")


def _check_trainings(cfg: DemoConfig, data: Path) -> None:
    """Refuse, before the benchmark is generated, what would make a training fail or run another
    configuration than the report says: an unknown or repeated ``--augs`` name, a ``--set`` of a
    key the demo sets per run, and any ``--set`` the synthetic_cpu recipe refuses."""
    from wsol.augment import AUGMENTATIONS
    from wsol.train import load_recipe
    from wsol.train.config import validate
    from wsol.train.recipes import parse_override

    for aug in cfg.augs:
        AUGMENTATIONS.get(aug)  # one line listing the choices
    repeated = sorted({a for a in cfg.augs if list(cfg.augs).count(a) > 1})
    if repeated:
        raise UserError(f"--augs names {repeated[0]!r} twice; give each augmentation once")
    if len(cfg.augs) < 2:  # the comparison, its p-values and the CAM grid need a second model
        raise UserError(
            f"--augs needs at least two methods to compare (the first is the baseline), got {len(cfg.augs)}"
        )
    for text in cfg.train_set:
        key = parse_override(text)[0][0]
        if key in _DEMO_SETS:
            what = "--augs" if key == "aug" else "--seed / --seeds" if key == "seed" else "the demo"
            raise UserError(f"--set {text}: {key} is set for every training by {what}; drop it")
    for aug in cfg.augs:
        validate(load_recipe("synthetic_cpu", [f"data_root={data}", *cfg.train_set], aug=aug))


def _run_demo(cfg: DemoConfig) -> Path:
    root = Path(cfg.out)
    if cfg.seeds < 1:
        raise UserError("--seeds must be at least 1")
    if cfg.parallel < 1:
        raise UserError("--parallel must be at least 1")
    for flag, count in (("--train-per-class", cfg.train_per_class), ("--test-per-class", cfg.test_per_class)):
        if count < 1:  # the demo trains on one split and evaluates on the other
            raise UserError(f"{flag} must be at least 1 for the demo, got {count}")
    _check_trainings(cfg, root / "data")
    from wsol.data import SynthConfig

    SynthConfig(  # the data stage's own checks, before anything is written
        classes=cfg.classes,
        train_per_class=cfg.train_per_class,
        test_per_class=cfg.test_per_class,
        size=cfg.size,
        seed=cfg.seed,
    ).validate()
    st = _Stages(root)
    seeds = train_seeds(cfg)
    runs = [(a, s) for s in seeds for a in cfg.augs]
    _prepare_out(root, cfg.fresh)
    if not cfg.fresh:
        _check_reuse(st, cfg, runs)
    (root / STAGES).mkdir(parents=True, exist_ok=True)  # marks the folder as the demo's
    data = root / "data"
    single = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    from eval.cores import usable_cores

    n_cores = usable_cores()

    if not st.done("synth"):
        st.say(f"1/5 generating the synthetic benchmark in {data}")
        if data.exists():
            shutil.rmtree(data)
        synth = subprocess.run(
            _wsol(
                "data",
                "synth",
                "--out",
                str(data),
                "--classes",
                str(cfg.classes),
                "--train-per-class",
                str(cfg.train_per_class),
                "--test-per-class",
                str(cfg.test_per_class),
                "--size",
                str(cfg.size),
                "--seed",
                str(cfg.seed),
            ),
        )
        if synth.returncode != 0:  # its one-line error is already on stderr
            raise UserError(f"demo stage 1/5 failed: `wsol data synth` exited with status {synth.returncode}")
        st.mark("synth", _synth_settings(cfg))
    else:
        st.say("1/5 synthetic benchmark: reusing")

    todo = [(a, s) for a, s in runs if not st.done(f"train_{run_name(cfg, a, s)}")]
    what = f"{len(cfg.augs)} models" + (f" x {len(seeds)} seeds" if len(seeds) > 1 else "")
    st.say(f"2/5 training {what} with synthetic_cpu ({len(todo)} to do, {cfg.parallel} in parallel, 1 thread each)")
    jobs, made = {}, {}
    for aug, seed in todo:
        name = run_name(cfg, aug, seed)
        made[f"train_{name}"] = made[f"eval_{name}"] = _run_settings(cfg, aug, seed)
        sets = [f"data_root={data}", "threads=1", f"seed={seed}", *cfg.train_set]
        jobs[f"train_{name}"] = _wsol(
            "train",
            "--recipe",
            "synthetic_cpu",
            "--aug",
            aug,
            "--resume",
            "--out",
            str(root / "train" / name),
            *sum((["--set", s] for s in sets), []),
        )
    _run_parallel(jobs, root / "logs", cfg.parallel, single)
    for name in jobs:
        st.mark(name, made[name])

    todo = [(a, s) for a, s in runs if not st.done(f"eval_{run_name(cfg, a, s)}")]
    st.say(f"3/5 evaluating {what} ({len(todo)} to do)")
    jobs = {}
    for aug, seed in todo:
        name = run_name(cfg, aug, seed)
        made[f"eval_{name}"] = _run_settings(cfg, aug, seed)
        jobs[f"eval_{name}"] = _wsol(
            "evaluate",
            "--checkpoint",
            str(root / "train" / name / "last.pt"),
            "--dataset",
            "synthetic",
            "--data-root",
            str(data),
            "--split",
            "test",
            "--device",
            "cpu",
            "--workers",
            "0",
            "--overwrite",
            "--output",
            str(root / "eval" / name / "result.json"),
        )
    _run_parallel(jobs, root / "logs", min(cfg.parallel, n_cores), single)
    for name in jobs:
        st.mark(name, made[name])

    results = result_paths(root, cfg, cfg.seed)
    names = [DISPLAY.get(a, a) for a in cfg.augs]
    st.say("4/5 comparing and drawing figures")
    from wsol.jobs import figure as figure_job
    from wsol.jobs.study import compare_module, seed_study, write_seed_study

    cmp = compare_module()
    cmp.write_comparison(cmp.compare_results(results, names), root / "comparison.md", root / "comparison.csv")
    study = None
    if len(seeds) > 1:
        study = seed_study({s: result_paths(root, cfg, s) for s in seeds}, names)
        write_seed_study(study, root / "seeds.md", root / "seeds.csv")
    ckpts = [str(root / "train" / a / "last.pt") for a in cfg.augs]
    figure_job.render_cam_grid(
        figure_job.GridConfig(
            checkpoints=ckpts,
            names=names,
            dataset="synthetic",
            data_root=str(data),
            split="test",
            images=6,
            select="disagree",
            results=results,
            seed=cfg.seed,
            device="cpu",
            out=str(root / "cam_grid.png"),
        )
    )
    figure_job.render_curves(results, root / "boxacc_curves.png", names=names)
    figure_job.render_per_class(results, root / "per_class.png", names=names)

    st.say("5/5 writing the report")
    report = write_report(root, cfg, names, results, study)
    st.say(f"done: {report}")
    return report


HEADLINE = (
    ("MaxBoxAccV2", "MaxBoxAccV2"),
    ("top1_loc", "top-1 loc"),
    ("gt_known_loc", "GT-known loc"),
    ("top1_cls", "classification top-1"),
)


def summarize(comp, seeds: int = 1) -> str:
    """One paragraph written from the numbers and their paired tests (no claim is assumed).

    ``comp``: a ``Comparison`` (``eval.compare``) whose first model is the
    baseline; ``seeds``: how many training seeds the study has (the paragraph is about the first).
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
    if seeds > 1:
        parts.append(
            f"These are the runs of the first seed; the table across the {seeds} seeds above says "
            "which differences persist from seed to seed."
        )
    else:
        parts.append(
            "Each method was trained once (one seed) on a small synthetic benchmark, so these are "
            "findings about this run, not a verdict on the methods; `wsol demo --seeds 3` repeats "
            "the trainings with other seeds and reports intervals across seeds."
        )
    return " ".join(parts)


def lead_sentence(comp, method: str = "CutMix") -> str:
    """The one-seed finding in one sentence: ``method`` against the baseline on MaxBoxAccV2 and
    top-1 loc, with the bootstrap intervals and paired p-values (whichever way it falls)."""
    names = comp.names
    base = names[0]
    if method not in names[1:]:
        method = names[1] if len(names) > 1 else base
    if method == base:
        return f"Only {base} was trained, so no method is compared with it."

    def one(metric: str, label: str) -> str | None:
        try:
            a, b = comp.row(method, metric), comp.row(base, metric)
        except KeyError:
            return None
        if a.value is None or b.value is None:
            return None

        def v(row) -> str:
            return f"{row.value:.1f}" + (f" [{row.ci[0]:.1f}, {row.ci[1]:.1f}]" if row.ci else "")

        p = "" if a.p_value is None else f", p = {a.p_value:.2g}"
        return f"{label} {v(a)} vs {v(b)} (Δ {a.delta:+.1f}{p})"

    parts = [t for t in (one("MaxBoxAccV2", "MaxBoxAccV2"), one("top1_loc", "top-1 loc")) if t]
    sig = {}
    for metric, label in (("MaxBoxAccV2", "MaxBoxAccV2"), ("top1_loc", "top-1 loc")):
        try:
            row = comp.row(method, metric)
        except KeyError:
            continue
        if row.p_value is not None and row.p_value < 0.05 and row.delta:
            sig[label] = row.delta
    if len(sig) == 2 and (all(d > 0 for d in sig.values()) or all(d < 0 for d in sig.values())):
        verdict = "better" if all(d > 0 for d in sig.values()) else "worse"
        head = (
            f"In this one-seed run {method} localizes {verdict} than {base} on both MaxBoxAccV2 and "
            "top-1 loc (p < 0.05)"
        )
    elif len(sig) == 2:
        head = (
            f"In this one-seed run {method} differs from {base} at p < 0.05 on MaxBoxAccV2 and top-1 loc "
            "in opposite directions (" + ", ".join(f"{k} {'+' if d > 0 else '-'}" for k, d in sig.items()) + ")"
        )
    elif sig:
        (label, d), other = next(iter(sig.items())), "top-1 loc" if "MaxBoxAccV2" in sig else "MaxBoxAccV2"
        # of the two headline metrics: the report's tables may show other significant rows
        head = (
            f"In this one-seed run {method} differs from {base} at p < 0.05 on {label} "
            f"({'higher' if d > 0 else 'lower'}) but not on {other}"
        )
    else:
        head = f"In this one-seed run {method} does not differ from {base} at p < 0.05 on MaxBoxAccV2 or top-1 loc"
    return (
        f"{head}: " + "; ".join(parts) + " (95 % bootstrap intervals over test images, exact paired "
        "tests; one training seed, so the seed-to-seed spread is not in these numbers)."
    )


def write_report(root: Path, cfg: DemoConfig, names: Sequence[str], result_paths: Sequence[str], study=None) -> Path:
    """``report.md``: the finding first (one sentence with numbers and intervals), then the tables
    (across seeds when ``study`` is given, then the first seed's comparison) and the figures."""
    from eval.io import atomic_write_text
    from wsol.jobs.study import compare_module, effect_sentence, seeds_markdown

    comp = compare_module().compare_results(list(result_paths), names)
    table_md = (root / "comparison.md").read_text() if (root / "comparison.md").exists() else ""
    seeds = train_seeds(cfg)
    finding = effect_sentence(study) if study is not None else lead_sentence(comp)
    seed_text = f"training seed {cfg.seed}" if len(seeds) == 1 else f"training seeds {seeds[0]}-{seeds[-1]}"
    lines = [
        "# wsol-toolkit demo: baseline vs Cutout vs Mixup vs CutMix on the synthetic benchmark",
        "",
        f"**Finding.** {finding}",
        "",
        f"{cfg.classes} classes, {cfg.train_per_class} training and {cfg.test_per_class} test images per "
        f"class, {cfg.size}x{cfg.size} px, benchmark seed {cfg.seed}, {seed_text}; recipe `synthetic_cpu` "
        "(small_cnn). Metrics in percent with 95 % bootstrap intervals; p-values are exact McNemar tests "
        "against the baseline on the same images.",
        "",
    ]
    if study is not None:
        lines += [f"## Across {len(seeds)} seeds", "", seeds_markdown(study), ""]
    lines += [
        f"## Results{' (seed ' + str(cfg.seed) + ')' if study is not None else ''}",
        "",
        table_md,
        "",
        "## What the numbers show",
        "",
        summarize(comp, len(seeds)),
        "",
        "## Figures",
        "",
        "CAMs of the four models on the images where they disagree most (green: GT box, red: predicted box):",
        "",
        "![CAM grid](cam_grid.png)",
        "",
        "BoxAcc against the CAM threshold:",
        "",
        "![BoxAcc curves](boxacc_curves.png)",
        "",
        "Per-class accuracy:",
        "",
        "![per-class](per_class.png)",
        "",
    ]
    return atomic_write_text(root / "report.md", "\n".join(lines))
