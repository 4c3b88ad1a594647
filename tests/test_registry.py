"""The registry (`lvmcls.registry`): the book's designs are valid and complete, bad entries are refused with a
message that says what to write, entry hashes see every change, a chapter's claims are decided through Holm and
intersection-union tests as the decisions module decides them one by one, and the pilot's SD bound and seed counts
are what they claim to be."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from lvmcls import registry
from lvmcls.decisions import PAPERS, holm_levels, p_value, paired_decision, parity_decision, seeds_for_power

FAKE = '''
[paper]
key = "vc"
title = "a test paper"
chapters = ["99_fake"]

[families.primary]
alpha = 0.05
correction = "holm"

[families.check]
alpha = 0.05
correction = "none"

[[claims]]
key = "fake/up"
paper = "vc"
chapter = "99_fake"
section = "ch99"
statement = "A beats B"
source = "Table 9"
paper_values = "A 0.9, B 0.8"
kind = "difference"
family = "primary"
metric = "acc"
what = "accuracy"
direction = "higher"
candidate = "a"
baseline = ["b", "c"]
split = "test"
effect = 0.1
effect_source = "Table 9: 0.8 -> 0.9"
[claims.long]
regime = "tiny"
seeds = 12

[[claims]]
key = "fake/same"
paper = "vc"
chapter = "99_fake"
section = "ch99"
statement = "A is as good as B"
source = "Table 9"
paper_values = "0.5 and 0.5"
kind = "parity"
family = "primary"
metric = "auroc"
what = "AUROC"
candidate = "a"
baseline = "b"
split = "test"
effect = 0.0
effect_source = "parity"
margin = 0.02

[[claims]]
key = "fake/identity"
paper = "vc"
chapter = "99_fake"
section = "ch99"
statement = "an identity holds"
source = "Eq. 1"
paper_values = "exact"
kind = "check"
family = "check"
rule = "the two sides agree to 1e-6"
'''


@pytest.fixture
def fake(tmp_path) -> Path:
    folder = tmp_path / "registry"
    folder.mkdir()
    (folder / "fake.toml").write_text(FAKE)
    registry._load_all.cache_clear()
    yield folder
    registry._load_all.cache_clear()


def test_the_books_registry_is_valid_and_complete():
    table = registry.claims()
    papers = {c["paper"] for c in table.values()}
    assert papers == set(PAPERS), papers  # every paper's claims are registered
    for key, c in table.items():
        assert key.split("/")[0] in {"essay", "vc", "vae", "vae-as", "bvae", "m2", "mier"}, key
        if c["kind"] != "check":
            assert c["effect_source"] and c["what"], key
        if c["family"] == "primary" and c["kind"] == "difference":
            assert "long" in c and c["long"].get("regime"), f"{key}: a primary needs its long design"
    chapters = {c["chapter"] for c in table.values()}
    notebooks = {p.stem for p in (Path(__file__).parents[1] / "notebooks").glob("*.py")}
    assert chapters <= notebooks, chapters - notebooks


def test_claims_load_and_hash(fake):
    table = registry.claims(fake)
    assert list(table) == ["fake/up", "fake/same", "fake/identity"]
    h = registry.entry_hash(table["fake/up"])
    changed = dict(table["fake/up"], effect=0.05)
    assert registry.entry_hash(changed) != h
    fam = dict(table["fake/up"], _families={"primary": {"alpha": 0.01, "correction": "holm"}, "check": {}})
    assert registry.entry_hash(fam) != h  # the family's α is part of the design
    assert registry.entry_hash(dict(table["fake/up"])) == h


@pytest.mark.parametrize("edit, message", [
    (('direction = "higher"', 'direction = "up"'), "direction must be"),
    (("effect = 0.1\n", "effect = -0.1\n"), "points against its direction"),
    (("margin = 0.02", "margin = 0"), "margin > 0"),
    (('family = "primary"', 'family = "tertiary"'), "is not among"),
    (('rule = "the two sides agree to 1e-6"', ''), "needs a `rule`"),
    (('metric = "acc"\n', ''), "lacks"),
])
def test_bad_entries_say_what_to_write(fake, edit, message):
    (fake / "fake.toml").write_text(FAKE.replace(*edit, 1))
    with pytest.raises(registry.RegistryError, match=message):
        registry.claims(fake)


def test_duplicate_keys_are_refused(fake):
    (fake / "again.toml").write_text(FAKE)
    with pytest.raises(registry.RegistryError, match="appears in"):
        registry.claims(fake)


def test_decide_is_holm_over_the_family_and_intersection_union_over_baselines(fake):
    rng = np.random.default_rng(0)
    n = 8
    b = rng.normal(0.8, 0.02, n)
    per_seed = {"a": {"acc": list(b + 0.05 + rng.normal(0, 0.01, n)), "auroc": list(b + rng.normal(0, 0.003, n))},
                "b": {"acc": list(b), "auroc": list(b)},
                "c": {"acc": list(b + 0.06 + rng.normal(0, 0.01, n))}}  # a does not beat c
    out = registry.decide("99_fake", per_seed, folder=fake)
    assert set(out) == {"fake/up", "fake/same"}  # the check claim is the chapter's to report
    claims = registry.claims(fake)
    p_up = max(p_value(per_seed["a"]["acc"], per_seed[x]["acc"], claims["fake/up"]) for x in ("b", "c"))
    p_same = p_value(per_seed["a"]["auroc"], per_seed["b"]["auroc"], claims["fake/same"])
    levels = holm_levels([p_up, p_same], 0.05)
    assert out["fake/up"]["level"] == pytest.approx(levels[0]) and out["fake/same"]["level"] == pytest.approx(levels[1])
    by_hand_b = paired_decision(per_seed["a"]["acc"], per_seed["b"]["acc"], direction="higher", what="accuracy",
                                level=levels[0], effect=0.1)
    assert out["fake/up"]["decisions"][0].interval == pytest.approx(by_hand_b.interval)
    assert by_hand_b.verdict != out["fake/up"]["decisions"][1].verdict  # b is beaten, c is not
    assert out["fake/up"]["verdict"] == "not resolved" or out["fake/up"]["verdict"] == "contradicted"
    same = parity_decision(per_seed["a"]["auroc"], per_seed["b"]["auroc"], margin=0.02, what="AUROC", level=levels[1])
    assert out["fake/same"]["verdict"] == same.verdict == "supported"
    assert out["fake/up"]["hash"] == registry.entry_hash(claims["fake/up"])


def test_decide_leaves_out_claims_whose_arms_are_missing(fake):
    out = registry.decide("99_fake", {"a": {"acc": [1.0, 2.0]}, "b": {"acc": [0.0, 1.0]}}, folder=fake)
    assert out == {}  # fake/up needs c too; fake/same needs auroc


def test_the_pilots_upper_bound_covers_the_true_sd_80_percent_of_the_time():
    rng = np.random.default_rng(3)
    n, sigma, trials = 5, 2.0, 4000
    covered = sum(registry.pilot_sd_upper(float(rng.normal(0, sigma, n).std(ddof=1)), n) >= sigma
                  for _ in range(trials)) / trials
    assert abs(covered - 0.8) < 0.025, covered


def test_power_plan_asks_for_the_seeds_of_the_upper_bound(fake):
    c = registry.claims(fake)["fake/up"]
    d = [0.05, 0.02, 0.08, 0.01, 0.04]
    plan = registry.power_plan(c, d, comparisons=2)
    sd = float(np.std(d, ddof=1))
    assert plan["sd"] == pytest.approx(sd) and plan["sd_upper80"] > sd
    assert plan["alpha_per_test"] == pytest.approx(0.025)
    assert plan["seeds"] == seeds_for_power(0.1, plan["sd_upper80"], alpha=0.025)
    assert plan["seeds"] > seeds_for_power(0.1, sd, alpha=0.025)  # the bound asks for more than the point estimate
    with pytest.raises(ValueError, match="at least 2"):
        registry.pilot_sd_upper(1.0, 1)
    assert math.isfinite(plan["sd_upper80"])


def test_a_claim_whose_arms_did_not_run_says_so(fake):
    """claim_rows gives every paired claim a row: decided, or "not run" naming the arms it needs (so the ledger
    never counts it as unrecorded); a skipped key is left to the caller."""
    per_seed = {"a": {"auroc": [0.80, 0.81, 0.79]}, "b": {"auroc": [0.80, 0.80, 0.80]}}
    decided = registry.decide("99_fake", per_seed, folder=fake)
    rows = {r["key"]: r for r in registry.claim_rows("99_fake", decided, folder=fake)}
    assert set(rows) == {"fake/up", "fake/same"}
    assert rows["fake/up"]["verdict"].startswith("not run") and "a, b, c" in rows["fake/up"]["ours"]
    assert rows["fake/same"]["verdict"] == decided["fake/same"]["verdict"]
    assert [r["key"] for r in registry.claim_rows("99_fake", decided, folder=fake, skip=("fake/up",))] == ["fake/same"]
