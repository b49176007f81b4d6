"""Score every model family and the lifetimes peers on the real datasets, in one run.

For each dataset the log is split at a fixed cut-off into calibration
features and the truth of a holdout window (see ``DATASETS``). Each family in
``rtt_models.models.model_names()`` that imports and fits is fitted on the
calibration data (with the settings in ``MODEL_SETTINGS``) and scored by the
evaluation harness: C-index, AUC at 30 and 90 days, Brier score at 90 days,
integrated Brier score (IBS), holdout count ratio and MAE, and the lift of
the top 10% at-risk customers.

Peers, fitted in the same run:

* lifetimes 0.11.3 ``BetaGeoFitter`` and ``ParetoNBDFitter`` with penalizer 0
  on frequency, recency and T in weeks from ``build_features``. Their counts
  (count ratio and MAE) come from lifetimes'
  ``conditional_expected_number_of_purchases_up_to_time``. lifetimes has no
  function for P(no purchase in (T, T + t]), so their fitted parameters are
  plugged into the closed-form survival of rtt_models' BG/NBD and Pareto/NBD
  classes for the C-index, AUC, Brier score and IBS. The note column adds
  their C-index when customers are ranked by lifetimes' expected purchases
  over the window.
* The one-line scores "days since last purchase" and "purchase count" (rank
  metrics only).

Usage::

    python experiments/benchmark_datasets.py
    python experiments/benchmark_datasets.py --datasets cdnow --models pareto_nbd,ensemble
    python experiments/benchmark_datasets.py --write   # update docs/benchmarks.md
"""

from __future__ import annotations

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

import argparse  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

# The helper that writes docs/benchmarks.md sits beside this script.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmark_page import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MARKER = "benchmark_datasets"
HORIZONS_DAYS = (30, 90)
WEEK_DAYS = 7.0
TOP_K_PERCENT = (10,)

#: Constructor settings per family; families absent here use their defaults.
#: Ensemble members given by name are built with the same settings.
MODEL_SETTINGS: dict[str, dict] = {
    "gb_hazard": {"max_iter": 100},
    "ensemble": {"members": ("pareto_nbd", "dropout_timing", "gb_hazard"), "weights": "backtest"},
}

#: Metric columns of the tables, in order, with their headers.
TABLE_METRICS: tuple[tuple[str, str], ...] = (
    ("c_index", "C-index"),
    ("auc_30d", "AUC 30d"),
    ("auc_90d", "AUC 90d"),
    ("brier_90d", "Brier 90d"),
    ("ibs", "IBS"),
    ("count_ratio", "count ratio"),
    ("count_mae", "count MAE"),
    ("lift_top10", "lift top 10%"),
)

#: Headline metrics of the targets, with whether higher is better.
HEADLINE_METRICS: dict[str, bool] = {
    "c_index": True,
    "auc_30d": True,
    "auc_90d": True,
    "brier_90d": False,
    "ibs": False,
}

PEER_PARETO = "lifetimes ParetoNBDFitter"
PEER_BG = "lifetimes BetaGeoFitter"


@dataclass(frozen=True)
class DatasetSpec:
    """Location, format and calibration/holdout split of one dataset."""

    title: str
    path: str
    format: str
    occasion_rule: str
    cutoff: str
    window_days: int
    reason: str


DATASETS: dict[str, DatasetSpec] = {
    "cdnow": DatasetSpec(
        title="CDNOW master",
        path="cdnow/CDNOW_master.txt",
        format="cdnow",
        occasion_rule="all",
        cutoff="1997-09-30",
        window_days=273,
        reason="the reference split of the BTYD literature: calibration to 1997-09-30, holdout to 1998-06-30",
    ),
    "grocery": DatasetSpec(
        title="BTYDplus grocery",
        path="btydplus_grocery/btydplus_grocery.csv",
        format="csv",
        occasion_rule="all",
        cutoff="2006-12-31",
        window_days=364,
        reason="the 52-week calibration period that BTYDplus uses for this data; 32% of the transactions "
        "fall in the holdout (2007-01-01 to 2007-12-30)",
    ),
    "retail": DatasetSpec(
        title="UCI online retail",
        path="uci_online_retail/uci_online_retail.csv",
        format="csv",
        occasion_rule="positive",
        cutoff="2011-08-31",
        window_days=100,
        reason="the holdout 2011-09-01 to 2011-12-09 (the last data day) holds 38% of the invoices",
    ),
}


def data_folder() -> Path:
    """Return ``$RTT_SHARED_DATA``, or ``../shared/data`` beside the repository."""
    return Path(os.environ.get("RTT_SHARED_DATA", ROOT.parent / "shared" / "data"))


def build_model(name: str):
    """Build a family from its short name with the settings of ``MODEL_SETTINGS``."""
    from rtt_models.models import make_model

    settings = dict(MODEL_SETTINGS.get(name, {}))
    if name == "ensemble" and "members" in settings:
        settings["members"] = tuple(
            make_model(member, **MODEL_SETTINGS.get(member, {})) if isinstance(member, str) else member
            for member in settings["members"]
        )
    return make_model(name, **settings)


# ------------------------------------------------------------- scoring


def evaluate_log(log, spec: DatasetSpec, model_names: list[str], peers: bool = True) -> list[dict]:
    """Fit and score every family, the lifetimes peers and the one-line scores on one log.

    Returns
    -------
    list of dict
        One row per model: ``model``, ``kind`` ("family", "peer" or
        "one-line"), ``fit_seconds``, ``note`` and the metric keys of
        :func:`rtt_models.evaluation.evaluate_predictions`.
    """
    from rtt_models.evaluation import evaluate_scores
    from rtt_models.evaluation.metrics import SCORE_BASELINES
    from rtt_models.features import build_episodes, split_calibration_holdout

    split = split_calibration_holdout(log, spec.cutoff, spec.window_days, occasion_rule=spec.occasion_rule)
    episodes = build_episodes(log, spec.cutoff, occasion_rule=spec.occasion_rule)
    rows = [_evaluate_family(name, split, episodes) for name in model_names]
    if peers:
        rows.extend(_evaluate_lifetimes(split))
    for name, (score, scale) in SCORE_BASELINES.items():
        metrics = evaluate_scores(
            score(split.features), split.truth, HORIZONS_DAYS, split.window_days, scale=scale,
            top_k_percent=TOP_K_PERCENT,
        )
        rows.append({"model": name.replace("_", " "), "kind": "one-line", "fit_seconds": math.nan, "note": "", **metrics})
    return rows


def _evaluate_family(name: str, split, episodes) -> dict:
    from rtt_models.evaluation import evaluate_model

    try:
        model = build_model(name)
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(split.features, episodes if model.needs_episodes else None)
        fit_seconds = time.perf_counter() - started
        metrics = evaluate_model(model, split, HORIZONS_DAYS, TOP_K_PERCENT)
    except Exception as err:  # noqa: BLE001 - a family that fails must not stop the others
        message = " ".join(str(err).split())
        return {"model": name, "kind": "family", "fit_seconds": math.nan, "note": f"failed: {type(err).__name__}: {message}"[:160]}
    return {"model": name, "kind": "family", "fit_seconds": fit_seconds, "note": _model_note(model), **metrics}


def _model_note(model) -> str:
    weights = getattr(model, "weights_", None)
    if weights is not None:
        return "weights " + ", ".join(f"{label} {w:.2f}" for label, w in zip(model.member_names_, weights))
    return ""


def _evaluate_lifetimes(split) -> list[dict]:
    """Fit lifetimes' BG/NBD and Pareto/NBD and score them; see the module docstring."""
    from lifelines.utils import concordance_index
    from lifetimes import BetaGeoFitter, ParetoNBDFitter

    from rtt_models.evaluation import evaluate_predictions
    from rtt_models.evaluation.metrics import predict_for_evaluation
    from rtt_models.models.btyd import BGNBDModel, ParetoNBDModel

    features, truth, window = split.features, split.truth, split.window_days
    x = features["frequency"].to_numpy(dtype=float)
    t_x = features["recency_days"].to_numpy(dtype=float) / WEEK_DAYS
    T = features["tenure_days"].to_numpy(dtype=float) / WEEK_DAYS

    rows = []
    for label, peer_class, ours_class in ((PEER_BG, BetaGeoFitter, BGNBDModel), (PEER_PARETO, ParetoNBDFitter, ParetoNBDModel)):
        try:
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                peer = peer_class(penalizer_coef=0.0).fit(x, t_x, T)
            fit_seconds = time.perf_counter() - started
            params = {name: float(peer.params_[name]) for name in peer.params_.index}

            # Survival metrics: lifetimes' parameters in rtt_models' closed forms.
            plugged = ours_class(time_unit_days=WEEK_DAYS)
            plugged.params_ = params
            plugged.feature_names_in_ = list(plugged.required_features)
            predictions, survival = predict_for_evaluation(plugged, features, HORIZONS_DAYS, window)
            metrics = evaluate_predictions(predictions, survival, truth, HORIZONS_DAYS, window, TOP_K_PERCENT)

            # Counts from lifetimes' own conditional expectation.
            expected = np.asarray(
                peer.conditional_expected_number_of_purchases_up_to_time(window / WEEK_DAYS, x, t_x, T), dtype=float
            )
            actual = truth["n_occasions_holdout"].reindex(features.index).to_numpy(dtype=float)
            metrics["count_ratio"] = float(expected.sum() / actual.sum())
            metrics["count_mae"] = float(np.mean(np.abs(expected - actual)))
            aligned = truth.reindex(features.index)
            c_by_count = concordance_index(aligned["days_to_next"], -expected, aligned["event"])
        except Exception as err:  # noqa: BLE001 - a failing peer is reported in its row
            rows.append({"model": label, "kind": "peer", "fit_seconds": math.nan, "note": f"failed: {type(err).__name__}: {' '.join(str(err).split())}"[:160]})
            continue
        note = ", ".join(f"{k} {v:.4g}" for k, v in params.items()) + f"; C-index by expected purchases {c_by_count:.3f}"
        rows.append({"model": label, "kind": "peer", "fit_seconds": fit_seconds, "note": note, **metrics})
    return rows


# ------------------------------------------------------------- reporting


def rank_rows(rows: list[dict]) -> list[dict]:
    """Sort rows best first: C-index descending, then IBS ascending; failed rows last."""

    def key(row):
        c_index = row.get("c_index", math.nan)
        ibs = row.get("ibs", math.nan)
        return (math.isnan(c_index), -c_index if not math.isnan(c_index) else 0.0, ibs if not math.isnan(ibs) else math.inf)

    return sorted(rows, key=key)


def compare_with_peer(rows: list[dict]) -> list[str]:
    """Say, per headline metric, whether the best family beats lifetimes' Pareto/NBD and the one-line scores."""
    families = [r for r in rows if r["kind"] == "family" and not math.isnan(r.get("c_index", math.nan))]
    peer = next((r for r in rows if r["model"] == PEER_PARETO and "c_index" in r), None)
    if not families or peer is None:
        return []
    best = rank_rows(families)[0]
    verdicts = []
    for metric, higher in HEADLINE_METRICS.items():
        ours, theirs = best.get(metric, math.nan), peer.get(metric, math.nan)
        wins = ours > theirs if higher else ours < theirs
        verdicts.append(f"{metric} {ours:.4f} vs {theirs:.4f} ({'better' if wins else 'not better'})")
    lines = [f"- Best family **{best['model']}** against {PEER_PARETO}: " + "; ".join(verdicts) + "."]
    one_line = [r for r in rows if r["kind"] == "one-line"]
    if one_line:
        strongest = max(one_line, key=lambda r: r.get("c_index", -math.inf))
        lines.append(
            f"- Against the stronger one-line score ({strongest['model']}): C-index {best['c_index']:.4f} vs "
            f"{strongest['c_index']:.4f}, AUC 30d {best['auc_30d']:.4f} vs {strongest['auc_30d']:.4f}, "
            f"AUC 90d {best['auc_90d']:.4f} vs {strongest['auc_90d']:.4f}."
        )
    return lines


def render_dataset(name: str, spec: DatasetSpec, rows: list[dict], seconds: float, n_customers: int) -> str:
    """Return the Markdown section of one dataset: split, table best first and the comparison."""
    lines = [
        f"### {spec.title} (`{name}`)",
        "",
        f"Cut-off {spec.cutoff}, {spec.window_days}-day holdout window, occasion rule \"{spec.occasion_rule}\", "
        f"{n_customers:,} calibration customers; cut-off chosen as {spec.reason}. Run time {seconds:.0f} s.",
        "",
        "| model | " + " | ".join(header for _, header in TABLE_METRICS) + " | fit (s) | note |",
        "| --- | " + " | ".join("---:" for _ in TABLE_METRICS) + " | ---: | --- |",
    ]
    for row in rank_rows(rows):
        label = row["model"]
        if row["kind"] == "peer":
            label = f"{label} (peer)"
        elif row["kind"] == "one-line":
            label = f"{label} (one-line score)"
        cells = [_format(row.get(metric)) for metric, _ in TABLE_METRICS]
        fit = _format(row.get("fit_seconds"), digits=1)
        note = str(row.get("note", "")).replace("|", "/")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {fit} | {note} |")
    lines.append("")
    lines.extend(compare_with_peer(rows))
    return "\n".join(lines)


def _format(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def render(sections: list[str], command: str, seconds: float) -> str:
    """Return the whole benchmark section: command, date, machine and one table per dataset."""
    cpu = platform.processor() or platform.machine()
    header = [
        "## Accuracy on the real datasets, beside lifetimes",
        "",
        f"Command: `{command}`. Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.system()} "
        f"{platform.release()}, {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"total run time {seconds:.0f} s. Metrics from `rtt_models.evaluation` on the holdout after each cut-off; "
        "rows are sorted by C-index, then IBS. Peers: lifetimes 0.11.3 fitted on frequency, recency and T in weeks "
        "(penalizer 0); their counts come from lifetimes' conditional expected purchases, and their survival "
        "metrics from lifetimes' parameters plugged into rtt_models' closed-form BG/NBD and Pareto/NBD survival. "
        "The one-line scores have rank metrics only. The ensemble's weights come from a backtest inside the "
        "calibration data (an inner cut-off a third of the calibration history before the cut-off); the holdout "
        "is never used for any setting.",
        "",
    ]
    return "\n".join(header) + "\n\n".join(sections)




# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    from rtt_models.data import load_transactions
    from rtt_models.models import model_names

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated datasets (default {','.join(DATASETS)})")
    parser.add_argument("--models", default=None, help="comma-separated model names (default: every name of model_names())")
    parser.add_argument("--write", action="store_true", help="replace the benchmark_datasets section of docs/benchmarks.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = [d for d in datasets if d not in DATASETS]
    if unknown:
        print(f"unknown datasets {unknown}; choose from {', '.join(DATASETS)}.", file=sys.stderr)
        return 2
    names = model_names() if args.models is None else [m.strip() for m in args.models.split(",") if m.strip()]
    folder = data_folder()

    started = time.perf_counter()
    sections = []
    for dataset in datasets:
        spec = DATASETS[dataset]
        path = folder / spec.path
        if not path.is_file():
            print(f"{path} not found; set RTT_SHARED_DATA to the folder of the real datasets.", file=sys.stderr)
            return 1
        print(f"{dataset}: scoring {len(names)} families and the peers", file=sys.stderr)
        dataset_started = time.perf_counter()
        log = load_transactions(path, format=spec.format)
        rows = evaluate_log(log, spec, names)
        n_customers = int(max((r.get("n_customers", 0) for r in rows), default=0))
        sections.append(render_dataset(dataset, spec, rows, time.perf_counter() - dataset_started, n_customers))
        print(sections[-1], "\n", flush=True)

    command = "python experiments/benchmark_datasets.py" + "".join(
        f" {flag} {value}" for flag, value, default in (
            ("--datasets", args.datasets, ",".join(DATASETS)), ("--models", args.models, None)
        ) if value != default
    ) + (" --write" if args.write else "")
    text = render(sections, command, time.perf_counter() - started)
    if args.write:
        write_section(text, MARKER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
