"""Device-agnostic torch estimator core. Knows nothing of SciPy or Optuna."""
from .control import StepControl
from .curvature import AveragedCurvature, CurvatureEstimate, CurvatureModel, DenseHessian
from .directions import make_generator, sample_directions
from .estimators import centered_weights, two_point_gradient, zoar_gradient
from .evaluation import BatchObjective, BudgetExhausted, ObjectiveError
from .hessian import inverse_hessian_gradient, sherman_morrison_solve, zovh_gradient, zovh_hessian, zovh_hessian_reuse
from .history import QueryHistory
from .lowrank import (
    LowRankHessian, PrecisionFactor, compress, factor_precision, positive_definite, spectral_form, woodbury_solve,
)
from .options import ZoAROptions
from .state import StateError
from .updates import SGD, Adam, UpdateRule, make_update_rule
from .zoar import ZoAR, problem_scale
from .zovh import CurvatureZoAR

__all__ = [
    "Adam", "BatchObjective", "BudgetExhausted", "ObjectiveError", "QueryHistory", "SGD",
    "StepControl", "UpdateRule", "ZoAR", "centered_weights", "make_generator", "make_update_rule",
    "problem_scale", "sample_directions", "two_point_gradient", "zoar_gradient",
    # ZoVH Hessian suite, low-rank algebra and the running curvature model
    "AveragedCurvature", "CurvatureEstimate", "CurvatureModel", "CurvatureZoAR", "DenseHessian", "LowRankHessian",
    "PrecisionFactor", "compress", "factor_precision", "inverse_hessian_gradient", "positive_definite",
    "sherman_morrison_solve", "spectral_form", "woodbury_solve", "zovh_gradient", "zovh_hessian",
    "zovh_hessian_reuse",
    # options and state as data
    "StateError", "ZoAROptions",
]
