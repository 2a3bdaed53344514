"""Extra memory over inference, measured (peak RSS in a fresh process, ``VmHWM`` reset through
``/proc/self/clear_refs``): about two float32 copies of the largest tensor for ZoAR (the direction
being drawn and the update being summed), flat in K and N; ZoVH adds one tensor's M directions."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sys.platform.startswith("linux") or not Path("/proc/self/clear_refs").exists(),
                                reason="peak RSS is read from Linux /proc")]

WIDTH = 700  # four 700 x 700 layers: d = 2.0e6, largest tensor 1.9 MiB in float32
SLACK_MB = 1.5  # allocator granularity and Python objects; a d-sized copy would be 7.5 MiB


@pytest.fixture(scope="module")
def measure():
    from benchmarks.suite_torch import memory_subprocess

    return lambda method, K, N: memory_subprocess(WIDTH, method, K, N, 1)


def test_zoar_extra_memory_is_two_tensors_flat_in_k_and_n(measure) -> None:
    small, large = measure("zoar", 2, 0), measure("zoar", 8, 2)
    largest = small["largest_mb"]
    for r in (small, large):
        assert r["extra_mb"] <= 2 * largest + SLACK_MB, r
    assert abs(large["extra_mb"] - small["extra_mb"]) <= 0.5 * largest, (small, large)
    # backprop keeps a gradient of every parameter: at least d floats more
    assert measure("backprop", 0, 0)["extra_mb"] >= 0.9 * small["params_mb"]


def test_zovh_extra_memory_is_one_tensors_m_directions(measure) -> None:
    r = measure("zovh", 4, 0)  # M = 4
    assert r["extra_mb"] <= (4 + 1) * r["largest_mb"] + SLACK_MB, r  # Z (M rows) + one more
