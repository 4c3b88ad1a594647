"""`lvmcls.gpu_window` on fake chapters (tiny scripts that write a results file), as `make full-gpu` runs them:
stalest first, a chapter that cannot fit the time left is skipped, a run past the window is stopped, and a second
window continues where the first stopped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lvmcls.gpu_window import chapter_estimate_s, plan, run_window

ROOT = Path(__file__).resolve().parents[1]
FAKE = '''FULL_MINUTES_H100 = {minutes}
import time
from lvmcls.results import write_results
time.sleep({sleep})
write_results("{stem}", profile="smoke", device="cpu", seeds=[0], data_source="fake", metrics={{}},
              wall_time_s=0, folder=r"{folder}")
'''


def _git(*args):
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()


@pytest.fixture()
def chapters(tmp_path):
    notebooks, folder = tmp_path / "notebooks", tmp_path / "results"
    notebooks.mkdir(), folder.mkdir()
    for stem, minutes, sleep in (("01_a", 0.01, 0), ("02_b", 10, 0), ("03_c", 0.01, 0), ("04_slow", 0.01, 60)):
        (notebooks / f"{stem}.py").write_text(FAKE.format(minutes=minutes, sleep=sleep, stem=stem, folder=folder))
    head = _git("rev-parse", "HEAD")
    first = _git("rev-list", "--max-parents=0", "HEAD").split()[0]
    (folder / "03_c.json").write_text(json.dumps({"git_commit": head}))  # current
    (folder / "01_a.json").write_text(json.dumps({"git_commit": first}))  # the first commit: stale
    return notebooks, folder


def test_estimates_are_read_from_the_parameters_cell(chapters, tmp_path):
    notebooks, _ = chapters
    assert chapter_estimate_s(notebooks / "02_b.py") == 600
    (tmp_path / "x.py").write_text("profile = 'auto'\n")
    with pytest.raises(ValueError, match="FULL_MINUTES_H100"):
        chapter_estimate_s(tmp_path / "x.py")
    for notebook in sorted((ROOT / "notebooks").glob("0*.py")):  # every chapter declares its share
        assert 0 < chapter_estimate_s(notebook) <= 60 * 60


def test_a_window_runs_stalest_first_skips_what_does_not_fit_and_resumes(chapters, tmp_path):
    notebooks, folder = chapters
    order = [stem for stem, _ in plan(["01_a", "02_b", "03_c", "04_slow"], folder)]
    assert order[:2] == ["02_b", "04_slow"] and order[2:] == ["01_a", "03_c"]  # missing, then stale, then current
    log = {e["stem"]: e for e in run_window(8, tmp_path / "out", notebooks=notebooks, folder=folder,
                                           python=sys.executable, profile="smoke")}
    assert log["02_b"]["action"].startswith("skipped: its estimate 600 s exceeds")
    assert log["04_slow"]["action"] == "ran" and log["04_slow"]["rc"] == "timeout"  # stopped at the window's end
    assert log["01_a"]["action"].startswith("skipped: its estimate") or log["01_a"].get("rc") == 0
    assert log["03_c"]["action"] == "skipped: current"
    assert (tmp_path / "out" / "04_slow.log").is_file()
    assert json.loads((tmp_path / "out" / "window.json").read_text())[0]["stem"] == "02_b"
    # the next window: 04_slow still has no result (first), 01_a runs if it did not, and nothing current reruns
    (notebooks / "04_slow.py").write_text((notebooks / "04_slow.py").read_text().replace("time.sleep(60)", ""))
    again = {e["stem"]: e for e in run_window(60, tmp_path / "out2", notebooks=notebooks, folder=folder,
                                             python=sys.executable, profile="smoke")}
    assert again["04_slow"]["rc"] == 0 and (folder / "04_slow.json").is_file()
    assert again["01_a"]["action"] in ("ran", "skipped: current")
    third = {e["stem"]: e for e in run_window(60, tmp_path / "out3", notebooks=notebooks, folder=folder,
                                             python=sys.executable, profile="smoke")}
    assert all(third[s]["action"] == "skipped: current" for s in ("01_a", "03_c", "04_slow"))


def test_the_books_full_profiles_fit_one_window():
    """Issue 24: every chapter declares its full-profile estimate, and the seven fit one 15-minute device window with
    start-up: at most 12 minutes (720 s) on one H100 together."""
    books = sorted((ROOT / "notebooks").glob("0*.py"))
    assert len(books) == 7
    total = sum(chapter_estimate_s(p) for p in books)
    assert total <= 720, f"the full profiles add up to {total:.0f} s > 720 s: cut a chapter's full knobs"
