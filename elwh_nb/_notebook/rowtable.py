"""A table whose rows a click picks: the dashboard's pages (deliveries, failures, calls, conversations).

An anywidget: the HTML comes from :mod:`.render` (every value escaped), each picked row
carries ``data-row`` (its place among :attr:`Picker.options`); a click sends that place back
as :attr:`RowTable.clicked`, and the row picked shows highlighted.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import anywidget
import traitlets

_ESM = """
function render({ model, el }) {
  const draw = () => {
    el.innerHTML = model.get("value");
    const picked = model.get("clicked");
    for (const row of el.querySelectorAll("tr[data-row]")) {
      if (Number(row.dataset.row) === picked) row.classList.add("elwh-picked");
    }
  };
  el.addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-row]");
    if (!row || event.target.closest("a, summary, button")) return;
    model.set("clicked", Number(row.dataset.row));
    model.save_changes();
  });
  model.on("change:value", draw);
  model.on("change:clicked", draw);
  draw();
}
export default { render };
"""

_CSS = """
.elwh-rows tr[data-row] { cursor: pointer; }
.elwh-rows tr[data-row]:hover { background: rgba(127, 127, 127, 0.12); }
.elwh-rows tr.elwh-picked { background: rgba(33, 150, 243, 0.22); }
"""


class RowTable(anywidget.AnyWidget):
    """HTML (``value``, as ``ipywidgets.HTML``) whose rows with ``data-row`` a click picks."""

    _esm = traitlets.Unicode(_ESM).tag(sync=True)
    _css = traitlets.Unicode(_CSS).tag(sync=True)
    value = traitlets.Unicode("").tag(sync=True)
    #: The place of the row clicked (or picked from Python), -1 for none.
    clicked = traitlets.Int(-1).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_class("elwh-rows")


class Picker(traitlets.HasTraits):
    """Which row of a :class:`RowTable` is inspected: ``options`` as ``(label, value)`` pairs
    (a dropdown's), ``value`` the one picked (None for none); a click on the table sets it."""

    options = traitlets.Tuple()
    value = traitlets.Any(None, allow_none=True)

    def __init__(self, table: RowTable) -> None:
        super().__init__()
        self.table = table
        self._label: str | None = None  # the picked row's, kept while it is off the page
        table.observe(self._clicked, names="clicked")
        self.observe(self._picked, names=["value", "options"])

    @property
    def label(self) -> str | None:
        """The picked row's label (its id and kind), as a dropdown's; also once off the page."""
        return self._label

    def _values(self) -> list[Hashable]:
        return [value for _, value in self.options]

    def _clicked(self, change: dict[str, Any]) -> None:
        values = self._values()
        if 0 <= change["new"] < len(values):
            self.value = values[change["new"]]

    def _picked(self, change: dict[str, Any]) -> None:
        values = self._values()
        place = values.index(self.value) if self.value in values else -1
        if place >= 0:
            self._label = self.options[place][0]
        elif change["name"] == "value":  # picked from Python, not from this page
            self._label = None
        self.table.clicked = place
