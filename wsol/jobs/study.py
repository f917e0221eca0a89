"""Seed studies: the same methods trained with several seeds, summarized across seeds.

``wsol demo --seeds N`` trains every method with training seeds ``seed .. seed + N - 1`` on the
same benchmark (the data seed stays ``seed``), evaluates each run and calls :func:`seed_study`:

* per seed, :func:`eval.compare.compare_results` compares every
  method with the baseline of the **same seed** on the same test images (bootstrap intervals,
  exact paired McNemar / sign tests);
* across seeds, per metric and method: the mean of the per-seed values and a 95 % Student-t
  interval with ``N - 1`` degrees of freedom (``mean +- t_{0.975, N-1} * sd / sqrt(N)``), and the
  same for the per-seed difference to the baseline (method minus baseline, paired by seed);
* :func:`effect_sentence` states whether **the CutMix effect** appears. Definition used here:
  *the CutMix effect appears* when, for both MaxBoxAccV2 and top-1 loc, the 95 % t-interval across
  seeds of the paired difference (CutMix minus baseline of the same seed) lies entirely above 0;
  it is *reversed* when both intervals lie entirely below 0; otherwise it is *not established*
  by this study (an interval contains 0, or the two metrics disagree).

With one seed there is no across-seed interval (the table says so; the per-seed bootstrap
intervals and tests are in the per-seed comparison).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

EFFECT_METRICS = (("MaxBoxAccV2", "MaxBoxAccV2"), ("top1_loc", "top-1 loc"))
TABLE_METRICS = (
    "MaxBoxAccV2",
    "MaxBoxAcc@30",
    "MaxBoxAcc@50",
    "MaxBoxAcc@70",
    "top1_loc",
    "gt_known_loc",
    "top1_cls",
    "PxAP",
)
LABELS = {
    "MaxBoxAccV2": "MaxBoxAccV2",
    "MaxBoxAcc@30": "MaxBoxAcc@30",
    "MaxBoxAcc@50": "MaxBoxAcc@50",
    "MaxBoxAcc@70": "MaxBoxAcc@70",
    "top1_loc": "top-1 loc",
    "gt_known_loc": "GT-known loc",
    "top1_cls": "classification top-1",
    "PxAP": "PxAP",
}
INTERVAL = "95 % Student-t interval across seeds (N - 1 degrees of freedom)"


def compare_module():
    """The comparison library :mod:`eval.compare` (imported lazily)."""
    from eval import compare

    return compare


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float | None, float | None]:
    """``(mean, low, high)``: the Student-t interval of the mean with ``n - 1`` degrees of freedom;
    ``low`` and ``high`` are ``None`` with fewer than 2 values."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("t_interval: no values")
    n = len(vals)
    mean = sum(vals) / n
    if n < 2:
        return mean, None, None
    from scipy.stats import t

    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
    half = float(t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


@dataclass(frozen=True)
class SeedCell:
    """One method x metric across seeds: per-seed values, per-seed difference to the baseline and
    per-seed paired p-values (``None`` for the baseline itself or where unavailable)."""

    model: str
    metric: str
    values: list[float | None]
    deltas: list[float | None]
    p_values: list[float | None]

    def summary(self) -> tuple[float, float | None, float | None] | None:
        vals = [v for v in self.values if v is not None]
        return t_interval(vals) if vals else None

    def delta_summary(self) -> tuple[float, float | None, float | None] | None:
        vals = [v for v in self.deltas if v is not None]
        return t_interval(vals) if vals else None


@dataclass
class SeedStudy:
    """Every seed's comparison (first model = baseline) and the cells across seeds."""

    seeds: list[int]
    names: list[str]
    metrics: list[str]
    cells: dict[tuple[str, str], SeedCell] = field(default_factory=dict)

    @property
    def baseline(self) -> str:
        return self.names[0]

    def cell(self, model: str, metric: str) -> SeedCell:
        return self.cells[(model, metric)]


def seed_study(
    results: Mapping[int, Sequence[str | os.PathLike]], names: Sequence[str], metrics: Sequence[str] = TABLE_METRICS
) -> SeedStudy:
    """Build the study from ``results[seed]`` = result files in the order of ``names`` (first =
    baseline). Metrics absent from every comparison are dropped."""
    compare_results = compare_module().compare_results
    seeds = sorted(results)
    comps = {s: compare_results([str(p) for p in results[s]], list(names)) for s in seeds}
    present = [m for m in metrics if any(m in c.metrics for c in comps.values())]
    study = SeedStudy(seeds=seeds, names=list(names), metrics=present)
    for m in present:
        for k, n in enumerate(names):
            vals, deltas, ps = [], [], []
            for s in seeds:
                try:
                    row = comps[s].row(n, m)
                except KeyError:
                    vals.append(None), deltas.append(None), ps.append(None)
                    continue
                vals.append(row.value)
                deltas.append(row.delta if k > 0 else None)
                ps.append(row.p_value if k > 0 else None)
            study.cells[(n, m)] = SeedCell(n, m, vals, deltas, ps)
    return study


def _fmt_ci(summ: tuple[float, float | None, float | None] | None, signed: bool = False) -> str:
    if summ is None:
        return "—"
    mean, lo, hi = summ
    f = "+.1f" if signed else ".1f"
    text = format(mean, f)
    if lo is not None:
        text += f" [{format(lo, f)}, {format(hi, f)}]"
    return text


def _fmt_p(p: float | None) -> str:
    if p is None:
        return "—"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def seeds_markdown(study: SeedStudy) -> str:
    """Markdown: one row per metric x method with the mean [95 % t-interval] across seeds, the
    per-seed values, the mean difference to the baseline [its t-interval] and each seed's paired
    p-value against the baseline of that seed."""
    n = len(study.seeds)
    seeds = ", ".join(str(s) for s in study.seeds)
    lines = [
        f"| Metric | Model | mean [95 % CI] over {n} seed{'s' if n > 1 else ''} | per seed ({seeds}) | "
        f"Δ vs {study.baseline} [95 % CI] | paired p per seed |",
        "|---|---|---:|---|---:|---|",
    ]
    for m in study.metrics:
        for k, name in enumerate(study.names):
            c = study.cell(name, m)
            per_seed = " / ".join("—" if v is None else f"{v:.1f}" for v in c.values)
            delta = "" if k == 0 else _fmt_ci(c.delta_summary(), signed=True)
            ps = "" if k == 0 else " / ".join(_fmt_p(p) for p in c.p_values)
            lines.append(
                f"| {LABELS.get(m, m) if k == 0 else ''} | {name} | {_fmt_ci(c.summary())} | {per_seed} | "
                f"{delta} | {ps} |"
            )
    lines.append("")
    notes = [
        f"Values in percent. Mean over training seeds {seeds} (same benchmark, same test images); "
        + (
            f"[low, high] = {INTERVAL}, t quantile t(0.975, {n - 1}); not clipped to [0, 100], so with "
            "few seeds a bound can pass 0 or 100."
            if n > 1
            else "one seed: no interval across seeds (see the per-seed bootstrap intervals)."
        )
    ]
    notes.append(
        f"Δ = method minus {study.baseline} trained with the same seed, in points, averaged over seeds "
        "with the same t-interval. Paired p per seed = exact McNemar test on the per-image hits "
        "(MaxBoxAccV2: exact sign test on the per-image mean hit), as in the per-seed comparison; "
        "not adjusted for multiple comparisons. PxAP has no per-image test."
    )
    lines.extend(f"- {t}" for t in notes)
    return "\n".join(lines) + "\n"


def seeds_csv(study: SeedStudy) -> str:
    """Tidy CSV: ``metric,model,seed,value,delta,p_value`` per seed, plus ``seed = mean`` rows with
    ``ci_low``/``ci_high`` (value) and ``delta_low``/``delta_high``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["metric", "model", "seed", "value", "ci_low", "ci_high", "delta", "delta_low", "delta_high", "p_value"])

    def num(v):
        return "" if v is None else format(v, ".10g")

    for m in study.metrics:
        for name in study.names:
            c = study.cell(name, m)
            for s, v, d, p in zip(study.seeds, c.values, c.deltas, c.p_values):
                w.writerow([m, name, s, num(v), "", "", num(d), "", "", num(p)])
            vs, ds = c.summary(), c.delta_summary()
            w.writerow(
                [
                    m,
                    name,
                    "mean",
                    num(vs and vs[0]),
                    num(vs and vs[1]),
                    num(vs and vs[2]),
                    num(ds and ds[0]),
                    num(ds and ds[1]),
                    num(ds and ds[2]),
                    "",
                ]
            )
    return buf.getvalue()


def effect_verdict(study: SeedStudy, method: str = "CutMix") -> str | None:
    """``"appears"``, ``"reversed"`` or ``"not established"`` (definition in the module doc);
    ``None`` when ``method`` is absent, there are fewer than 2 seeds or a metric is missing."""
    if method not in study.names[1:] or len(study.seeds) < 2:
        return None
    above, below = [], []
    for metric, _ in EFFECT_METRICS:
        if (method, metric) not in study.cells:
            return None
        ds = study.cell(method, metric).delta_summary()
        if ds is None or ds[1] is None:
            return None
        above.append(ds[1] > 0)
        below.append(ds[2] < 0)
    if all(above):
        return "appears"
    if all(below):
        return "reversed"
    return "not established"


def _why_not(study: SeedStudy, method: str) -> str:
    """Which metric's interval of the difference contains 0 (or lies on the other side)."""
    contains, below, above = [], [], []
    for metric, label in EFFECT_METRICS:
        _, lo, hi = study.cell(method, metric).delta_summary()
        (above if lo > 0 else below if hi < 0 else contains).append(label)
    parts = []
    if contains:
        parts.append("the 95 % interval of the difference to the baseline contains 0 for " + " and ".join(contains))
    if above and below:
        parts.append(f"{' and '.join(above)} is above 0 but {' and '.join(below)} below 0")
    elif below:
        parts.append(f"it is below 0 for {' and '.join(below)}")
    elif above and contains:
        parts.append(f"it is above 0 only for {' and '.join(above)}")
    return "; ".join(parts)


def effect_sentence(study: SeedStudy, method: str = "CutMix") -> str:
    """One sentence: whether the CutMix effect appears, with the numbers and intervals."""
    base = study.baseline
    if method not in study.names[1:]:
        return f"{method} was not trained in this study, so its effect is not measured."
    parts = []
    for metric, label in EFFECT_METRICS:
        if (method, metric) not in study.cells:
            continue
        c, b = study.cell(method, metric), study.cell(base, metric)
        parts.append(
            f"{label} {_fmt_ci(c.summary())} vs {_fmt_ci(b.summary())} (Δ {_fmt_ci(c.delta_summary(), signed=True)})"
        )
    numbers = "; ".join(parts)
    n = len(study.seeds)
    verdict = effect_verdict(study, method)
    if verdict is None:
        return (
            f"With {n} seed{'s' if n > 1 else ''}, whether the {method} effect appears cannot be decided "
            f"from an interval across seeds: {method} vs {base}, {numbers}."
        )
    what = {
        "appears": f"the {method} effect appears: {method} beats {base} on both MaxBoxAccV2 and top-1 loc "
        "with 95 % intervals of the difference above 0",
        "reversed": f"the {method} effect is reversed: {method} is below {base} on both MaxBoxAccV2 and "
        "top-1 loc with 95 % intervals of the difference below 0",
        "not established": f"the {method} effect is not established: {_why_not(study, method)}",
    }[verdict]
    return f"Over {n} seeds, {what} ({method} vs {base}, mean [95 % t-interval]: {numbers})."


def write_seed_study(
    study: SeedStudy, markdown: str | os.PathLike | None = None, csv_path: str | os.PathLike | None = None
) -> list[Path]:
    """Write the Markdown table (with the effect sentence on top) and/or the CSV atomically."""
    from eval.io import atomic_write_text

    out = []
    if markdown is not None:
        out.append(atomic_write_text(markdown, effect_sentence(study) + "\n\n" + seeds_markdown(study)))
    if csv_path is not None:
        out.append(atomic_write_text(csv_path, seeds_csv(study)))
    return out
