"""results/<stem>.json and the scorecard."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lvmcls.notebook import Setup, resolve_profile
from lvmcls.results import describe_age, result_age, scorecard_markdown, write_results
from lvmcls.words import describe, unknown_parts

ROOT = Path(__file__).resolve().parents[1]


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


def test_scorecard_shows_words_key_paper_full_and_this_run(tmp_path):
    text = scorecard_markdown("01_x", {"mnist_acc_ce": 0.5, "extra_acc": 0.1}, {"mnist_acc_ce": 0.9},
                              folder=tmp_path, seeds=[0, 1, 2])
    assert "| quantity | key | paper | ours, full profile (none committed) | ours, this run (3 seeds) |" in text
    assert "| MNIST · test accuracy (fraction) · CE | `mnist_acc_ce` | 0.9 | — | 0.5 |" in text
    main, folded = text.split("<details>")
    assert "`extra_acc`" in folded and "`extra_acc`" not in main and "1 rows without a paper number" in folded
    assert "| extra · test accuracy (fraction) | `extra_acc`" in folded  # an unknown part shows as written
    (tmp_path / "full").mkdir()
    write_results("01_x", profile="full", device="cpu", seeds=[0], data_source="d", metrics={"mnist_acc_ce": 0.7},
                  wall_time_s=3, folder=tmp_path / "full")
    text = scorecard_markdown("01_x", {"mnist_acc_ce": 0.5}, {"mnist_acc_ce": 0.9}, folder=tmp_path,
                              labels={"mnist_acc_ce": "MNIST: test accuracy, CE"})
    assert "| MNIST: test accuracy, CE | `mnist_acc_ce` | 0.9 | 0.7 | 0.5 |" in text and "Full-profile run" in text


def test_scorecard_cites_each_paper_number_and_refuses_one_without_its_source(tmp_path):
    metrics, paper = {"mnist_acc_ce": 0.5, "extra_acc": 0.1}, {"mnist_acc_ce": 0.9}
    text = scorecard_markdown("01_x", metrics, paper, folder=tmp_path, sources={"mnist_acc_ce": "Table 1, row CE"})
    assert "| `mnist_acc_ce` | 0.9 (Table 1, row CE) | — | 0.5 |" in text
    with pytest.raises(ValueError, match="without a source.*mnist_acc_ce"):
        scorecard_markdown("01_x", metrics, paper, folder=tmp_path, sources={"extra_acc": "Table 9"})


def test_scorecard_refuses_labels_that_would_break_its_table(tmp_path):
    """A '|' splits a row's cells and a backtick reads as the key column: both are refused with what to do."""
    for word in ("300 epochs of `long`", "a | b"):
        with pytest.raises(ValueError, match="plain words.*reword"):
            scorecard_markdown("01_x", {"mnist_acc_ce": 0.5}, folder=tmp_path, labels={"mnist_acc_ce": word})


def test_words_read_keys_and_list_unknown_parts():
    assert describe("lowdata_mnist500_acc_std_ce") == ("low data · MNIST, 500 labels · test accuracy (fraction) · "
                                                       "std over seeds · CE")
    assert describe("ood_auroc_mnist_vs_fashion_vc") == ("out of distribution · AUROC · MNIST in, Fashion-MNIST out · "
                                                         "VC")
    assert unknown_parts(["mnist_acc_ce", "foo_acc_bar"]) == {"foo", "bar"}


def _git(*args):
    out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def test_result_age_counts_commits_and_changed_modules():
    head = _git("rev-parse", "HEAD")
    if head is None:
        pytest.skip("not a git checkout")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    age = result_age({"git_commit": head + "+dirty", "written": now}, "04_vae_posterior_collapse")
    assert age["commits_behind"] == 0 and age["changed"] == [] and not age["stale"] and age["days"] == 0
    unknown = result_age({"git_commit": "unknown"})
    assert unknown["stale"] and unknown["commits_behind"] is None and "unknown" in describe_age(unknown)
    # the commit before lvmcls/vae.py was split: the module changed since, so a result from it is stale
    split = _git("log", "--diff-filter=A", "--format=%H", "--", "lvmcls/vae_as.py")  # the commit that added it
    split = split.splitlines()[-1] if split else None
    if split and _git("cat-file", "-e", f"{split}~1^{{commit}}") is not None:
        old = result_age({"git_commit": f"{split}~1"}, "05_vae_as")
        assert old["commits_behind"] >= 1 and "lvmcls/vae.py" in old["changed"] and old["stale"]
        assert "stale" in describe_age(old)


def test_api_docstrings_become_safe_rest():
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    from plain_docstrings import plain_to_rest

    lines = ["The bound, with s(e|z) the classifier:", "", "Loss per example:", "    L = -log p(x|z) + KL",
             "    (two lines)", "back to text with a *star", "- an item whose text", "  continues here"]
    out = plain_to_rest(lines)
    assert out[0] == "The bound, with s(e\\|z) the classifier:"
    assert out[2:6] == ["Loss per example:::", "", "    L = -log p(x|z) + KL", "    (two lines)"]
    assert out[6:] == ["", "back to text with a \\*star", "- an item whose text", "  continues here"]


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
