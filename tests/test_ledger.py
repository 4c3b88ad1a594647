"""The claims ledger (`lvmcls.ledger`): a registry's claims, decided in ci / long / full, on one page."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from lvmcls import ledger
from lvmcls.decisions import SMALLER, claim, paired_decision, parity_decision
from lvmcls.ledger import (BUCKETS, FIGURE, MARKER, NOT_RECORDED, OTHER, counts, figure_rows, gather, plotted,
                           render, scaled_interval, short_age, write_page)
from lvmcls.results import _git, write_results

STEM = "03_vc_experiments"

REGISTRY = '''
[paper]
key = "vc"

[families.primary]
alpha = 0.05
correction = "holm"

[families.check]
alpha = 0.05
correction = "none"

[[claims]]
key = "vc/h1"
paper = "vc"
chapter = "03_vc_experiments"
section = "ch3-decisions"
statement = "VC is better calibrated (lower test ECE) than softmax CE."
source = "Table 1"
paper_values = "CE 3.8 -> VC 3.2 % ECE"
kind = "difference"
family = "primary"
metric = "ece"
what = "test ECE"
direction = "lower"
candidate = "vc"
baseline = "ce"
split = "test"
effect = -0.006
effect_source = "Table 1, CIFAR-10 ResNet-50, -0.6 pt"

[claims.long]
regime = "the ci MLP"
seeds = 12

[[claims]]
key = "vc/ood"
paper = "vc"
chapter = "03_vc_experiments"
section = "ch3-decisions"
statement = "VC detects OOD inputs by max p(y|x) as well as CE does."
source = "Table 3"
paper_values = "CE 0.92, VC 0.93"
kind = "parity"
family = "primary"
metric = "auroc"
what = "AUROC of max p(y|x)"
candidate = "vc"
baseline = "ce"
split = "test"
effect = 0
effect_source = "the book's margin"
margin = 0.02

[[claims]]
key = "vc/h4"
paper = "vc"
chapter = "03_vc_experiments"
section = "ch3-decisions"
statement = "VC is more accurate than CE with 500 labels."
source = "Table 4"
paper_values = "+1.1 pt"
kind = "difference"
family = "primary"
metric = "lowdata_acc"
what = "accuracy"
direction = "higher"
candidate = "vc"
baseline = "ce"
split = "test"
effect = 0.011
effect_source = "Table 4"

[[claims]]
key = "vc/m2-note"
paper = "vc"
chapter = "03_vc_experiments"
section = "ch3-decisions"
statement = "A check no profile could run at the paper's budget."
source = "Table 9"
paper_values = "88 %"
kind = "check"
family = "check"
rule = "in words"
'''

TEXT = dict(paper="vc", source="Table 1", paper_value="-0.6 pt", section="ch3-decisions")


def _cells(line: str) -> list[str]:
    """A Markdown table row's cells (split at unescaped pipes)."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


@pytest.fixture
def registry_dir(tmp_path):
    folder = tmp_path / "registry"
    folder.mkdir()
    (folder / "vc.toml").write_text(REGISTRY)
    return folder


def _h1(candidate, baseline):
    return paired_decision(candidate, baseline, direction="lower", what="test ECE", names=("vc", "ce"),
                           effect=-0.006)


@pytest.fixture
def results(tmp_path):
    """ci: h1 supported, ood parity, the check "not run", and a claim the registry lacks; long: h1 smaller than the
    paper's effect (its commit is HEAD: current); full: an older run without claims (commit unknown: stale)."""
    folder = tmp_path / "results"
    ci_h1 = _h1([0.030, 0.031, 0.029, 0.030, 0.032], [0.040, 0.039, 0.041, 0.042, 0.040])
    ood = parity_decision([0.90, 0.91, 0.905, 0.90, 0.91], [0.90, 0.905, 0.90, 0.905, 0.91], margin=0.02,
                          what="AUROC", names=("vc", "ce"))
    rows = [claim("vc/h1", statement="from the row, not the registry", decision=ci_h1, **TEXT),
            claim("vc/ood", decision=ood, statement="s", **TEXT),
            claim("vc/m2-note", verdict="not run at a comparable budget (not comparable): 10 epochs, not 3000",
                  ours="10 epochs", statement="s", **TEXT),
            claim("vc/extra", verdict="supported", ours="a number", statement="A claim only a chapter records.",
                  **TEXT)]
    write_results(STEM, profile="ci", device="cpu", seeds=[0, 1, 2, 3, 4], data_source="d", metrics={},
                  wall_time_s=1, folder=folder, claims=rows)
    d = [-0.002, 0.001, -0.001, 0.002, 0, -0.001, 0.0005, -0.0015, 0.001, 0, -0.0005, 0.0005]
    long_h1 = _h1([0.03 + x for x in d], [0.03] * 12)  # contains 0, excludes the paper's −0.006
    assert long_h1.verdict == SMALLER
    head = _git("rev-parse", "HEAD")
    long = {"stem": STEM, "profile": "long", "seeds": list(range(12)), "git_commit": head or "unknown",
            "written": "2026-12-01T00:00:00Z", "device": "cpu: test, 2 threads",
            "claims": [claim("vc/h1", decision=long_h1, statement="s", **TEXT)]}
    (folder / "long").mkdir(parents=True)
    (folder / "long" / f"{STEM}.json").write_text(json.dumps(long))
    (folder / "long" / STEM).mkdir()  # a per-seed record: never read by the ledger
    (folder / "long" / STEM / "long-seed0.json").write_text(json.dumps(
        {**long, "seeds": [0], "claims": [claim("vc/per-seed", verdict="supported", ours="x", statement="s",
                                                **TEXT)]}))
    write_results(STEM, profile="full", device="cpu", seeds=[0], data_source="d", metrics={}, wall_time_s=1,
                  folder=folder / "full", git_commit="0" * 40)  # a full run that predates the claims
    return folder


def test_counts_add_up_to_the_claims_in_every_profile(results, registry_dir):
    rows = gather(results, registry_dir)
    keys = [r["key"] for r in rows]
    assert keys == ["vc/h1", "vc/ood", "vc/h4", "vc/m2-note", "vc/extra"], "registry order, then unregistered keys"
    tally = counts(rows)
    for profile in ("ci", "long", "full"):
        assert sum(tally[profile].values()) == len(rows), profile
    # h1, the parity and the unregistered claim supported; the "not run" check other; vc/h4 not recorded
    assert tally["ci"] == {**dict.fromkeys(BUCKETS, 0), "supported": 3, OTHER: 1, NOT_RECORDED: 1}
    assert tally["long"] == {**dict.fromkeys(BUCKETS, 0), SMALLER: 1, NOT_RECORDED: 4}
    assert tally["full"][NOT_RECORDED] == len(rows)
    page = render(results, registry_dir)
    assert page.startswith(f"**{len(rows)} claims** (4 in the registry, 1 recorded by a chapter but not in")
    header = [line for line in page.splitlines() if line.startswith(("| `ci` |", "| `long` |", "| `full` |"))]
    assert len(header) == 3
    for line in header:  # the printed counts add up to the printed total, which is the number of claims
        cells = _cells(line)
        assert cells[-1] == str(len(rows)) and sum(int(c) for c in cells[1:-1]) == len(rows), line


def test_rows_read_the_registry_and_fall_back_to_the_row(results, registry_dir):
    rows = {r["key"]: r for r in gather(results, registry_dir)}
    assert rows["vc/h1"]["statement"] == "VC is better calibrated (lower test ECE) than softmax CE."
    assert rows["vc/h1"]["effect"] == -0.006 and rows["vc/h1"]["planned_seeds"] == 12
    assert rows["vc/extra"]["statement"] == "A claim only a chapter records." and not rows["vc/extra"]["registered"]
    assert "vc/per-seed" not in rows, "the per-seed long records are not the ledger's"
    assert rows["vc/h1"]["ci"]["seeds"] == 5 and rows["vc/h1"]["long"]["seeds"] == 12


def test_a_key_missing_from_the_results_is_not_recorded(results, registry_dir):
    rows = {r["key"]: r for r in gather(results, registry_dir)}
    assert all(rows["vc/h4"][p] is None for p in ("ci", "long", "full"))
    assert all(counts(list(rows.values()))[p][NOT_RECORDED] >= 1 for p in ("ci", "long", "full"))
    line = next(line for line in render(results, registry_dir).splitlines() if line.startswith("| `vc/h4`"))
    cells = _cells(line)
    assert cells[1:] == ["+0.011", "—", "— (its run predates it)", "— (its run predates it)"], cells
    assert "`ci`: not recorded" in render(results, registry_dir).split("**`vc/h4`**")[1].split("- **`")[0]


def test_long_and_full_say_their_age_in_a_few_words(results, registry_dir):
    if _git("rev-parse", "HEAD") is None:
        pytest.skip("not a git checkout: a record's age needs its commit in this history")
    rows = {r["key"]: r for r in gather(results, registry_dir)}
    assert rows["vc/h1"]["long"]["age"] == "0 commits old, current"
    assert rows["vc/h1"]["notes"]["full"] == "its run predates it; commit unknown, stale"
    page = render(results, registry_dir)
    h1 = next(line for line in page.splitlines() if line.startswith("| `vc/h1`"))
    long = _cells(h1)[3]
    assert long.startswith(f"**{SMALLER}**<br>"), long
    assert long.endswith("<br>12 of 12 seeds; detects 0.17×<br>0 commits old, current"), long
    assert "changed since" not in page, "no lists of changed files"
    assert short_age({"commits_behind": 1, "stale": True}) == "1 commit old, stale"
    assert short_age({"commits_behind": 3, "stale": False}) == "3 commits old, current"


def test_scaled_interval_puts_the_papers_effect_at_one():
    assert scaled_interval([-0.012, -0.003], effect=-0.006) == pytest.approx((0.5, 2.0))
    assert scaled_interval([-0.003, 0.006], effect=-0.006) == pytest.approx((-1.0, 0.5))  # the paper's side right
    assert scaled_interval([0.011, 0.022], effect=0.011) == pytest.approx((1.0, 2.0))
    assert scaled_interval([-0.01, 0.03], margin=0.02) == pytest.approx((-0.5, 1.5))
    with pytest.raises(ValueError):
        scaled_interval([0, 1])


def test_the_figure_is_written_and_draws_each_decision_on_the_papers_scale(results, registry_dir, tmp_path):
    template = tmp_path / "template.md"
    template.write_text(f"# Claims\n\n{MARKER}\n")
    page = write_page(tmp_path / "book" / "claims.md", template, results, registry_dir)
    svg = page.parent / FIGURE
    assert svg.is_file() and svg.stat().st_size > 5_000
    assert ET.parse(svg).getroot().tag.endswith("svg")
    text = page.read_text()
    assert f"```{{figure}} {FIGURE}" in text and MARKER not in text
    rows = {r["key"]: r for r in gather(results, registry_dir)}
    drawn = {item["key"]: item for item in figure_rows(list(rows.values()))}
    assert set(drawn) == {"vc/h1", "vc/ood"}, "paired claims with an interval; not the check, not unrecorded ones"
    d = rows["vc/h1"]["ci"]["decisions"][0]
    (lo, hi), e = d["interval"], d["mean_difference"]
    assert plotted(rows["vc/h1"], "ci")[0]["interval"] == pytest.approx((hi / -0.006, lo / -0.006))
    assert plotted(rows["vc/h1"], "ci")[0]["estimate"] == pytest.approx(e / -0.006)
    assert plotted(rows["vc/h1"], "ci")[0]["interval"][0] > 0, "supported: wholly on the paper's side"
    assert len(drawn["vc/h1"]["long"]) == 1 and drawn["vc/h1"]["long"][0]["verdict"] == SMALLER
    ood = drawn["vc/ood"]["ci"][0]
    assert drawn["vc/ood"]["parity"] and ood["interval"] == pytest.approx(
        tuple(v / 0.02 for v in rows["vc/ood"]["ci"]["decisions"][0]["interval"]))


def test_the_table_has_one_well_formed_row_per_claim_and_folds_the_sentences(results, registry_dir):
    page = render(results, registry_dir)
    lines = page.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("| claim | paper's effect |")))
    table = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        table.append(line)
    assert len(table) == len(gather(results, registry_dir))
    for line in table:  # seven cells: no unescaped pipe inside a cell
        assert len(_cells(line)) == 5, line
    assert "{ref}`ch. 3 <ch3-decisions>`" in table[0]
    ood = _cells(table[1])
    assert ood[1] == "±0.02 (parity)" and ood[2].startswith("**supported**<br>") and "5 seeds; margin ±0.0" in ood[2]
    check = _cells(table[3])
    assert check[2] == "**not run at a comparable budget (not comparable)**<br>(in words, below)<br>5 seeds", (
        "the verdict's head only")
    assert page.count(":::{dropdown}") == 1 and page.count("\n:::\n") == 1
    fold = page[page.index(":::{dropdown}"):]
    assert "10 epochs, not 3000" in fold and "Table 1, CIFAR-10 ResNet-50, -0.6 pt" in fold


def test_ledger_gathers_claims_of_both_profiles(tmp_path):
    """Without a registry entry a results row is shown from its own text; an older full run is said to predate it."""
    d = paired_decision([0.91, 0.92, 0.93], [0.90, 0.90, 0.91], direction="higher", what="accuracy",
                        names=("MIER", "M2"))
    row = claim("mier/acc", paper="mier", statement="MIER raises M2's accuracy.", source="Table 2",
                paper_value="+1.39 points", section="ch7-mier", decision=d)
    write_results("07_x", profile="ci", device="cpu", seeds=[0, 1, 2], data_source="d", metrics={}, wall_time_s=1,
                  folder=tmp_path, claims=[row])
    write_results("07_x", profile="full", device="cpu", seeds=[0], data_source="d", metrics={}, wall_time_s=1,
                  folder=tmp_path / "full")  # an older full run without claims
    empty = tmp_path / "no-registry"
    rows = {r["key"]: r for r in gather(tmp_path, empty)}
    assert set(rows) == {"mier/acc"} and rows["mier/acc"]["ci"]["verdict"] == d.verdict
    assert rows["mier/acc"]["full"] is None and "predates" in rows["mier/acc"]["notes"]["full"]
    page = render(tmp_path, empty)
    assert f"| **{d.verdict}**<br>+0.017 [" in page and "{ref}`ch. 7 <ch7-mier>`" in page
    assert page.startswith("**1 claim** (0 in the registry, 1 recorded by a chapter")


def test_the_book_registry_is_the_ledgers_list(tmp_path):
    """With the package's registry and no results, every registered claim is a row, not recorded anywhere."""
    from lvmcls import registry

    table = registry.claims()
    rows = gather(tmp_path / "nothing")
    assert [r["key"] for r in rows] == sorted(table, key=lambda k: (list(ledger.PAPERS).index(table[k]["paper"]),
                                                                    list(table).index(k)))
    assert all(counts(rows)[p][NOT_RECORDED] == len(rows) for p in ("ci", "long", "full"))
