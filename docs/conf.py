"""Sphinx configuration for the elwh-nb documentation (``make docs``).

Sphinx with MyST (the guides are Markdown), MyST-NB (the notebooks, run at build time so
their outputs are this version's) and the PyData theme, as JupyterLab, Jupyter Server and
JupyterHub document themselves; autodoc reads the API reference from the docstrings.
"""

from __future__ import annotations

import elwh_nb

project = "elwh-nb"
author = "the elwh-nb developers"
copyright = "2026, the elwh-nb developers"
release = version = elwh_nb.__version__

extensions = ["myst_nb", "sphinx.ext.autodoc"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "README.md"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3  # links like guides/urls.md#for-a-team-on-jupyterhub resolve

# The notebooks run top to bottom in a fresh kernel (as CI's test does), each in a
# temporary folder (their stores stay out of the tree); an error fails the build.
nb_execution_mode = "force"
nb_execution_timeout = 300
nb_execution_in_temp = True
nb_execution_raise_on_error = True
nb_execution_show_tb = True
# A page has no kernel: the dashboard shows as its static HTML view, not as a widget.
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False}

html_theme = "pydata_sphinx_theme"
html_title = "elwh-nb"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_static_path: list[str] = []


def _constant_docs(app: object, what: str, name: str, obj: object, options: object, lines: list[str]) -> None:
    """A constant's text: the ``#:`` comment where it is defined (``elwh_nb`` re-exports it,
    so autodoc would otherwise show its type's docstring, a tuple's or a dict's)."""
    from sphinx.pycode import ModuleAnalyzer

    if what != "data" or not name.startswith("elwh_nb.") or name.count(".") != 1:
        return
    attr = name.split(".", 1)[1]
    for module in ("elwh_nb", "elwh_nb._core.exceptions", *(f"elwh_nb{m}" for m in elwh_nb._LAZY)):
        found = ModuleAnalyzer.for_module(module).find_attr_docs().get(("", attr))
        if found:
            lines[:] = list(found)
            return
    lines[:] = []


def setup(app: object) -> None:
    app.connect("autodoc-process-docstring", _constant_docs)  # type: ignore[attr-defined]
