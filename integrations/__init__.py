"""Thin adapters to other ecosystems, importable as ``zo_scipy.integrations.<name>``.

Each adapter imports its third-party package lazily, so ``import zo_scipy`` never
imports optuna or botorch.
"""
