"""Start Spark, or use the session already running: Java check, local-mode Python, quiet logs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyspark.sql import SparkSession

MIN_JAVA = 17


class SparkEngineError(RuntimeError):
    """Spark cannot run (no Java) or the output cannot be written; one line, naming the cause."""


def java_version() -> int | None:
    """The major version of the ``java`` Spark would start (``JAVA_HOME`` first), or ``None``."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        return None
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'version "(?:1\.)?(\d+)', out.stderr + out.stdout)
    return int(match.group(1)) if match else None


def check_java() -> int:
    version = java_version()
    if version is None:
        raise SparkEngineError(f"the Spark engine needs Java {MIN_JAVA}+ and none was found "
                               "(`java -version`); install a JDK or set JAVA_HOME")
    if version < MIN_JAVA:
        raise SparkEngineError(f"the Spark engine needs Java {MIN_JAVA}+, found Java {version}")
    return version


def _local_master(master: str | None) -> bool:
    """True when this process will start a local-mode Spark (not under ``spark-submit``)."""
    if "PYSPARK_GATEWAY_PORT" in os.environ:  # spark-submit started us: its settings rule
        return False
    given = re.search(r"--master\s+(\S+)", os.environ.get("PYSPARK_SUBMIT_ARGS", ""))
    return (master or (given.group(1) if given else "local")).startswith("local")


@contextmanager
def spark_session(master: str | None = None, conf: dict[str, str] | None = None
                  ) -> Iterator[SparkSession]:
    """The active session (left running), or a new one stopped on exit.

    ``master`` defaults to what ``spark-submit``, ``PYSPARK_SUBMIT_ARGS`` or
    ``spark-defaults.conf`` say, else ``local[*]``. In local mode the workers run this Python
    (unless ``PYSPARK_PYTHON`` says otherwise), so they see this installation.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    check_java()
    if _local_master(master):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # Spark's stage progress bar only on a terminal, as the local engine's.
    builder = SparkSession.builder.appName("newsevents").config(
        "spark.ui.showConsoleProgress", str(sys.stderr.isatty()).lower())
    if master:
        builder = builder.master(master)
    log_config = Path(__file__).with_name("log4j2.properties").as_uri()
    builder = builder.config("spark.driver.extraJavaOptions",
                             f"-Dlog4j2.configurationFile={log_config}")
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        yield spark
    finally:
        spark.stop()
