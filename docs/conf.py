"""Sphinx configuration of the zo_scipy documentation.

Built strictly in CI: ``make docs`` runs ``python -m sphinx -W --keep-going -b html
-q docs docs/_build/html``, so any warning fails the build. Why Sphinx + numpydoc +
MyST: see ``contributing.md``.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "_ext"))

import zo_scipy  # noqa: E402  (the installed package; `make docs` runs in the project venv)

project = "zo_scipy"
author = "zo_scipy developers"
copyright = "2026, zo_scipy developers"
release = zo_scipy.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "zo_docs",  # docs/_ext: numpydoc "Options" sections, optional toctree entries
    "sphinx_gallery.gen_gallery",
]

# The examples gallery (gallery/ is generated from ../examples at build time). Every script
# runs at its small size unless ZO_SCIPY_EXAMPLE_QUICK=0 is set (the docs build runs in CI);
# optuna_high_dim.py starts worker processes and is shown without being executed.
os.environ.setdefault("ZO_SCIPY_EXAMPLE_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "gallery",
    "filename_pattern": r"/(?!optuna_high_dim\.py$)[^/]+\.py$",
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "write_computation_times": False,
    "show_memory": False,
    "show_signature": False,
    "image_scrapers": ("matplotlib",),
}

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store", "gallery/*.ipynb", "gallery/*.py"]

# MyST: $...$ / $$...$$ math, ::: fences, definition lists, anchors for ## headings.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# numpydoc renders the docstrings (SciPy's own convention). Class members are
# documented by autodoc's :members:, not by numpydoc's autosummary tables.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
autodoc_typehints = "none"  # types are in the numpydoc sections, as in SciPy's docs
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": False}

html_theme = "pydata_sphinx_theme"
html_title = f"zo_scipy {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {"**": ["sidebar-nav-bs"]}
