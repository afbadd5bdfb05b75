"""A matplotlib figure that a notebook shows as a picture, without pyplot.

The plot helpers draw with matplotlib's object API: no pyplot, so no global registry
keeps their figures alive and no backend is switched. But IPython shows a plain
``Figure`` as a picture only once pyplot's inline backend has registered its formatter
(in a fresh kernel it shows ``<Figure size 700x350 with 1 Axes>``); this one shows itself.
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure as _Figure


class Figure(_Figure):
    """A ``matplotlib.figure.Figure`` with a PNG representation for IPython and JupyterLab."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()
