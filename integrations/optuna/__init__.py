"""Optuna integration: :class:`ZoARSampler` (requires ``optuna>=4.8``).

>>> from zo_scipy.integrations.optuna import ZoARSampler
>>> study = optuna.create_study(sampler=ZoARSampler(seed=0), storage="sqlite:///zoar.db")
"""
from ._sampler import DEFAULT_LR, DEFAULT_MU, ZoARSampler, ZoARStateWarning

__all__ = ["DEFAULT_LR", "DEFAULT_MU", "ZoARSampler", "ZoARStateWarning"]
