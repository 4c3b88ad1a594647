"""Every chapter is a jupytext pair in sync, committed without outputs, with a papermill parameters cell."""

from __future__ import annotations

import ast
import re
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


@pytest.mark.parametrize("py", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_pair_in_sync(py):
    """Compare the text: `jupytext --diff` exits 0 even when the files differ."""
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.is_file(), f"{ipynb.name} is missing: run `make sync`"
    from_ipynb = jupytext.writes(jupytext.read(ipynb), fmt="py:percent")
    assert from_ipynb == py.read_text(), f"{py.name} and {ipynb.name} differ: run `make sync`"


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
