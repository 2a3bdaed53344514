"""Optuna's own sampler conformance suite, run against ZoARSampler."""
from __future__ import annotations

from collections.abc import Callable

import pytest

optuna = pytest.importorskip("optuna")
from optuna.testing.pytest_samplers import (  # noqa: E402
    BasicSamplerTestCase,
    RelativeSamplerTestCase,
    SingleOnlySamplerTestCase,
)

from zo_scipy.integrations.optuna import ZoARSampler  # noqa: E402


class _Fixture:
    @pytest.fixture
    def sampler(self) -> Callable[[], ZoARSampler]:
        return lambda: ZoARSampler(seed=0, num_queries=4, num_histories=2)


class TestBasic(_Fixture, BasicSamplerTestCase):
    pass


class TestRelative(_Fixture, RelativeSamplerTestCase):
    pass


class TestSingleOnly(_Fixture, SingleOnlySamplerTestCase):
    pass
