"""The scoring pyfunc: signature, bad input, and loading in a fresh process without the checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rtt_models
from rtt_models.data import load_transactions, simulate_transactions
from rtt_models.scoring import score_features
from rtt_models.tracking.training import train_and_register

AS_OF = "2023-06-30"
REPO_ROOT = Path(rtt_models.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(mlflow_store, tmp_path_factory):
    """A BG/NBD model trained on 2,000 simulated customers and registered as champion."""
    log = load_transactions(simulate_transactions(2000, seed=21).transactions)
    return train_and_register(
        log, AS_OF, register="pyfunc-test", model="bg_nbd", tracking_uri=mlflow_store, experiment="test-pyfunc",
        artifact_location=str(tmp_path_factory.mktemp("pyfunc-artifacts")),
    )


@pytest.fixture(scope="module")
def champion(trained, mlflow_store):
    import mlflow

    mlflow.set_registry_uri(mlflow_store)
    return mlflow.pyfunc.load_model("models:/pyfunc-test@champion")


def test_signature_inputs_and_params(trained, champion):
    signature = champion.metadata.signature
    required = [spec.name for spec in signature.inputs.inputs if spec.required]
    assert required == ["customer_id", *trained.model.feature_names_in_]
    assert signature.inputs.input_dict()["last_purchase_date"].required is False
    params = {spec.name: spec.default for spec in signature.params.params}
    assert params == {"horizons": [30, 90], "as_of": AS_OF}


def test_requirements_pinned_without_rtt_models(champion):
    from importlib.metadata import version

    import mlflow

    folder = Path(mlflow.artifacts.download_artifacts("models:/pyfunc-test@champion"))
    lines = (folder / "requirements.txt").read_text().split()
    assert f"numpy=={version('numpy')}" in lines
    assert f"pandas=={version('pandas')}" in lines
    assert not any(line.startswith("rtt") for line in lines)
    assert (folder / "code" / "rtt_models" / "models" / "btyd.py").is_file()


def test_scores_equal_in_process_model(trained, champion):
    features = trained.features
    served = champion.predict(features.reset_index(), params={"horizons": [7, 30, 90], "as_of": AS_OF})
    expected = score_features(trained.model, features, [7, 30, 90], AS_OF).reset_index()
    pd.testing.assert_frame_equal(served, expected)
    assert len(served) == len(features)
    assert served["customer_id"].is_unique


def test_next_purchase_date_from_median(trained, champion):
    scores = champion.predict(trained.features.reset_index()).set_index("customer_id")
    finite = scores["median_days_to_next"].notna()
    days = np.ceil(scores.loc[finite, "median_days_to_next"]).astype(int)
    expected = (pd.Timestamp(AS_OF) + pd.to_timedelta(days, unit="D")).dt.strftime("%Y-%m-%d")
    assert (scores.loc[finite, "expected_next_purchase_date"] == expected).all()
    assert scores.loc[~finite, "expected_next_purchase_date"].isna().all()
    assert scores["p_alive"].between(0, 1).all()


def test_extra_columns_ignored(trained, champion):
    rows = trained.features.reset_index().head(20)
    with_extra = rows.assign(segment_code="x", unrelated=1.5)
    pd.testing.assert_frame_equal(champion.predict(with_extra), champion.predict(rows))


@pytest.mark.parametrize(
    ("change", "params", "message"),
    [
        pytest.param(lambda rows: rows.drop(columns=["recency_days"]), {}, "recency_days", id="missing-column"),
        pytest.param(lambda rows: rows.assign(frequency="many"), {}, "frequency", id="wrong-type"),
        pytest.param(lambda rows: rows, {"horizons": [0, 30]}, "horizons must be whole days >= 1", id="zero-horizon"),
        pytest.param(lambda rows: rows, {"as_of": "soon"}, "as_of 'soon' is not a date", id="bad-as-of"),
        pytest.param(
            lambda rows: rows, {"as_of": "2023-07-31"}, "does not match the cut-off of the features", id="wrong-as-of"
        ),
        pytest.param(
            lambda rows: rows.assign(elapsed_days=-3.0).drop(columns=["last_purchase_date"]),
            {}, "elapsed_days must be finite and >= 0", id="negative-elapsed",
        ),
    ],
)
def test_bad_input_invalid_parameter(trained, champion, change, params, message):
    from mlflow.exceptions import MlflowException

    rows = change(trained.features.reset_index().head(10))
    with pytest.raises(MlflowException, match=message) as caught:
        champion.predict(rows, params=params)
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"


LOADER = """
import json, sys
import pandas as pd
import mlflow
model = mlflow.pyfunc.load_model("models:/pyfunc-test@champion")
features = pd.read_parquet(sys.argv[1])
scores = model.predict(features, params={"horizons": [30, 90]})
scores.to_parquet(sys.argv[2])
import rtt_models
loaded = sorted({m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None)})
print(json.dumps({"rtt_models": rtt_models.__file__, "files": loaded}))
"""


def test_fresh_process_loads_champion_without_checkout(trained, mlflow_store, tmp_path):
    # Isolated mode (-I) drops PYTHONPATH and the working directory from
    # sys.path, and the working directory is a temporary folder. The
    # checkout could then be reached only through the editable install.
    features_path = tmp_path / "features.parquet"
    trained.features.reset_index().to_parquet(features_path)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "MLFLOW_TRACKING_URI": mlflow_store,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }
    completed = subprocess.run(
        [sys.executable, "-I", "-c", LOADER, str(features_path), str(tmp_path / "scores.parquet")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])

    # rtt_models came from the model's code folder, and no source file of
    # the checkout was imported (the virtual environment may live inside it).
    checkout_sources = str(REPO_ROOT / "rtt_models") + os.sep
    assert not report["rtt_models"].startswith(checkout_sources)
    assert "/code/rtt_models/" in report["rtt_models"]
    assert [f for f in report["files"] if f.startswith(checkout_sources)] == []

    scores = pd.read_parquet(tmp_path / "scores.parquet")
    expected = score_features(trained.model, trained.features, [30, 90], AS_OF).reset_index()
    pd.testing.assert_frame_equal(scores, expected)
