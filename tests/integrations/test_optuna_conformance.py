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


@pytest.mark.parametrize("case", [BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase])
def test_conformance_cases_are_collected(case: type) -> None:
    # Guards against the suite silently running nothing if Optuna renames or empties a case.
    tests = [name for name in dir(case) if name.startswith("test_")]
    assert tests, f"{case.__name__} has no test_ methods"
