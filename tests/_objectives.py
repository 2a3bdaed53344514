"""Picklable top-level test objectives (importable by name; conftest modules are not)."""
import numpy as np


def shifted_sphere(x):
    return 0.5 * float(np.sum((np.asarray(x) - 0.5) ** 2))


def rosen(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=float).ravel()
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def sphere(x: np.ndarray) -> float:
    return 0.5 * float(np.sum(np.asarray(x, dtype=float) ** 2))
