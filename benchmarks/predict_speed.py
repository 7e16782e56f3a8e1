"""How fast `newsevents predict` labels a large batch, against the bare model, in how much memory.

1. Builds ``--articles`` articles by resampling the corpus sentences (seed articles and labeled
   bank; fixed seed) and writes them as .txt files to a temporary directory (and 4x as many for
   the memory check).
2. End to end (read -> clean -> split -> predict -> format -> write, as ``label_batch`` does) in
   one process and with worker processes, against the bare ``predict_proba`` on the same
   pre-split sentences of both forms of the model (the numpy scorer that ``predict`` uses and the
   fitted scikit-learn pipeline); the ratio to each (target >= 0.6); where the time goes per
   stage. Feature caches are emptied before each timing, but resampled articles repeat
   sentences and the pipeline's embedding step skips repeats within a call: on them its bare
   rate flatters it. The UN speeches (real text, few repeats) compare like with like.
3. Peak RSS of ``newsevents predict`` on 1x and 4x the files (it should stay flat).
4. Cold start: ``newsevents predict`` on one article, as a fresh process (target < 1 s), with
   the numpy scorer and with the pickle alone.
5. Sentence splitters: sentences/s of each registered splitter, alone and inside
   ``split_article`` (accuracy is in benchmarks/splitters.py).
6. The same end-to-end figures on the UN General Debate speeches when ../shared/corpus/ has them
   (decompressed to a temporary directory, never into the project).

Figures are printed, not asserted. The machine's load average is printed first: other work on
the machine slows every figure.

    python benchmarks/predict_speed.py [--model DIR] [--articles 1000] [--un-limit N]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from newsevents import paths
from newsevents.batch import (
    available_cores,
    choose_jobs,
    expand_inputs,
    iter_articles,
    label_batch,
)
from newsevents.corpus import SPLITTERS, clean_text, split_article, split_block
from newsevents.features import _EMBEDDING_CACHE
from newsevents.lexicon import keyword_counts
from newsevents.output import (
    Formatter,
    row_columns,
    sentence_row,
)
from newsevents.predict import METADATA_FILE, ModelError, Predictor

BIN = Path(sys.executable).parent
SEED = 20240611


# --------------------------------------------------------------------------- inputs

def corpus_sentences() -> list[str]:
    """The distinct sentences of the seed articles and of the labeled bank (data/annotations).

    Seed articles alone give 70 sentences, each repeated hundreds of times in a large batch:
    any model step that skips repeats (the pipeline's embedding step does) would look fast.
    """
    found = {s.text: None for p in sorted(paths.RAW.glob("*.txt"))
             for s in split_article(p.read_text(encoding="utf-8"))}
    for table in sorted(paths.ANNOTATIONS.glob("*.csv")):
        with table.open(encoding="utf-8", newline="") as handle:
            found.update((row["text"], None) for row in csv.DictReader(handle))
    return list(found)


def make_articles(pool: list[str], n: int, rng: random.Random) -> list[str]:
    """Articles of 12-36 distinct sentences in paragraphs of 1-4 (split_article drops repeats)."""
    articles = []
    for _ in range(n):
        sentences = rng.sample(pool, rng.randint(min(12, len(pool)), min(36, len(pool))))
        paragraphs, i = [], 0
        while i < len(sentences):
            step = rng.randint(1, 4)
            paragraphs.append(" ".join(sentences[i:i + step]))
            i += step
        articles.append("\n\n".join(paragraphs) + "\n")
    return articles


def write_texts(texts: Iterable[str], directory: Path) -> Path:
    directory.mkdir(parents=True)
    for i, text in enumerate(texts):
        (directory / f"article_{i:06d}.txt").write_text(text, encoding="utf-8")
    return directory


def write_un(directory: Path, limit: int | None, per_file: int = 100) -> int:
    """Stream the UN speeches into JSONL files of ``per_file`` records; return how many."""
    directory.mkdir(parents=True)
    n, handle = 0, None
    with gzip.open(paths.UN_DEBATE, "rt", encoding="utf-8") as source:
        for line in source:
            if limit is not None and n >= limit:
                break
            if n % per_file == 0:
                if handle is not None:
                    handle.close()
                handle = (directory / f"speeches_{n // per_file:04d}.jsonl").open("w")
            record = json.loads(line)
            handle.write(json.dumps({"id": record["id"], "text": record["text"]}) + "\n")
            n += 1
    if handle is not None:
        handle.close()
    return n


def presplit(directory: Path) -> tuple[list[str], list[list[str]]]:
    """Texts of every article under ``directory``, and their sentences."""
    failures: list[str] = []
    texts = [a.text for a in iter_articles(expand_inputs([directory], failures), failures)]
    return texts, [[s.text for s in split_article(t)] for t in texts]


# --------------------------------------------------------------------------- measures

def pickle_only(model_dir: Path, tmp: Path) -> Path:
    """A copy of the model directory without its numpy scorer: loads from the pickle."""
    copy = shutil.copytree(model_dir, tmp / "pickle-only")
    meta = json.loads((copy / METADATA_FILE).read_text(encoding="utf-8"))
    for name in meta.pop("scorer", {}).get("files", {}):
        (copy / name).unlink()
    (copy / METADATA_FILE).write_text(json.dumps(meta), encoding="utf-8")
    return copy


def timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def bare_rate(model: object, sentences: list[str], batch: int = 10_000) -> float:
    """Sentences/s of a model's predict_proba alone, in large batches, caches emptied first."""
    keyword_counts.cache_clear()
    _EMBEDDING_CACHE.clear()
    seconds = timed(lambda: [model.predict_proba(sentences[i:i + batch])
                             for i in range(0, len(sentences), batch)])
    return len(sentences) / seconds


def end_to_end(directory: Path, predictor: Predictor, jobs: int, out: Path) -> float:
    """Sentences/s of ``label_batch``; worker start-up is included, as in a CLI run."""
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)
    report = label_batch([directory], predictor, out, jobs=jobs)
    get_reusable_executor().shutdown(wait=True)  # idle workers would skew later figures
    if not report.ok:
        print(f"  ! {len(report.failures)} failures, first: {report.failures[0]}")
    return report.rate


def stages(directory: Path, predictor: Predictor) -> dict[str, float]:
    """Microseconds per sentence for each stage of the single-process path."""
    keyword_counts.cache_clear()
    failures: list[str] = []
    items = expand_inputs([directory], failures)
    articles: list = []
    read = timed(lambda: articles.extend(iter_articles(items, failures)))
    split: list = []
    clean = timed(lambda: [clean_text(a.text) for a in articles])
    full = timed(lambda: split.extend(s for a in articles for s in split_article(a.text, a.id)))
    labeled: list = []
    label = timed(lambda: labeled.extend(predictor.label_sentences(split)))
    rows = Formatter("jsonl", tuple(row_columns(predictor.labels)))
    text: list[str] = []
    fmt = timed(lambda: text.append(rows.format(sentence_row(s) for s in labeled)))
    with tempfile.TemporaryFile("w", encoding="utf-8") as handle:
        write = timed(lambda: handle.write(text[0]))
    n = len(split) / 1e6
    return {"read": read / n, "clean (in split)": clean / n, "split (incl. clean)": full / n,
            "predict + decide": label / n, "format jsonl": fmt / n, "write": write / n}


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Linux /proc)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        queue.extend(int(c) for c in children)
    return found


def _high_water_kib(pid: int) -> int:
    # VmHWM is per address space, so unlike ru_maxrss it does not inherit the RSS of the
    # (large) benchmark process that forked the child.
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_for_rss(args: list[str]) -> tuple[float, float, float]:
    """Wall seconds and peak RSS in MiB of the main process and of its largest worker.

    Peaks are sampled every 20 ms from /proc; VmHWM only grows, so the last sample before a
    process ends is its peak.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peaks: dict[int, int] = {}
    while proc.poll() is None:
        for pid in process_tree(proc.pid):
            peaks[pid] = max(peaks.get(pid, 0), _high_water_kib(pid))
        time.sleep(0.02)
    wall = time.perf_counter() - start
    main_peak = peaks.pop(proc.pid, 0)
    # Loky's resource tracker is small; the workers are the processes holding a model.
    return wall, main_peak / 1024, max(peaks.values(), default=0) / 1024


def median_wall(args: list[str], runs: int = 5) -> tuple[float, float]:
    walls = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        walls.append(time.perf_counter() - start)
    return statistics.median(walls), min(walls)


def splitter_rates(texts: list[str], budget: float = 10.0) -> dict[str, tuple[float, float]]:
    """Sentences/s per splitter: splitting pre-cleaned blocks, and the whole ``split_article``.

    pysbd is quadratic on long blocks, so each splitter gets at most ``budget`` seconds.
    """
    blocks = [clean_text(t) for t in texts]
    rates = {}
    for name in SPLITTERS:
        try:
            split_block("A first sentence. A second one.", name)
        except ModuleNotFoundError as exc:  # the optional splitters are not dependencies
            print(f"  {name:<10} skipped: {exc.name} is not installed")
            continue
        n_split = n_full = 0
        start = time.perf_counter()
        for article in blocks:
            n_split += sum(len(split_block(b, name)) for b in article)
            if time.perf_counter() - start > budget:
                break
        split_s = time.perf_counter() - start
        start = time.perf_counter()
        for text in texts:
            n_full += len(split_article(text, splitter=name))
            if time.perf_counter() - start > budget:
                break
        rates[name] = (n_split / split_s, n_full / (time.perf_counter() - start))
    return rates


# --------------------------------------------------------------------------- report

def throughput(label: str, directory: Path, predictor: Predictor, tmp: Path,
               sentences: list[str]) -> None:
    """Bare rates of both model forms, then end to end, with the ratio to each."""
    pipeline = Predictor.load(predictor.directory, engine="sklearn").model
    # The pipeline's embedding step skips sentences it has seen (within a call and across
    # calls), so on resampled articles it is fast for a reason real news does not share.
    rates = {"numpy scorer (what predict uses)": bare_rate(predictor.model, sentences),
             "scikit-learn pipeline": bare_rate(pipeline, sentences)}
    print(f"\n## {label}: {len(sentences):,} sentences, {len(set(sentences)):,} distinct")
    for name, rate in rates.items():
        print(f"bare predict_proba, {name:<33} {rate:>8,.0f} sentences/s")
    best = 0.0
    for jobs in sorted({1, available_cores()}):
        keyword_counts.cache_clear()
        rate = end_to_end(directory, predictor, jobs, tmp / f"out-{jobs}.jsonl")
        best = max(best, rate)
        ratios = " / ".join(f"{rate / bare:.2f}" for bare in rates.values())
        print(f"end to end, {jobs} process{'es' if jobs > 1 else '  '}{'':<33} {rate:>8,.0f} "
              f"sentences/s  ratio {ratios}")
    auto = choose_jobs(None, expand_inputs([directory], []))
    best_ratios = " / ".join(f"{best / bare:.2f}" for bare in rates.values())
    print(f"best ratio end to end / bare (scorer / pipeline): {best_ratios} (target >= 0.6); "
          f"`--jobs` default for this input: {auto}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=paths.CHAMPION_DIR)
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--un-limit", type=int, default=None,
                        help="UN speeches to use (default: all)")
    args = parser.parse_args()
    try:
        predictor = Predictor.load(args.model)
    except ModelError as exc:
        print(f"{exc}\nTrain a model first: `make train`.", file=sys.stderr)
        return 1
    load1, load5, _ = os.getloadavg()
    print(f"model {args.model} ({predictor.metadata.get('experiment', '?')}); "
          f"{available_cores()} cores; load average {load1:.1f} (1 min) {load5:.1f} (5 min)")

    with tempfile.TemporaryDirectory(prefix="newsevents-bench-") as tmp_name:
        tmp = Path(tmp_name)
        rng = random.Random(SEED)
        pool = corpus_sentences()
        texts = make_articles(pool, 4 * args.articles, rng)
        one = write_texts(texts[:args.articles], tmp / "x1")
        four = write_texts(texts, tmp / "x4")
        _, split = presplit(one)
        sentences = [s for sents in split for s in sents]
        throughput(f"{args.articles:,} articles resampled from {len(pool):,} corpus sentences",
                   one, predictor, tmp, sentences)

        print("\nmicroseconds per sentence, one process:")
        for stage, micros in stages(one, predictor).items():
            print(f"  {stage:<22} {micros:>7.1f}")

        print("\npeak RSS of `newsevents predict` (main process; largest worker):")
        cli = str(BIN / "newsevents")
        for jobs in sorted({1, available_cores()}):
            for label, directory in (("1x", one), ("4x", four)):
                wall, main_mib, worker_mib = run_for_rss(
                    [cli, "predict", str(directory), "--model", str(args.model),
                     "-o", str(tmp / "rss.jsonl"), "--jobs", str(jobs)])
                n_files = len(list(directory.iterdir()))
                workers = f"; worker {worker_mib:4.0f} MiB" if jobs > 1 else ""
                print(f"  {label} ({n_files:>6,} files), --jobs {jobs}: main {main_mib:4.0f} MiB"
                      f"{workers}; {wall:5.1f} s wall")

        article = sorted(paths.RAW.glob("*.txt"))[0]
        print("\ncold start, `newsevents predict` on one article (median and best of 5; "
              "target < 1 s):")
        for engine, model_dir in (("numpy scorer", args.model),
                                  ("pickle (scorer removed)", pickle_only(args.model, tmp))):
            median, best = median_wall([cli, "predict", str(article), "--model", str(model_dir),
                                        "-o", str(tmp / "one.jsonl")])
            print(f"  {engine:<24} median {median:.2f} s, best {best:.2f} s")
        floor, _ = median_wall([sys.executable, "-c", "import sklearn.pipeline"])
        print(f"  for scale: `import sklearn.pipeline` alone takes {floor:.2f} s")

        print("\nsentence splitters, sentences/s (split only | whole split_article):")
        un_texts = []
        if paths.UN_DEBATE.exists():
            un = tmp / "un-sample"
            write_un(un, 100)
            un_texts, _ = presplit(un)
        un_rates = splitter_rates(un_texts) if un_texts else {}
        for name, (split_only, full) in splitter_rates(texts[:300]).items():
            un_rate = un_rates.get(name)
            un_part = (f"   UN: {un_rate[0]:>8,.0f} | {un_rate[1]:>7,.0f}" if un_rate else "")
            print(f"  {name:<10} seed: {split_only:>8,.0f} | {full:>7,.0f}{un_part}")

        if not paths.UN_DEBATE.exists():
            print(f"\n{paths.UN_DEBATE} not found: UN corpus skipped")
            return 0
        speeches = tmp / "un"
        n = write_un(speeches, args.un_limit)
        _, split = presplit(speeches)
        sentences = [s for sents in split for s in sents]
        throughput(f"UN General Debate, {n:,} speeches", speeches, predictor, tmp, sentences)
    return 0


if __name__ == "__main__":
    sys.exit(main())
