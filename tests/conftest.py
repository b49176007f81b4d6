"""Shared fixtures: the real data folder and the network-free environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# MLflow sends usage telemetry from `import mlflow` unless these are set, and
# no test may reach any host but 127.0.0.1.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

SHARED_DATA_DIR = Path(os.environ.get("RTT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """Folder of the real transaction logs (CDNOW, grocery, UCI online retail).

    It is looked up beside the repository as ``../shared/data``, or at
    ``$RTT_SHARED_DATA``; tests that need it skip where it is absent.
    """
    if not (SHARED_DATA_DIR / "cdnow" / "CDNOW_master.txt").is_file():
        pytest.skip(f"real transaction logs not found at {SHARED_DATA_DIR}; set RTT_SHARED_DATA to their folder")
    return SHARED_DATA_DIR


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory) -> str:
    """URI of one SQLite MLflow tracking store and registry shared by the whole test session.

    Creating a store costs about two seconds, so tests share it and keep
    apart by experiment and registered model names; each test module gives
    its experiments an artifact folder under its own temporary path. The
    process-wide tracking URI that tests set is reset at the end.
    """
    folder = tmp_path_factory.mktemp("mlflow")
    yield f"sqlite:///{folder / 'mlflow.db'}"

    import mlflow

    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


@pytest.fixture(scope="session", autouse=True)
def _tracking_store_for_commands(mlflow_store):
    """Point every command that logs to MLflow at the shared test store.

    ``rtt backtest``, ``rtt train`` and ``rtt run`` log to MLflow's default
    store in the working directory unless ``MLFLOW_TRACKING_URI`` is set, so
    without this the tests would write ``mlflow.db`` into the checkout.
    """
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = mlflow_store
    yield
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous
