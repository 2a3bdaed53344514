"""``python -m zo_scipy.bench`` / ``zo-bench``: run benchmark suites, write results.

Examples
--------
List the suites::

    python -m zo_scipy.bench --list

Run two suites at CI size, then regenerate the docs page from the saved results::

    python -m zo_scipy.bench --quick --suite peers --suite cost --out bench-results
    python -m zo_scipy.bench --write-docs --out bench-results

Each suite writes ``<out>/<suite>.jsonl`` (one row per method x problem x seed
cell, skipped cells included with their reason), ``<out>/<suite>.md`` (its
Markdown report headed by the exact command), ``<out>/<suite>.meta.json``
(command, run time, versions) and, when its rows carry traces,
``<out>/<suite>-*.png`` plots.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import shlex
import shutil
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import SUITES, SuiteUnavailable, load_suite
from ._io import read_json, read_jsonl, write_json, write_jsonl
from ._plots import plot_suite

#: Markers around the hand-written reading in ``docs/benchmarks.md``; the text
#: between them survives ``--write-docs``.
READING_BEGIN = "<!-- reading: hand-written, kept by --write-docs -->"
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
    p = argparse.ArgumentParser(
        prog="python -m zo_scipy.bench",
        description="Run zo_scipy benchmark suites (JSON lines + Markdown + plots).",
    )
    p.add_argument("--list", action="store_true", help="list the registered suites and exit")
    p.add_argument("--suite", action="append", choices=list(SUITES), metavar="NAME",
                   help=f"suite to run (repeatable; default: all). One of: {', '.join(SUITES)}")
    p.add_argument("--quick", action="store_true", help="CI size (about a minute per suite on 2 cores)")
    p.add_argument("--out", type=Path, default=Path("bench-results"), help="results folder (default: %(default)s)")
    p.add_argument("--seeds", type=parse_seeds, default=None,
                   help="seeds, e.g. '0,1,2' or '0-4' (default: each suite's own)")
    p.add_argument("--write-docs", nargs="?", const=Path("docs/benchmarks.md"), type=Path, default=None,
                   metavar="PATH", help="do not run: regenerate PATH (default docs/benchmarks.md) from the "
                   "results saved in --out; plots are copied to PATH's folder/_static/bench/")
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


def _plot_links(paths: list[str], prefix: str) -> str:
    return "\n".join(f"![{Path(p).stem}]({prefix}{Path(p).name})" for p in paths)


def run_suite(name: str, args: argparse.Namespace, command: str) -> tuple[int, str]:
    """Run one suite and write its files. Returns (status, message): 0 ran, 1 raised, 2 unavailable."""
    try:
        suite = load_suite(name)
    except SuiteUnavailable as exc:
        return 2, f"suite {name} not available: {exc}"
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.perf_counter()
    try:
        rows = suite.run(quick=args.quick, out_dir=out, seeds=args.seeds, progress=bool(args.progress))
    except Exception:  # one broken suite must not take the others down
        return 1, f"suite {name} failed:\n{traceback.format_exc()}"
    wall = time.perf_counter() - t0
    write_jsonl(out / f"{name}.jsonl", rows)
    plots = [] if args.no_plots else [str(p) for p in plot_suite(rows, out, name)]
    meta = {
        "suite": name, "name": getattr(suite, "NAME", name), "description": suite.DESCRIPTION,
        "command": command, "quick": args.quick, "seeds": args.seeds, "started_utc": started.isoformat(timespec="seconds"),
        "wall_s": round(wall, 2), "rows": len(rows), "skipped": sum(1 for r in rows if r.get("skipped")),
        "plots": [Path(p).name for p in plots], "machine": _machine(), "versions": _versions(),
    }
    write_json(out / f"{name}.meta.json", meta)
    md = suite.report(rows, command=command)
    md += f"\n\n_Suite run time: {wall:.0f} s ({meta['started_utc']}, {meta['machine']})._\n"
    if plots:
        md += "\n" + _plot_links(plots, "") + "\n"
    (out / f"{name}.md").write_text(md, encoding="utf-8")
    return 0, f"suite {name}: {len(rows)} rows ({meta['skipped']} skipped) in {wall:.1f} s -> {out / (name + '.md')}"


def _existing_reading(path: Path) -> str:
    if path.exists():
        text = path.read_text(encoding="utf-8")
        if READING_BEGIN in text and READING_END in text:
            return text.split(READING_BEGIN, 1)[1].split(READING_END, 1)[0].strip("\n")
    return "_(No reading yet: add it between the reading markers; --write-docs keeps it.)_"


def write_docs(out: Path, docs_path: Path, suites: Sequence[str]) -> tuple[int, list[str]]:
    """Regenerate ``docs_path`` from ``<out>/<suite>.jsonl`` + ``.meta.json``. Returns (status, messages)."""
    static = docs_path.parent / "_static" / "bench"
    messages: list[str] = []
    sections: list[str] = []
    total = 0.0
    for name in suites:
        jsonl, meta_path = out / f"{name}.jsonl", out / f"{name}.meta.json"
        if not (jsonl.exists() and meta_path.exists()):
            messages.append(f"suite {name}: no saved results in {out}, left out of the docs")
            continue
        try:
            suite = load_suite(name)
        except SuiteUnavailable as exc:
            messages.append(f"suite {name} not available: {exc}")
            continue
        rows, meta = read_jsonl(jsonl), read_json(meta_path)
        total += float(meta.get("wall_s", 0.0))
        body = suite.report(rows, command=meta["command"])
        body += (f"\n\n_Suite run time: {meta['wall_s']:.0f} s ({meta['started_utc']}, {meta['machine']}; "
                 + ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items()) + ")._\n")
        plots = [out / p for p in meta.get("plots", []) if (out / p).exists()]
        if plots:
            static.mkdir(parents=True, exist_ok=True)
            for p in plots:
                shutil.copy2(p, static / p.name)
            body += "\n" + _plot_links([str(p) for p in plots], "_static/bench/") + "\n"
        sections.append(body)
        messages.append(f"suite {name}: {len(rows)} rows into {docs_path}")
    if not sections:
        return 1, messages + [f"no saved results in {out}: nothing written"]
    reading = _existing_reading(docs_path)
    text = (
        "# Benchmarks\n\n"
        "Generated by `python -m zo_scipy.bench --write-docs` from saved results; every table is "
        "headed by the exact command that produced it, so anyone can rerun it. Step sizes and all "
        "other hyper-parameters are each method's defaults unless a row says otherwise.\n\n"
        f"Total run time of the suites below: {total:.0f} s.\n\n"
        "## Reading\n\n" + READING_BEGIN + "\n" + reading + "\n" + READING_END + "\n\n"
        + "\n\n".join(sections) + "\n"
    )
    docs_path.parent.mkdir(parents=True, exist_ok=True)
    docs_path.write_text(text, encoding="utf-8")
    return 0, messages


def list_suites() -> str:
    lines = []
    for name in SUITES:
        try:
            mod = load_suite(name)
            lines.append(f"{name:10s} {mod.DESCRIPTION}")
        except SuiteUnavailable as exc:
            lines.append(f"{name:10s} not available: {exc}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 a suite failed, 2 a requested suite unavailable)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.list:
        print(list_suites())
        return 0
    if args.progress is None:
        args.progress = sys.stderr.isatty()
    suites = args.suite or list(SUITES)
    if args.write_docs is not None:
        status, messages = write_docs(args.out, args.write_docs, suites)
        for m in messages:
            print(m, file=sys.stderr)
        return status
    command = "python -m zo_scipy.bench " + shlex.join(argv)
    status = 0
    import torch

    old_threads = torch.get_num_threads()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        for name in suites:
            code, message = run_suite(name, args, command)
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
