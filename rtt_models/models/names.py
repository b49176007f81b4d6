"""Short model names, as the command line's ``--model`` option takes them.

Each name maps to the module and class of one family; the import happens
only when the model is built, so listing names never imports lifelines or
the boosting code.
"""

from __future__ import annotations

from importlib import import_module

from rtt_models.models.base import NextPurchaseModel

MODEL_CLASSES: dict[str, str] = {
    "mean_gap": "rtt_models.models.mean_gap:MeanGapModel",
    "kaplan_meier": "rtt_models.models.baselines:KaplanMeierModel",
    "bg_nbd": "rtt_models.models.btyd:BGNBDModel",
    "pareto_nbd": "rtt_models.models.btyd:ParetoNBDModel",
    "mbg_cnbd_k": "rtt_models.models.mbg_cnbd:MBGCNBDModel",
    "weibull_aft": "rtt_models.models.survival:WeibullAFTModel",
    "lognormal_aft": "rtt_models.models.survival:LogNormalAFTModel",
    "cox_ph": "rtt_models.models.survival:CoxPHModel",
    "gb_hazard": "rtt_models.models.hazard:GradientBoostedHazardModel",
    "gb_regression": "rtt_models.models.regression:LogGapRegressionModel",
    "dropout_timing": "rtt_models.models.cure:DropoutTimingModel",
    "ensemble": "rtt_models.models.ensemble:SurvivalEnsembleModel",
}


def model_names() -> list[str]:
    """Return every model name that :func:`make_model` accepts."""
    return list(MODEL_CLASSES)


def model_class(name: str) -> type[NextPurchaseModel]:
    """Return the class behind a short model name."""
    if name not in MODEL_CLASSES:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_CLASSES)}.")
    module_name, class_name = MODEL_CLASSES[name].split(":")
    return getattr(import_module(module_name), class_name)


def make_model(name: str, **settings) -> NextPurchaseModel:
    """Build an unfitted model from its short name and settings.

    Parameters
    ----------
    name : str
        One of :func:`model_names`, for example ``"bg_nbd"``.
    **settings
        Constructor arguments of that family, for example ``penalizer=0.1``.

    Raises
    ------
    ValueError
        For an unknown name or a setting the family does not have.
    """
    cls = model_class(name)
    allowed = cls().get_params()
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise ValueError(
            f"model {name!r} has no setting {', '.join(unknown)}; its settings are "
            f"{', '.join(sorted(allowed)) or 'none'}."
        )
    return cls(**settings)
