"""``mlflow models serve`` of the champion on 127.0.0.1: scores match, bad requests get a 400."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from rtt_models.data import load_transactions, simulate_transactions
from rtt_models.scoring import score_features
from rtt_models.tracking.training import train_and_register

AS_OF = "2023-06-30"

# Upper bound on the server's start-up. It responds to /ping after 5-15 s on a 2-core machine.
STARTUP_TIMEOUT_SECONDS = 90


@pytest.fixture(scope="module")
def trained(mlflow_store, tmp_path_factory):
    log = load_transactions(simulate_transactions(800, seed=41).transactions)
    return train_and_register(
        log, AS_OF, register="serve-test", model="bg_nbd", tracking_uri=mlflow_store, experiment="test-serve",
        artifact_location=str(tmp_path_factory.mktemp("serve-artifacts")),
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(trained, mlflow_store, tmp_path_factory):
    """Base URL of a real scoring server of models:/serve-test@champion, in its own process group."""
    port = _free_port()
    bin_folder = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_folder}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": mlflow_store,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }
    log_path = tmp_path_factory.mktemp("serve") / "server.log"
    with open(log_path, "w") as server_log:
        process = subprocess.Popen(
            [str(Path(bin_folder) / "mlflow"), "models", "serve", "-m", "models:/serve-test@champion",
             "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "--workers", "1"],
            env=env, stdout=server_log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"the scoring server exited with {process.returncode}: {log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the scoring server did not answer /ping within {STARTUP_TIMEOUT_SECONDS} s: "
                            f"{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{url}/invocations", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _payload(features: pd.DataFrame) -> dict:
    frame = features.reset_index()
    frame["last_purchase_date"] = frame["last_purchase_date"].dt.strftime("%Y-%m-%d")
    frame = frame.drop(columns=["first_purchase_date"])
    return {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}


def test_served_scores_equal_in_process(trained, server):
    features = trained.features.head(50)
    body = {**_payload(features), "params": {"horizons": [30, 60]}}
    status, answer = _post(server, body)
    assert status == 200, answer
    served = pd.DataFrame(answer["predictions"]).set_index("customer_id")
    expected = score_features(trained.model, features, [30, 60], AS_OF)
    assert list(served.index) == list(expected.index)
    for column in ("p_purchase_30d", "p_purchase_60d", "risk_score", "p_alive", "expected_days_to_next"):
        assert served[column].to_numpy() == pytest.approx(expected[column].to_numpy(), rel=1e-12), column
    served_dates = served["expected_next_purchase_date"].fillna("none")
    assert (served_dates == expected["expected_next_purchase_date"].fillna("none")).all()


@pytest.mark.parametrize(
    ("change", "params", "message"),
    [
        pytest.param(lambda frame: frame.drop(columns=["tenure_days"]), {}, "tenure_days", id="missing-column"),
        pytest.param(lambda frame: frame.assign(frequency="often"), {}, "frequency", id="wrong-type"),
        pytest.param(lambda frame: frame, {"horizons": [-30]}, "horizons must be whole days >= 1", id="bad-horizons"),
        pytest.param(lambda frame: frame, {"as_of": "2024-01-31"}, "does not match the cut-off", id="wrong-as-of"),
    ],
)
def test_malformed_request_gets_400(trained, server, change, params, message):
    frame = change(trained.features.head(5))
    status, answer = _post(server, {**_payload(frame), "params": params})
    assert status == 400, answer
    assert answer["error_code"] in ("BAD_REQUEST", "INVALID_PARAMETER_VALUE")
    assert message in answer["message"]
