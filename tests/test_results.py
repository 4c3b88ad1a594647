"""results/<stem>.json and the scorecard."""

from __future__ import annotations

import json
import time

import pytest
import torch

from lvmcls.notebook import Setup, resolve_profile
from lvmcls.results import scorecard_markdown, write_results


def test_write_results_records_provenance(tmp_path):
    path = write_results("01_x", profile="ci", device="cpu", seeds=0, data_source="synthetic",
                         metrics={"acc": 0.5, "bad": float("nan")}, paper={"acc": 0.9}, wall_time_s=1.234,
                         folder=tmp_path)
    record = json.loads(path.read_text())
    for key in ("profile", "device", "seeds", "data_source", "git_commit", "wall_time_s", "metrics", "paper"):
        assert key in record
    assert record["metrics"] == {"acc": 0.5, "bad": None} and record["seeds"] == [0]
    with pytest.raises(ValueError, match="resolve 'auto' first"):
        write_results("01_x", profile="auto", device="cpu", seeds=0, data_source="", metrics={}, wall_time_s=0,
                      folder=tmp_path)


def test_a_run_writes_its_own_profile_device_seed_and_time(tmp_path):
    run = Setup("smoke", 3, torch.device("cpu"), time.perf_counter() - 5.0)
    record = json.loads(run.write_results("01_x", data_source="d", metrics={"a": 1.0}, folder=tmp_path).read_text())
    assert (record["profile"], record["seeds"], record["metrics"]) == ("smoke", [3], {"a": 1.0})
    assert record["device"].startswith("cpu") and record["wall_time_s"] >= 5.0
    other = run.write_results("01_y", data_source="d", metrics={}, seeds=[3, 4], knobs={"k": 1}, folder=tmp_path)
    assert json.loads(other.read_text())["seeds"] == [3, 4] and json.loads(other.read_text())["knobs"] == {"k": 1}


def test_scorecard_shows_paper_full_and_this_run(tmp_path):
    text = scorecard_markdown("01_x", {"acc": 0.5}, {"acc": 0.9}, folder=tmp_path)
    assert "full profile: none committed" in text and "| `acc` | 0.9 | — | 0.5 |" in text
    (tmp_path / "full").mkdir()
    write_results("01_x", profile="full", device="cpu", seeds=[0], data_source="d", metrics={"acc": 0.7},
                  wall_time_s=3, folder=tmp_path / "full")
    text = scorecard_markdown("01_x", {"acc": 0.5}, {"acc": 0.9}, folder=tmp_path)
    assert "| `acc` | 0.9 | 0.7 | 0.5 |" in text and "Full-profile run" in text


def test_profiles(monkeypatch):
    """auto = full exactly when CUDA is available (both ways), unless LVMCLS_PROFILE names a profile."""
    import torch

    monkeypatch.delenv("LVMCLS_PROFILE", raising=False)
    assert resolve_profile("ci") == "ci" and resolve_profile("smoke") == "smoke"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_profile("auto") == "full"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_profile("auto") == "ci"
    monkeypatch.setenv("LVMCLS_PROFILE", "smoke")
    assert resolve_profile("auto") == "smoke" and resolve_profile("ci") == "ci"
    monkeypatch.setenv("LVMCLS_PROFILE", "fast")
    with pytest.raises(ValueError, match="LVMCLS_PROFILE"):
        resolve_profile("auto")
    with pytest.raises(ValueError, match="profile must be one of"):
        resolve_profile("fast")


def test_verdicts_reach_all_three_outcomes():
    from lvmcls.results import verdict

    # VC lower ECE by far more than the seed spread: supported; the mirror image: not supported
    assert verdict([0.01, 0.012, 0.011], [0.05, 0.052, 0.049], lower_is_better=True, what="ECE").startswith(
        "supported")
    assert verdict([0.05, 0.052, 0.049], [0.01, 0.012, 0.011], lower_is_better=True, what="ECE").startswith(
        "not supported")
    # the same means with a spread larger than the difference: not resolved
    assert verdict([0.0, 0.022, 0.011], [0.02, 0.0, 0.04], lower_is_better=True, what="ECE").startswith(
        "not resolved")
    # one seed: no spread to judge by
    text = verdict([0.9], [0.8], lower_is_better=False, what="acc")
    assert text.startswith("not resolved") and "one seed" in text
    with pytest.raises(ValueError, match="NaN"):
        verdict([float("nan")], [0.1], lower_is_better=True, what="ECE")
