"""Optuna: tuning an SVM with ZoARSampler
======================================

Tune an SVM on scikit-learn's digits data set with ZoARSampler.

Three continuous hyper-parameters on log scales (C, gamma, tol) and one integer
(the number of PCA components kept) are tuned by 3-fold cross-validated accuracy.
The study lives in a SQLite file, so more worker processes can join it at any time
(run this script twice at once) and a killed run resumes where it stopped.

Run:  python examples/optuna_sklearn_tuning.py [--storage sqlite:///tune.db]
Quick (CI): ZO_SCIPY_EXAMPLE_QUICK=1 python examples/optuna_sklearn_tuning.py
"""
from __future__ import annotations

import argparse
import os
import tempfile
import warnings

import numpy as np
import optuna
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from zo_scipy.integrations.optuna import ZoARSampler

QUICK = os.environ.get("ZO_SCIPY_EXAMPLE_QUICK") == "1"


def main() -> None:
    parser = argparse.ArgumentParser(description="Tune an SVM on digits with ZoARSampler.")
    parser.add_argument("--storage", default=None, help="Optuna storage URL (default: a temp SQLite file)")
    parser.add_argument("--trials", type=int, default=8 if QUICK else 120)
    args = parser.parse_args()

    X, y = load_digits(return_X_y=True)
    if QUICK:
        X, y = X[:400], y[:400]

    def objective(trial: optuna.Trial) -> float:
        model = make_pipeline(
            StandardScaler(),
            PCA(n_components=trial.suggest_int("n_components", 8, 64)),
            SVC(C=trial.suggest_float("C", 1e-2, 1e3, log=True),
                gamma=trial.suggest_float("gamma", 1e-5, 1e-1, log=True),
                tol=trial.suggest_float("tol", 1e-5, 1e-1, log=True)),
        )
        return float(cross_val_score(model, X, y, cv=3).mean())

    with tempfile.TemporaryDirectory() as tmp:
        storage = args.storage or f"sqlite:///{os.path.join(tmp, 'tune.db')}"
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = ZoARSampler(seed=0, num_queries=4, num_histories=2,
                              x0={"C": 1.0, "gamma": 1e-3, "tol": 1e-3, "n_components": 32})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # Create the study once; every worker (here just this one) then loads it. Creating
            # it from several processes at the same moment races inside Optuna.
            optuna.create_study(study_name="svc-digits", storage=storage, direction="maximize",
                                load_if_exists=True)
            study = optuna.load_study(study_name="svc-digits", storage=storage, sampler=sampler)
        study.optimize(objective, n_trials=args.trials)
        state = sampler.get_state(study)
        print(f"best CV accuracy {study.best_value:.4f} with {study.best_params}")
        if state is not None:
            print(f"ZoAR generation {state['gen']}, current center {state['params']}, "
                  f"step {state['lr']:.3g}")
        values = [t.value for t in study.trials if t.value is not None]

    # Each trial's accuracy and the best so far, in trial order.
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(values, ".", label="trial")
    ax.plot(np.maximum.accumulate(values), label="best so far")
    ax.set(xlabel="trial", ylabel="3-fold CV accuracy", title="SVC on digits, ZoARSampler")
    ax.legend()
    fig.tight_layout()


if __name__ == "__main__":
    main()
