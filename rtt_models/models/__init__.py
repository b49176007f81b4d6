"""Next-purchase models under one contract; see :mod:`rtt_models.models.base`."""

from rtt_models.models.base import NextPurchaseModel
from rtt_models.models.names import make_model, model_class, model_names

__all__ = ["NextPurchaseModel", "make_model", "model_class", "model_names"]
