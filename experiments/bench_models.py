"""Time fitting and scoring of every model family on CDNOW, beside lifetimes.

Data: the CDNOW master file (23,570 customers), cut-off 1997-09-30, occasion
rule "all" (every customer-day with a row is a purchase occasion, as in the
published CDNOW figures). For each family in
``rtt_models.models.names.MODEL_CLASSES`` that imports and fits, the script
times ``fit`` on the features (and gap episodes where the family needs them)
and ``predict(features, horizons=(30, 90))``. Peers, in the same run and on
the same (frequency, recency, T) summary in weeks: lifetimes'
``BetaGeoFitter`` and ``ParetoNBDFitter``, whose scoring is P(alive) plus the
conditional expected purchases at 30 and 90 days. Each timing is repeated
and the median is reported. Feature building is not timed here.

Usage::

    python experiments/bench_models.py
    python experiments/bench_models.py --write   # update docs/benchmarks.md
"""

from __future__ import annotations

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

# The helper that writes docs/benchmarks.md sits beside this script.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmark_page import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RTT_SHARED_DATA", ROOT.parent / "shared" / "data"))
CUTOFF = "1997-09-30"
HORIZONS_DAYS = (30, 90)
WEEK_DAYS = 7.0
MARKER = "bench_models"


def _median_seconds(action, repeats: int) -> tuple[float, object]:
    """Run ``action`` ``repeats`` times; return the median wall time in seconds and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def measure(repeats: int) -> tuple[list[dict], dict]:
    """Return one row per model family or peer, plus the data's figures."""
    from rtt_models.data import load_transactions
    from rtt_models.features import build_episodes, build_features
    from rtt_models.models.names import MODEL_CLASSES, model_class

    log = load_transactions(DATA / "cdnow" / "CDNOW_master.txt", format="cdnow")
    features = build_features(log, as_of=CUTOFF, occasion_rule="all")
    episodes = build_episodes(log, as_of=CUTOFF, occasion_rule="all")
    rows = []

    # Every family of the package, skipped with its error when it cannot run.
    for name in MODEL_CLASSES:
        try:
            cls = model_class(name)
            model = cls()
            fit_episodes = episodes if model.needs_episodes else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit_s, fitted = _median_seconds(lambda: cls().fit(features, fit_episodes), repeats)
                score_s, _ = _median_seconds(lambda: fitted.predict(features, horizons=HORIZONS_DAYS), repeats)
        except Exception as err:  # a family still being written must not stop the others
            message = str(err).splitlines()[0] if str(err) else ""
            rows.append({"model": name, "fit_s": None, "score_s": None,
                         "note": f"skipped: {type(err).__name__}: {message}"[:160]})
            continue
        params = getattr(fitted, "params_", None)
        note = ", ".join(f"{k} {v:.4g}" for k, v in params.items()) if isinstance(params, dict) else ""
        rows.append({"model": name, "fit_s": fit_s, "score_s": score_s, "note": note})

    # lifetimes on the same summary, in weeks.
    rows.extend(_measure_lifetimes(features, repeats))
    figures = {"customers": len(features), "episodes": len(episodes)}
    return rows, figures


def _measure_lifetimes(features, repeats: int) -> list[dict]:
    try:
        from lifetimes import BetaGeoFitter, ParetoNBDFitter
    except ImportError as err:
        return [{"model": "lifetimes", "fit_s": None, "score_s": None, "note": f"skipped: {err}"}]
    x = features["frequency"].to_numpy(dtype=float)
    t_x = features["recency_days"].to_numpy() / WEEK_DAYS
    T = features["tenure_days"].to_numpy() / WEEK_DAYS

    rows = []
    for label, peer_class in (("lifetimes BetaGeoFitter", BetaGeoFitter), ("lifetimes ParetoNBDFitter", ParetoNBDFitter)):

        def score(peer):
            alive = peer.conditional_probability_alive(x, t_x, T)
            counts = [peer.conditional_expected_number_of_purchases_up_to_time(h / WEEK_DAYS, x, t_x, T) for h in HORIZONS_DAYS]
            return alive, counts

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit_s, peer = _median_seconds(lambda: peer_class().fit(x, t_x, T), repeats)
            score_s, _ = _median_seconds(lambda: score(peer), repeats)
        note = ", ".join(f"{k} {v:.4g}" for k, v in peer.params_.items())
        rows.append({"model": label, "fit_s": fit_s, "score_s": score_s, "note": note})
    return rows


def render(rows: list[dict], figures: dict, repeats: int, command: str) -> str:
    """Return the Markdown section: context, table and the BTYD fit-time ratios."""
    by_model = {row["model"]: row for row in rows}
    cpu = platform.processor() or platform.machine()
    lines = [
        "## Model fit and scoring times (CDNOW master)",
        "",
        f"Command: `{command}`. Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on "
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}. "
        f"{figures['customers']:,} customers and {figures['episodes']:,} gap episodes at cut-off {CUTOFF}, "
        "occasion rule \"all\". Median wall time of "
        f"{repeats} runs. Scoring is `predict(features, horizons=(30, 90))`, which also evaluates each "
        "survival curve on a daily grid up to 730 days for the median; for lifetimes it is P(alive) plus "
        "the conditional expected purchases at 30 and 90 days. Feature building is not timed.",
        "",
        "| model | fit (s) | scoring (s) | parameters or note |",
        "| --- | ---: | ---: | --- |",
    ]
    for row in rows:
        fit = "-" if row["fit_s"] is None else f"{row['fit_s']:.3f}"
        score = "-" if row["score_s"] is None else f"{row['score_s']:.3f}"
        lines.append(f"| {row['model']} | {fit} | {score} | {row['note'].replace('|', '/')} |")

    # Targets: BG/NBD fit no slower than lifetimes, Pareto/NBD fit 10x faster.
    lines.append("")
    for ours, peer, target in (
        ("bg_nbd", "lifetimes BetaGeoFitter", 1.0),
        ("pareto_nbd", "lifetimes ParetoNBDFitter", 10.0),
    ):
        mine, theirs = by_model.get(ours), by_model.get(peer)
        if mine and theirs and mine["fit_s"] and theirs["fit_s"]:
            ratio = theirs["fit_s"] / mine["fit_s"]
            verdict = "meets" if ratio >= target else "misses"
            lines.append(f"- {ours} fit is {ratio:.1f}x faster than {peer} (target {target:g}x: {verdict} it).")
    return "\n".join(lines)




def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing; the median is reported (default 3)")
    parser.add_argument("--write", action="store_true", help="replace the bench_models section of docs/benchmarks.md")
    args = parser.parse_args(argv)
    if not (DATA / "cdnow" / "CDNOW_master.txt").is_file():
        print(f"CDNOW master file not found under {DATA}; set RTT_SHARED_DATA to the data folder.", file=sys.stderr)
        return 1

    rows, figures = measure(args.repeats)
    command = "python experiments/bench_models.py" + (f" --repeats {args.repeats}" if args.repeats != 3 else "")
    text = render(rows, figures, args.repeats, command + (" --write" if args.write else ""))
    print(text)
    if args.write:
        write_section(text, MARKER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
