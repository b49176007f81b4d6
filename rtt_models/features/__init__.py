"""Per-customer RTT features, gap episodes and calibration/holdout splits."""

from rtt_models.features.customer import FEATURE_COLUMNS, build_features
from rtt_models.features.episodes import build_episodes
from rtt_models.features.history import EPISODE_COVARIATES
from rtt_models.features.split import CalibrationHoldoutSplit, split_calibration_holdout

__all__ = [
    "EPISODE_COVARIATES",
    "FEATURE_COLUMNS",
    "CalibrationHoldoutSplit",
    "build_episodes",
    "build_features",
    "split_calibration_holdout",
]
