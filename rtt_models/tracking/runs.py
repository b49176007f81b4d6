"""MLflow runs: settings, the data fingerprint, metrics, tables, plots and the feature schema.

Where runs go: the tracking URI passed to :func:`tracking_run`, else
``MLFLOW_TRACKING_URI``, else MLflow's own default (``mlflow.db``, SQLite, in
the working directory, for MLflow 3).

Metric names: a backtest logs ``{model}.{metric}`` (for example
``bg_nbd.auc_30d``) once per cut-off, with the cut-off as the step written
as the number ``YYYYMMDD``, and the mean over cut-offs as
``{model}.{metric}.mean``. A training run logs the validation metrics of
the trained model as ``validation.{metric}``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from rtt_models.data.load import TransactionLog

logger = logging.getLogger("rtt_models")

#: Experiment used when none is named.
DEFAULT_EXPERIMENT = "rtt-models"

# MLflow accepts letters, digits, underscores, dashes, periods, spaces,
# colons and slashes in metric and param names.
_UNSAFE_NAME = re.compile(r"[^\w\-. :/]")

# MLflow stores at most this many metrics, params or tags per batch call.
_BATCH_SIZE = 1000


@contextlib.contextmanager
def tracking_run(
    experiment: str | None = None,
    *,
    tracking_uri: str | None = None,
    run_name: str | None = None,
    artifact_location: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """Open an MLflow run in an experiment, creating the experiment when absent.

    Parameters
    ----------
    experiment : str, optional
        Experiment name; default ``"rtt-models"``.
    tracking_uri : str, optional
        Tracking store, for example ``sqlite:///mlflow.db``. When given it
        becomes MLflow's process-wide tracking URI (``mlflow.set_tracking_uri``).
    run_name : str, optional
        Display name of the run.
    artifact_location : str, optional
        Artifact folder or URI of a new experiment; ignored when the
        experiment exists. Default for a SQLite store: ``mlruns/<experiment>``
        beside the database file, which for MLflow's default store is under
        the working directory; for other stores, MLflow's default.
    tags : mapping of str to str, optional
        Run tags.

    Yields
    ------
    mlflow.ActiveRun
        The run; it ends when the block ends, as FAILED if the block raised.
    """
    if tracking_uri is not None:
        mlflow.set_tracking_uri(tracking_uri)
    name = experiment or DEFAULT_EXPERIMENT
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        experiment_id = found.experiment_id
    else:
        location = artifact_location or _artifacts_beside_database(mlflow.get_tracking_uri(), name)
        experiment_id = mlflow.create_experiment(name, artifact_location=location)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=dict(tags or {})) as run:
        logger.info("started MLflow run %s in experiment %r at %s", run.info.run_id, name, mlflow.get_tracking_uri())
        yield run


def _artifacts_beside_database(tracking_uri: str, experiment: str) -> str | None:
    # MLflow's SQLite store resolves its default artifact root against the
    # working directory of the process that first opened it, so runs of one
    # store could scatter over several folders.
    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = Path(tracking_uri.removeprefix("sqlite:///"))
    return str(database.resolve().parent / "mlruns" / metric_name(experiment).replace("/", "_"))


# ------------------------------------------------------------------ data


def data_fingerprint(log: TransactionLog) -> dict[str, object]:
    """Summarise a transaction log into a fingerprint that identifies its content.

    The content hash is a SHA-256 over the sorted 64-bit hashes of the rows
    (``pandas.util.hash_pandas_object`` without the index), preceded by the
    column names and dtypes. Sorting makes it independent of row order;
    any changed value, added or removed row, or renamed column changes it.

    Parameters
    ----------
    log : TransactionLog
        The canonical log, as :func:`rtt_models.data.load_transactions` returns it.

    Returns
    -------
    dict
        ``rows``, ``customers``, ``first_date`` and ``last_date`` (ISO dates
        in the business time zone), ``timezone`` and ``sha256`` (hex).
    """
    frame = log.frame
    row_hashes = np.sort(pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64))
    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    digest.update(row_hashes.tobytes())
    empty = frame.empty
    return {
        "rows": int(len(frame)),
        "customers": int(frame["customer_id"].nunique()),
        "first_date": None if empty else frame["timestamp"].min().date().isoformat(),
        "last_date": None if empty else frame["timestamp"].max().date().isoformat(),
        "timezone": log.timezone,
        "sha256": digest.hexdigest(),
    }


def log_data_fingerprint(log: TransactionLog, prefix: str = "data") -> dict[str, object]:
    """Log :func:`data_fingerprint` as params ``{prefix}.rows``, ``{prefix}.sha256``, ... and return it."""
    fingerprint = data_fingerprint(log)
    log_params({f"{prefix}.{key}": value for key, value in fingerprint.items()})
    return fingerprint


def feature_schema(features: pd.DataFrame, model=None) -> dict[str, object]:
    """Describe the feature table: column names, dtypes and which columns the model reads.

    Returns
    -------
    dict
        ``as_of`` (from ``features.attrs``), ``index`` and ``columns``, a
        list of ``{"name", "dtype", "read_by_model"}``.
    """
    read = set(getattr(model, "feature_names_in_", ())) if model is not None else set()
    return {
        "as_of": features.attrs.get("as_of"),
        "index": features.index.name,
        "columns": [
            {"name": str(name), "dtype": str(dtype), "read_by_model": name in read}
            for name, dtype in features.dtypes.items()
        ],
    }


def log_feature_schema(features: pd.DataFrame, model=None) -> None:
    """Log :func:`feature_schema` as the artifact ``feature_schema.json``."""
    mlflow.log_dict(feature_schema(features, model), "feature_schema.json")


# ------------------------------------------------------- params, metrics


def log_params(params: Mapping[str, object]) -> None:
    """Log params, turning lists and dicts into JSON and skipping None values."""
    cleaned = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple, dict)):
            value = json.dumps(value, default=str, sort_keys=isinstance(value, dict))
        cleaned[metric_name(key)] = value
    items = list(cleaned.items())
    for start in range(0, len(items), _BATCH_SIZE):
        mlflow.log_params(dict(items[start : start + _BATCH_SIZE]))


def metric_name(text: str) -> str:
    """Replace the characters MLflow rejects in a metric or param name with ``_``."""
    return _UNSAFE_NAME.sub("_", str(text))


def cutoff_step(cutoff) -> int:
    """Return a cut-off as the metric step ``YYYYMMDD``, for example 19970930."""
    day = pd.Timestamp(cutoff)
    return day.year * 10_000 + day.month * 100 + day.day


def log_metric_rows(rows: Sequence[tuple[str, float, int]]) -> int:
    """Log ``(name, value, step)`` rows in batches, skipping non-finite values; return the count logged."""
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("no active MLflow run; open one with rtt_models.tracking.tracking_run().")
    now = int(time.time() * 1000)
    metrics = [
        Metric(metric_name(name), float(value), now, int(step))
        for name, value, step in rows
        if value is not None and np.isfinite(float(value))
    ]
    client = MlflowClient()
    for start in range(0, len(metrics), _BATCH_SIZE):
        client.log_batch(run.info.run_id, metrics=metrics[start : start + _BATCH_SIZE])
    return len(metrics)


def log_table(frame: pd.DataFrame, artifact_file: str, *, index: bool = True) -> None:
    """Log a DataFrame as a CSV artifact."""
    with tempfile.TemporaryDirectory(prefix="rtt-table-") as folder:
        path = Path(folder) / Path(artifact_file).name
        frame.to_csv(path, index=index)
        parent = str(Path(artifact_file).parent)
        mlflow.log_artifact(str(path), artifact_path=None if parent == "." else parent)


# --------------------------------------------------------------- backtests


def log_backtest(
    result,
    *,
    log: TransactionLog | None = None,
    occasion_rule: str | None = None,
    plots_dir: str | Path | None = None,
) -> int:
    """Log a backtest into the active run: params, metrics, tables, plots and the feature schema.

    Parameters
    ----------
    result : BacktestResult
        From :func:`rtt_models.evaluation.backtest`.
    log : TransactionLog, optional
        The log backtested; adds its fingerprint and time zone.
    occasion_rule : str, optional
        The occasion rule the backtest used.
    plots_dir : path, optional
        Folder of plots (for example from ``save_backtest_plots``); every
        PNG in it is logged under ``plots/``.

    Returns
    -------
    int
        Number of metric values logged.
    """
    cutoffs = sorted(pd.Timestamp(c) for c in result.truths)
    log_params(
        {
            "models": sorted(set(result.summary.index)),
            "cutoffs": [c.date().isoformat() for c in cutoffs],
            "horizons": list(result.horizons),
            "window_days": int(result.window_days),
            "occasion_rule": occasion_rule,
            "timezone": None if log is None else log.timezone,
        }
    )
    if log is not None:
        log_data_fingerprint(log)

    # One value per model, metric and cut-off, then the mean over cut-offs.
    rows = [
        (f"{row.model}.{row.metric}", row.value, cutoff_step(row.cutoff))
        for row in result.metrics.itertuples(index=False)
    ]
    summary = result.summary
    for model, values in summary.drop(columns=["n_cutoffs"], errors="ignore").iterrows():
        for metric, value in values.items():
            if not str(metric).endswith("_std"):
                rows.append((f"{model}.{metric}.mean", value, 0))
    logged = log_metric_rows(rows)

    # Tables, the feature schema and plots as artifacts.
    log_table(summary, "backtest/summary.csv")
    log_table(result.metrics, "backtest/metrics.csv", index=False)
    log_table(result.per_cutoff, "backtest/per_cutoff.csv", index=False)
    log_table(result.failures, "backtest/failures.csv", index=False)
    if result.latest_split is not None:
        log_feature_schema(result.latest_split.features)
    if plots_dir is not None:
        for path in sorted(Path(plots_dir).glob("*.png")):
            mlflow.log_artifact(str(path), artifact_path="plots")
    logger.info("logged %d backtest metrics of %d models", logged, len(summary))
    return logged
