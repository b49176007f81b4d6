"""Measure the peak memory and wall time of `rtt score` in memory and in customer partitions.

A simulated log (``simulate_transactions(customers, seed=1)``, customer id,
timestamp and amount) is stored as Parquet in a temporary directory, and a
mean-gap model trained on its first 20,000 customers is registered in a
temporary SQLite MLflow store, both in a child process. `rtt score` then
runs once in memory and once per memory budget, each in a fresh child
process. The peak memory of a run is the child's ``ru_maxrss`` from
``os.wait4``. On Linux that figure also counts the parent's memory at the
fork (a parent that kept the log raised one figure here by about 470 MiB),
so the parent imports no data library and keeps no data. Its own peak is
printed as the floor of every figure. The script also checks that every run
wrote the same score and reject tables as the in-memory run.

Usage::

    python experiments/bench_score_chunked.py --customers 500000 --budgets 64,256,1024
    python experiments/bench_score_chunked.py --customers 500000 --budgets 64,256 --chunk-customers 20000

``--write`` also puts the table into docs/benchmarks.md between the
``bench_score_chunked`` markers.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
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

CUTOFF = "2023-06-30"
TRAIN_CUSTOMERS = 20_000


def prepare(customers: int, folder: Path) -> None:
    """Write the simulated log and register the model, then print the row count."""
    import pandas as pd

    from rtt_models.data import load_transactions, simulate_transactions
    from rtt_models.tracking.training import train_and_register

    frame = simulate_transactions(customers, seed=1).transactions[["customer_id", "timestamp", "amount"]]
    log_path = folder / "log.parquet"
    frame.to_parquet(log_path, index=False, row_group_size=500_000)
    store = f"sqlite:///{folder / 'mlflow.db'}"
    first = pd.unique(frame["customer_id"])[:TRAIN_CUSTOMERS]
    train_and_register(
        load_transactions(frame[frame["customer_id"].isin(first)]), CUTOFF, register="bench-score", model="mean_gap",
        tracking_uri=store, experiment="bench-score", artifact_location=str(folder / "artifacts"),
    )
    print(f"rows={len(frame)}")


def run_score(log_path: Path, store: str, out: Path, options: list[str]) -> tuple[float, float]:
    """Run `rtt score` in a child process; return its wall time in s and its peak RSS in MiB."""
    command = [sys.executable, "-m", "rtt_models.cli", "score", "--transactions", str(log_path), "--as-of", CUTOFF,
               "--model", "models:/bench-score@champion", "--tracking-uri", store, "--out", str(out), *options]
    # Standard error goes to a file, because a full pipe would block the child while the parent waits.
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(child.pid, 0)
        wall_s = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            raise RuntimeError(f"rtt score {' '.join(options)} failed: {errors.read().decode()[-2000:]}")
    # On Linux ru_maxrss is in KiB.
    return wall_s, usage.ru_maxrss / 1024


def same_tables(expected: Path, got: Path) -> bool:
    """Compare two Parquet tables cell by cell in a child process, so the parent stays small."""
    code = (
        "import sys, pandas as pd; "
        "a, b = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2]); "
        "pd.testing.assert_frame_equal(a, b, check_exact=True)"
    )
    return subprocess.run([sys.executable, "-c", code, str(expected), str(got)], check=False).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=300_000, help="Simulated customers.")
    parser.add_argument("--budgets", default="64,256", help="Memory budgets in MiB, comma-separated.")
    parser.add_argument("--chunk-customers", default="100000", help="Customers per model call, in every run.")
    parser.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    parser.add_argument("--prepare-into", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare_into is not None:
        prepare(args.customers, args.prepare_into)
        return

    with tempfile.TemporaryDirectory(prefix="bench-score-") as name:
        folder = Path(name)
        prepared = subprocess.run(
            [sys.executable, __file__, "--customers", str(args.customers), "--prepare-into", str(folder)],
            check=True, capture_output=True, text=True,
        )
        n_rows = int(prepared.stdout.rsplit("rows=", 1)[1])
        log_path, store = folder / "log.parquet", f"sqlite:///{folder / 'mlflow.db'}"
        parent_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        lines = [
            f"{args.customers:,} customers, {n_rows:,} rows, {log_path.stat().st_size / 2**20:,.1f} MiB of Parquet; "
            f"parent peak RSS {parent_mib:,.0f} MiB; {args.chunk_customers} customers per model call.",
            "",
            "| run | wall time (s) | peak RSS (MiB) |",
            "| --- | ---: | ---: |",
        ]
        print("\n".join(lines))

        reference = folder / "in-memory.parquet"
        chunk = ["--chunk-customers", args.chunk_customers]
        wall_s, peak_mib = run_score(log_path, store, reference, chunk)
        lines.append(f"| in memory | {wall_s:.1f} | {peak_mib:,.0f} |")
        print(lines[-1], flush=True)
        for budget in args.budgets.split(","):
            out = folder / f"budget-{budget}.parquet"
            wall_s, peak_mib = run_score(log_path, store, out, ["--memory-budget-mb", budget, *chunk])
            lines.append(f"| --memory-budget-mb {budget} | {wall_s:.1f} | {peak_mib:,.0f} |")
            print(lines[-1], flush=True)

            # The chunked run must write the same tables as the in-memory run.
            for suffix in ("", ".rejects"):
                expected = reference.with_name(f"{reference.stem}{suffix}.parquet")
                got = out.with_name(f"{out.stem}{suffix}.parquet")
                if not same_tables(expected, got):
                    raise RuntimeError(f"{got.name} differs from {expected.name}")

    if args.write:
        command = "python experiments/bench_score_chunked.py " + " ".join(sys.argv[1:])
        date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        header = [
            "## `rtt score` in memory and in customer partitions",
            "",
            f"Command: `{command}`. Date: {date}. Machine: {machine}. Model: mean_gap fitted on "
            f"{TRAIN_CUSTOMERS:,} customers. Each run is a fresh `rtt score` process;",
            "peak RSS is its `ru_maxrss`. Every partitioned run wrote the same score and reject tables as the",
            "in-memory run.",
            "",
        ]
        write_section("\n".join(header + lines), "bench_score_chunked")


if __name__ == "__main__":
    main()
