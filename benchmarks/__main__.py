"""``python -m benchmarks``: the one benchmark CLI (run from the repository root).

Examples
--------
List the suites, run two at CI size, then rebuild the reports and the docs page::

    python -m benchmarks --list
    python -m benchmarks --quick --suite peers --suite cost
    python -m benchmarks --report

Runs are incremental: each finished cell (one method x problem x seed, one timing,
...) is appended to ``<out>/<suite>.jsonl`` (``<suite>-quick.jsonl`` for ``--quick``)
as soon as it finishes, and a rerun skips the cells already there, so a long run
that stops keeps what it did and the same command continues it. ``--cells GLOB``
runs only the cells whose key matches (e.g. one study or one seed), ``--fresh``
starts a suite over. After a run, and with ``--report`` without running, each
suite's rows give ``<out>/<suite>.md`` (its Markdown report headed by the commands
that made them), ``<out>/<suite>.meta.json`` and, when rows carry traces,
``<out>/<suite>-*.png`` plots. ``--report`` also regenerates ``docs/benchmarks.md``
of this repository (whatever the current directory) from the saved ``peers`` and
``cost`` results; the other suites' tables are quoted on their own pages
(``docs/zoar-results.md``, ``docs/zovh.md``, ``docs/optuna.md``).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import fnmatch
import os
import platform
import shlex
import shutil
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import DOCS_DIR, REPO_ROOT, SUITES, SuiteUnavailable, default_suites, load_suite
from ._harness import Cell, run_cells
from ._io import read_json, read_jsonl, write_json
from ._plots import plot_suite

#: The docs page ``--report`` regenerates, resolved against the repository, never the cwd.
DOCS_PAGE = DOCS_DIR / "benchmarks.md"
#: Suites whose tables make up :data:`DOCS_PAGE`.
PAGE_SUITES: tuple[str, ...] = ("peers", "cost")
DEFAULT_OUT = REPO_ROOT / "bench-results"

#: Markers around the hand-written reading in ``docs/benchmarks.md``; the text
#: between them survives ``--report``.
READING_BEGIN = "<!-- reading: hand-written, kept by --report -->"
READING_END = "<!-- /reading -->"


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` or ``"0-4"`` (inclusive) or a mix, e.g. ``"0-2,7"``."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part[1:]:
                lo, hi = part.split("-", 1) if not part.startswith("-") else (part, part)
                seeds.extend(range(int(lo), int(hi) + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(f"--seeds: expected e.g. '0,1,2' or '0-4', got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError(f"--seeds: no seed in {text!r}")
    if any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"--seeds: seeds must be >= 0, got {text!r}")
    return seeds


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks",
                                description="Run the zo_scipy benchmark suites (JSON lines + Markdown + plots).")
    p.add_argument("--list", action="store_true", help="list the registered suites and exit")
    p.add_argument("--suite", action="append", choices=list(SUITES), metavar="NAME",
                   help=f"suite to run (repeatable; default: all but 'tune'). One of: {', '.join(SUITES)}")
    p.add_argument("--quick", action="store_true", help="CI size (about a minute per suite on 2 cores)")
    p.add_argument("--seeds", type=parse_seeds, default=None,
                   help="seeds, e.g. '0,1,2' or '0-4' (default: each suite's own)")
    p.add_argument("--cells", action="append", metavar="GLOB", default=None,
                   help="run only the cells whose key matches GLOB (repeatable; see --list-cells)")
    p.add_argument("--list-cells", action="store_true", help="print the cell keys of the selected suites and exit")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help="results folder (default: bench-results/ in the repository)")
    p.add_argument("--fresh", action="store_true", help="discard the saved results of the selected suites first")
    p.add_argument("--report", action="store_true",
                   help="do not run: rebuild the reports from the results in --out and regenerate the docs page")
    p.add_argument("--docs", type=Path, default=None, metavar="PATH",
                   help="docs page for --report (default: docs/benchmarks.md of this repository; "
                   "with --quick none unless given); plots go to PATH's folder/_static/bench/")
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="show progress bars (default: when stderr is a terminal)")
    bar.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--no-plots", action="store_true", help="skip the matplotlib plots")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads during the run (default: torch's own)")
    return p


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("numpy", "scipy", "torch", "cma", "optuna", "botorch", "zo_scipy"):
        mod = sys.modules.get(name)
        if mod is None:
            try:
                mod = __import__(name)
            except ImportError:
                continue
        out[name] = str(getattr(mod, "__version__", "?"))
    return out


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPU, {platform.system()} {platform.release()}"


def _plot_links(names: list[str], prefix: str) -> str:
    return "\n".join(f"![{Path(n).stem}]({prefix}{Path(n).name})" for n in names)


def stem(name: str, quick: bool) -> str:
    """File stem of a suite's results: ``peers`` or ``peers-quick``."""
    return f"{name}-quick" if quick else name


def _select(cells: list[Cell], patterns: Sequence[str] | None) -> list[Cell]:
    if not patterns:
        return cells
    return [c for c in cells if any(fnmatch.fnmatchcase(c.key, pat) for pat in patterns)]


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _write_outputs(name: str, suite: Any, rows: list[dict], out: Path, quick: bool, plots: bool,
                   command: str | None, started: str | None = None) -> dict[str, Any]:
    """Update ``<stem>.meta.json`` (adding ``command``), write ``<stem>.md`` and the plots."""
    s = stem(name, quick)
    meta_path = out / f"{s}.meta.json"
    now = _now()
    meta = (read_json(meta_path) if meta_path.exists()
            else {"suite": name, "started_utc": started or now, "commands": []})
    if command is not None:
        if command not in meta["commands"]:
            meta["commands"].append(command)
        meta.update(last_run_utc=now, machine=_machine(), versions=_versions())
    png = [] if not plots else [p.name for p in plot_suite(rows, out, s)]
    meta.update(description=suite.DESCRIPTION, quick=quick, rows=len(rows),
                skipped=sum(1 for r in rows if r.get("skipped")),
                wall_s=round(sum(float(r.get("cell_seconds", 0.0)) for r in rows), 2),
                plots=png or meta.get("plots", []))
    write_json(meta_path, meta)
    md = _section(suite, rows, meta, prefix="")
    (out / f"{s}.md").write_text(md, encoding="utf-8")
    return meta


def _section(suite: Any, rows: list[dict], meta: dict[str, Any], prefix: str) -> str:
    body = suite.report(rows, command="\n".join(meta.get("commands") or ["?"]))
    versions = ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items())
    body += (f"\n\n_Suite run time: {meta['wall_s']:.0f} s of cells ({meta.get('started_utc', '?')} to "
             f"{meta.get('last_run_utc', '?')}, {meta.get('machine', '?')}; {versions})._\n")
    if meta.get("plots"):
        body += "\n" + _plot_links(meta["plots"], prefix) + "\n"
    return body


def run_suite(name: str, args: argparse.Namespace, command: str) -> tuple[int, str]:
    """Run one suite's missing cells and write its files. Returns (status, message):
    0 ran, 1 a cell raised (its row is left out, so a rerun retries it), 2 unavailable."""
    try:
        suite = load_suite(name)
    except SuiteUnavailable as exc:
        return 2, f"suite {name} not available: {exc}"
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{stem(name, args.quick)}.jsonl"
    if args.fresh:
        for old in out.glob(f"{stem(name, args.quick)}.*"):
            old.unlink()
    every = suite.cells(quick=args.quick, seeds=args.seeds)
    chosen = _select(every, args.cells)
    before = len(read_jsonl(path)) if path.exists() else 0
    started = _now()
    failed: list[str] = []

    def on_error(cell: Cell, tb: str) -> None:
        failed.append(cell.key)
        print(f"suite {name}: cell {cell.key} raised:\n{tb}", file=sys.stderr, flush=True)

    run_cells(chosen, path, progress=bool(args.progress), desc=name, on_error=on_error)
    rows = [r for r in read_jsonl(path) if r.get("cell") in {c.key for c in every}] if path.exists() else []
    meta = _write_outputs(name, suite, rows, out, args.quick, not args.no_plots, command, started)
    added = (len(read_jsonl(path)) if path.exists() else 0) - before
    msg = (f"suite {name}: {added} new cells, {len(rows)} of {len(every)} saved ({meta['skipped']} skipped) "
           f"-> {out / (stem(name, args.quick) + '.md')}")
    if failed:
        return 1, msg + f"; {len(failed)} cells raised (rerun to retry): {', '.join(failed)}"
    return 0, msg


def _existing_reading(path: Path) -> str:
    if path.exists():
        text = path.read_text(encoding="utf-8")
        for begin in (READING_BEGIN, "<!-- reading: hand-written, kept by --write-docs -->"):
            if begin in text and READING_END in text:
                return text.split(begin, 1)[1].split(READING_END, 1)[0].strip("\n")
    return "_(No reading yet: add it between the reading markers; --report keeps it.)_"


def report(out: Path, suites: Sequence[str], quick: bool, docs_path: Path | None,
           plots: bool = True) -> tuple[int, list[str]]:
    """Rebuild ``<out>/<suite>.md`` from the saved rows and, when ``docs_path`` is given,
    regenerate that page from the :data:`PAGE_SUITES` among ``suites``. Returns (status, messages)."""
    messages: list[str] = []
    sections: list[str] = []
    total = 0.0
    for name in suites:
        s = stem(name, quick)
        path = out / f"{s}.jsonl"
        if not path.exists():
            messages.append(f"suite {name}: no saved results in {out}")
            continue
        try:
            suite = load_suite(name)
        except SuiteUnavailable as exc:
            messages.append(f"suite {name} not available: {exc}")
            continue
        rows = read_jsonl(path)
        meta = _write_outputs(name, suite, rows, out, quick, plots, None)
        messages.append(f"suite {name}: {len(rows)} rows -> {out / (s + '.md')}")
        if docs_path is None or name not in PAGE_SUITES:
            continue
        total += float(meta.get("wall_s", 0.0))
        static = docs_path.parent / "_static" / "bench"
        for png in meta.get("plots", []):
            if (out / png).exists():
                static.mkdir(parents=True, exist_ok=True)
                shutil.copy2(out / png, static / png)
        sections.append(_section(suite, rows, meta, prefix="_static/bench/"))
    if docs_path is None or not set(suites) & set(PAGE_SUITES):
        return 0, messages
    if not sections:
        return 1, messages + [f"no saved results of {', '.join(PAGE_SUITES)} in {out}: {docs_path} not written"]
    text = (
        "# Benchmarks\n\n"
        "Generated by `python -m benchmarks --report` from saved results; every table is headed by the "
        "exact commands that produced it, so anyone can rerun them. Step sizes and all other "
        "hyper-parameters are each method's defaults unless a row says otherwise. The `zoar`, `hessian` "
        "and `optuna` suites' tables are on {doc}`zoar-results`, {doc}`zovh` and {doc}`optuna`.\n\n"
        f"Total run time of the suites below: {total:.0f} s.\n\n"
        "## Reading\n\n" + READING_BEGIN + "\n" + _existing_reading(docs_path) + "\n" + READING_END + "\n\n"
        + "\n\n".join(sections) + "\n"
    )
    docs_path.parent.mkdir(parents=True, exist_ok=True)
    docs_path.write_text(text, encoding="utf-8")
    return 0, messages + [f"{docs_path} written"]


def list_suites() -> str:
    lines = []
    defaults = set(default_suites())
    for name in SUITES:
        try:
            mod = load_suite(name)
            extra = "" if name in defaults else " (only with --suite)"
            lines.append(f"{name:10s} {mod.DESCRIPTION}{extra}")
        except SuiteUnavailable as exc:
            lines.append(f"{name:10s} not available: {exc}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 a cell failed, 2 a requested suite unavailable)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.list:
        print(list_suites())
        return 0
    if args.progress is None:
        args.progress = sys.stderr.isatty()
    if args.report:
        suites = args.suite or list(SUITES)
        docs = args.docs if args.docs is not None else (None if args.quick else DOCS_PAGE)
        status, messages = report(args.out, suites, args.quick, docs, plots=not args.no_plots)
        for m in messages:
            print(m, file=sys.stderr)
        return status
    suites = args.suite or default_suites()
    if args.list_cells:
        for name in suites:
            try:
                for c in _select(load_suite(name).cells(quick=args.quick, seeds=args.seeds), args.cells):
                    print(f"{name}: {c.key}")
            except SuiteUnavailable as exc:
                print(f"suite {name} not available: {exc}", file=sys.stderr)
        return 0
    command = "python -m benchmarks " + shlex.join(argv)
    status = 0
    import torch

    old_threads = torch.get_num_threads()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        for name in suites:
            try:
                code, message = run_suite(name, args, command)
            except Exception:  # building a suite's cells failed: the other suites still run
                code, message = 1, f"suite {name} failed:\n{traceback.format_exc()}"
            print(message, file=sys.stderr if code else sys.stdout, flush=True)
            if code == 1:
                status = 1
            elif code == 2 and args.suite and status == 0:
                status = 2
    finally:
        torch.set_num_threads(old_threads)
    return status


if __name__ == "__main__":
    sys.exit(main())
