"""The local engine against Spark ``local[2]`` on the UN General Debate pool, as users run them.

Each engine runs as ``newsevents predict`` in a fresh process (Spark: ``--engine spark``, its own
JVM, ``local[2]``), on the 2,132 speeches written as JSONL files of 100 records. Printed per
engine:

- sentences/s end to end (wall clock of the command, start-up included) and, for Spark, of the
  job alone (``report.json``'s seconds: reading, labeling, writing, counting);
- start-up cost: the same command on one short article (median of 3), i.e. what a run pays
  before the first sentence (interpreter, imports, model load; for Spark also the JVM, the
  session and the Python workers);
- peak memory: the largest sum of the resident sizes of the command's whole process tree
  (sampled every 50 ms from /proc), and the largest single process, which for Spark is the
  JVM (its heap is capped by ``spark.driver.memory``, 1 GiB by default).

Figures, not targets. Skips cleanly when ``../shared/corpus/`` lacks the pool.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# this directory is on sys.path when run as a script
from predict_speed import process_tree, write_un

from newsevents import paths
from newsevents.predict import ModelError, Predictor

BIN = Path(sys.executable).parent
SUMMARY = re.compile(r"([\d,]+) articles?, ([\d,]+) sentences, ([\d,]+) failed")
ONE_ARTICLE = ("Japan pledged $50 million in humanitarian aid to Kenya on Monday. The two "
               "leaders met in Nairobi and agreed to hold talks in Geneva next month.\n")


def _status(pid: int) -> tuple[str, int, int]:
    """(name, VmRSS KiB, VmHWM KiB) of a process, zeros once it is gone."""
    fields: dict[str, str] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    except OSError:
        return "", 0, 0
    kib = [int(fields.get(k, "0 kB").split()[0]) for k in ("VmRSS", "VmHWM")]
    return fields.get("Name", ""), kib[0], kib[1]


def run(args: list[str], env: dict[str, str]) -> dict[str, float | str]:
    """Run a command; wall seconds, peak summed RSS of its tree, largest process, stderr."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, env=env)
        peak_sum, peaks, names = 0, {}, {}
        while proc.poll() is None:
            total = 0
            for pid in process_tree(proc.pid):
                name, rss, hwm = _status(pid)
                total += rss
                if name:
                    names[pid] = name
                    peaks[pid] = max(peaks.get(pid, 0), hwm)
            peak_sum = max(peak_sum, total)
            time.sleep(0.05)
        wall = time.perf_counter() - start
        err.seek(0)
        stderr = err.read()
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}: {stderr[-2000:]}")
    biggest = max(peaks, key=peaks.get, default=0)
    return {"wall": wall, "peak_sum_mib": peak_sum / 1024,
            "biggest_mib": peaks.get(biggest, 0) / 1024, "biggest": names.get(biggest, "?"),
            "stderr": stderr}


def sentences_of(stderr: str) -> int:
    match = SUMMARY.findall(stderr)
    if not match:
        raise RuntimeError(f"no summary line in: {stderr[-1000:]}")
    return int(match[-1][1].replace(",", ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=paths.CHAMPION_DIR)
    parser.add_argument("--un-limit", type=int, default=None, help="speeches (default: all)")
    args = parser.parse_args()
    if not paths.UN_DEBATE.exists():
        print(f"{paths.UN_DEBATE} not found: nothing to measure (the benchmark needs the UN "
              "General Debate pool in ../shared/corpus/)")
        return 0
    try:
        Predictor.load(args.model)
    except ModelError as exc:
        print(f"{exc}\nTrain a model first: `make train`.", file=sys.stderr)
        return 1
    try:
        from newsevents.spark import java_version
    except ImportError:
        print("pyspark is not installed: pip install -e '.[spark]'", file=sys.stderr)
        return 1
    load1, load5, _ = os.getloadavg()
    print(f"model {args.model}; {os.cpu_count()} cores; Java {java_version()}; load average "
          f"{load1:.1f} (1 min) {load5:.1f} (5 min)")

    cli = str(BIN / "newsevents")
    env = {**os.environ, "PYSPARK_SUBMIT_ARGS": "--master local[2] pyspark-shell"}
    with tempfile.TemporaryDirectory(prefix="newsevents-spark-bench-") as tmp_name:
        tmp = Path(tmp_name)
        n = write_un(tmp / "un", args.un_limit)
        (tmp / "one").mkdir()
        (tmp / "one" / "one.txt").write_text(ONE_ARTICLE, encoding="utf-8")
        engines = {
            "local, 1 process": (["--jobs", "1", "-o"], "out-1.jsonl"),
            "local, 2 processes": (["--jobs", "2", "-o"], "out-2.jsonl"),
            "spark local[2]": (["--engine", "spark", "-o"], "out-spark"),
        }
        print(f"\nUN General Debate: {n:,} speeches in {len(list((tmp / 'un').iterdir()))} "
              "JSONL files\n")
        print(f"{'engine':<20} {'sentences':>9} {'wall s':>7} {'sent/s':>8} {'job s':>6} "
              f"{'job sent/s':>10} {'start-up s':>10} {'peak MiB (tree)':>15}  largest process")
        for name, (flags, out) in engines.items():
            command = [cli, "predict", "--model", str(args.model), *flags]
            start_ups = [run([*command, str(tmp / f"one-{i}-{out}"), str(tmp / "one")],
                             env)["wall"] for i in range(3)]
            result = run([*command, str(tmp / out), str(tmp / "un")], env)
            sentences = sentences_of(str(result["stderr"]))
            job = ""
            job_rate = ""
            if "spark" in name:
                seconds = json.loads((tmp / out / "report.json").read_text())["seconds"]
                job, job_rate = f"{seconds:.1f}", f"{sentences / seconds:,.0f}"
            print(f"{name:<20} {sentences:>9,} {result['wall']:>7.1f} "
                  f"{sentences / result['wall']:>8,.0f} {job:>6} {job_rate:>10} "
                  f"{statistics.median(start_ups):>10.2f} {result['peak_sum_mib']:>15,.0f}  "
                  f"{result['biggest']} {result['biggest_mib']:,.0f} MiB")
    load1, load5, _ = os.getloadavg()
    print(f"\nload average at the end: {load1:.1f} (1 min) {load5:.1f} (5 min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
