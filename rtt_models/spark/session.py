"""A local Spark session bound to 127.0.0.1, with the web UI off.

Every Spark session that rtt-models starts comes from :func:`local_session`.
It runs the driver and executors in one JVM on this machine (master
``local[cores]``), binds every socket to the loopback address and starts no
web UI. It resolves no package through Ivy or Maven, so it starts the same
way on a machine without internet access.
"""

from __future__ import annotations

import logging
import os
import sys

logger = logging.getLogger("rtt_models")

#: Address every socket of the session binds to.
LOOPBACK = "127.0.0.1"

#: Spark settings of every local session, besides master and app name.
LOCAL_SETTINGS: dict[str, str] = {
    "spark.driver.host": LOOPBACK,
    "spark.driver.bindAddress": LOOPBACK,
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    # No dependency resolution: nothing is downloaded when the session starts.
    "spark.jars.packages": "",
    "spark.jars.repositories": "",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.python.worker.reuse": "true",
    # On one machine the default of 200 shuffle partitions mostly schedules empty tasks.
    "spark.sql.adaptive.enabled": "true",
    "spark.driver.extraJavaOptions": "-Djava.net.preferIPv4Stack=true",
    "spark.executor.extraJavaOptions": "-Djava.net.preferIPv4Stack=true",
}


def local_session(
    app_name: str = "rtt-models",
    cores: int = 2,
    *,
    shuffle_partitions: int | None = None,
    driver_memory: str = "1g",
    settings: dict[str, str] | None = None,
):
    """Start (or return the running) local Spark session on 127.0.0.1.

    Parameters
    ----------
    app_name : str, default "rtt-models"
        Name of the Spark application.
    cores : int, default 2
        Worker threads, the ``N`` of master ``local[N]``.
    shuffle_partitions : int, optional
        ``spark.sql.shuffle.partitions``; None uses ``2 * cores``.
    driver_memory : str, default "1g"
        JVM heap of the driver, which also runs the tasks in local mode.
        It applies only when this call starts the JVM.
    settings : dict of str to str, optional
        Further Spark settings; they override the loopback-only defaults
        except the bind address, host and UI, which stay fixed.

    Returns
    -------
    pyspark.sql.SparkSession

    Raises
    ------
    ImportError
        When pyspark is not installed (``pip install 'rtt-models[spark]'``).
    ValueError
        When ``cores`` is not a whole number >= 1.

    Notes
    -----
    The environment variables ``SPARK_LOCAL_IP`` (loopback),
    ``PYSPARK_PYTHON`` and ``PYSPARK_DRIVER_PYTHON`` (this interpreter) are
    set for the current process, so the Python workers run with the same
    packages as the caller. ``getOrCreate`` returns an existing session
    unchanged, apart from runtime SQL settings, when one is already running.
    """
    if isinstance(cores, bool) or not isinstance(cores, int) or cores < 1:
        raise ValueError(f"cores must be a whole number >= 1, got {cores!r}.")
    try:
        from pyspark.sql import SparkSession
    except ImportError as err:
        raise ImportError(
            "pyspark is not installed; install the Spark extra with pip install 'rtt-models[spark]'."
        ) from err

    # Environment first: the JVM and the Python workers read it when they start.
    os.environ["SPARK_LOCAL_IP"] = LOOPBACK
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable

    # Caller settings may not reopen the network or the UI.
    merged = dict(LOCAL_SETTINGS)
    merged["spark.sql.shuffle.partitions"] = str(shuffle_partitions or 2 * cores)
    merged["spark.default.parallelism"] = str(cores)
    merged["spark.driver.memory"] = driver_memory
    fixed = {key: LOCAL_SETTINGS[key] for key in ("spark.driver.host", "spark.driver.bindAddress", "spark.ui.enabled")}
    merged.update(settings or {})
    merged.update(fixed)

    builder = SparkSession.builder.master(f"local[{cores}]").appName(app_name)
    for key, value in merged.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    logger.info("Spark %s session %r on local[%d], bound to %s", spark.version, app_name, cores, LOOPBACK)
    return spark
