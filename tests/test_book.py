"""The built book (`make book`): pages, figures, the Colab button, MathJax served locally and typeset, and what a
reader sees in headless Chromium at 1280 px: scorecards as tables, code within the column, captioned figures."""

from __future__ import annotations

import functools
import html
import http.server
import json
import os
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


def test_claims_page_is_the_ledger_of_these_results(tmp_path):
    """The claims page the book shows is `lvmcls.ledger` recomputed from results/, results/long/ and results/full/
    now (a results file changed after the build fails here), its figure too, with one row per registry claim
    (≥ 15), each with a ci verdict, linked to the chapter section that decides it."""
    from lvmcls import registry
    from lvmcls.ledger import FIGURE, MARKER, gather, render, write_page

    expected = registry.claims()
    staged = ROOT / "_build" / "src" / "book" / "claims.md"
    assert staged.is_file(), "make book stages book/claims.md filled by python -m lvmcls.ledger"
    assert staged.read_text() == write_page(tmp_path / "claims.md").read_text(), (
        "the built claims page differs from the ledger of the current results files: run make book again")
    assert (staged.parent / FIGURE).read_bytes() == (tmp_path / FIGURE).read_bytes(), "the figure is stale"
    assert MARKER not in staged.read_text()
    page = (HTML / "book" / "claims.html").read_text()
    rows = re.findall(r"<tr[^>]*>\s*<td", page)
    assert len(rows) >= len(expected) >= 15, f"{len(rows)} claim rows on the page"
    body = render()
    for key in expected:
        assert f"`{key}`" in body, key
    missing = [r["key"] for r in gather() if r["ci"] is None]
    assert not missing, f"claims no chapter recorded: {missing} (a chapter must pass claims=[...] to write_results)"
    links = re.findall(r'<td[^>]*>.*?<a class="reference internal" href="../notebooks/(\d\d_\w+)\.html#', page,
                       flags=re.S)
    assert len(links) >= 15, f"only {len(links)} claims link to a chapter section"


def test_api_reference_documents_every_module():
    """One API page per module group, each module with its functions: every `lvmcls` module appears."""
    import pkgutil

    import lvmcls

    pages = "".join((HTML / "book" / "api" / f"{p}.html").read_text() for p in ("models", "training", "metrics"))
    modules = [m.name for m in pkgutil.iter_modules(lvmcls.__path__)]
    missing = [m for m in modules if f'id="module-lvmcls.{m}"' not in pages]
    assert not missing, f"modules without an API section: {missing} (add them to book/api/*.md)"
    assert 'id="lvmcls.vae_as.VAEAS"' in pages and 'id="lvmcls.decisions.paired_decision"' in pages


def test_chapter1_has_its_figures(ch1):
    """Figures are embedded in the page (lvmcls.notebook.figure: a MyST figure of a PNG data URI)."""
    import base64

    images = re.findall(r'<figure[^>]*>\s*<img[^>]+src="data:image/png;base64,([A-Za-z0-9+/=]+)"', ch1)
    assert len(images) >= 4, "chapter 1 draws four figures"
    for png in images:
        assert len(base64.b64decode(png)) > 5000


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


# Injected into every page the test server sends: once the page (and MathJax) has settled, unfold the folded
# cells and write what a reader sees into <pre id="lvmcls-probe"> as JSON, for `chromium --dump-dom` to return.
PROBE = """<script>
const settled = () => (window.MathJax && MathJax.startup ? MathJax.startup.promise : Promise.resolve());
addEventListener("load", () => settled().then(() => setTimeout(() => {
  const folded = [...document.querySelectorAll("details")].filter((d) => !d.open);
  folded.forEach((d) => { d.open = true; });  // a reader can unfold every cell: measure them unfolded
  const text = (el) => (el ? el.textContent.replace(/\\s+/g, " ").trim() : "");
  const report = {overflow: [], tables: [], garbled: [], figures: [], bare_images: []};
  document.querySelectorAll("div.cell_input div.highlight pre, div.cell_output pre").forEach((pre) => {
    if (pre.scrollWidth > pre.clientWidth + 1) {
      const lines = pre.textContent.split("\\n");
      const longest = lines.reduce((a, b) => (b.length > a.length ? b : a), "");
      report.overflow.push({scroll: pre.scrollWidth, client: pre.clientWidth, line: longest});
    }
  });
  document.querySelectorAll("table").forEach((table) => {
    const header = [...table.querySelectorAll("thead th, tr:first-child th")].map(text);
    // a scorecard's rows by their key (its second column), any other table's by its first cell
    const column = header[1] === "key" ? 1 : 0;
    const rows = [...table.querySelectorAll("tbody tr")].map((tr) => text(tr.querySelectorAll("td")[column]));
    report.tables.push({header: header, rows: rows});
  });
  document.querySelectorAll("p").forEach((p) => {
    const t = p.textContent;
    if (t.includes("|---") || t.includes("|\\u2014|")) report.garbled.push(t.slice(0, 80));
  });
  document.querySelectorAll("figure").forEach((f) => {
    const img = f.querySelector("img");
    report.figures.push({id: f.id, caption: text(f.querySelector("figcaption")), image: !!img,
                         loaded: !!img && img.complete && img.naturalWidth > 0});
  });
  document.querySelectorAll(".cell_output img").forEach((img) => {
    if (!img.closest("figure")) report.bare_images.push(img.getAttribute("src").slice(0, 60));
  });
  folded.forEach((d) => { d.open = false; });  // and take the screenshots as the page opens
  report.math = document.querySelectorAll("mjx-container").length;
  report.merror = document.querySelectorAll("mjx-merror").length;
  const out = document.createElement("pre");
  out.id = "lvmcls-" + "probe";
  out.style.display = "none";
  out.textContent = JSON.stringify(report);
  document.body.appendChild(out);
  // ?view=<id>: the page's article shows only that element (the scorecard's section, a figure), for its
  // screenshot: headless Chromium paints a blank viewport once the page is scrolled (by script or #fragment).
  const target = document.getElementById(new URLSearchParams(location.search).get("view") || "");
  if (target) document.querySelector("article.bd-article").replaceChildren(target);
}, 200)));
</script>"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        if not (path.suffix == ".html" and path.is_file()):
            return super().do_GET()
        body = path.read_text().replace("</body>", PROBE + "</body>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server():
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


CHAPTER_PAGES = sorted(p.stem for p in (ROOT / "notebooks").glob("*.py"))
WIDTH = 1280  # the reader's window: 88 columns of code must fit the content column at this width
SHOTS = ROOT / "_build" / "screenshots"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium's command lines (three, for browsers side by side), or a skip (a failure in CI) when it is
    not installed."""
    chromium = _chromium()
    if chromium is None:
        if os.environ.get("CI", "") not in ("", "0", "false"):
            pytest.fail("chromium is not installed: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    profiles = tmp_path_factory.mktemp("chromium-profiles")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--hide-scrollbars",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    # one profile folder per browser running at the same time (a profile is locked by the browser using it)
    return [[chromium, *flags, f"--user-data-dir={profiles / str(k)}"] for k in range(3)]


_seen: dict[str, dict] = {}


def _what_a_reader_sees(stem: str, server: str, browser: list) -> dict:
    """Load the chapter at 1280 px, let MathJax typeset, read the probe's report (once per chapter)."""
    if stem not in _seen:
        url = f"{server}/notebooks/{stem}.html"
        dom = subprocess.run([*browser[0], f"--window-size={WIDTH},1000", "--virtual-time-budget=20000",
                              "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
        found = re.search(r'<pre id="lvmcls-probe"[^>]*>(.*?)</pre>', dom, flags=re.S)
        assert found, f"the probe did not report on {url} (the page did not finish loading?)"
        _seen[stem] = json.loads(html.unescape(found.group(1)))
    return _seen[stem]


def _screenshots(browser: list, shots: list[tuple[str, Path, int]]) -> None:
    """Save a screenshot (url, path, window height) each, 1280 px wide, the browsers running side by side."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    running = [subprocess.Popen([*command, f"--window-size={WIDTH},{height}", "--virtual-time-budget=5000",
                                 f"--screenshot={path}", url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for command, (url, path, height) in zip(browser, shots)]
    for process in running:
        process.wait(timeout=120)


@pytest.mark.parametrize("stem", CHAPTER_PAGES)
def test_math_is_typeset_in_headless_chromium(stem, server, browser):
    """Load each chapter in Chromium, let MathJax run: every formula Sphinx emitted must be typeset, without a TeX
    error."""
    seen = _what_a_reader_sees(stem, server, browser)
    emitted = (HTML / "notebooks" / f"{stem}.html").read_text().count('class="math notranslate nohighlight"')
    assert emitted >= 1, "the chapter has no math"
    assert seen["math"] >= emitted, f"only {seen['math']} of {emitted} formulas typeset by MathJax"
    assert seen["merror"] == 0, "MathJax reported a TeX error"


def _scorecard_keys(stem: str) -> list[str]:
    """The metric keys of the scorecard the executed chapter printed (its Markdown output: the main table, then
    the folded one), checked against the results file of the same run; every row names its quantity in words."""
    nb = json.loads((ROOT / "_build" / "executed" / "notebooks" / f"{stem}.ipynb").read_text())
    cards = ["".join(o["data"]["text/markdown"]) for c in nb["cells"] for o in c.get("outputs", [])
             if "| quantity | key | paper |" in "".join(o.get("data", {}).get("text/markdown", ""))]
    assert len(cards) == 1, f"{stem}: the executed chapter printed {len(cards)} scorecards"
    table_rows = re.findall(r"^\| ([^|`]+?) \| `([^`]+)` \|.*\| ([^|]*) \|$", cards[0], flags=re.M)
    raw = [key for words, key, _ in table_rows if words.strip() == key]
    assert not raw, f"{stem}: scorecard rows named by their raw key only (lvmcls.words): {raw[:5]}"
    rows = [(key, value) for _, key, value in table_rows]  # (key, this run's value)
    profile = nb["metadata"]["papermill"]["parameters"]["profile"]
    results = ROOT / "results" / ("" if profile == "ci" else profile) / f"{stem}.json"
    if results.is_file():  # a row is a metric of this run, or a paper's row this run did not measure ("—")
        measured = json.loads(results.read_text())["metrics"]
        strays = [key for key, value in rows if key not in measured and value != "—"]
        assert not strays, f"scorecard rows with a value but not in {results.name}'s metrics: {strays}"
    return [key for key, _ in rows]


@pytest.mark.parametrize("stem", CHAPTER_PAGES)
def test_a_reader_sees_tables_fitting_code_and_captioned_figures(stem, server, browser):
    """What a reader sees at 1280 px, in Chromium: the scorecard is a <table> with one row per metric of the
    chapter's scorecard, no paragraph holds a Markdown table separator, no line of a code cell runs past the
    content column (unfolded cells included), and every figure is numbered and captioned. Screenshots of the
    top of the page, of the scorecard and of the first figure go to _build/screenshots."""
    seen = _what_a_reader_sees(stem, server, browser)
    url = f"{server}/notebooks/{stem}.html"  # the screenshots first: a failing page is the one to look at
    shots = [(url, SHOTS / f"{stem}.png", 2400), (f"{url}?view=scorecard", SHOTS / f"{stem}-scorecard.png", 1200)]
    if seen["figures"]:
        shots.append((f"{url}?view={seen['figures'][0]['id']}", SHOTS / f"{stem}-figure.png", 1200))
    _screenshots(browser, shots)
    for _, path, _ in shots:
        assert path.stat().st_size > 20_000, f"the screenshot {path.name} is blank"
    assert not seen["garbled"], f"Markdown tables left as text: {seen['garbled'][:2]}"
    cards = [t for t in seen["tables"] if t["header"][:3] == ["quantity", "key", "paper"]]
    assert 1 <= len(cards) <= 2, f"{len(cards)} scorecard tables on the page (the main one and the folded one)"
    shown = [key for card in cards for key in card["rows"]]
    assert shown == _scorecard_keys(stem), "the scorecard tables' rows are not the chapter's metrics"
    clipped = [f"{o['line'][:70]!r} ({o['scroll']} > {o['client']} px)" for o in seen["overflow"]]
    assert not clipped, f"{len(clipped)} code cells scroll sideways at {WIDTH} px: {clipped[:3]}"
    assert seen["figures"], "the chapter has no figure"
    for k, fig in enumerate(seen["figures"], start=1):  # numbered within the chapter, as Jupyter shows them
        number = f"Figure {int(stem[:2])}.{k} "
        assert fig["image"] and fig["caption"].startswith(number) and len(fig["caption"]) > len(number) + 20, (
            f"figure {fig['id']!r} is not captioned {number!r} + a sentence: {fig['caption'][:60]!r}")
    assert not seen["bare_images"], f"images outside a captioned figure: {seen['bare_images'][:3]}"


def test_the_claims_page_shows_its_figure_and_the_compact_table(server, browser):
    """The claims page in Chromium at 1280 px: the ledger's figure is a loaded image (naturalWidth > 0), the counts
    table has a row per profile, and the compact table one row per claim, in the ledger's order, each starting
    with its key; no Markdown table is left as text. Screenshots of the page and of the figure go to
    _build/screenshots."""
    from lvmcls.ledger import gather

    url = f"{server}/book/claims.html"
    dom = subprocess.run([*browser[0], f"--window-size={WIDTH},1000", "--virtual-time-budget=20000", "--dump-dom",
                          url], capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'<pre id="lvmcls-probe"[^>]*>(.*?)</pre>', dom, flags=re.S)
    assert found, f"the probe did not report on {url} (the page did not finish loading?)"
    seen = json.loads(html.unescape(found.group(1)))
    shots = [(url, SHOTS / "claims.png", 2400), (f"{url}?view=fig-claims", SHOTS / "claims-figure.png", 1400)]
    _screenshots(browser, shots)
    for _, path, _ in shots:
        assert path.stat().st_size > 20_000, f"the screenshot {path.name} is blank"
    figure = [f for f in seen["figures"] if f["id"] == "fig-claims"]
    assert figure and figure[0]["image"] and figure[0]["loaded"], f"the ledger's figure did not load: {figure}"
    assert figure[0]["caption"].startswith("Figure") and "paper’s effect" in figure[0]["caption"].replace("'", "’")
    assert not seen["garbled"], f"Markdown tables left as text: {seen['garbled'][:2]}"
    counts = [t for t in seen["tables"] if t["header"][:1] == ["profile"]]
    assert len(counts) == 1 and counts[0]["rows"] == ["ci", "long", "full"], counts
    keys = [r["key"] for r in gather()]
    compact = [t for t in seen["tables"]
               if [h.replace("’", "'") for h in t["header"][:2]] == ["claim", "paper's effect"]]
    assert len(compact) == 1, f"{len(compact)} compact claims tables on the page"
    assert len(compact[0]["rows"]) == len(keys) and all(
        row.startswith(key) for row, key in zip(compact[0]["rows"], keys)), compact[0]["rows"][:3]


@pytest.mark.parametrize("stem", CHAPTER_PAGES)
def test_tables_render_as_tables(stem):
    """Markdown tables printed by a chapter (scorecards, results tables) become <table>s, never a paragraph of
    pipes: the scorecard is a table whose rows are the chapter's metrics."""
    page = (HTML / "notebooks" / f"{stem}.html").read_text()
    paragraphs = re.findall(r"<p>(.*?)</p>", page, flags=re.S)
    garbled = [p[:80] for p in paragraphs if "|---" in p or "|—|" in p or "| — |" in p and p.count("|") > 6]
    assert not garbled, f"Markdown tables left as text: {garbled[:2]}"
    tables = re.findall(r"<table.*?</table>", page, flags=re.S)
    scorecards = [t for t in tables if re.search(r"<th[^>]*>\s*(<p>)?\s*quantity\s*(</p>)?\s*</th>", t)]
    assert 1 <= len(scorecards) <= 2, "the chapter must end with one scorecard (a main table and a folded one)"
    assert scorecards[0].count("<tr") >= 3, "the scorecard has a header and rows"
