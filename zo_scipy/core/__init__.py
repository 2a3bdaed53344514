"""Device-agnostic torch estimator core. Knows nothing of SciPy or Optuna."""
from .control import StepControl
from .directions import make_generator, sample_directions
from .estimators import centered_weights, two_point_gradient, zoar_gradient
from .evaluation import BatchObjective, BudgetExhausted, ObjectiveError
from .hessian import (
    LowRankHessian, SymmetricOperator, classical_hessian, inverse_hessian_gradient, positive_definite,
    sherman_morrison_solve, woodbury_solve, zovh_gradient, zovh_hessian, zovh_hessian_reuse,
)
from .history import QueryHistory
from .updates import SGD, Adam, UpdateRule, make_update_rule
from .options import ZoAROptions
from .state import StateError
from .zoar import ZoAR, problem_scale
from .zovh import ZoVHOptimizer

__all__ = [
    "Adam", "BatchObjective", "BudgetExhausted", "ObjectiveError", "QueryHistory", "SGD",
    "StepControl", "UpdateRule", "ZoAR", "centered_weights", "make_generator", "make_update_rule",
    "problem_scale", "sample_directions", "two_point_gradient", "zoar_gradient",
    "ZoAROptions", "StateError",
    # ZoVH Hessian suite
    "LowRankHessian", "SymmetricOperator", "classical_hessian", "inverse_hessian_gradient",
    "positive_definite", "sherman_morrison_solve", "woodbury_solve", "zovh_gradient", "zovh_hessian",
    "zovh_hessian_reuse", "ZoVHOptimizer",
]
