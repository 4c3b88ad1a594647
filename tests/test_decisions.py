"""The verdict rule of `lvmcls.decisions` on simulated experiments whose truth is known: its false-positive rate
under the null is the stated α, its power at a given effect matches the noncentral t, Bonferroni divides α, and
the parity test controls its error at the margin."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from lvmcls.decisions import claim, paired_decision, parity_decision

TRIALS = 4000


def _rates(effect: float, n: int, direction: str = "higher", comparisons: int = 1, seed: int = 0):
    rng = np.random.default_rng(seed)
    counts = {"supported": 0, "contradicted": 0, "not resolved": 0}
    for _ in range(TRIALS):
        base = rng.normal(0.9, 0.05, n)  # a seed effect shared by both arms (pairing removes it)
        cand = base + effect + rng.normal(0, 0.01, n)
        counts[paired_decision(cand, base, direction=direction, what="acc", comparisons=comparisons).verdict] += 1
    return {k: v / TRIALS for k, v in counts.items()}


@pytest.mark.parametrize("n", [3, 5, 10])
def test_null_false_positive_rate_is_alpha(n):
    rates = _rates(0.0, n)
    # two-sided α = 0.05: 2.5 % "supported" and 2.5 % "contradicted"; binomial SE at 4000 trials is 0.0025
    assert abs(rates["supported"] - 0.025) < 0.01 and abs(rates["contradicted"] - 0.025) < 0.01, rates


def test_bonferroni_divides_alpha():
    rates = _rates(0.0, 5, comparisons=5)
    assert rates["supported"] + rates["contradicted"] < 0.02, rates  # α/m = 0.01 in all


def test_power_matches_the_noncentral_t():
    n, sigma, effect = 5, 0.01, 0.012
    t = stats.t.ppf(0.975, n - 1)
    expected = stats.nct.sf(t, n - 1, effect / (sigma / np.sqrt(n)))
    rates = _rates(effect, n)
    assert abs(rates["supported"] - expected) < 0.03, (rates, expected)
    assert rates["contradicted"] < 0.005


def test_direction_lower_and_contradiction():
    ece_vc, ece_ce = [0.010, 0.012, 0.011, 0.013, 0.009], [0.050, 0.049, 0.052, 0.051, 0.048]
    assert paired_decision(ece_vc, ece_ce, direction="lower", what="ECE").verdict == "supported"
    assert paired_decision(ece_ce, ece_vc, direction="lower", what="ECE").verdict == "contradicted"
    d = paired_decision(ece_vc, ece_ce, direction="lower", what="ECE", names=("VC", "CE"))
    assert d.interval[0] < d.mean_difference < d.interval[1] < 0
    assert "VC − CE" in d.sentence() and "5 paired seeds" in d.sentence()


def test_minimum_detectable_effect_is_detected_about_80_percent():
    """At the design's MDE (computed with the true spread) the power is about 0.8, by the noncentral t."""
    n, sigma = 5, 0.01
    t_a, t_b = stats.t.ppf(0.975, n - 1), stats.t.ppf(0.8, n - 1)
    mde = (t_a + t_b) * sigma / np.sqrt(n)
    power = stats.nct.sf(t_a, n - 1, mde / (sigma / np.sqrt(n)))
    assert 0.75 < power < 0.85
    d = paired_decision([0.91, 0.92, 0.90, 0.93, 0.91], [0.90, 0.90, 0.90, 0.90, 0.90], direction="higher", what="a")
    assert d.minimum_detectable_effect == pytest.approx((t_a + t_b) * d.standard_error)


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
