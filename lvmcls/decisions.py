"""Deciding a paper's claim from paired runs, and the claims every chapter records for the book's ledger.

A claim is decided by an experiment fixed before it runs (its entry in `lvmcls.registry`): two arms that share
everything but the ingredient (the same initial weights and batches for seed s in both arms: *paired* seeds), one
metric, n seeds, a stated α and a family of comparisons. With the paired differences d_s = candidate_s − baseline_s,

    d̄ = mean_s d_s,   SE = sd(d) / √n,   CI = d̄ ± t_{1−a/2, n−1} · SE

at the per-test level a (α / m for Bonferroni over m comparisons, or the claim's Holm level, `holm_levels`). With E
the paper's effect of interest (signed: the side the paper claims), the verdict is

- **supported** when the interval lies wholly on the paper's side of 0 (flagged *below the paper's effect* when it
  also excludes E);
- **contradicted** when it lies wholly on the other side;
- **smaller than the paper's effect** when it contains 0 but excludes E: the effect, if any, is below the paper's;
- **not resolved** otherwise: the design could not tell.

Power comes from the noncentral t: a design with n paired seeds and spread σ detects a true difference Δ with

    power(Δ) = P(T > t_{1−a/2, n−1}) + P(T < −t_{1−a/2, n−1}),   T ~ t'_{n−1}(Δ √n / σ),

and its *minimum detectable effect* (MDE) is the Δ with power 0.8 (solved, `minimum_detectable_effect`). The
normal shortcut (t_{1−a/2} + t_{0.8}) · SE gives power 0.73 at n = 5 and 12 comparisons: too small a seed count
would look powered (`tests/test_decisions.py` checks both by simulation).

A *parity* claim ("VC detects out-of-distribution inputs as well as CE") is decided by two one-sided tests within
a margin δ fixed in advance: **supported** when the (1 − 2a) interval lies inside (−δ, δ), **contradicted** when
it lies wholly outside it, otherwise **not resolved**; the smallest margin the design could establish is
max(|lo|, |hi|).

`claim` wraps a decision with what the ledger (`lvmcls.ledger`) needs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
from scipy import optimize, stats

SMALLER = "smaller than the paper's effect"
VERDICTS = ("supported", "contradicted", SMALLER, "not resolved")
POWER = 0.8


def power(effect: float, sd: float, n: int, alpha: float, kind: str = "difference") -> float:
    """The probability that a paired design of ``n`` seeds with per-seed SD ``sd`` decides a true difference
    ``effect`` at per-test level ``alpha``, from the noncentral t. ``kind="difference"``: the two-sided test
    excludes 0 (either tail counted on its side). ``kind="parity"``: the probability that two one-sided tests at
    ``alpha`` establish parity within the margin ``effect`` when the true difference is 0 (its Bonferroni lower
    bound 1 − 2·P(one test fails), exact enough where it matters, near 0.8)."""
    if n < 2 or sd <= 0:
        raise ValueError(f"power needs n ≥ 2 seeds and sd > 0, got n = {n}, sd = {sd}")
    df, ncp = n - 1, abs(effect) * math.sqrt(n) / sd
    if kind == "parity":
        t = stats.t.ppf(1 - alpha, df)
        # P(T < t) as P(−T > −t): scipy's nct.cdf returns NaN for large ncp
        return max(0.0, 1 - 2 * float(stats.nct.sf(-t, df, -ncp)))
    t = stats.t.ppf(1 - alpha / 2, df)
    # P(T < −t) as P(−T > t), −T ~ t'(−ncp): scipy's nct.cdf at −t returns NaN for some large ncp
    return float(stats.nct.sf(t, df, ncp) + stats.nct.sf(t, df, -ncp))


def minimum_detectable_effect(sd: float, n: int, alpha: float, kind: str = "difference",
                              target: float = POWER) -> float:
    """The |difference| (parity: the margin) that a design of ``n`` paired seeds with SD ``sd`` decides with
    probability ``target`` at per-test level ``alpha`` (`power` solved for the effect)."""
    return sd * _unit_mde(n, alpha, kind, target)  # the MDE is proportional to the SD


@lru_cache(maxsize=1024)
def _unit_mde(n: int, alpha: float, kind: str, target: float) -> float:
    hi = 1 / math.sqrt(n)
    while power(hi, 1.0, n, alpha, kind) < target:
        hi *= 2
    return float(optimize.brentq(lambda e: power(e, 1.0, n, alpha, kind) - target, 0.0, hi, xtol=1e-12))


def seeds_for_power(effect: float, sd: float, *, alpha: float, kind: str = "difference", target: float = POWER,
                    cap: int = 200) -> int | None:
    """The fewest paired seeds (≥ 3) with power ≥ ``target`` at ``effect`` (parity: the margin) and SD ``sd``;
    None when even ``cap`` seeds fall short."""
    for n in range(3, cap + 1):
        if power(effect, sd, n, alpha, kind) >= target:
            return n
    return None


def holm_levels(pvalues, alpha: float) -> list[float]:
    """Holm's step-down levels: the claim with the i-th smallest p-value (i = 0, 1, …) is tested at α / (m − i)
    while every smaller p-value was rejected; from the first one that is not, every later claim keeps that level
    (and is not rejected). Controls the family-wise error at α for any dependence between the claims."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    levels = [0.0] * m
    stopped = None
    for rank, i in enumerate(order):
        level = alpha / (m - rank) if stopped is None else stopped
        levels[i] = level
        if stopped is None and pvalues[i] > level:
            stopped = level
    return levels


def intersection_union(verdicts) -> str:
    """A claim that needs every baseline to agree (an intersection-union test): the common verdict when all agree,
    else "not resolved". Each test runs at the family's level; no further correction is needed."""
    verdicts = list(verdicts)
    return verdicts[0] if verdicts and all(v == verdicts[0] for v in verdicts) else "not resolved"


@dataclass(frozen=True)
class Decision:
    """The outcome of `paired_decision` / `parity_decision`; plain values only (it goes into results JSON)."""

    verdict: str  # one of VERDICTS
    what: str  # the metric, in words
    names: tuple[str, str]  # (candidate, baseline)
    direction: str  # "higher" / "lower" (which sign the paper claims) or "parity"
    n: int  # paired seeds (or label draws)
    mean_candidate: float
    mean_baseline: float
    mean_difference: float  # candidate − baseline
    standard_error: float
    interval: tuple[float, float]  # the confidence interval of the mean difference
    confidence: float  # its level, e.g. 0.95 (0.99 with m = 5 comparisons at α = 0.05)
    minimum_detectable_effect: float  # |difference| this design detects with power 0.8 (noncentral t)
    alpha: float
    comparisons: int
    margin: float | None = None  # parity margin δ
    candidate: tuple[float, ...] = ()
    baseline: tuple[float, ...] = ()
    unit: str = "paired seeds"  # what n counts, e.g. "paired label draws"
    effect: float | None = None  # the paper's effect of interest (signed), when the claim states one
    level: float | None = None  # the per-test level a the interval was built at
    power_at_effect: float | None = None  # this design's power at the paper's effect (at the observed spread)
    below_effect: bool = False  # supported, and the interval also excludes the paper's effect
    smallest_margin: float | None = None  # parity: the smallest margin this interval establishes

    def sentence(self, digits: int = 3, verdict: bool = True) -> str:
        """The verdict with its numbers, e.g. "supported: VC − CE = −0.012 [−0.018, −0.006] (ECE, 5 paired
        seeds, 95 % interval; smallest detectable effect 0.004)"."""
        a, b = self.names
        f = f"{{:+.{digits}g}}"
        lo, hi = (f.format(v) for v in self.interval)
        rule = f"parity margin ±{self.margin:.{digits}g}; " if self.margin is not None else ""
        head = self.verdict + (" (below the paper's effect)" if self.below_effect else "")
        if self.margin is not None:
            tail = (f"smallest margin this interval establishes ±{self.smallest_margin:.{digits}g}; with power 0.8 "
                    f"at this spread the design establishes ±{self.minimum_detectable_effect:.{digits}g}")
        else:
            tail = f"smallest detectable effect {self.minimum_detectable_effect:.{digits}g}"
            if self.effect is not None:
                tail += f" against the effect of interest {f.format(self.effect)}"
        return (f"{head + ': ' if verdict else ''}{a} − {b} = {f.format(self.mean_difference)} [{lo}, {hi}] "
                f"({self.what}; {self.n} {self.unit}; {100 * self.confidence:.4g} % interval; {rule}{tail})")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["names"], d["interval"] = list(self.names), list(self.interval)
        d["candidate"], d["baseline"] = list(self.candidate), list(self.baseline)
        d["sentence"] = self.sentence()
        return d


def _paired(candidate, baseline) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray([float(v) for v in candidate])
    b = np.asarray([float(v) for v in baseline])
    if a.shape != b.shape:
        raise ValueError(f"paired arms need one number per seed in each, in the same seed order; got {len(a)} and "
                         f"{len(b)} numbers")
    if len(a) < 2:
        raise ValueError(f"a paired decision needs at least 2 seeds per arm (it estimates the spread of the "
                         f"differences), got {len(a)}; run more seeds")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError(f"paired decision got a NaN or inf among {a.tolist()} and {b.tolist()}: a run diverged; "
                         "fix or report it instead of deciding on it")
    return a, b


def _check_design(alpha: float, comparisons: int) -> None:
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must lie in (0, 0.5), got {alpha}")
    if not isinstance(comparisons, int) or comparisons < 1:
        raise ValueError(f"comparisons (how many claims the chapter decides, for the Bonferroni correction) must "
                         f"be a positive integer, got {comparisons!r}")


def _interval(candidate, baseline, level: float, kind: str):
    """The paired arms, the mean difference, its SE, the interval at per-test level ``level`` (two-sided; parity:
    the (1 − 2·level) interval of two one-sided tests) and the noncentral-t MDE."""
    a, b = _paired(candidate, baseline)
    d, n = a - b, len(a)
    sd = float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    t = float(stats.t.ppf(1 - (level if kind == "parity" else level / 2), n - 1))
    mean = float(d.mean())
    mde = minimum_detectable_effect(sd, n, level, kind)
    return a, b, mean, se, sd, (mean - t * se, mean + t * se), mde


def p_value(candidate, baseline, claim: dict) -> float:
    """The p-value a registry claim's test would report: two-sided paired t (difference), or the larger of the two
    one-sided p-values (parity, within the claim's margin). Used to order a Holm family."""
    a, b = _paired(candidate, baseline)
    d, n = a - b, len(a)
    se = float(d.std(ddof=1)) / math.sqrt(n)
    if se == 0:
        if claim["kind"] == "parity":
            return 0.0 if abs(d.mean()) < claim["margin"] else 1.0
        return 0.0 if d.mean() != 0 else 1.0
    if claim["kind"] == "parity":
        m = claim["margin"]
        return float(max(stats.t.sf((d.mean() + m) / se, n - 1), stats.t.cdf((d.mean() - m) / se, n - 1)))
    return float(2 * stats.t.sf(abs(d.mean()) / se, n - 1))


def paired_decision(candidate, baseline, *, direction: str, what: str, names: tuple[str, str] = ("candidate",
                    "baseline"), alpha: float = 0.05, comparisons: int = 1, unit: str = "paired seeds",
                    effect: float | None = None, level: float | None = None) -> Decision:
    """Decide "candidate is better than baseline" from per-seed numbers of paired arms (see the module docstring).

    ``direction``: "higher" when the paper claims the candidate's number is higher (accuracy, MI, active units),
    "lower" when lower (ECE, NLL). ``comparisons``: Bonferroni over that many (per-test level α / m), unless
    ``level`` gives the per-test level (a Holm level). ``effect``: the paper's effect of interest, signed; with
    it, a verdict can be "smaller than the paper's effect".
    """
    if direction not in ("higher", "lower"):
        raise ValueError(f"direction must be 'higher' or 'lower' (the side the paper claims), got {direction!r}")
    _check_design(alpha, comparisons)
    if effect is not None and (effect == 0 or (effect > 0) != (direction == "higher")):
        raise ValueError(f"effect {effect} must be non-zero and on the side {direction!r} the paper claims")
    level = alpha / comparisons if level is None else level
    a, b, mean, se, sd, (lo, hi), mde = _interval(candidate, baseline, level, "difference")
    sign = 1.0 if direction == "higher" else -1.0
    lo_s, hi_s = sorted((sign * lo, sign * hi))  # the interval on the paper's scale: positive = the paper's side
    below = effect is not None and hi_s < abs(effect)
    if lo_s > 0:
        verdict = "supported"
    elif hi_s < 0:
        verdict = "contradicted"
    elif below:
        verdict = SMALLER
    else:
        verdict = "not resolved"
    pw = power(effect, sd, len(a), level) if effect is not None and sd > 0 else None
    return Decision(verdict, what, tuple(names), direction, len(a), float(a.mean()), float(b.mean()), mean, se,
                    (lo, hi), 1 - level, mde, alpha, comparisons, None, tuple(a.tolist()),
                    tuple(b.tolist()), unit, effect, level, pw, bool(below and verdict == "supported"))


def parity_decision(candidate, baseline, *, margin: float, what: str, names: tuple[str, str] = ("candidate",
                    "baseline"), alpha: float = 0.05, comparisons: int = 1, unit: str = "paired seeds",
                    level: float | None = None) -> Decision:
    """Decide "candidate is as good as baseline, within ±``margin``" (two one-sided tests on paired seeds)."""
    if not (math.isfinite(margin) and margin > 0):
        raise ValueError(f"margin (the parity band δ, fixed before the run) must be > 0, got {margin}")
    _check_design(alpha, comparisons)
    level = alpha / comparisons if level is None else level
    a, b, mean, se, sd, (lo, hi), mde = _interval(candidate, baseline, level, "parity")
    if -margin < lo and hi < margin:
        verdict = "supported"
    elif lo >= margin or hi <= -margin:
        verdict = "contradicted"
    else:
        verdict = "not resolved"
    pw = power(margin, sd, len(a), level, "parity") if sd > 0 else None
    return Decision(verdict, what, tuple(names), "parity", len(a), float(a.mean()), float(b.mean()), mean, se,
                    (lo, hi), 1 - 2 * level, mde, alpha, comparisons, float(margin), tuple(a.tolist()),
                    tuple(b.tolist()), unit, None, level, pw, False, float(max(abs(lo), abs(hi))))


def decide_claim(candidate, baseline, claim: dict, *, level: float, baseline_name: str | None = None) -> Decision:
    """A registry claim (`lvmcls.registry`) decided on paired per-seed values at per-test ``level``."""
    names = (claim["candidate"], baseline_name or str(claim["baseline"]))
    common = dict(what=claim["what"], names=names, alpha=claim["_families"][claim["family"]]["alpha"]
                  if "_families" in claim else 0.05, unit=claim.get("unit", "paired seeds"), level=level)
    if claim["kind"] == "parity":
        return parity_decision(candidate, baseline, margin=claim["margin"], **common)
    return paired_decision(candidate, baseline, direction=claim["direction"], effect=claim["effect"], **common)


PAPERS = {
    "essay": "Why softmax outputs are probabilities (essay, paper 001)",
    "vc": "Variational Classification (Dhuliawala, Sachan, Allen, TMLR 2023)",
    "vae-as": "VAE-AS: an auxiliary softmax over sample indices (paper 002)",
    "bvae": "Branched VAE classifiers (paper 003, read from a summary)",
    "m2": "Semi-supervised VAEs: M2 (Kingma et al. 2014)",
    "mier": "MIER: a mutual-information regulariser for M2 (paper 004)",
}


def headline(entry: dict) -> str:
    """A claim's verdict as a page prints it: the verdict, and " (below the paper's effect)" when a decision is
    supported with an interval that also excludes the paper's effect (`Decision.below_effect`). ``entry``: a row of
    `claim` / `lvmcls.registry.claim_rows`, or a `lvmcls.registry.decide` entry (its decisions as `Decision`)."""
    found = entry.get("decisions") or ([entry["decision"]] if entry.get("decision") else [])
    below = any(d.get("below_effect") if isinstance(d, dict) else d.below_effect for d in found)
    return entry["verdict"] + (" (below the paper's effect)" if below else "")


def claim(key: str, *, paper: str, statement: str, source: str, paper_value: str, section: str,
          decision: Decision | None = None, verdict: str | None = None, ours: str | None = None) -> dict:
    """One row of the claims ledger, as a chapter records it in its results file (``claims=[...]``).

    ``key``: unique across the book, e.g. "vae-as/mi". ``paper``: a key of `PAPERS`. ``statement``: the claim in
    one sentence. ``source``: where the paper makes it ("Table 2, rows VAE and VAE-AS(1,1)"). ``paper_value``: the
    paper's number(s) as text. ``section``: the MyST label of the chapter section that decides it. Either a
    ``decision`` (its verdict and numbers are used) or an explicit ``verdict`` with ``ours`` (the measured numbers
    in words) for claims that are not a paired comparison (e.g. an identity checked numerically).
    """
    if paper not in PAPERS:
        raise ValueError(f"paper must be one of {sorted(PAPERS)}, got {paper!r}")
    if (decision is None) == (verdict is None):
        raise ValueError("give either a decision or a verdict (with ours), not both or neither")
    if decision is not None:
        verdict, ours = decision.verdict, decision.sentence(verdict=False)
    if verdict not in VERDICTS and not verdict.startswith(("not run", "not comparable", "interim", "not tested",
                                                           "exploratory")):
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    if not ours:
        raise ValueError("a verdict needs ours: the measured numbers in words")
    row = {"key": key, "paper": paper, "statement": statement, "source": source, "paper_value": paper_value,
           "section": section, "verdict": verdict, "ours": ours}
    if decision is not None:
        row["decision"] = decision.to_dict()
    return row
