"""Benchmark the feature builder against DuckDB and lifetimes on one log.

A simulated log of about 10 million transactions of 1 million customers is
built once; then, in the same run and on the same in-memory frame:

* rtt-models: ``load_transactions`` (validation and repairs) and
  ``build_features`` (all feature columns), timed separately;
* DuckDB: a minimal SQL aggregate of the core features (occasions per
  customer-day, frequency, recency, T, elapsed, mean gap, total spend);
* lifetimes: ``summary_data_from_transaction_data`` (frequency, recency, T
  only), on a subsample because it is far slower, scaled linearly.

Each tool runs in a fresh child process so that its peak memory (max RSS)
is its own. Results print as a Markdown table; ``--write`` puts them into
docs/benchmarks.md between the ``bench_features`` markers.

Usage::

    python experiments/bench_features.py --customers 1000000 --write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

# The helper that writes docs/benchmarks.md sits beside this script.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmark_page import write_section  # noqa: E402

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

ROOT = Path(__file__).resolve().parents[1]
CUTOFF = "2023-12-31"


def simulate(customers: int, path: Path) -> dict:
    """Simulate the log and store it as Parquet for the child processes."""
    from rtt_models.data import simulate_transactions

    started = time.perf_counter()
    simulated = simulate_transactions(customers, seed=1, rate_scale=_rate_scale_for_ten_per_customer())
    frame = simulated.transactions[["customer_id", "timestamp", "amount"]]
    frame.to_parquet(path, index=False)
    return {"rows": len(frame), "customers": int(frame["customer_id"].nunique()),
            "seconds": time.perf_counter() - started}


def _rate_scale_for_ten_per_customer() -> float:
    """Rate multiplier that gives about ten transactions per customer over two years."""
    from rtt_models.data import simulate_transactions

    probe = simulate_transactions(20_000, seed=1)
    per_customer = len(probe.transactions) / 20_000
    return 10.0 / per_customer


def run_rtt(path: str) -> dict:
    import pandas as pd

    from rtt_models.data import load_transactions
    from rtt_models.features import build_features

    frame = pd.read_parquet(path)
    started = time.perf_counter()
    log = load_transactions(frame)
    loaded = time.perf_counter()
    features = build_features(log, CUTOFF)
    done = time.perf_counter()
    return {"load_s": loaded - started, "features_s": done - loaded, "total_s": done - started,
            "customers": len(features)}


def run_duckdb(path: str) -> dict:
    import duckdb
    import pandas as pd

    frame = pd.read_parquet(path)
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    con.execute("SET enable_progress_bar = false")
    query = f"""
        WITH days AS (
            SELECT customer_id, CAST(timestamp AS DATE) AS day, SUM(amount) AS amount
            FROM frame WHERE timestamp < DATE '{CUTOFF}' + INTERVAL 1 DAY
            GROUP BY customer_id, day HAVING SUM(amount) > 0
        )
        SELECT customer_id, COUNT(*) AS n_occasions, COUNT(*) - 1 AS frequency,
               date_diff('day', MIN(day), MAX(day)) AS recency_days,
               date_diff('day', MIN(day), DATE '{CUTOFF}') AS tenure_days,
               date_diff('day', MAX(day), DATE '{CUTOFF}') AS elapsed_days,
               CASE WHEN COUNT(*) > 1 THEN date_diff('day', MIN(day), MAX(day)) / (COUNT(*) - 1) END
                   AS gap_mean_days,
               SUM(amount) AS spend_total
        FROM days GROUP BY customer_id
    """
    result = con.execute(query).df()
    return {"total_s": time.perf_counter() - started, "customers": len(result)}


def run_lifetimes(path: str, sample_customers: int) -> dict:
    import pandas as pd
    from lifetimes.utils import summary_data_from_transaction_data

    frame = pd.read_parquet(path)
    customers = frame["customer_id"].drop_duplicates().sort_values().iloc[:sample_customers]
    sample = frame[frame["customer_id"].isin(customers)]
    started = time.perf_counter()
    summary = summary_data_from_transaction_data(
        sample, "customer_id", "timestamp", monetary_value_col="amount", observation_period_end=CUTOFF, freq="D"
    )
    seconds = time.perf_counter() - started
    total_customers = frame["customer_id"].nunique()
    return {"total_s": seconds * total_customers / len(summary), "measured_s": seconds,
            "sample_rows": len(sample), "customers": len(summary)}


def in_child(function: str, *args) -> dict:
    """Run one tool in a fresh Python process and return its result with peak memory."""
    code = (
        "import json, resource, sys; sys.path.insert(0, %r); import bench_features as b; "
        "out = b.%s(*%r); out['peak_gib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20; "
        "print('RESULT ' + json.dumps(out))" % (str(Path(__file__).parent), function, args)
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    line = next(text for text in completed.stdout.splitlines() if text.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def baseline_memory(path: str) -> dict:
    """Peak memory of reading the Parquet log alone, subtracted from each tool's peak."""
    import pandas as pd

    pd.read_parquet(path)
    return {}


def markdown(results: dict, data: dict, command: str, load_average: float) -> str:
    rtt, duck, life, base = results["rtt"], results["duckdb"], results["lifetimes"], results["baseline"]
    lines = [
        f"Command: `{command}`",
        f"Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Machine: {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}; "
        f"1-minute load average at the start {load_average:.1f} (other jobs may share the cores; "
        "DuckDB runs 2 threads, rtt-models one thread per core in its per-customer steps).",
        f"Data: simulated, {data['rows']:,} transactions of {data['customers']:,} customers, cut-off {CUTOFF}.",
        "Peak memory is the child process's max RSS, including the "
        f"{base['peak_gib']:.2f} GiB of reading the Parquet log.",
        "",
        "| tool | what it computes | wall time (s) | peak memory (GiB) |",
        "| --- | --- | ---: | ---: |",
        f"| rtt-models `load_transactions` | validation, duplicates, dates | {rtt['load_s']:.2f} | |",
        f"| rtt-models `build_features` | all {27} feature columns | {rtt['features_s']:.2f} | |",
        f"| rtt-models, both | | {rtt['total_s']:.2f} | {rtt['peak_gib']:.2f} |",
        f"| DuckDB SQL aggregate | 8 core columns | {duck['total_s']:.2f} | {duck['peak_gib']:.2f} |",
        f"| lifetimes `summary_data_from_transaction_data` | frequency, recency, T, monetary | "
        f"{life['total_s']:.1f} (scaled from {life['measured_s']:.1f} s on {life['customers']:,} customers) | "
        f"{life['peak_gib']:.2f} |",
        "",
        f"Ratios in this run: rtt-models `build_features` / DuckDB = {rtt['features_s'] / duck['total_s']:.2f}, "
        f"rtt-models load + features / DuckDB = {rtt['total_s'] / duck['total_s']:.2f}; "
        f"lifetimes / rtt-models load + features = {life['total_s'] / rtt['total_s']:.1f}.",
        "Targets: under 10 s and 4 GiB, within 1.5x of DuckDB, faster than lifetimes.",
    ]
    return "\n".join(lines)




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lifetimes-customers", type=int, default=20_000,
                        help="customers in the lifetimes subsample (it is slow)")
    parser.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    args = parser.parse_args()
    load_average = os.getloadavg()[0]

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "log.parquet"
        data = simulate(args.customers, path)
        results = {
            "baseline": in_child("baseline_memory", str(path)),
            "rtt": in_child("run_rtt", str(path)),
            "duckdb": in_child("run_duckdb", str(path)),
            "lifetimes": in_child("run_lifetimes", str(path), args.lifetimes_customers),
        }
    command = "python experiments/bench_features.py " + " ".join(sys.argv[1:])
    text = "## Feature building\n\n" + markdown(results, data, command.strip(), load_average)
    print(text)
    if args.write:
        write_section(text, "bench_features")


if __name__ == "__main__":
    main()
