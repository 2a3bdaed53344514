"""Picklable top-level objectives for process-pool tests."""
import numpy as np


def shifted_sphere(x):
    return 0.5 * float(np.sum((np.asarray(x) - 0.5) ** 2))
