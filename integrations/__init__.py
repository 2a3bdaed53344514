"""Thin adapters to other ecosystems, importable as ``zo_scipy.integrations.<name>``.

Each adapter imports its third-party package lazily, so ``import zo_scipy`` never
imports optuna or botorch.
"""

if __name__ != "zo_scipy.integrations":  # e.g. `import integrations` from the repository root
    raise ImportError("the adapters are the package zo_scipy.integrations: import "
                      "zo_scipy.integrations.<name> (install zo_scipy, e.g. `pip install -e .`)")
