"""``rtt train``: fit, log and register a scoring model; move the champion alias on improvement."""

from __future__ import annotations

import json
import sys

import click

from rtt_models.cli import main
from rtt_models.cli.common import input_options, read_log, reports_input_errors


@main.command()
@input_options
@click.option("--as-of", required=True, help="Training cut-off (YYYY-MM-DD, whole day included).")
@click.option(
    "--model",
    "model_name",
    default="auto",
    show_default=True,
    help="Model family, or 'auto' to pick the best of the fast families on the internal validation.",
)
@click.option(
    "--setting",
    "settings",
    multiple=True,
    help="Model setting as NAME=VALUE (VALUE read as JSON when it parses), for example penalizer=0.1. Repeatable.",
)
@click.option("--horizons", default="30,90", show_default=True, help="Default horizons of the scoring model, in days.")
@click.option("--register", "register_name", required=True, help="Registered model name.")
@click.option(
    "--metric",
    default="c_index",
    show_default=True,
    help="Validation metric that picks the family and decides the promotion, for example c_index, ibs or auc_30d.",
)
@click.option("--promote", is_flag=True, help="Move the champion alias to the new version even without an improvement.")
@click.option(
    "--validation-days",
    type=int,
    default=None,
    help="Holdout window of the internal validation, ending at --as-of, in days. Default: the largest horizon.",
)
@click.option("--tracking-uri", default=None, help="MLflow tracking store. Default: $MLFLOW_TRACKING_URI, else mlflow.db here.")
@click.option("--experiment", default=None, help="MLflow experiment name. Default: rtt-models.")
@reports_input_errors
def train(as_of, model_name, settings, horizons, register_name, metric, promote, validation_days, tracking_uri,
          experiment, **options) -> None:
    """Train a next-purchase model, register it and update the champion alias."""
    from tqdm import tqdm

    from rtt_models.evaluation.backtest import check_history_before
    from rtt_models.models import model_names
    from rtt_models.tracking.training import AUTO_CANDIDATES, train_and_register

    # Validate every option before reading data.
    if model_name != "auto" and model_name not in model_names():
        raise ValueError(f"unknown --model {model_name!r}; choose one of {', '.join(model_names())} or 'auto'.")
    horizon_days = _horizons(horizons)
    parsed_settings = dict(_setting(text) for text in settings)

    log = read_log(options)
    # The validation window defaults to the largest horizon, as in train_and_register.
    window = validation_days or max(horizon_days)
    check_history_before(log, as_of, window, as_of_name="--as-of",
                         window_name="--validation-days (default: the largest of --horizons)")
    fits = len(AUTO_CANDIDATES) if model_name == "auto" else 1
    with tqdm(total=fits, desc="validation", unit="fit", file=sys.stderr, disable=None) as bar:

        def advance(name, cutoff) -> None:
            bar.set_postfix_str(name)
            bar.update()

        result = train_and_register(
            log,
            as_of,
            register=register_name,
            model=model_name,
            settings=parsed_settings,
            horizons=horizon_days,
            metric=metric,
            promote=promote,
            occasion_rule=options["occasion_rule"],
            validation_days=validation_days,
            experiment=experiment,
            tracking_uri=tracking_uri,
            progress=advance,
        )

    decision = result.decision
    champion = "-" if decision.champion_value is None else f"{decision.champion_value:.4f}"
    click.echo(
        f"Trained {result.model_name} as of {result.as_of} on {len(result.features):,} customers "
        f"(run {result.run_id})."
    )
    click.echo(
        f"Registered {register_name} version {result.version}: models:/{register_name}/{result.version} "
        f"(logged model {result.model_uri})"
    )
    click.echo(f"Validation {metric}: candidate {decision.candidate_value:.4f}, champion {champion}")
    click.echo(decision.reason)
    serving_version = result.version if decision.promoted else decision.previous_version
    if serving_version is not None:
        click.echo(f"Score with --model models:/{register_name}@champion (version {serving_version})")


def _horizons(text: str) -> list[int]:
    values = [value.strip() for value in text.split(",") if value.strip()]
    if not values:
        raise ValueError("--horizons is empty; give whole days, for example 30,90.")
    days = []
    for value in values:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"--horizons value {value!r} is not a whole number of days >= 1; write for example 30,90.")
        days.append(int(value))
    return days


def _setting(text: str) -> tuple[str, object]:
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"--setting {text!r} is not NAME=VALUE; write for example penalizer=0.1.")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return name.strip(), value
