"""Benchmark features and scoring at scale: in memory, in customer partitions, on Spark.

One simulated log of about 10 million transactions of 1 million customers
(``simulate_transactions(1_000_000, seed=1, rate_scale=1.37)``) is stored as
Parquet in a temporary directory. Each step then runs in a fresh child
process, whose wall time and peak memory are its own:

* features in memory: ``load_transactions`` + ``build_features``;
* features in customer partitions: ``build_features_chunked`` with a
  memory budget below the in-memory peak;
* features on Spark: ``build_features_spark`` on a local[2] session bound to
  127.0.0.1, written to Parquet (optionally on the first N rows only);
* scoring 1 million customers per model family: ``model.predict`` and the
  MLflow scoring pyfunc's ``predict``, for the families fast enough (a
  family whose 20,000-customer probe extrapolates beyond the time limit is
  skipped and listed).

Peak memory is the maximum over the run of the summed resident set size of
the child and all its descendants (the JVM and Python workers for Spark).
It is sampled every 0.1 s from /proc, so a shorter spike can be missed. The
child's own ``ru_maxrss`` is reported as well.

Usage::

    python experiments/bench_scale.py --write
    python experiments/bench_scale.py --customers 100000 --skip-spark
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
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
HORIZONS = [30, 90]
#: Customers whose features train each scored model.
FIT_CUSTOMERS = 50_000
#: Customers of the probe that decides whether a family is fast enough to score a million.
PROBE_CUSTOMERS = 20_000
#: Families scored when --families is not given, closed-form BTYD first.
FAMILIES = ("bg_nbd", "pareto_nbd", "mbg_cnbd_k", "mean_gap", "kaplan_meier", "weibull_aft", "lognormal_aft",
            "cox_ph", "gb_hazard", "gb_regression", "dropout_timing")


# Steps, each run in a child process.


def simulate(customers: int, path: str) -> dict:
    """Simulate the log and store it as Parquet (microsecond timestamps, which Spark reads)."""
    from rtt_models.data import simulate_transactions

    simulated = simulate_transactions(customers, seed=1, rate_scale=1.37)
    frame = simulated.transactions[["customer_id", "timestamp", "amount"]]
    frame.to_parquet(path, index=False, coerce_timestamps="us", allow_truncated_timestamps=True,
                     row_group_size=1_000_000)
    return {"rows": len(frame), "customers": int(frame["customer_id"].nunique()),
            "file_mib": os.path.getsize(path) / 2**20}


def features_in_memory(path: str, features_path: str) -> dict:
    from rtt_models.data import load_transactions
    from rtt_models.features import build_features

    started = time.perf_counter()
    features = build_features(load_transactions(path), CUTOFF)
    seconds = time.perf_counter() - started
    features.to_parquet(features_path)
    return {"seconds": seconds, "customers": len(features)}


def features_chunked(path: str, budget_mb: float) -> dict:
    from rtt_models.data import DataQualityReport
    from rtt_models.features.chunked import build_features_chunked, plan_partitions

    import pyarrow.parquet as pq

    rows = pq.ParquetFile(path).metadata.num_rows
    started = time.perf_counter()
    features = build_features_chunked(path, CUTOFF, memory_budget_mb=budget_mb, report=DataQualityReport())
    return {"seconds": time.perf_counter() - started, "customers": len(features),
            "partitions": plan_partitions(rows, budget_mb)}


def features_spark(path: str, rows: int, out: str, n_partitions: int) -> dict:
    from rtt_models.spark import build_features_spark, local_session

    spark = local_session("rtt-bench-scale", cores=2, driver_memory="3g")
    try:
        transactions = spark.read.parquet(path)
        if rows:
            transactions = transactions.limit(rows)
        started = time.perf_counter()
        features = build_features_spark(transactions, CUTOFF, n_partitions=n_partitions)
        features.write.mode("overwrite").parquet(out)
        seconds = time.perf_counter() - started
        customers = spark.read.parquet(out).count()
    finally:
        spark.stop()
    return {"seconds": seconds, "customers": customers}


def scoring(log_path: str, features_path: str, families: list[str], limit_s: float, store: str) -> dict:
    """Fit each family on FIT_CUSTOMERS customers and score every customer, directly and through the pyfunc."""
    import warnings

    import mlflow
    import numpy as np
    import pandas as pd

    from rtt_models.data import load_transactions
    from rtt_models.features import build_episodes
    from rtt_models.models import make_model
    from rtt_models.tracking.pyfunc import load_scoring_model, log_scoring_model

    warnings.simplefilter("ignore")
    features = pd.read_parquet(features_path)
    rng = np.random.default_rng(0)
    fit_ids = np.sort(rng.choice(features.index.to_numpy(), size=min(FIT_CUSTOMERS, len(features)), replace=False))
    fit_features = features.loc[fit_ids]
    episodes = None
    mlflow.set_tracking_uri(store)
    results = {}
    for name in families:
        entry = {}
        results[name] = entry
        model = make_model(name)
        try:
            # Fit on a sample: fitting is not what this benchmark times.
            started = time.perf_counter()
            if model.needs_episodes:
                if episodes is None:
                    frame = pd.read_parquet(log_path, filters=[("customer_id", "in", list(fit_ids[:20_000]))])
                    episodes = build_episodes(load_transactions(frame), CUTOFF)
                model.fit(fit_features, episodes)
            else:
                model.fit(fit_features)
            entry["fit_s"] = time.perf_counter() - started

            # A probe decides whether a million customers fit in the time limit.
            probe = features.iloc[:PROBE_CUSTOMERS]
            started = time.perf_counter()
            model.predict(probe, HORIZONS)
            probe_s = time.perf_counter() - started
            estimate = probe_s * len(features) / len(probe)
            if estimate > limit_s:
                entry["skipped"] = f"estimated {estimate:.0f} s for {len(features):,} customers"
                continue

            started = time.perf_counter()
            model.predict(features, HORIZONS)
            entry["predict_s"] = time.perf_counter() - started

            with mlflow.start_run():
                info = log_scoring_model(model, fit_features, as_of=CUTOFF, horizons=HORIZONS)
            pyfunc = load_scoring_model(info.model_uri)
            inputs = features.reset_index()[["customer_id", "last_purchase_date", *model.feature_names_in_]]
            started = time.perf_counter()
            pyfunc.predict(inputs, params={"horizons": HORIZONS, "as_of": CUTOFF})
            entry["pyfunc_s"] = time.perf_counter() - started
        except Exception as err:  # a family still being written must not stop the others
            entry["error"] = f"{type(err).__name__}: {err}"[:200]
    return {"customers": len(features), "fit_customers": len(fit_ids), "families": results}


# Child processes and their memory.


def in_child(function: str, *args) -> dict:
    """Run one step in a fresh Python process; add wall time and peak memory of its process tree."""
    code = (
        "import json, resource, sys; sys.path.insert(0, %r); import bench_scale as b; "
        "out = b.%s(*%r); out['ru_maxrss_mib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024; "
        "print('RESULT ' + json.dumps(out))" % (str(Path(__file__).parent), function, args)
    )
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = _TreePeak(child.pid)
    peak.start()
    stdout, stderr = child.communicate()
    peak.stop()
    if child.returncode != 0:
        raise RuntimeError(f"step {function} failed with exit code {child.returncode}:\n{stderr[-3000:]}")
    line = [text for text in stdout.splitlines() if text.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT "):])
    result["wall_s"] = time.perf_counter() - started
    result["tree_peak_mib"] = peak.peak_bytes / 2**20
    return result


class _TreePeak(threading.Thread):
    """Sample the summed RSS of a process and its descendants until stopped."""

    def __init__(self, pid: int, interval_s: float = 0.1):
        super().__init__(daemon=True)
        self.pid = pid
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._stopped = threading.Event()

    def run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stopped.is_set():
            total = sum(_rss_pages(pid) for pid in _descendants(self.pid)) * page
            self.peak_bytes = max(self.peak_bytes, total)
            self._stopped.wait(self.interval_s)

    def stop(self) -> None:
        self._stopped.set()
        self.join()


def _descendants(root: int) -> list[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                parents[int(entry)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        found += frontier
    return found


def _rss_pages(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0


# Report.


def markdown(data: dict, results: dict, command: str, budget_mb: float, spark_rows: int) -> str:
    memory, chunked, spark, scores = (results.get(key) for key in ("memory", "chunked", "spark", "scoring"))
    lines = [
        f"Command: `{command}`",
        f"Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Machine: {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} {platform.release()}.",
        f"Data: simulated, {data['rows']:,} transactions of {data['customers']:,} customers "
        f"({data['file_mib']:.0f} MiB of Parquet), cut-off {CUTOFF}.",
        "Each step ran in a fresh child process. Peak memory: the summed RSS of the child and its descendants, "
        "sampled every 0.1 s, and the child's own max RSS.",
        f"Load average (1 min) of the machine at the start and end of the run: {data['load_start']:.1f} and "
        f"{os.getloadavg()[0]:.1f}; other work on the machine slows every step.",
        "",
        "| features | setting | time in the step (s) | wall time of the process (s) | peak memory, tree (MiB) "
        "| max RSS of the child (MiB) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    if memory:
        lines.append(_feature_row("in memory (`build_features`)", "whole log", memory))
    if chunked:
        setting = f"budget {budget_mb:g} MiB, {chunked['partitions']} partitions"
        lines.append(_feature_row("customer partitions (`build_features_chunked`)", setting, chunked))
    if spark:
        rows = f"first {spark_rows:,} rows" if spark_rows else "whole log"
        lines.append(_feature_row("Spark local[2] (`build_features_spark`)", f"{rows}, written to Parquet", spark))
    if scores:
        lines += [
            "",
            f"Scoring {scores['customers']:,} customers at horizons {HORIZONS} (models fitted on "
            f"{scores['fit_customers']:,} customers; the pyfunc is the logged MLflow scoring model, loaded in process):",
            "",
            "| family | `model.predict` (s) | customers/s | pyfunc `predict` (s) | customers/s |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for name, entry in scores["families"].items():
            lines.append(_score_row(name, entry, scores["customers"]))
    lines += ["", "Targets: features of 10 million transactions under 10 s and 4 GiB; a million customers "
              "a second through the pyfunc for the closed-form families, BG/NBD and Pareto/NBD. MBG/CNBD-k "
              "shares their table of alive curves but its expected count is a series; the other families "
              "evaluate every customer's curve on a day grid and count occasions by renewal."]
    return "\n".join(lines)


def _feature_row(name: str, setting: str, result: dict) -> str:
    return (f"| {name} | {setting} | {result['seconds']:.1f} | {result['wall_s']:.1f} | "
            f"{result['tree_peak_mib']:,.0f} | {result['ru_maxrss_mib']:,.0f} |")


def _score_row(name: str, entry: dict, customers: int) -> str:
    if "error" in entry:
        return f"| {name} | failed: {entry['error']} | | | |"
    if "skipped" in entry:
        return f"| {name} | skipped: {entry['skipped']} | | | |"
    direct, pyfunc = entry["predict_s"], entry["pyfunc_s"]
    return f"| {name} | {direct:.2f} | {customers / direct:,.0f} | {pyfunc:.2f} | {customers / pyfunc:,.0f} |"




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000, help="simulated customers (about 10 rows each)")
    parser.add_argument("--budget-mb", type=float, default=1024, help="memory budget of the chunked path, in MiB")
    parser.add_argument("--spark-rows", type=int, default=0, help="rows given to Spark; 0 gives the whole log")
    parser.add_argument("--spark-partitions", type=int, default=40, help="customer buckets of the Spark path")
    parser.add_argument("--skip-spark", action="store_true", help="leave out the Spark step")
    parser.add_argument("--families", nargs="*", default=list(FAMILIES), help="model families to score")
    parser.add_argument("--score-limit-s", type=float, default=120.0,
                        help="skip a family whose probe extrapolates beyond this many seconds")
    parser.add_argument("--write", action="store_true", help="write the tables into docs/benchmarks.md")
    args = parser.parse_args()
    command = "python experiments/bench_scale.py " + " ".join(sys.argv[1:])

    with tempfile.TemporaryDirectory(prefix="rtt-bench-scale-") as folder:
        log_path = str(Path(folder) / "log.parquet")
        features_path = str(Path(folder) / "features.parquet")
        load_start = os.getloadavg()[0]
        data = in_child("simulate", args.customers, log_path)
        data["load_start"] = load_start
        print(f"simulated {data['rows']:,} rows in {data['wall_s']:.0f} s", file=sys.stderr)
        results = {"memory": in_child("features_in_memory", log_path, features_path)}
        print(f"in memory: {results['memory']}", file=sys.stderr)
        results["chunked"] = in_child("features_chunked", log_path, args.budget_mb)
        print(f"chunked: {results['chunked']}", file=sys.stderr)
        if not args.skip_spark:
            out = str(Path(folder) / "spark-features")
            results["spark"] = in_child("features_spark", log_path, args.spark_rows, out, args.spark_partitions)
            print(f"spark: {results['spark']}", file=sys.stderr)
        store = f"sqlite:///{Path(folder) / 'mlflow.db'}"
        results["scoring"] = in_child("scoring", log_path, features_path, args.families, args.score_limit_s, store)

    table = markdown(data, results, command, args.budget_mb, args.spark_rows)
    print(table)
    if args.write:
        write_section(table, "bench_scale")


if __name__ == "__main__":
    main()
