"""Every chapter is a jupytext pair in sync, committed without outputs, with a papermill parameters cell; its code
fits 88 columns, its plumbing folds, and its figures go through `lvmcls.notebook.figure`."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("*.py"))


def test_there_are_chapters_and_all_are_in_the_toc():
    assert CHAPTERS, "no chapters in notebooks/"
    toc = (ROOT / "_toc.yml").read_text()
    for py in CHAPTERS:
        assert f"notebooks/{py.stem}" in toc, f"{py.name} is not in _toc.yml"


def _content(text: str) -> str:
    """The pair's text without the line naming the jupytext version that wrote the header: a newer jupytext on
    a clean clone rewrites that line and nothing else."""
    return re.sub(r"(?m)^#\s+jupytext_version: .*\n", "", text)


@pytest.mark.parametrize("py", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_pair_in_sync(py):
    """Compare the text: `jupytext --diff` exits 0 even when the files differ."""
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.is_file(), f"{ipynb.name} is missing: run `make sync`"
    from_ipynb = jupytext.writes(jupytext.read(ipynb), fmt="py:percent")
    assert _content(from_ipynb) == _content(py.read_text()), f"{py.name} and {ipynb.name} differ: run `make sync`"


@pytest.mark.parametrize("py", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_ipynb_has_no_outputs(py):
    nb = nbformat.read(py.with_suffix(".ipynb"), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "commit the .ipynb without outputs"


@pytest.mark.parametrize("py", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_parameters_cell(py):
    nb = nbformat.read(py.with_suffix(".ipynb"), as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    values = {t.id: ast.literal_eval(node.value) for node in ast.parse(tagged[0].source).body
              if isinstance(node, ast.Assign) for t in node.targets}
    assert values.get("profile") == "auto" and isinstance(values.get("seed"), int)
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert "find_spec(\"lvmcls\")" in first_code.source and "pick_device" in first_code.source
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


def test_install_cells_name_the_repository_of_config():
    """The Colab install cell of every chapter installs from the repository `_config.yml` names (the launch
    buttons' one source): change the URL there, and this test lists the cells to change with it."""
    import yaml

    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    for py in CHAPTERS:
        urls = set(re.findall(r"git\+(https://[^\"']+)", py.read_text()))
        assert urls == {repo}, f"{py.name} installs from {urls or 'nowhere'}, _config.yml names {repo}"


COLUMNS = 88  # ruff format's default line length; the book's code column fits it at 1280 px


@pytest.mark.parametrize("py", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_code_is_ruff_formatted_within_88_columns(py):
    """The chapter's code is `ruff format`ted at 88 columns, and no code line is longer (ruff leaves long strings
    and comments alone: wrap those by hand). Fix: `ruff format notebooks/<stem>.py`, wrap, `make sync`."""
    check = subprocess.run([sys.executable, "-m", "ruff", "format", "--check", "--diff", "--line-length",
                            str(COLUMNS), str(py)], capture_output=True, text=True)
    assert check.returncode == 0, f"ruff format would change {py.name}:\n{check.stdout[:3000]}{check.stderr}"
    nb = jupytext.read(py)
    long = [line for cell in nb.cells if cell.cell_type == "code" for line in cell.source.splitlines()
            if len(line) > COLUMNS]
    assert not long, f"{len(long)} code lines over {COLUMNS} columns in {py.name}, e.g. {long[0]!r}"


def _last_call(source: str) -> str | None:
    """The name of the function the cell's last top-level statement calls, if that statement is a call."""
    body = ast.parse(source).body
    if body and isinstance(body[-1], ast.Expr) and isinstance(body[-1].value, ast.Call):
        func = body[-1].value.func
        return func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    return None


@pytest.mark.parametrize("py", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_plumbing_folds_and_derivations_stay_open(py):
    """What can be decided objectively of the `hide-input` convention: a cell that shows library code
    (`show(...)`) and the parameters cell stay open; a cell whose result is prose or a table built from this
    run's numbers (its last statement is `markdown(...)` or `scorecard(...)`) folds its code. The other
    orchestration cells (training loops, figure drawing) are tagged by judgement."""
    nb = jupytext.read(py)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.get("tags", [])
        head = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
        if "parameters" in tags or re.search(r"^show\(", cell.source, flags=re.M):
            assert "hide-input" not in tags, f"{py.name}: keep this cell open: {head!r}"
        elif _last_call(cell.source) in ("markdown", "scorecard"):
            assert "hide-input" in tags, f"{py.name}: tag this prose/table cell hide-input: {head!r}"


def test_figure_helper_numbers_captions_and_checks_names(monkeypatch):
    """`lvmcls.notebook.figure` emits one output: a numbered MyST figure for the book and the image with its
    caption as HTML for Jupyter; a bad name or an empty caption raises."""
    import base64

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import IPython.display

    from lvmcls import notebook

    outputs = []
    monkeypatch.setattr(IPython.display, "display", lambda data, raw: outputs.append(data))
    notebook._figures.clear()
    for name in ("fig-a", "fig-ch3-b", "fig-a"):  # showing fig-a again keeps its number
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, 1])
        notebook.figure(fig, name, f"Caption of {name}: $x$ against `y` (units).")
        assert not plt.get_fignums(), "the figure is closed, so the inline backend does not draw it again"
    assert len(outputs) == 3
    first, second, again = outputs
    png = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", first["text/markdown"]).group(1)
    assert base64.b64decode(png).startswith(b"\x89PNG")
    assert first["text/markdown"].startswith(":::{figure} data:image/png;base64,")
    assert "\n:name: fig-a\n" in first["text/markdown"] and "Caption of fig-a: $x$" in first["text/markdown"]
    assert png in first["text/html"] and "<figcaption><b>Figure 1.</b>" in first["text/html"]
    assert "<code>y</code>" in first["text/html"]
    assert "<b>Figure 3.2.</b>" in second["text/html"], "fig-ch3-...: numbered within chapter 3, as in the book"
    assert "<b>Figure 1.</b>" in again["text/html"]
    fig = plt.figure()
    with pytest.raises(ValueError, match="fig-"):
        notebook.figure(fig, "Posterior plot", "caption")
    with pytest.raises(ValueError, match="caption"):
        notebook.figure(fig, "fig-c", "  ")
    with pytest.raises(TypeError, match="matplotlib"):
        notebook.figure("not a figure", "fig-d", "caption")
    plt.close("all")


def test_injected_parameters_cell_is_removed_from_the_book(tmp_path):
    """The book's staging step tags papermill's injected cell `remove-cell` and leaves every other cell alone."""
    from lvmcls.notebook import remove_injected_parameters

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('profile = "auto"', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell('profile = "ci"', metadata={"tags": ["injected-parameters"]}),
                nbformat.v4.new_code_cell("run = setup(profile)")]
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nb, path)
    assert remove_injected_parameters(path) == 1
    tags = [c.metadata.get("tags", []) for c in nbformat.read(path, as_version=4).cells]
    assert tags == [["parameters"], ["injected-parameters", "remove-cell"], []]
    assert remove_injected_parameters(path) == 0  # idempotent


def test_training_shows_epoch_and_batch_progress_unless_turned_off(capsys, monkeypatch):
    """Long training in Jupyter/Colab shows two tqdm bars, epochs and batches; the book's papermill runs set
    LVMCLS_PROGRESS=0 and print none."""
    import torch

    from lvmcls.data import TensorSplit
    from lvmcls.train import Trainer

    class Linear(torch.nn.Linear):
        def training_step(self, x, y):
            return {"loss": torch.nn.functional.cross_entropy(self(x), y)}

    split = TensorSplit(torch.randn(64, 3), torch.randint(0, 2, (64,)))
    monkeypatch.setenv("LVMCLS_PROGRESS", "1")
    Trainer(max_epochs=2, batch_size=16).fit(Linear(3, 2), split)
    shown = capsys.readouterr().err
    assert "epoch" in shown and "batch" in shown, f"expected an epoch bar and a batch bar, got {shown!r}"
    monkeypatch.setenv("LVMCLS_PROGRESS", "0")
    Trainer(max_epochs=2, batch_size=16).fit(Linear(3, 2), split)
    assert capsys.readouterr().err == ""


def test_chapters_run_where_ipython_is_missing(capsys, monkeypatch):
    """The GPU machines that run the full profiles as plain scripts have no IPython: no chapter imports it (the
    library's `show`, `markdown`, `display` and `figure` fall back to printing), and the fallbacks print."""
    for py in CHAPTERS:
        code = py.read_text()
        assert not re.search(r"^\s*(from|import) IPython", code, re.M), f"{py.name} imports IPython: use lvmcls.notebook"
    import sys

    from lvmcls import notebook

    monkeypatch.setitem(sys.modules, "IPython", None)
    monkeypatch.setitem(sys.modules, "IPython.display", None)
    notebook.display({"a table": 1})
    notebook.markdown("**some text**")
    out = capsys.readouterr().out
    assert "{'a table': 1}" in out and "**some text**" in out


@pytest.mark.parametrize("py", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_every_label_sits_on_a_heading(py):
    """A `{ref}` without a title (the claims page's links) needs its `(label)=` target directly above a heading:
    Sphinx fails the book (warnings are errors) on a label above a paragraph."""
    lines = py.read_text().splitlines()
    for i, line in enumerate(lines):
        if re.fullmatch(r"# \([\w-]+\)=", line):
            assert i + 1 < len(lines) and lines[i + 1].startswith("# #"), (
                f"{py.name}:{i + 1}: {line[2:]} is not followed by a heading; move it above one")
