"""The verdict rule of `lvmcls.decisions` on simulated experiments whose truth is known, at the book's own designs
(n = 5, the `ci` pilots, and n = 40, the size of a `long` design; 1, 5 and 12 comparisons): its error under the
null is the stated α per family (Bonferroni and Holm), its power at the stated minimum detectable effect is 0.8
(by simulation, not by the formula it uses), the normal shortcut it replaced is shown to fall short, "smaller than
the paper's effect" is rarely said when the paper's effect is true, and the parity test controls its error."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from lvmcls.decisions import (
    SMALLER, claim, headline, holm_levels, intersection_union, minimum_detectable_effect, p_value, paired_decision,
    parity_decision, power, seeds_for_power,
)

TRIALS = 4000
SIGMA = 0.01  # the SD of the paired differences in the simulations


def _verdicts(effect: float, n: int, *, comparisons: int = 1, paper_effect: float | None = None, seed: int = 0,
              trials: int = TRIALS) -> dict:
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    for _ in range(trials):
        base = rng.normal(0.9, 0.05, n)  # a seed effect shared by both arms (pairing removes it)
        cand = base + effect + rng.normal(0, SIGMA, n)
        v = paired_decision(cand, base, direction="higher", what="acc", comparisons=comparisons,
                            effect=paper_effect).verdict
        counts[v] = counts.get(v, 0) + 1
    return {k: v / trials for k, v in counts.items()}


def _within(rate: float, target: float, trials: int = TRIALS) -> bool:
    """|rate − target| within 4 binomial standard errors (a wrong quantile moves it by more)."""
    return abs(rate - target) < 4 * math.sqrt(target * (1 - target) / trials)


LONG_N = 55  # the largest long design in the registry (chapter 7's label draws)


@pytest.mark.parametrize("n, comparisons", [(5, 1), (5, 5), (LONG_N, 1), (LONG_N, 5)])
def test_null_error_rate_is_alpha_over_m(n, comparisons):
    rates = _verdicts(0.0, n, comparisons=comparisons, seed=n + comparisons)
    wrong = rates.get("supported", 0) + rates.get("contradicted", 0)
    assert _within(wrong, 0.05 / comparisons), rates


@pytest.mark.parametrize("n, comparisons", [(5, 1), (5, 5), (5, 12), (LONG_N, 1), (LONG_N, 5)])
def test_power_at_the_minimum_detectable_effect_is_0_8(n, comparisons):
    """At the MDE the design claims (computed from the true spread), the simulated rate of "supported" is 0.8."""
    mde = minimum_detectable_effect(SIGMA, n, 0.05 / comparisons)
    rates = _verdicts(mde, n, comparisons=comparisons, seed=7 * n + comparisons)
    assert abs(rates.get("supported", 0) - 0.8) < 0.05, (mde, rates)
    assert power(mde, SIGMA, n, 0.05 / comparisons) == pytest.approx(0.8, abs=1e-6)


def test_the_normal_shortcut_overstates_power_at_n5_and_12_comparisons():
    """The rule the book used before, (t_{1−a/2} + t_{0.8}) · SE, detects its own MDE in about 73 % of runs at
    n = 5 and 12 comparisons: outside 0.8 ± 0.05 (the noncentral t's MDE is 8 % larger)."""
    n, a = 5, 0.05 / 12
    shortcut = (stats.t.ppf(1 - a / 2, n - 1) + stats.t.ppf(0.8, n - 1)) * SIGMA / math.sqrt(n)
    rates = _verdicts(shortcut, n, comparisons=12, seed=3)
    assert rates.get("supported", 0) < 0.75, rates
    assert minimum_detectable_effect(SIGMA, n, a) / shortcut == pytest.approx(1.084, abs=0.005)


def test_holm_controls_the_family_wise_error_and_gains_power():
    """Five claims, all null: Holm's family-wise error ≤ α. With four real effects, Holm decides more of them than
    Bonferroni does (its levels are never smaller)."""
    rng = np.random.default_rng(11)
    n, m, alpha, trials = 5, 5, 0.05, 2000
    any_wrong, holm_found, bonf_found = 0, 0, 0
    effects = [0.0, 0.02, 0.02, 0.02, 0.02]
    for _ in range(trials):
        d_null = rng.normal(0, SIGMA, (m, n))
        p = [2 * stats.t.sf(abs(d.mean()) / (d.std(ddof=1) / math.sqrt(n)), n - 1) for d in d_null]
        levels = holm_levels(p, alpha)
        any_wrong += any(pi <= lv for pi, lv in zip(p, levels))
        d_alt = rng.normal(0, SIGMA, (m, n)) + np.asarray(effects)[:, None]
        p = [2 * stats.t.sf(abs(d.mean()) / (d.std(ddof=1) / math.sqrt(n)), n - 1) for d in d_alt]
        levels = holm_levels(p, alpha)
        holm_found += sum(pi <= lv for pi, lv, e in zip(p, levels, effects) if e)
        bonf_found += sum(pi <= alpha / m for pi, e in zip(p, effects) if e)
    assert any_wrong / trials < alpha + 0.012
    assert holm_found > bonf_found * 1.02


def test_holm_levels_by_hand():
    # sorted 0.001 (α/4: rejected), 0.02 > α/3: stop; the rest keep α/3
    assert holm_levels([0.001, 0.04, 0.02, 0.5], 0.05) == pytest.approx([0.0125, 0.05 / 3, 0.05 / 3, 0.05 / 3])
    assert holm_levels([0.001, 0.002], 0.05) == pytest.approx([0.025, 0.05])


def test_smaller_than_the_papers_effect():
    """No true effect, a powered design and a paper's effect 3 × its MDE: mostly "smaller than the paper's
    effect". The paper's effect true (at the MDE, where the interval often contains 0): the paper's effect is
    wrongly excluded ("smaller", or "supported" below the paper's effect) at the rate α/2 of one tail."""
    n = LONG_N
    paper = 3 * minimum_detectable_effect(SIGMA, n, 0.05)
    none = _verdicts(0.0, n, paper_effect=paper, seed=21, trials=1000)
    assert none.get(SMALLER, 0) > 0.85, none
    rng = np.random.default_rng(22)
    paper = minimum_detectable_effect(SIGMA, 5, 0.05)
    excluded = 0
    for _ in range(TRIALS):
        base = rng.normal(0.9, 0.05, 5)
        d = paired_decision(base + paper + rng.normal(0, SIGMA, 5), base, direction="higher", what="a", effect=paper)
        excluded += d.verdict == SMALLER or d.below_effect
    assert _within(excluded / TRIALS, 0.025), excluded / TRIALS


def test_verdict_words_and_directions():
    ece_vc, ece_ce = [0.010, 0.012, 0.011, 0.013, 0.009], [0.050, 0.049, 0.052, 0.051, 0.048]
    assert paired_decision(ece_vc, ece_ce, direction="lower", what="ECE").verdict == "supported"
    assert paired_decision(ece_ce, ece_vc, direction="lower", what="ECE").verdict == "contradicted"
    d = paired_decision(ece_vc, ece_ce, direction="lower", what="ECE", names=("VC", "CE"), effect=-0.1)
    assert d.verdict == "supported" and d.below_effect  # the whole interval is above −0.1: a gain, but smaller
    assert "VC − CE" in d.sentence() and "5 paired seeds" in d.sentence() and "below the paper's" in d.sentence()
    with pytest.raises(ValueError, match="side"):
        paired_decision(ece_vc, ece_ce, direction="lower", what="ECE", effect=0.1)
    row = claim("x/y", paper="vc", statement="s", source="t", paper_value="v", section="sec", decision=d)
    assert headline(row) == "supported (below the paper's effect)"  # the flag the row's `ours` text leaves out
    assert headline({"verdict": "supported", "decisions": [d]}) == "supported (below the paper's effect)"
    near = paired_decision(ece_vc, ece_ce, direction="lower", what="ECE", effect=-0.04)
    assert headline({"verdict": near.verdict, "decisions": [near]}) == "supported"


def test_seeds_for_power_matches_simulation():
    """The seeds asked for at an SD give power ≥ 0.8 in simulation, and one seed fewer gives less."""
    effect, alpha = 0.006, 0.01
    n = seeds_for_power(effect, SIGMA, alpha=alpha)
    assert n is not None and power(effect, SIGMA, n, alpha) >= 0.8 > power(effect, SIGMA, n - 1, alpha)
    rates = _verdicts(effect, n, comparisons=5, seed=5, trials=2000)
    assert rates.get("supported", 0) > 0.8 - 0.035, (n, rates)
    assert seeds_for_power(effect, 100 * SIGMA, alpha=alpha, cap=50) is None


def test_parity_controls_error_at_the_margin():
    rng = np.random.default_rng(1)
    n, margin, supported = 5, 0.02, 0
    for _ in range(TRIALS):  # the truth sits on the margin: "supported" must be rare (≤ α)
        base = rng.normal(0.8, 0.05, n)
        supported += parity_decision(base + margin + rng.normal(0, 0.01, n), base, margin=margin,
                                     what="AUROC").verdict == "supported"
    assert supported / TRIALS < 0.06
    same = parity_decision([0.80, 0.81, 0.79, 0.80, 0.80], [0.801, 0.809, 0.791, 0.80, 0.799], margin=0.02,
                           what="AUROC")
    far = parity_decision([0.90, 0.91, 0.89, 0.90, 0.90], [0.801, 0.809, 0.791, 0.80, 0.799], margin=0.02,
                          what="AUROC")
    assert same.verdict == "supported" and far.verdict == "contradicted"
    assert same.smallest_margin == pytest.approx(max(abs(v) for v in same.interval))


def test_parity_power_by_simulation():
    """At the margin `minimum_detectable_effect(kind="parity")` names, a true difference of 0 gives parity in
    at least 80 % of runs (the power formula is a lower bound)."""
    n = 10
    margin = minimum_detectable_effect(SIGMA, n, 0.05, "parity")
    rng = np.random.default_rng(4)
    hits = sum(parity_decision(rng.normal(0, SIGMA, n), np.zeros(n), margin=margin, what="x").verdict == "supported"
               for _ in range(2000)) / 2000
    assert 0.78 < hits < 0.9, (margin, hits)


def test_p_value_orders_like_the_interval():
    a, b = [0.91, 0.92, 0.93, 0.92], [0.90, 0.90, 0.91, 0.90]
    c = {"kind": "difference"}
    p = p_value(a, b, c)
    d = paired_decision(a, b, direction="higher", what="x", level=p * 1.01)
    assert d.verdict == "supported"
    assert paired_decision(a, b, direction="higher", what="x", level=p * 0.99).verdict != "supported"


def test_intersection_union():
    assert intersection_union(["supported", "supported"]) == "supported"
    assert intersection_union(["supported", "not resolved"]) == "not resolved"
    assert intersection_union([SMALLER, SMALLER]) == SMALLER


@pytest.mark.parametrize("a, b, message", [([0.9], [0.8], "at least 2 seeds"), ([0.9, 0.8], [0.8], "one number"),
                                           ([0.9, float("nan")], [0.8, 0.8], "NaN")])
def test_bad_input_says_what_to_do(a, b, message):
    with pytest.raises(ValueError, match=message):
        paired_decision(a, b, direction="higher", what="acc")


def test_claim_rows_carry_the_decision():
    d = paired_decision([0.91, 0.92, 0.93], [0.90, 0.90, 0.91], direction="higher", what="accuracy")
    row = claim("m2/acc", paper="m2", statement="s", source="Table 1", paper_value="88 %", section="ch7-m2", decision=d)
    assert row["verdict"] == d.verdict and row["decision"]["n"] == 3
    with pytest.raises(ValueError, match="either a decision or a verdict"):
        claim("x", paper="m2", statement="s", source="t", paper_value="1", section="s")
    with pytest.raises(ValueError, match="paper must be one of"):
        claim("x", paper="nope", statement="s", source="t", paper_value="1", section="s", verdict="supported", ours="1")


def test_holm_through_the_registry_controls_the_family_wise_error(tmp_path):
    """`lvmcls.registry.decide` (the book's one code path) on five registered null claims of one family, n = 5:
    the chance that any is supported or contradicted is at most α = 0.05."""
    from lvmcls import registry

    entry = """
[[claims]]
key = "sim/{i}"
paper = "vc"
chapter = "98_sim"
section = "s"
statement = "s"
source = "s"
paper_values = "s"
kind = "difference"
family = "primary"
metric = "m{i}"
what = "w"
direction = "higher"
candidate = "a"
baseline = "b"
split = "test"
effect = 0.01
effect_source = "s"
"""
    folder = tmp_path / "registry"
    folder.mkdir()
    (folder / "sim.toml").write_text('[families.primary]\nalpha = 0.05\ncorrection = "holm"\n'
                                     + "".join(entry.format(i=i) for i in range(5)))
    rng = np.random.default_rng(12)
    trials, wrong = 2000, 0
    for _ in range(trials):
        per_seed = {"a": {f"m{i}": list(rng.normal(0, SIGMA, 5)) for i in range(5)},
                    "b": {f"m{i}": [0.0] * 5 for i in range(5)}}
        out = registry.decide("98_sim", per_seed, folder=folder)
        wrong += any(v["verdict"] in ("supported", "contradicted") for v in out.values())
    registry._load_all.cache_clear()
    assert wrong / trials < 0.05 + 4 * math.sqrt(0.05 * 0.95 / trials), wrong / trials
    assert wrong / trials > 0.02  # Holm is not far more conservative than α (Bonferroni would sit near 0.049 too)
