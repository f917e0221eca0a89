"""Seed studies: the t-interval across seeds and the CutMix-effect verdict (wsol.jobs.study)."""

from __future__ import annotations

import math

import pytest

from wsol.jobs.study import SeedCell, SeedStudy, effect_sentence, effect_verdict, seeds_csv, seeds_markdown, t_interval


def test_t_interval_uses_n_minus_1_degrees_of_freedom():
    mean, lo, hi = t_interval([1.0, 2.0, 3.0])
    # sd = 1, t(0.975, 2) = 4.3027
    assert mean == 2.0 and math.isclose(hi - mean, 4.302652729911275 / math.sqrt(3), rel_tol=1e-9)
    assert math.isclose(mean - lo, hi - mean)
    assert t_interval([5.0]) == (5.0, None, None)
    with pytest.raises(ValueError):
        t_interval([])


def _study(cut_v2: list[float], cut_loc: list[float], base: float = 40.0) -> SeedStudy:
    study = SeedStudy(seeds=[0, 1, 2], names=["baseline", "CutMix"], metrics=["MaxBoxAccV2", "top1_loc"])
    for metric, cut in (("MaxBoxAccV2", cut_v2), ("top1_loc", cut_loc)):
        study.cells[("baseline", metric)] = SeedCell("baseline", metric, [base] * 3, [None] * 3, [None] * 3)
        study.cells[("CutMix", metric)] = SeedCell("CutMix", metric, [base + d for d in cut], cut, [0.01, 0.2, 0.5])
    return study


def test_effect_verdict_needs_both_intervals_on_one_side_of_zero():
    assert effect_verdict(_study([3, 4, 5], [2, 3, 4])) == "appears"
    assert effect_verdict(_study([-3, -4, -5], [-2, -3, -4])) == "reversed"
    assert effect_verdict(_study([3, 4, 5], [-1, 3, 4])) == "not established"  # top-1 loc interval has 0
    assert effect_verdict(_study([3, 4, 5], [-2, -3, -4])) == "not established"  # the metrics disagree
    one = _study([3, 4, 5], [2, 3, 4])
    one.seeds = [0]
    for key, c in list(one.cells.items()):
        one.cells[key] = SeedCell(c.model, c.metric, c.values[:1], c.deltas[:1], c.p_values[:1])
    assert effect_verdict(one) is None
    assert "cannot be decided" in effect_sentence(one)


def test_sentence_and_tables_carry_the_numbers():
    study = _study([3, 4, 5], [2, 3, 4])
    text = effect_sentence(study)
    assert text.startswith("Over 3 seeds, the CutMix effect appears")
    assert "MaxBoxAccV2 44.0 [" in text and "(Δ +4.0 [" in text
    md = seeds_markdown(study)
    assert "| MaxBoxAccV2 | baseline | 40.0 [40.0, 40.0] | 40.0 / 40.0 / 40.0 |" in md
    assert "0.010 / 0.200 / 0.500" in md and "t(0.975, 2)" in md
    rows = seeds_csv(study).splitlines()
    assert rows[0].startswith("metric,model,seed,value") and len(rows) == 1 + 2 * 2 * 4
    assert "not established" in effect_sentence(_study([3, 4, 5], [-1, 3, 4]))
    assert "was not trained" in effect_sentence(study, method="Mixup")
