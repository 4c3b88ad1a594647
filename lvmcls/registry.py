"""The design of every experiment, fixed before its data: one registry file per paper (``lvmcls/registry/*.toml``).

A claim's entry says what is asked and how it will be decided, before any run of the design::

    [[claims]]
    key = "vc/h1-calibration"          # unique across the book
    paper = "vc"                        # a key of `lvmcls.decisions.PAPERS` (the ledger's section)
    chapter = "03_vc_experiments"       # the chapter that runs it
    section = "ch3-decisions"           # the MyST label of the section that decides it
    statement = "VC is better calibrated (lower ECE) than softmax CE"
    source = "Table 1, CIFAR-10 ResNet-50 rows CE and VC"
    paper_values = "CE 3.8 ± 0.3, VC 3.2 ± 0.2 (ECE %)"
    kind = "difference"                 # difference | parity | check (not a paired comparison: a rule in words)
    family = "primary"                  # primary | secondary | check (a key of [families])
    metric = "ece"                      # the per-seed value's key in the chapter's records
    what = "test ECE"                   # the metric in words
    direction = "lower"                 # the side the paper claims: higher | lower (difference only)
    candidate = "vc"                    # arm names in the chapter's per-seed records
    baseline = "ce"                     # or a list: an intersection-union test, supported only against all
    split = "test"
    effect = -0.006                     # the effect of interest, signed, in the metric's units
    effect_source = "Table 1, CIFAR-10 ResNet-50: 3.8 → 3.2 % (the paper's smallest CIFAR-10 gain)"
    margin = 0.02                       # parity only: the band ±δ
    unit = "paired seeds"               # what n counts
    rule = "..."                        # check only: the rule in words

    [claims.long]                       # the powered design run by `make long`
    regime = "Fashion-MNIST, the ci networks"
    seeds = 40                          # written by `python -m lvmcls.registry power` from the pilot (below)
    pilot = {n = 5, sd = 0.0069, sd_upper80 = 0.0098, commit = "…"}
    design = "engaged"                  # optional: a second long design of the chapter (default "main"), run with
                                        # the chapter's parameter long_design; decided on its own (lvmcls.long)
    pilot_from = {design = "main", candidate = "vc"}   # optional: size it on that arm's spread in that design

``[families.<name>]`` holds ``alpha`` and ``correction`` (``holm`` over the family's claims, or ``none``). A claim
whose baseline is a list is decided as an intersection-union test: supported only when it is supported against every
baseline, each at the family's level, and needs no further correction.

Every results record that decides a claim carries `entry_hash` of its entry; `lvmcls.long` refuses to decide a claim
whose entry changed after its first ``long`` record ("design changed after the data").
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import tomllib
from functools import lru_cache
from pathlib import Path

from scipy import stats

from . import decisions
from .decisions import PAPERS, seeds_for_power

FOLDER = Path(__file__).with_name("registry")
KINDS = ("difference", "parity", "check")
CORRECTIONS = ("holm", "none")
REQUIRED = ("key", "paper", "chapter", "section", "statement", "source", "paper_values", "kind", "family")
PAIRED_REQUIRED = ("metric", "what", "candidate", "baseline", "split", "effect", "effect_source")
DERIVED = ("pilot",)  # written after the pilot: part of the entry (it fixes the seeds), shown in the hash
# the long design's pilot: the ci run's paired SD, bounded above at this one-sided confidence
PILOT_CONFIDENCE = 0.8


class RegistryError(ValueError):
    """A registry file that does not describe a design; says which file and claim, and what to write."""


def _check_claim(claim: dict, families: dict, where: str) -> None:
    missing = [k for k in REQUIRED if k not in claim]
    if missing:
        raise RegistryError(f"{where}: claim {claim.get('key', '?')!r} lacks {missing}; see lvmcls.registry's docstring")
    if claim["paper"] not in PAPERS:
        raise RegistryError(f"{where}: claim {claim['key']!r}: paper must be one of {sorted(PAPERS)}")
    if claim["kind"] not in KINDS:
        raise RegistryError(f"{where}: claim {claim['key']!r}: kind must be one of {KINDS}, got {claim['kind']!r}")
    if claim["family"] not in families:
        raise RegistryError(f"{where}: claim {claim['key']!r}: family {claim['family']!r} is not among "
                            f"[families.*] ({sorted(families)})")
    design = (claim.get("long") or {}).get("design", "main")
    if not (isinstance(design, str) and design.isidentifier()):
        raise RegistryError(f"{where}: claim {claim['key']!r}: [claims.long] design must be a plain name "
                            f"(letters, digits, _), got {design!r}")
    if claim["kind"] == "check":
        if "rule" not in claim:
            raise RegistryError(f"{where}: check claim {claim['key']!r} needs a `rule` (the rule in words)")
        return
    missing = [k for k in PAIRED_REQUIRED if k not in claim]
    if missing:
        raise RegistryError(f"{where}: claim {claim['key']!r} ({claim['kind']}) lacks {missing}")
    if claim["kind"] == "difference":
        if claim.get("direction") not in ("higher", "lower"):
            raise RegistryError(f"{where}: claim {claim['key']!r}: direction must be 'higher' or 'lower'")
        if not (isinstance(claim["effect"], (int, float)) and claim["effect"] != 0):
            raise RegistryError(f"{where}: claim {claim['key']!r}: effect must be a non-zero number")
        if (claim["effect"] > 0) != (claim["direction"] == "higher"):
            raise RegistryError(f"{where}: claim {claim['key']!r}: effect {claim['effect']} points against its "
                                f"direction {claim['direction']!r}; give the paper's effect with its sign")
    if claim["kind"] == "parity" and not (isinstance(claim.get("margin"), (int, float)) and claim["margin"] > 0):
        raise RegistryError(f"{where}: parity claim {claim['key']!r} needs a margin > 0")


def load_file(path: str | Path) -> dict:
    """One registry file, checked: ``{"paper": {...}, "families": {...}, "claims": [...]}``."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise RegistryError(f"{path} is not valid TOML: {err}") from err
    families = data.get("families", {})
    for name, family in families.items():
        if not (0 < family.get("alpha", 0) < 0.5) or family.get("correction") not in CORRECTIONS:
            raise RegistryError(f"{path}: [families.{name}] needs alpha in (0, 0.5) and correction in {CORRECTIONS}")
    claims = data.get("claims", [])
    if not claims:
        raise RegistryError(f"{path} has no [[claims]]")
    for claim in claims:
        _check_claim(claim, families, str(path))
    by_key = {c["key"]: c for c in claims}
    for name, family in families.items():
        gate = family.get("gate")
        if gate is None:
            continue
        if gate not in by_key or by_key[gate]["family"] == name or by_key[gate]["kind"] == "check":
            raise RegistryError(f"{path}: [families.{name}] gate {gate!r} must be the key of a paired claim of "
                                "another family in this file")
        # a fixed sequence keeps the family-wise error at α only when the gate is one test at α: alone in its
        # family, in the chapter and long design of every claim it gates
        g = by_key[gate]
        if sum(c["family"] == g["family"] for c in claims) != 1:
            raise RegistryError(f"{path}: the gate {gate!r} must be the only claim of its family {g['family']!r}")
        where = (g["chapter"], (g.get("long") or {}).get("design", "main"))
        for c in claims:
            if c["family"] == name and (c["chapter"], (c.get("long") or {}).get("design", "main")) != where:
                raise RegistryError(f"{path}: claim {c['key']!r} is gated by {gate!r} of another chapter or long "
                                    "design; a gate must share the chapter and design of the claims it gates")
    return data


@lru_cache(maxsize=4)
def _load_all(folder: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    seen: dict[str, str] = {}
    for path in sorted(Path(folder).glob("*.toml")):
        data = load_file(path)
        for claim in data["claims"]:
            if claim["key"] in seen:
                raise RegistryError(f"claim {claim['key']!r} appears in {seen[claim['key']]} and {path.name}")
            seen[claim["key"]] = path.name
            out[claim["key"]] = {**claim, "_file": path.name, "_families": data["families"]}
    return out


def claims(folder: str | Path | None = None) -> dict[str, dict]:
    """Every claim of the book by key (in file order), each with ``_file`` and its file's ``_families``."""
    return _load_all(str(folder or FOLDER))


def claims_of(chapter: str, folder: str | Path | None = None) -> list[dict]:
    """The claims a chapter (by stem) decides."""
    return [c for c in claims(folder).values() if c["chapter"] == chapter]


def entry_hash(claim: dict) -> str:
    """sha256 (first 12 hex digits) of the claim's entry as written (its canonical JSON, the family included)."""
    plain = {k: v for k, v in claim.items() if not k.startswith("_")}
    plain["_family"] = claim["_families"][claim["family"]] if "_families" in claim else None
    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()[:12]


def hashes(chapter: str, folder=None) -> dict[str, str]:
    """``{claim key: entry_hash}`` of a chapter's claims: every results record that decides them carries it."""
    return {c["key"]: entry_hash(c) for c in claims_of(chapter, folder)}


def baselines(claim: dict) -> list[str]:
    b = claim["baseline"]
    return list(b) if isinstance(b, (list, tuple)) else [b]


# ---------------------------------------------------------------------------------------------------------------
# Deciding a chapter's claims from its per-seed values: the one code path of `ci` (in the chapter) and `long` (merge)


def decide(chapter: str, per_seed: dict[str, dict[str, list]], *, folder=None, keys=None,
           first: dict[str, int] | None = None, gates: bool = True) -> dict[str, dict]:
    """Decide every paired claim of ``chapter`` whose arms ``per_seed`` holds.

    ``per_seed[arm][metric]`` is the list of per-seed values, in the same seed order for every arm. ``first``: per
    claim key, decide on the first n seeds only (`lvmcls.long` decides each claim on the seeds its design planned,
    never on a later look). Returns, per claim key, ``{"verdict", "decisions": [Decision, ...] (one per baseline),
    "claim", "hash", "level", "family_size"}``.

    Families: Holm over the family *as registered* (every paired claim of the chapter in that family): a member
    whose arms this run lacks enters with p = 1, so it is never rejected and the others' levels are those the design
    fixed in advance. A claim with several baselines is an intersection-union test at its Holm level. Claims of
    kind "check", or whose arms are missing, are left out (`claim_rows` says they did not run).
    """
    registered = [c for c in claims_of(chapter, folder) if c["kind"] != "check"]
    present = {c["key"] for c in registered if (keys is None or c["key"] in keys)
               and c["candidate"] in per_seed and c["metric"] in per_seed[c["candidate"]]
               and all(b in per_seed and c["metric"] in per_seed[b] for b in baselines(c))}
    first = first or {}

    def values(c, arm):
        v = per_seed[arm][c["metric"]]
        return v[:first[c["key"]]] if first.get(c["key"]) else v

    out: dict[str, dict] = {}
    for family in dict.fromkeys(c["family"] for c in registered):
        members = [c for c in registered if c["family"] == family]
        spec = members[0]["_families"][family]
        # Holm: order the claims by their p-values, the i-th smallest tested at α / (m − i); the level of each
        # claim is fixed by that order, and the step-down stops at the first claim that is not decided
        pvalues = [max(decisions.p_value(values(c, c["candidate"]), values(c, b), c) for b in baselines(c))
                   if c["key"] in present else 1.0 for c in members]
        levels = decisions.holm_levels(pvalues, spec["alpha"]) if spec["correction"] == "holm" \
            else [spec["alpha"]] * len(members)
        for c, level in zip(members, levels):
            if c["key"] not in present:
                continue
            made = [decisions.decide_claim(values(c, c["candidate"]), values(c, b), c, level=level, baseline_name=b)
                    for b in baselines(c)]
            out[c["key"]] = {"verdict": decisions.intersection_union([d.verdict for d in made]),
                             "decisions": made, "claim": c, "hash": entry_hash(c), "level": level,
                             "family_size": len(members)}
    return apply_gates(out) if gates else out


def apply_gates(out: dict[str, dict]) -> dict[str, dict]:
    """A fixed sequence: a gated family's claims (``[families.x] gate = key``) are tested only when the gate is
    supported (its own decisions, so the call is idempotent); otherwise they read "not tested", their estimates
    kept. The family-wise error stays at α over the gate and its family (the gate is one test at α)."""
    for key, made in out.items():
        gate = made["claim"]["_families"][made["claim"]["family"]].get("gate")
        if gate is None:
            continue
        made["verdict"] = decisions.intersection_union([d.verdict for d in made["decisions"]])
        made.pop("gated_by", None)
        gate_verdict = (decisions.intersection_union([d.verdict for d in out[gate]["decisions"]])
                        if gate in out else "not run")
        if gate_verdict != "supported":
            made["verdict"] = (f"not tested: the fixed sequence stops at {gate} ({gate_verdict}); the estimate is "
                               "shown, not decided")
            made["gated_by"] = gate
    return out


def claim_rows(chapter: str, decided: dict[str, dict], *, folder=None, skip=()) -> list[dict]:
    """The ledger rows (`lvmcls.decisions.claim`) of a chapter's paired claims, text from the registry: one
    decision's sentence, or one per baseline for an intersection-union claim. Each row also keeps the entry
    ``hash``, its Holm ``level`` and ``family``, and every decision as a dict. A paired claim that ``decided``
    lacks (its arms are not in this profile's design) gets a row that says so ("not run: …"), so the ledger
    never shows it as unrecorded; ``skip``: keys to leave out (the caller writes their rows)."""
    rows = []
    for c in claims_of(chapter, folder):
        if c["kind"] == "check" or c["key"] in skip:
            continue
        if c["key"] not in decided:
            arms = ", ".join([c["candidate"], *baselines(c)])
            row = decisions.claim(c["key"], paper=c["paper"], statement=c["statement"], source=c["source"],
                                  paper_value=c["paper_values"], section=c["section"],
                                  verdict="not run: its arms are not in this profile's design",
                                  ours=f"not decided here: it needs the arms {arms} on {c['metric']}")
            row.update(hash=entry_hash(c), family=c["family"])
            rows.append(row)
            continue
        made = decided[c["key"]]
        text = dict(paper=c["paper"], statement=c["statement"], source=c["source"], paper_value=c["paper_values"],
                    section=c["section"])
        if len(made["decisions"]) == 1 and made["verdict"] == made["decisions"][0].verdict:
            row = decisions.claim(c["key"], decision=made["decisions"][0], **text)
        elif len(made["decisions"]) == 1:  # a verdict the procedure overrode (a gated family not tested)
            row = decisions.claim(c["key"], verdict=made["verdict"],
                                  ours=made["decisions"][0].sentence(verdict=False), **text)
        else:
            row = decisions.claim(c["key"], verdict=made["verdict"], ours="; ".join(
                f"against {d.names[1]}: {d.sentence()}" for d in made["decisions"]), **text)
        row.update(hash=made["hash"], level=made["level"], family=c["family"], family_size=made["family_size"],
                   decisions=[d.to_dict() for d in made["decisions"]])
        rows.append(row)
    return rows


def check_row(key: str, *, verdict: str, ours: str, folder=None) -> dict:
    """The ledger row of a registry claim of kind "check" (a rule stated in words, decided by the chapter)."""
    c = claims(folder)[key]
    row = decisions.claim(key, paper=c["paper"], statement=c["statement"], source=c["source"],
                          paper_value=c["paper_values"], section=c["section"], verdict=verdict, ours=ours)
    row.update(hash=entry_hash(c), family=c["family"])
    return row


def _number(value, unit_scale: float = 1.0) -> str:
    return f"{value * unit_scale:+.4g}" if isinstance(value, (int, float)) else str(value)


def design_table(chapter: str, *, folder=None, scale: dict[str, float] | None = None,
                 full_seeds: int | None = None) -> str:
    """The chapter's registered design as a Markdown table, for its page: claim, family, comparison, metric, the
    effect of interest (and its source), and the seeds `long` needs from the pilot (with the pilot's SD).
    ``scale``: per metric, a factor for display (e.g. 100 for fractions shown in points). ``full_seeds``: the
    seeds of the chapter's ``full`` (GPU) design; a column then gives its power at the effect of interest with the ci
    pilot's SD bound standing in for the GPU regime's (which no pilot has measured), and the seeds that would
    reach 0.8."""
    scale = scale or {}
    head = ["claim", "family", "comparison", "metric", "effect of interest (source: the paper's or the book's)",
            "`long`: seeds for power 0.8 (pilot SD, upper 80 %)"]
    if full_seeds:
        head.append(f"`full` ({full_seeds} seeds): power at the effect of interest, with the pilot's SD")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in claims_of(chapter, folder):
        if c["kind"] == "check":
            lines.append(_cells(f"| `{c['key']}` | check | — | — | {c['paper_values']} | rule: {c['rule']} |"
                                + (" — |" if full_seeds else "")))
            continue
        k = scale.get(c["metric"], 1.0)
        fam = c["_families"][c["family"]]
        comparison = f"{c['candidate']} − {' and '.join(baselines(c))}"
        effect = f"±{c['margin'] * k:.4g} (parity margin)" if c["kind"] == "parity" else _number(c["effect"], k)
        long_ = c.get("long", {})
        pilot = long_.get("pilot")
        seeds = (f"{long_['seeds']} (SD {pilot['sd'] * k:.3g}, ≤ {pilot['sd_upper80'] * k:.3g}; pilot n = "
                 f"{pilot['n']})" if pilot else ("not planned yet" if long_ else "no long design"))
        row = (f"| `{c['key']}` | {c['family']} ({fam['correction']}, α = {fam['alpha']}) | {comparison} | "
               f"{c['what']} | {effect} ({c['effect_source']}) | {seeds} |")
        if full_seeds:
            if pilot:
                target = c["margin"] if c["kind"] == "parity" else abs(c["effect"])
                pw = decisions.power(target, pilot["sd_upper80"], full_seeds, pilot["alpha_per_test"], c["kind"])
                need = seeds_for_power(target, pilot["sd_upper80"], alpha=pilot["alpha_per_test"], kind=c["kind"])
                row += f" {pw:.2f}; {need or 'over 200'} seeds would reach 0.8 |"
            else:
                row += " no pilot |"
        lines.append(_cells(row))
    return "\n".join(lines)


def _cells(row: str) -> str:
    """A table row whose cell texts may hold "|" (p(y|x)): escaped, the separators kept."""
    inner = row[2:-2].split(" | ")
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in inner) + " |"


# ---------------------------------------------------------------------------------------------------------------
# Power from the pilot: the seeds `long` needs, written into the registry before `long` runs


def pilot_sd_upper(sd: float, n: int, confidence: float = PILOT_CONFIDENCE) -> float:
    """The upper one-sided ``confidence`` bound of a normal SD from n values: sd · √((n−1) / χ²_{1−c, n−1})."""
    if n < 2 or not math.isfinite(sd):
        raise ValueError(f"a pilot SD needs at least 2 paired values, got n = {n}")
    return sd * math.sqrt((n - 1) / stats.chi2.ppf(1 - confidence, n - 1))


def power_plan(claim: dict, differences, *, comparisons: int | None = None, cap: int = 200) -> dict:
    """The pilot's paired SD, its upper 80 % bound, and the seeds that give power ≥ 0.8 at the claim's effect of
    interest (parity: at the margin, assuming no true difference) at the family's first Holm level (α / m: the
    conservative end) — `lvmcls.decisions.seeds_for_power`."""
    d = [float(v) for v in differences]
    n = len(d)
    mean = sum(d) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / (n - 1))
    upper = pilot_sd_upper(sd, n) if sd > 0 else 0.0
    family = claim["_families"][claim["family"]]
    m = comparisons or sum(1 for c in claims().values() if c["chapter"] == claim["chapter"]
                           and c["family"] == claim["family"] and c["kind"] != "check")
    alpha = family["alpha"] / (m if family["correction"] == "holm" else 1)
    target = claim["margin"] if claim["kind"] == "parity" else abs(claim["effect"])
    # a pilot without spread (an integer metric at n = 3) cannot size the design: the minimum, said as such
    seeds = seeds_for_power(target, upper, alpha=alpha, kind=claim["kind"], cap=cap) if upper > 0 else 3
    return {"n": n, "sd": sd, "sd_upper80": upper, "alpha_per_test": alpha, "seeds": seeds}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["check"]:
        table = claims()
        print(f"{len(table)} claims in {len({c['_file'] for c in table.values()})} registry files: all valid")
        for key, c in table.items():
            print(f"  {key:24s} {c['kind']:10s} {c['family']:9s} {entry_hash(c)}")
        return 0
    print("usage: python -m lvmcls.registry check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
