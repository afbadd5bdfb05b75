"""A matplotlib figure that a notebook shows as a picture, without pyplot, in either theme.

The plot helpers draw with matplotlib's object API: no pyplot, so no global registry
keeps their figures alive and no backend is switched. But IPython shows a plain
``Figure`` as a picture only once pyplot's inline backend has registered its formatter
(in a fresh kernel it shows ``<Figure size 700x350 with 1 Axes>``); this one shows itself.

Pictures are drawn at twice the pixels they are shown at (sharp on any screen, never
stretched), on a transparent background with grey text and lines, which read on
JupyterLab's light and dark themes alike. Each event type has one colour in every plot.
"""

from __future__ import annotations

import io
import zlib
from typing import Any

from matplotlib.figure import Figure as _Figure

from .._core.payloads import EVENT_TYPES

#: Pixels per inch as shown; the PNG has twice as many.
SHOWN_DPI = 96
INK = "#808080"  # text, ticks and spines: mid grey reads on white and on near-black
_PALETTE = (  # matplotlib's tab20, strong shades first
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)  # fmt: skip
_KNOWN = {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(EVENT_TYPES)}


def colour(event_type: Any) -> str:
    """The colour of an event type, the same in every plot (a type nobody listed: by its name)."""
    name = str(event_type)
    return _KNOWN.get(name) or _PALETTE[zlib.crc32(name.encode()) % len(_PALETTE)]


def for_either_theme(fig: _Figure) -> None:
    """Grey ink on a transparent background (see the module's docstring)."""
    fig.patch.set_alpha(0.0)
    for text in fig.texts:
        text.set_color(INK)
    for ax in fig.axes:
        ax.patch.set_alpha(0.0)
        ax.tick_params(colors=INK, which="both")
        for spine in ax.spines.values():
            spine.set_color(INK)
        for text in (ax.title, ax.xaxis.label, ax.yaxis.label):
            text.set_color(INK)
        legend = ax.get_legend()
        if legend is not None:
            legend.get_frame().set_alpha(0.0)
            for text in legend.get_texts():
                text.set_color(INK)


def png(fig: _Figure) -> tuple[bytes, dict[str, int]]:
    """The picture, and the width and height to show it at (half its pixels)."""
    for_either_theme(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=2 * SHOWN_DPI, bbox_inches="tight", transparent=True)
    data = buf.getvalue()
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")  # IHDR
    return data, {"width": width // 2, "height": height // 2}


class Figure(_Figure):
    """A ``matplotlib.figure.Figure`` with a PNG representation for IPython and JupyterLab."""

    def _repr_png_(self) -> tuple[bytes, dict[str, int]]:
        return png(self)
