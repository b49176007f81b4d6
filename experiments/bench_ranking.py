"""Measure how many real lapsers the at-risk list puts in its top decile on CDNOW.

Reference split: cut-off 1997-09-30, holdout of the 90 days after it,
occasion rule "all" (every customer-day with a row is a purchase occasion,
as in the published CDNOW figures). For each model family:

1. fit on the features (and gap episodes) at the cut-off;
2. score ``p_purchase_90d`` and rank every customer with
   :func:`rtt_models.ranking.rank_customers`, once by priority (value at
   stake) and once by lapse risk;
3. keep the active buyers (customers with 2 or more occasions by the
   cut-off) in rank order and count the real lapsers (no purchase in the
   90-day holdout, from ``split_calibration_holdout(...).truth``) among the
   first 10% of them, and the sum of those lapsers' ``spend_if_active``
   (their spend over 90 days at their usual rhythm, the same for every
   model), which is the spend the list would try to keep.

The yardstick ranks the same active buyers by days since last purchase
(ties by customer id). Results print as Markdown; ``--write`` puts them into
docs/benchmarks.md between the ``bench_ranking`` markers.

Usage::

    python experiments/bench_ranking.py --write
    python experiments/bench_ranking.py --models kaplan_meier,gb_hazard
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# The helper that writes docs/benchmarks.md sits beside this script.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmark_page import write_section  # noqa: E402

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RTT_SHARED_DATA", ROOT.parent / "shared" / "data"))
CUTOFF = "1997-09-30"
HORIZON_DAYS = 90
MIN_OCCASIONS_ACTIVE = 2
DEFAULT_MODELS = "mean_gap,kaplan_meier,bg_nbd,pareto_nbd"


def measure(models: list[str]) -> tuple[list[dict], dict]:
    """Return one result row per model and ranking key, plus the split's figures."""
    from rtt_models.data import load_transactions
    from rtt_models.features import build_episodes, split_calibration_holdout
    from rtt_models.models.names import make_model
    from rtt_models.ranking import rank_customers

    log = load_transactions(DATA / "cdnow" / "CDNOW_master.txt", format="cdnow")
    split = split_calibration_holdout(log, CUTOFF, HORIZON_DAYS, occasion_rule="all")
    features = split.features
    episodes = build_episodes(log, CUTOFF, occasion_rule="all")
    lapsed = ~split.truth["event"]
    active = features.index[features["n_occasions"] >= MIN_OCCASIONS_ACTIVE]
    decile = len(active) // 10
    base_rate = float(lapsed.loc[active].mean())

    # Yardstick: most days since last purchase first, ties by customer id.
    by_elapsed = (
        features.loc[active, ["elapsed_days"]]
        .sort_values(["elapsed_days", "customer_id"], ascending=[False, True])
        .index
    )
    tops = {("days since last purchase", "elapsed_days"): by_elapsed[:decile]}

    for name in models:
        model = make_model(name)
        model.fit(features, episodes if model.needs_episodes else None)
        scores = model.predict(features, horizons=(30, HORIZON_DAYS))
        for rank_by in ("priority", "risk"):
            ranked = rank_customers(scores, features, HORIZON_DAYS, as_of=CUTOFF, rank_by=rank_by)
            tops[name, rank_by] = ranked.index[ranked.index.isin(active)][:decile]
            usual_spend = ranked["spend_if_active"]
    rows = [_row(name, rank_by, lapsed, top, base_rate, usual_spend) for (name, rank_by), top in tops.items()]
    figures = {"customers": len(features), "active": len(active), "decile": decile, "base_rate": base_rate}
    return rows, figures


def _row(model: str, ranked_by: str, lapsed, top, base_rate: float, usual_spend) -> dict:
    caught = lapsed.loc[top]
    precision = int(caught.sum()) / len(top)
    spend = float(usual_spend.loc[caught.index[caught]].sum())
    return {"model": model, "ranked_by": ranked_by, "lapsers": int(caught.sum()), "precision": precision,
            "lift": precision / base_rate, "spend": spend}


def markdown(rows: list[dict], figures: dict, command: str) -> str:
    """Format the results as a Markdown section."""
    lines = [
        "## At-risk ranking: real lapsers in the top decile (CDNOW)",
        "",
        f"Command: `{command}`. Reference split {CUTOFF}, {HORIZON_DAYS}-day holdout, occasion rule \"all\". "
        f"Active buyers (>= {MIN_OCCASIONS_ACTIVE} occasions by the cut-off): {figures['active']:,} of "
        f"{figures['customers']:,} customers; {figures['base_rate']:.1%} of them made no purchase in the holdout. "
        f"Top decile: the first {figures['decile']:,} active buyers of each ranking. "
        "`priority` ranks by value at stake (lapse risk x spend over 90 days), `risk` by lapse risk alone. "
        "Usual spend: the lapsers' spend over 90 days at their usual rhythm (`spend_if_active`, in dollars), "
        "the spend a campaign would try to keep; the priority list aims at it, not at the count of lapsers.",
        "",
        "| model | ranked by | lapsers in top decile | precision | lift | usual spend of those lapsers |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['ranked_by']} | {row['lapsers']:,} | {row['precision']:.3f} "
            f"| {row['lift']:.2f} | {row['spend']:,.0f} |"
        )
    return "\n".join(lines)




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated model names")
    parser.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    args = parser.parse_args()
    if not (DATA / "cdnow" / "CDNOW_master.txt").is_file():
        sys.exit(f"CDNOW_master.txt not found under {DATA}; set RTT_SHARED_DATA to the data folder.")

    models = [name.strip() for name in args.models.split(",") if name.strip()]
    if not models:
        sys.exit("--models is empty; name at least one model, for example kaplan_meier.")
    rows, figures = measure(models)
    command = "python experiments/bench_ranking.py " + " ".join(sys.argv[1:])
    text = markdown(rows, figures, command.strip())
    print(text)
    if args.write:
        write_section(text, "bench_ranking")


if __name__ == "__main__":
    main()
