"""rtt-models: predict when each customer will buy again."""

__version__ = "0.1.0"
