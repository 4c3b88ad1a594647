"""Deciding a paper's claim from paired runs, and the claims every chapter records for the book's ledger.

A claim is decided by an experiment fixed before it runs: two arms that share everything but the ingredient (the
same initial weights and batches for seed s in both arms: *paired* seeds), one metric, n seeds, a stated α and the
number m of comparisons the chapter makes. With the paired differences d_s = candidate_s − baseline_s,

    d̄ = mean_s d_s,   SE = sd(d) / √n,   CI = d̄ ± t_{1−α/(2m), n−1} · SE      (Bonferroni over m comparisons)

the verdict is **supported** when the whole interval lies on the side the paper claims, **contradicted** when it
lies on the other side, and **not resolved** otherwise. The page then states the smallest effect the design could
have detected: with power 1 − β_II = 0.8 at the observed spread,

    MDE = (t_{1−α/(2m), n−1} + t_{0.8, n−1}) · SE.

A *parity* claim ("VC detects out-of-distribution inputs as well as CE") is decided by two one-sided tests within a
margin δ fixed in advance: **supported** when the (1 − 2α/m) interval lies inside (−δ, δ), **contradicted** when it
lies wholly outside it, otherwise **not resolved**.

`claim` wraps a decision with what the ledger (`lvmcls.ledger`) needs: the paper, the claim in one sentence, its
table or figure, the paper's number, and the chapter section that runs it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

VERDICTS = ("supported", "contradicted", "not resolved")
POWER = 0.8


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
    minimum_detectable_effect: float  # |difference| this design detects with power 0.8
    alpha: float
    comparisons: int
    margin: float | None = None  # parity margin δ
    candidate: tuple[float, ...] = ()
    baseline: tuple[float, ...] = ()
    unit: str = "paired seeds"  # what n counts, e.g. "paired label draws"

    def sentence(self, digits: int = 3, verdict: bool = True) -> str:
        """The verdict with its numbers, e.g. "supported: VC − CE = −0.012 [−0.018, −0.006] (ECE, 5 paired
        seeds, 95 % interval; smallest detectable effect 0.004)"."""
        a, b = self.names
        f = f"{{:+.{digits}g}}"
        lo, hi = (f.format(v) for v in self.interval)
        rule = f"parity margin ±{self.margin:.{digits}g}; " if self.margin is not None else ""
        return (f"{self.verdict + ': ' if verdict else ''}{a} − {b} = {f.format(self.mean_difference)} [{lo}, {hi}] ({self.what}; "
                f"{self.n} {self.unit}; {100 * self.confidence:.4g} % interval; {rule}"
                f"smallest detectable effect {self.minimum_detectable_effect:.{digits}g})")

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


def _interval(candidate, baseline, tail: float):
    """The paired arms, the mean difference, its SE, the t quantile at 1 − ``tail``, the interval and the MDE."""
    a, b = _paired(candidate, baseline)
    d, n = a - b, len(a)
    se = float(d.std(ddof=1) / math.sqrt(n))
    t = float(stats.t.ppf(1 - tail, n - 1))
    mean = float(d.mean())
    mde = (t + float(stats.t.ppf(POWER, n - 1))) * se
    return a, b, mean, se, t, (mean - t * se, mean + t * se), mde


def paired_decision(candidate, baseline, *, direction: str, what: str, names: tuple[str, str] = ("candidate",
                    "baseline"), alpha: float = 0.05, comparisons: int = 1, unit: str = "paired seeds") -> Decision:
    """Decide "candidate is better than baseline" from per-seed numbers of paired arms (see the module docstring).

    ``direction``: "higher" when the paper claims the candidate's number is higher (accuracy, MI, active units),
    "lower" when lower (ECE, NLL). ``comparisons``: the number of claims the chapter decides at once (Bonferroni).
    """
    if direction not in ("higher", "lower"):
        raise ValueError(f"direction must be 'higher' or 'lower' (the side the paper claims), got {direction!r}")
    _check_design(alpha, comparisons)
    a, b, mean, se, t, (lo, hi), mde = _interval(candidate, baseline, alpha / (2 * comparisons))
    claimed_positive = direction == "higher"
    if (lo > 0 and claimed_positive) or (hi < 0 and not claimed_positive):
        verdict = "supported"
    elif (hi < 0 and claimed_positive) or (lo > 0 and not claimed_positive):
        verdict = "contradicted"
    else:
        verdict = "not resolved"
    return Decision(verdict, what, tuple(names), direction, len(a), float(a.mean()), float(b.mean()), mean, se,
                    (lo, hi), 1 - alpha / comparisons, mde, alpha, comparisons, None, tuple(a.tolist()),
                    tuple(b.tolist()), unit)


def parity_decision(candidate, baseline, *, margin: float, what: str, names: tuple[str, str] = ("candidate",
                    "baseline"), alpha: float = 0.05, comparisons: int = 1) -> Decision:
    """Decide "candidate is as good as baseline, within ±``margin``" (two one-sided tests on paired seeds)."""
    if not (math.isfinite(margin) and margin > 0):
        raise ValueError(f"margin (the parity band δ, fixed before the run) must be > 0, got {margin}")
    # TOST: each one-sided test at α/m, i.e. a (1 − 2α/m) interval; its MDE is the smallest departure it sees
    _check_design(alpha, comparisons)
    a, b, mean, se, t, (lo, hi), mde = _interval(candidate, baseline, alpha / comparisons)
    if -margin < lo and hi < margin:
        verdict = "supported"
    elif lo >= margin or hi <= -margin:
        verdict = "contradicted"
    else:
        verdict = "not resolved"
    return Decision(verdict, what, tuple(names), "parity", len(a), float(a.mean()), float(b.mean()), mean, se, (lo, hi),
                    1 - 2 * alpha / comparisons, mde, alpha, comparisons, float(margin), tuple(a.tolist()),
                    tuple(b.tolist()))


PAPERS = {
    "essay": "Why softmax outputs are probabilities (essay, paper 001)",
    "vc": "Variational Classification (Dhuliawala, Sachan, Allen, TMLR 2023)",
    "vae-as": "VAE-AS: an auxiliary softmax over sample indices (paper 002)",
    "bvae": "Branched VAE classifiers (paper 003, read from a summary)",
    "m2": "Semi-supervised VAEs: M2 (Kingma et al. 2014)",
    "mier": "MIER: a mutual-information regulariser for M2 (paper 004)",
}


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
    if verdict not in VERDICTS and not verdict.startswith("not run"):
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    if not ours:
        raise ValueError("a verdict needs ours: the measured numbers in words")
    row = {"key": key, "paper": paper, "statement": statement, "source": source, "paper_value": paper_value,
           "section": section, "verdict": verdict, "ours": ours}
    if decision is not None:
        row["decision"] = decision.to_dict()
    return row
