"""Label at cluster scale: the Spark engine, beside :mod:`newsevents.batch`.

The same cleaning, splitting and scorer as the local engine, run by Spark executors through
``mapInPandas`` (Arrow batches); the model's files are broadcast once and loaded once per Python
worker, never per row. Only this package imports ``pyspark`` (the optional extra ``[spark]``).

Examples
--------
>>> from newsevents import Predictor
>>> from newsevents.spark import label_dataframe, spark_session
>>> with spark_session() as spark:  # doctest: +SKIP
...     frames = label_dataframe(spark.read.json("archive/*.jsonl"), Predictor.load())
...     print(frames.write("labeled/").summary_line())
"""

from newsevents.spark.engine import (
    SentenceFrames,
    apply_pyfunc_udf,
    label_dataframe,
    label_files,
    read_inputs,
    split_dataframe,
)
from newsevents.spark.output import FORMATS, REPORT_FILE, SparkReport, write_frames
from newsevents.spark.session import SparkEngineError, check_java, java_version, spark_session

__all__ = ["FORMATS", "REPORT_FILE", "SentenceFrames", "SparkEngineError", "SparkReport",
           "apply_pyfunc_udf", "check_java", "java_version", "label_dataframe", "label_files",
           "read_inputs", "spark_session", "split_dataframe", "write_frames"]
