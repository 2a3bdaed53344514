"""Result files of the benchmark CLI: JSON lines, run metadata, Markdown."""
from __future__ import annotations

import json
import math
import pathlib
from typing import Any

import numpy as np


def jsonable(value: Any) -> Any:
    """Numpy/torch scalars and arrays to builtins; non-finite floats to strings
    (JSON has no NaN/inf and strict parsers reject them)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if hasattr(value, "item") and hasattr(value, "numel") and value.numel() == 1:  # torch scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # 'nan', 'inf', '-inf'
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _restore(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v) for v in value]
    if value in ("nan", "inf", "-inf"):
        return float(value)
    return value


def write_jsonl(path: pathlib.Path, rows: list[dict[str, Any]]) -> None:
    """One JSON object per line; NaN/inf written as the strings ``"nan"``/``"inf"``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(jsonable(row), allow_nan=False) + "\n")


def read_jsonl(path: pathlib.Path) -> list[dict[str, Any]]:
    """Rows written by :func:`write_jsonl` (non-finite strings back to floats)."""
    with path.open(encoding="utf-8") as fh:
        return [_restore(json.loads(line)) for line in fh if line.strip()]


def write_json(path: pathlib.Path, obj: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n", encoding="utf-8")


def read_json(path: pathlib.Path) -> dict[str, Any]:
    return _restore(json.loads(path.read_text(encoding="utf-8")))
