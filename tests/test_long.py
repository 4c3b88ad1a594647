"""The `long` profile (`lvmcls.long`): per-seed records written one at a time, paired by seed and decided through
the registry's one code path; a design changed after its data is not decided; a duplicated seed is refused; the
sweep finds a long run's record; and the committed `long` verdicts are recomputed here from the committed per-seed
values and the registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lvmcls import long, registry
from lvmcls.results import write_results
from tests.test_registry import FAKE

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake(tmp_path, monkeypatch):
    folder = tmp_path / "registry"
    folder.mkdir()
    (folder / "fake.toml").write_text(FAKE)
    monkeypatch.setattr(registry, "FOLDER", folder)
    registry._load_all.cache_clear()
    yield tmp_path
    registry._load_all.cache_clear()


def _write(tmp_path, seed, values, hashes=None):
    table = registry.claims()
    hashes = hashes if hashes is not None else {k: registry.entry_hash(c) for k, c in table.items()}
    return write_results("99_fake", profile="long", device="cpu", seeds=[seed], data_source="synthetic",
                         metrics={}, wall_time_s=1.0, folder=tmp_path / "long",
                         per_seed={arm: {m: [v] for m, v in ms.items()} for arm, ms in values.items()},
                         registry=hashes)


def _values(rng):
    b = float(rng.normal(0.8, 0.02))
    return {"a": {"acc": b + 0.2 + float(rng.normal(0, 0.01)), "auroc": b + float(rng.normal(0, 0.002))},
            "b": {"acc": b, "auroc": b}, "c": {"acc": b + 0.05 + float(rng.normal(0, 0.01))}}


def test_records_pair_by_seed_and_decide_as_the_registry_does(fake):
    rng = np.random.default_rng(0)
    values = {s: _values(rng) for s in (3, 0, 1, 2, 4, 5)}
    for s, v in values.items():
        path = _write(fake, s, v)
        assert path.name == f"long-seed{s}.json" and path.parent.name == "99_fake"
    records = long.seed_records("99_fake", fake / "long")
    seeds, per_seed = long.pair(records)
    assert seeds == [0, 1, 2, 3, 4, 5]
    assert per_seed["a"]["acc"] == [values[s]["a"]["acc"] for s in seeds]
    merged = long.decide_records("99_fake", records)
    rows = {r["key"]: r for r in merged["claims"]}
    direct = registry.decide("99_fake", per_seed)
    # fake/up planned 12 seeds: 6 are an interim look, shown with its numbers but not as a verdict
    assert rows["fake/up"]["verdict"] == f"interim (6 of 12 planned seeds; not a verdict): supported"
    assert direct["fake/up"]["verdict"] == "supported"
    # no plan: all seeds, labelled exploratory
    assert direct["fake/same"]["verdict"] == "supported"
    assert rows["fake/same"]["verdict"] == "exploratory (no seed count was planned; all 6 recorded seeds): supported"
    assert "fake/identity" not in rows  # a check is reported by its chapter
    assert merged["seeds"] == seeds and merged["n_records"] == 6


def test_a_design_changed_after_the_data_is_not_decided(fake):
    rng = np.random.default_rng(1)
    hashes = {k: registry.entry_hash(c) for k, c in registry.claims().items()}
    _write(fake, 0, _values(rng), dict(hashes, **{"fake/up": "000000000000"}))
    for s in (1, 2, 3):
        _write(fake, s, _values(rng))
    rows = {r["key"]: r for r in long.decide_records("99_fake", long.seed_records("99_fake", fake / "long"))["claims"]}
    assert rows["fake/up"]["verdict"] == f"not run: {long.DESIGN_CHANGED}"
    assert rows["fake/same"]["verdict"] == "exploratory (no seed count was planned; all 4 recorded seeds): supported"


def test_a_seed_recorded_twice_is_refused(fake):
    rng = np.random.default_rng(2)
    _write(fake, 0, _values(rng))
    path = _write(fake, 1, _values(rng))
    record = json.loads(path.read_text())
    record["seeds"] = [0]
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match="appears in"):
        long.seed_records("99_fake", fake / "long")


def test_a_long_record_holds_one_seed(tmp_path):
    with pytest.raises(ValueError, match="one seed"):
        write_results("x", profile="long", device="cpu", seeds=[0, 1], data_source="s", metrics={},
                      wall_time_s=0.0, folder=tmp_path)


def test_merge_writes_the_chapter_file(fake, monkeypatch):
    monkeypatch.setenv("LVMCLS_RESULTS", str(fake))
    rng = np.random.default_rng(3)
    for s in range(4):
        _write(fake, s, _values(rng))
    [path] = long.merge()
    assert path == fake / "long" / "99_fake.json"
    merged = json.loads(path.read_text())
    assert {r["key"] for r in merged["claims"]} == {"fake/up", "fake/same"}
    assert long.merge() == [path]  # the merged file is not mistaken for a chapter folder


def test_seeds_needed_reads_the_registry(fake):
    assert long.seeds_needed("99_fake") == 12


def _committed():
    folder = ROOT / "results" / "long"
    return sorted(p for p in folder.glob("*.json")) if folder.is_dir() else []


@pytest.mark.parametrize("merged", _committed(), ids=lambda p: p.stem)
def test_committed_long_verdicts_follow_from_the_committed_seeds(merged):
    """Every committed merged verdict is what the committed per-seed values and today's registry decide."""
    record = json.loads(merged.read_text())
    stem, _, design = merged.stem.partition("--")  # <stem>.json (main) or <stem>--<design>.json
    design = design or long.MAIN
    assert record.get("design", long.MAIN) == design
    again = long.decide_records(stem, long.seed_records(stem, merged.parent, design), design=design)
    assert again["seeds"] == record["seeds"], "records were added or removed: run python -m lvmcls.long merge"
    old = {r["key"]: r for r in record["claims"]}
    new = {r["key"]: r for r in again["claims"]}
    assert set(old) == set(new)
    for key in old:
        assert new[key]["verdict"] == old[key]["verdict"], key
        if "decisions" in old[key]:
            for a, b in zip(old[key]["decisions"], new[key]["decisions"]):
                assert b["interval"] == pytest.approx(a["interval"], rel=1e-9, abs=1e-12), key


def test_a_claim_is_decided_on_the_seeds_its_design_planned(fake):
    """With more seeds recorded than planned, the decision uses the first planned ones (in seed order)."""
    rng = np.random.default_rng(5)
    for s in range(14):
        _write(fake, s, _values(rng))
    records = long.seed_records("99_fake", fake / "long")
    rows = {r["key"]: r for r in long.decide_records("99_fake", records)["claims"]}
    assert rows["fake/up"]["decisions"][0]["n"] == 12 and "first 12 seeds" in rows["fake/up"]["ours"]
    _, per_seed = long.pair(records)
    first12 = {a: {m: v[:12] for m, v in ms.items()} for a, ms in per_seed.items()}
    # fake/same planned no seeds: it enters fake/up's family at p = 1
    on_twelve = registry.decide("99_fake", first12, keys={"fake/up"})["fake/up"]
    assert rows["fake/up"]["verdict"] == on_twelve["verdict"]
    assert rows["fake/up"]["decisions"][0]["interval"] == pytest.approx(on_twelve["decisions"][0].interval)
    on_all = registry.decide("99_fake", per_seed, keys={"fake/up"})["fake/up"]["decisions"][0].interval
    assert rows["fake/up"]["decisions"][0]["interval"] != pytest.approx(on_all), "the 13th and 14th seeds were used"


def test_a_claim_registered_after_the_data_is_not_decided(fake):
    rng = np.random.default_rng(6)
    hashes = {k: registry.entry_hash(c) for k, c in registry.claims().items()}
    for s in range(3):
        _write(fake, s, _values(rng), {k: h for k, h in hashes.items() if k != "fake/same"})
    rows = {r["key"]: r for r in long.decide_records("99_fake", long.seed_records("99_fake", fake / "long"))["claims"]}
    assert rows["fake/same"]["verdict"] == f"not run: {long.DESIGN_CHANGED}"


SECOND_DESIGN = """
[families.other]
alpha = 0.05
correction = "holm"

[[claims]]
key = "fake/other-up"
paper = "vc"
chapter = "99_fake"
section = "ch99"
statement = "c is higher than b"
source = "Table 9"
paper_values = "b 0.8, c 0.85"
kind = "difference"
family = "other"
metric = "acc"
what = "accuracy"
direction = "higher"
candidate = "c"
baseline = "b"
split = "test"
effect = 0.05
effect_source = "Table 9"
unit = "paired seeds"

[claims.long]
design = "other"
regime = "the fake chapter with arm c"
seeds = 4
"""


def test_a_second_design_is_recorded_merged_and_decided_on_its_own(fake, monkeypatch):
    """Claims naming ``design = "other"`` read only that design's records (results/long/designs/other/<stem>/) and
    are merged into <stem>--other.json; the main merge leaves them out, and each design sizes its own seeds."""
    (fake / "registry" / "fake.toml").write_text(FAKE.replace("[[claims]]", SECOND_DESIGN + "\n[[claims]]", 1))
    registry._load_all.cache_clear()
    monkeypatch.setenv("LVMCLS_RESULTS", str(fake))
    assert long.designs("99_fake") == ["main", "other"]
    assert long.seeds_needed("99_fake", "other") == 4 and long.seeds_needed("99_fake") == 12
    rng = np.random.default_rng(7)
    main_values = {s: _values(rng) for s in range(3)}
    for s, v in main_values.items():  # the main design's records carry no arm c
        _write(fake, s, {k: x for k, x in v.items() if k != "c"})
    other = fake / "long" / "designs" / "other"
    for s in range(4):  # the second design's records: arms b and c only
        v = _values(rng)
        write_results("99_fake", profile="long", device="cpu", seeds=[s], data_source="synthetic", metrics={},
                      wall_time_s=1.0, folder=other, registry={k: registry.entry_hash(c)
                                                               for k, c in registry.claims().items()},
                      per_seed={arm: {m: [x] for m, x in v[arm].items()} for arm in ("b", "c")})
    paths = long.merge()
    assert sorted(p.name for p in paths) == ["99_fake--other.json", "99_fake.json"]
    main = json.loads((fake / "long" / "99_fake.json").read_text())
    second = json.loads((fake / "long" / "99_fake--other.json").read_text())
    assert "fake/other-up" not in {r["key"] for r in main["claims"]}
    assert {r["key"] for r in second["claims"]} == {"fake/other-up"} and second["design"] == "other"
    assert second["seeds"] == [0, 1, 2, 3] and main["seeds"] == [0, 1, 2]
    # decided as the registry decides c − b on the second design's four seeds alone
    _, per_seed = long.pair(long.seed_records("99_fake", fake / "long", "other"))
    direct = registry.decide("99_fake", per_seed, keys={"fake/other-up"})
    assert second["claims"][0]["verdict"] == direct["fake/other-up"]["verdict"] == "supported"


def test_a_design_name_must_be_plain(fake):
    bad = SECOND_DESIGN.replace('design = "other"', 'design = "../other"')
    (fake / "registry" / "fake.toml").write_text(FAKE.replace("[[claims]]", bad + "\n[[claims]]", 1))
    registry._load_all.cache_clear()
    with pytest.raises(registry.RegistryError, match="plain name"):
        registry.claims()


def test_power_sizes_a_second_design_on_the_arm_its_entry_names(fake, monkeypatch):
    """``pilot_from = {design = "main", candidate = "a"}``: the seeds of a claim on arm c come from a − b's paired
    spread in the main design's merged record (its SD at the upper 80 % bound), as `registry.power_plan` gives them;
    without that merged record nothing is planned."""
    text = SECOND_DESIGN.replace('seeds = 4', 'pilot_from = {design = "main", candidate = "a"}')
    (fake / "registry" / "fake.toml").write_text(FAKE.replace("[[claims]]", text + "\n[[claims]]", 1))
    registry._load_all.cache_clear()
    monkeypatch.setenv("LVMCLS_RESULTS", str(fake))
    assert long.plan_power(["99_fake"], write=False, keys={"fake/other-up"}) == {}
    rng = np.random.default_rng(11)
    for s in range(6):
        _write(fake, s, _values(rng))
    long.merge(design="main")
    per_seed = json.loads((fake / "long" / "99_fake.json").read_text())["per_seed"]
    d = [x - y for x, y in zip(per_seed["a"]["acc"], per_seed["b"]["acc"])]
    plans = long.plan_power(["99_fake"], write=False, keys={"fake/other-up"})
    expected = registry.power_plan(registry.claims()["fake/other-up"], d)
    assert set(plans) == {"fake/other-up"} and plans["fake/other-up"]["seeds"] == expected["seeds"]
    assert plans["fake/other-up"]["sd"] == pytest.approx(float(np.std(d, ddof=1)))
    assert plans["fake/other-up"]["sd_upper80"] > plans["fake/other-up"]["sd"]


GATE = """
[families.gatefam]
alpha = 0.05
correction = "none"

[[claims]]
key = "fake/gate"
paper = "vc"
chapter = "99_fake"
section = "ch99"
statement = "a is higher than b (the mechanism)"
source = "Table 9"
paper_values = "b 0.8, a 1.0"
kind = "difference"
family = "gatefam"
metric = "acc"
what = "accuracy"
direction = "higher"
candidate = "a"
baseline = "b"
split = "test"
effect = 0.2
effect_source = "Table 9"
unit = "paired seeds"

[claims.long]
design = "other"
regime = "the fake chapter"
seeds = GATE_SEEDS
"""


def _gated(fake, gate_seeds=4):
    text = SECOND_DESIGN.replace('correction = "holm"\n', 'correction = "holm"\ngate = "fake/gate"\n', 1)
    text = GATE.replace("GATE_SEEDS", str(gate_seeds)) + text
    (fake / "registry" / "fake.toml").write_text(FAKE.replace("[[claims]]", text + "\n[[claims]]", 1))
    registry._load_all.cache_clear()


def _write_other(fake, seeds, rng, flat=False, hashes=None):
    table = registry.claims()
    hashes = hashes if hashes is not None else {k: registry.entry_hash(c) for k, c in table.items()}
    for s in seeds:
        v = _values(rng)
        if flat:  # a − b = 0 up to noise far below the gate's effect: the gate is not supported
            v["a"]["acc"] = v["b"]["acc"] + float(rng.normal(0, 0.01))
        write_results("99_fake", profile="long", device="cpu", seeds=[s], data_source="synthetic", metrics={},
                      wall_time_s=1.0, folder=fake / "long" / "designs" / "other", registry=hashes,
                      per_seed={arm: {m: [x] for m, x in v[arm].items()} for arm in ("a", "b", "c")})
    return long.seed_records("99_fake", fake / "long", "other")


def _rows(records):
    return {r["key"]: r for r in long.decide_records("99_fake", records, design="other")["claims"]}


def test_a_gated_family_is_not_tested_unless_its_gate_is_supported(fake):
    """A fixed sequence ([families.other] gate = "fake/gate", alone in its family, in the same design): the gated
    claim is decided as usual when the gate is supported and reads "not tested" (its estimate kept) when not."""
    _gated(fake)
    rows = _rows(_write_other(fake, range(4), np.random.default_rng(13)))
    assert rows["fake/gate"]["verdict"] == "supported" and rows["fake/other-up"]["verdict"] == "supported"
    for p in (fake / "long" / "designs").rglob("*.json"):
        p.unlink()
    rows = _rows(_write_other(fake, range(4), np.random.default_rng(13), flat=True))
    assert rows["fake/gate"]["verdict"] != "supported"
    assert rows["fake/other-up"]["verdict"].startswith("not tested: the fixed sequence stops at fake/gate")
    assert "c − b" in rows["fake/other-up"]["ours"]


def test_a_gated_claim_waits_for_its_gates_planned_seeds(fake):
    """With the gate planned at 8 seeds and the gated claim at 4, four seeds are an interim look for both."""
    _gated(fake, gate_seeds=8)
    rows = _rows(_write_other(fake, range(4), np.random.default_rng(19)))
    assert rows["fake/gate"]["verdict"].startswith("interim (4 of 8 planned seeds")
    assert rows["fake/other-up"]["verdict"].startswith("interim (4 seeds: its own 4 are in, its family or gate waits "
                                                       "for 8; not a verdict)")


def test_a_gate_changed_after_the_data_keeps_its_family_shut(fake):
    _gated(fake)
    hashes = {k: registry.entry_hash(c) for k, c in registry.claims().items()}
    rows = _rows(_write_other(fake, range(4), np.random.default_rng(13), hashes={**hashes, "fake/gate": "0" * 12}))
    assert rows["fake/gate"]["verdict"] == f"not run: {long.DESIGN_CHANGED}"
    assert rows["fake/other-up"]["verdict"].startswith("not tested: the fixed sequence stops at fake/gate (not run)")


@pytest.mark.parametrize("change, message", [
    (lambda t: t.replace('gate = "fake/gate"', 'gate = "fake/other-up"'), "another family"),
    (lambda t: t.replace('family = "gatefam"', 'family = "primary"'), "only claim of its family"),
    (lambda t: t.replace('design = "other"\nregime = "the fake chapter"', 'regime = "the fake chapter"', 1),
     "share the chapter and design"),
])
def test_a_gate_is_one_test_in_the_design_it_gates(fake, change, message):
    _gated(fake)
    path = fake / "registry" / "fake.toml"
    path.write_text(change(path.read_text()))
    registry._load_all.cache_clear()
    with pytest.raises(registry.RegistryError, match=message):
        registry.claims()


def test_a_record_below_the_first_seed_decides_nothing(fake):
    """``first_seed = 1``: a seed-0 record (the seed that chose a setting) is set aside, reported, not decided."""
    _gated(fake)
    path = fake / "registry" / "fake.toml"
    path.write_text(path.read_text().replace("seeds = 4\n", "seeds = 4\nfirst_seed = 1\n"))
    registry._load_all.cache_clear()
    merged = long.decide_records("99_fake", _write_other(fake, range(5), np.random.default_rng(23)), design="other")
    assert merged["seeds"] == [1, 2, 3, 4] and merged["ignored_seeds"] == [0]
    with pytest.raises(ValueError, match="first seed"):
        long.run(["99_fake"], seeds=[0, 1], design="other")


def test_an_unplanned_claim_is_exploratory_and_takes_no_holm_level(fake):
    """A claim whose design planned no seed count is decided on every recorded seed and labelled exploratory; the
    planned claims of its family are decided as if it were absent (p = 1)."""
    table = registry.claims()
    unplanned = [k for k, c in table.items() if c["kind"] != "check" and not (c.get("long") or {}).get("seeds")]
    assert unplanned, "the fake registry needs a claim without planned seeds for this test"
    rng = np.random.default_rng(17)
    for s in range(6):
        _write(fake, s, _values(rng))
    records = long.seed_records("99_fake", fake / "long")
    rows = {r["key"]: r for r in long.decide_records("99_fake", records)["claims"]}
    for key in unplanned:
        assert rows[key]["verdict"].startswith("exploratory (no seed count was planned; all 6 recorded seeds)")
    # fake/up (planned) is at the top of a two-member Holm family whatever fake/same's p-value is; fake/same, decided
    # on its own, gets the Bonferroni level α / 2
    assert rows["fake/up"]["level"] == pytest.approx(0.025) and rows["fake/same"]["level"] == pytest.approx(0.025)


def test_a_design_starts_at_its_first_seed(fake):
    text = SECOND_DESIGN.replace('seeds = 4', 'seeds = 4\nfirst_seed = 1')
    (fake / "registry" / "fake.toml").write_text(FAKE.replace("[[claims]]", text + "\n[[claims]]", 1))
    registry._load_all.cache_clear()
    assert long.first_seed("99_fake", "other") == 1 and long.first_seed("99_fake") == 0
