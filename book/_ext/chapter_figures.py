"""Number each chapter's figures within the chapter: the second figure of ``notebooks/03_*`` is Figure 3.2.

Without a numbered table of contents Sphinx counts figures across the whole book (Figure 1 in the introduction,
Figure 2 the first of Chapter 1, ...). This renumbers the figures of every ``notebooks/NN_*`` page as
(NN, position on the page), after Sphinx has assigned its numbers, so captions and {numref} agree with the
number `lvmcls.notebook.figure` shows in Jupyter and Colab ("Figure 3.2" for ``fig-ch3-...``).
"""

from __future__ import annotations

import re


def number_by_chapter(app, env):
    for docname, numbers in env.toc_fignumbers.items():
        chapter = re.match(r"notebooks/(\d+)_", docname)
        if chapter is None or "figure" not in numbers:
            continue
        in_order = sorted(numbers["figure"], key=numbers["figure"].get)
        numbers["figure"] = {fid: (int(chapter.group(1)), k) for k, fid in enumerate(in_order, start=1)}
    return []


def setup(app):
    app.connect("env-get-updated", number_by_chapter, priority=900)  # after Sphinx's own numbering (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
