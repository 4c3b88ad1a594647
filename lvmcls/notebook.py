"""Chapter set-up shared by every notebook: resolve the profile, seed, pick the device, show code and text.

Profiles: ``ci`` (a few minutes on two CPU cores: the published book and the pilot of every decision), ``long``
(one seed of a chapter's powered design on two CPU cores, run by `lvmcls.long`), ``full`` (one GPU: the papers' networks,
schedules within about 8 minutes on an H100), ``smoke`` (the ``full`` networks for a few steps, on any machine:
CI runs it so that the GPU path's code is exercised), and ``auto`` = ``full`` on a CUDA GPU, else ``ci``.
Outside papermill, ``auto`` also reads the environment variable ``LVMCLS_PROFILE``, so a chapter runs as a plain
script: ``LVMCLS_PROFILE=full python notebooks/03_vc_experiments.py``. IPython is optional: without it, `show`,
`markdown`, `figure` and `scorecard` print plain text. ``ci`` and ``smoke`` fix torch's CPU threads at 2
(`CPU_THREADS`).
"""

from __future__ import annotations

import base64
import html
import inspect
import io
import os
import re
import time
from dataclasses import dataclass

import torch

from .results import scorecard_markdown, write_results
from .train import pick_device, seed_everything

PROFILES = ("auto", "ci", "long", "full", "smoke")
# CPU threads for chapter training, fixed so that a machine with more cores computes the same numbers as CI's two.
CPU_THREADS = {"ci": 2, "long": 2, "smoke": 2}


@dataclass
class Setup:
    profile: str  # "ci", "long", "full" or "smoke", never "auto"
    seed: int
    device: torch.device
    started: float

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def write_results(self, stem: str, *, data_source, metrics: dict, paper: dict | None = None, seeds=None,
                      **extra):
        """`lvmcls.results.write_results` for this run: its profile, device and wall time so far; ``seeds``
        defaults to ``[seed]``. Returns the path written."""
        return write_results(stem, profile=self.profile, device=self.device,
                             seeds=[self.seed] if seeds is None else seeds, data_source=data_source,
                             metrics=metrics, paper=paper, wall_time_s=self.elapsed(), **extra)


def resolve_profile(profile: str) -> str:
    """"auto" means ``$LVMCLS_PROFILE`` when set, else "full" on a CUDA GPU and "ci" otherwise."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    if profile == "auto":
        env = os.environ.get("LVMCLS_PROFILE", "")
        if env:
            if env not in PROFILES[1:]:
                raise ValueError(f"LVMCLS_PROFILE must be one of {PROFILES[1:]}, got {env!r}")
            return env
        return "full" if torch.cuda.is_available() else "ci"
    return profile


def setup(profile: str = "auto", seed: int = 0, device: str | None = None,
          full_minutes_h100: float | None = None) -> Setup:
    """Resolve ``profile``, seed everything with ``seed`` and pick the device; print one line about it.

    ``full_minutes_h100``: the chapter's measured ``full``-profile time on one H100, printed before a ``full`` run
    with the estimate for a Colab T4 (8–15× slower), so a reader can switch to ``profile = "ci"`` in one edit.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    from .plots import use_style

    use_style()
    _figures.clear()
    resolved = resolve_profile(profile)
    if resolved in CPU_THREADS:  # the same numbers on a machine with more cores (recorded in every result)
        torch.set_num_threads(CPU_THREADS[resolved])
    seed_everything(seed)
    dev = pick_device(device)
    print(f"profile={resolved} (asked: {profile}), seed={seed}, device={dev}, torch {torch.__version__}")
    if resolved == "full" and full_minutes_h100 is not None:
        print(f"The full profile takes about {full_minutes_h100:.0f} min on one H100, about "
              f"{8 * full_minutes_h100:.0f}-{15 * full_minutes_h100:.0f} min on a Colab T4. For a few minutes "
              "instead, set profile = \"ci\" in the parameters cell.")
    return Setup(resolved, seed, dev, time.perf_counter())


def show(obj):
    """The source of a library function or class, for the chapter to show the code it runs."""
    source = inspect.getsource(obj)
    try:
        from IPython.display import Code
    except ImportError:  # a plain script: print it
        print(source)
        return None
    return Code(source, language="python")


def display(obj) -> None:
    """IPython's ``display`` in a notebook (a table, a figure); printed as plain text in a script."""
    try:
        from IPython.display import display as ipython_display
    except ImportError:
        print(obj)
        return
    ipython_display(obj)


def markdown(text: str):
    """``text`` rendered as Markdown in a notebook; printed as plain text in a script."""
    try:
        from IPython.display import Markdown
    except ImportError:
        print(text)
        return None
    return Markdown(text)


def scorecard(stem: str, metrics: dict, paper: dict | None = None, folder=None, labels: dict | None = None,
              seeds=None, sources: dict | None = None):
    """Display the chapter's scorecard (`lvmcls.results.scorecard_markdown`): every metric in words beside the
    paper's number (with its table and row, ``sources``) and ours (full profile, with its age; this run)."""
    return markdown(scorecard_markdown(stem, metrics, paper, folder, labels=labels, seeds=seeds, sources=sources))


FIGURE_NAME = re.compile(r"fig-[a-z0-9]+(-[a-z0-9]+)*")
_figures: list[str] = []  # the names shown by `figure` since the last `setup` (one chapter)


def _caption_html(caption: str) -> str:
    """The caption's Markdown as HTML, for the few forms captions use: `code`, **bold**, *italic*."""
    text = html.escape(caption, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)
    return re.sub(r"(?<![*\w])\*([^*]+)\*(?![*\w])", r"<i>\1</i>", text)


def figure(fig, name: str, caption: str):
    """Show a matplotlib figure with a numbered caption; the prose refers to it as {numref}`name`.

    ``fig``: a matplotlib ``Figure`` (or anything with a ``.figure``, e.g. a seaborn ``FacetGrid``). ``name``:
    ``fig-ch<N>-`` and lower-case words joined by hyphens, unique in the book (the target of {numref}); the
    figure is numbered N.k, k counting the chapter's figures, in the book (book/_ext) and here. ``caption``:
    one or two sentences of Markdown (inline math allowed) that name what is plotted, with axes and units.

    One output carries two renderings of the same PNG: the book shows the ``text/markdown`` one, a MyST
    ``{figure}`` (numbered by Sphinx, ``_config.yml`` ranks Markdown first); Jupyter and Colab show the
    ``text/html`` one, the image above "Figure N.k. caption". The figure is
    closed, so the inline backend does not draw it a second time. In a plain script the caption is printed.
    """
    fig = getattr(fig, "figure", fig)
    if not hasattr(fig, "savefig"):
        raise TypeError(f"figure() takes a matplotlib Figure (or a seaborn grid), got {type(fig).__name__}")
    if not isinstance(name, str) or not FIGURE_NAME.fullmatch(name):
        raise ValueError(f"figure name must look like 'fig-ch1-posteriors' (fig-, lower-case words and "
                         f"hyphens), got {name!r}")
    caption = " ".join(caption.split())
    if not caption:
        raise ValueError(f"figure {name!r} needs a caption saying what is plotted (axes, units)")
    if name not in _figures:  # a cell run again in Jupyter keeps its figure's number
        _figures.append(name)
    k = _figures.index(name) + 1
    chapter = re.match(r"fig-ch(\d+)-", name)  # fig-ch3-...: Figure 3.k, as the book numbers it
    number = f"{int(chapter.group(1))}.{k}" if chapter else str(k)
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    png = base64.b64encode(buf.getvalue()).decode("ascii")
    try:
        from IPython.display import display
    except ImportError:
        print(f"Figure {number}. {caption}")
        return None
    alt = re.sub(r"[`*$\\]", "", caption)
    page = (f'<figure id="{name}" style="margin: 0"><img src="data:image/png;base64,{png}" alt="{html.escape(alt)}" '
            f'style="max-width: 100%"/><figcaption><b>Figure {number}.</b> {_caption_html(caption)}'
            "</figcaption></figure>")
    book = f":::{{figure}} data:image/png;base64,{png}\n:name: {name}\n:alt: {alt}\n\n{caption}\n:::\n"
    display({"text/html": page, "text/markdown": book, "text/plain": f"Figure {number}. {caption}"}, raw=True)
    return None


def remove_injected_parameters(path) -> int:
    """Tag papermill's injected parameters cell of the notebook at ``path`` ``remove-cell``, so that the book
    shows only the chapter's own parameters cell (`setup` prints the values the run used). Returns how many
    cells it tagged (0 or 1)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    tagged = 0
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
            tagged += 1
    nbformat.write(nb, path)
    return tagged


if __name__ == "__main__":  # python -m lvmcls.notebook remove-injected NOTEBOOK...
    import sys

    if len(sys.argv) < 3 or sys.argv[1] != "remove-injected":
        sys.exit("usage: python -m lvmcls.notebook remove-injected NOTEBOOK.ipynb...")
    for notebook in sys.argv[2:]:
        remove_injected_parameters(notebook)
