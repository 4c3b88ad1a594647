"""The built book (`make book`): pages, figures, the Colab button, MathJax served locally and typeset."""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
CH1 = HTML / "notebooks" / "01_softmax_probabilities.html"


@pytest.fixture(scope="module")
def ch1() -> str:
    if not CH1.is_file():
        pytest.fail(f"{CH1} is missing: run `make book` first")
    return CH1.read_text()


def test_pages_exist():
    for page in ("index.html", "book/intro.html", "book/notation.html"):
        assert (HTML / page).is_file(), page
    intro = (HTML / "book" / "intro.html").read_text()
    assert "graphical_model.svg" in intro and (HTML / "_images" / "graphical_model.svg").is_file()


def test_chapter1_has_its_figures(ch1):
    images = re.findall(r'<img[^>]+src="\.\./(_images/[^"]+\.png)"', ch1)
    assert len(images) >= 4, "chapter 1 draws four figures"
    for src in images:
        assert (HTML / src).stat().st_size > 5000


def test_mathjax_is_served_locally(ch1):
    scripts = re.findall(r'<script[^>]+src="([^"]*tex-chtml[^"]*)"', ch1)
    assert scripts, "no MathJax script on the page"
    for src in scripts:
        assert "://" not in src, f"MathJax loads from the network: {src}"
        assert (CH1.parent / src.split("?")[0]).resolve().is_file()
    assert "cdn.jsdelivr" not in ch1


def test_colab_button_points_at_the_committed_notebook(ch1):
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    slug = repo.removeprefix("https://github.com/")
    assert f"https://colab.research.google.com/github/{slug}/blob/main/notebooks/01_softmax_probabilities.ipynb" in ch1


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


CHAPTER_PAGES = sorted(p.stem for p in (ROOT / "notebooks").glob("*.py"))


@pytest.mark.parametrize("stem", CHAPTER_PAGES)
def test_math_is_typeset_in_headless_chromium(stem, server, tmp_path, in_ci):
    """Load each chapter in Chromium, let MathJax run: every formula Sphinx emitted must be typeset, without a TeX
    error. Keeps a screenshot of each page in _build/screenshots."""
    chromium = _chromium()
    if chromium is None:
        if in_ci:
            pytest.fail("chromium is not installed: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=20000"]
    url = f"{server}/notebooks/{stem}.html"
    dom = subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    emitted = (HTML / "notebooks" / f"{stem}.html").read_text().count('class="math notranslate nohighlight"')
    typeset = dom.count("<mjx-container")
    assert emitted >= 1, "the chapter has no math"
    assert typeset >= emitted, f"only {typeset} of {emitted} formulas typeset by MathJax"
    assert "<mjx-merror" not in dom, "MathJax reported a TeX error"
    shots = ROOT / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    subprocess.run([chromium, *flags, "--window-size=1280,2400", f"--screenshot={shots / (stem + '.png')}", url],
                   capture_output=True, timeout=120)
    assert (shots / f"{stem}.png").stat().st_size > 50_000


@pytest.mark.parametrize("stem", CHAPTER_PAGES)
def test_tables_render_as_tables(stem):
    """Markdown tables printed by a chapter (scorecards, results tables) become <table>s, never a paragraph of
    pipes: the scorecard is a table whose rows are the chapter's metrics."""
    page = (HTML / "notebooks" / f"{stem}.html").read_text()
    paragraphs = re.findall(r"<p>(.*?)</p>", page, flags=re.S)
    garbled = [p[:80] for p in paragraphs if "|---" in p or "|—|" in p or "| — |" in p and p.count("|") > 6]
    assert not garbled, f"Markdown tables left as text: {garbled[:2]}"
    tables = re.findall(r"<table.*?</table>", page, flags=re.S)
    scorecards = [t for t in tables if re.search(r"<th[^>]*>\s*(<p>)?\s*metric\s*(</p>)?\s*</th>", t)]
    assert len(scorecards) == 1, "the chapter must end with one scorecard table"
    assert scorecards[0].count("<tr") >= 3, "the scorecard has a header and rows"
