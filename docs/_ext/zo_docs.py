"""Two small Sphinx hooks for the zo_scipy docs.

1. ``Options`` sections. SciPy documents the options of a ``minimize`` method in
   an "Options" section of the method's docstring (``_minimize_neldermead``), and
   so does :func:`zo_scipy.zoar`. numpydoc knows no such section: it would drop
   it with a warning. :func:`take_options` (before numpydoc) cuts the section out
   of the docstring; :func:`put_options` (after numpydoc) renders it with
   numpydoc's own parameter-list formatter under the field name "Options" and
   puts it right after "Parameters". The docstring itself stays as SciPy writes
   such docstrings.

2. Optional toctree entries. Pages written by other people may or may not exist
   yet; a toctree naming a missing page, or a glob matching nothing, warns (and
   ``-W`` fails). In ``index.md`` a toctree line ``?name`` is kept only when
   ``name`` is a document of this build, and ``?*`` stands for every document not
   listed in any of the index's toctrees (so no page is ever left out of one).
"""
from __future__ import annotations

import re
import warnings
from typing import Any

from numpydoc.docscrape_sphinx import SphinxDocString

_stash: dict[int, list[str]] = {}
_HEADER_RULE = re.compile(r"^\s*-{3,}\s*$")


def _section_starts(lines: list[str]) -> list[int]:
    return [i for i in range(len(lines) - 1)
            if lines[i].strip() and _HEADER_RULE.match(lines[i + 1])
            and len(lines[i + 1].strip()) >= len(lines[i].strip())]


def take_options(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    starts = _section_starts(lines)
    for k, i in enumerate(starts):
        if lines[i].strip() == "Options":
            end = starts[k + 1] if k + 1 < len(starts) else len(lines)
            _stash[id(lines)] = lines[i + 2:end]
            del lines[i:end]
            return


def put_options(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    body = _stash.pop(id(lines), None)
    if body is None:
        return
    config = {"xref_param_type": app.config.numpydoc_xref_param_type,
              "xref_aliases": app.config.numpydoc_xref_aliases_complete,
              "xref_ignore": app.config.numpydoc_xref_ignore}
    doc = SphinxDocString("\n".join(["Parameters", "----------", *body]), config=config)
    rendered = doc._str_param_list("Parameters")
    rendered[0] = rendered[0].replace(":Parameters:", ":Options:")
    # numpydoc emits ":Parameters:" followed by an indented block; the options go
    # right after that block (before ":Returns:", ".. rubric:: Notes", ...).
    start = next((i for i, line in enumerate(lines) if line.strip() == ":Parameters:"), None)
    if start is None:
        at = next((i for i, line in enumerate(lines) if line.startswith((":", ".. rubric::"))), len(lines))
    else:
        at = next((i for i in range(start + 1, len(lines)) if lines[i].strip() and not lines[i][0].isspace()),
                  len(lines))
    lines[at:at] = [*rendered, ""]


_ENTRY = re.compile(r"(?m)^\s*\??([^\s:?][^\s<>]*)\s*$")

_TOCTREE = re.compile(r"(?ms)^(`{3,}|:{3,})\{toctree\}[^\n]*\n(.*?)^\1[ \t]*$")


def _toctree_bodies(text: str) -> list[str]:
    """The bodies of every MyST ``{toctree}`` block (entries, options, blank lines)."""
    return [body for _, body in _TOCTREE.findall(text)]


def optional_toctree_entries(app: Any, docname: str, source: list[str]) -> None:
    if docname != app.config.root_doc:
        return
    text = source[0]
    found = set(app.env.found_docs) - {docname}
    listed = {m.group(1) for m in _ENTRY.finditer("\n".join(_toctree_bodies(text)))}
    rest = sorted(found - listed)

    def expand(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "*":
            return "\n".join(rest)
        return name if name in found else ""

    source[0] = re.sub(r"(?m)^\?(\S+)[ \t]*$", expand, text)


def index_outdated(app: Any, env: Any, added: set[str], changed: set[str], removed: set[str]) -> list[str]:
    """Re-read the index whenever a page appears or disappears (its toctree depends on that)."""
    return [app.config.root_doc] if added or removed else []


def setup(app: Any) -> dict[str, Any]:
    # numpydoc also parses raw docstrings outside autodoc-process-docstring (to look for
    # a signature) and warns there about the section this extension renders.
    warnings.filterwarnings("ignore", message=r"Unknown section Options", category=UserWarning)
    app.setup_extension("numpydoc")
    app.connect("autodoc-process-docstring", take_options, priority=400)  # numpydoc runs at 500
    app.connect("autodoc-process-docstring", put_options, priority=600)
    app.connect("source-read", optional_toctree_entries)
    app.connect("env-get-outdated", index_outdated)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
