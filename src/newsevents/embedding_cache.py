"""Sentence vectors of a contextual encoder, kept on disk between trainings.

Encoding the training sentences with mpnet takes a minute or more; a second ``make train``
should not pay it again. Vectors are filed by encoder digest (the sha256 of its ONNX file) in a
directory of shards; each shard is a pickle-free ``.npz`` with ``keys`` (the sha256 of each
text, ``(n, 32)`` uint8) and ``vectors`` (``(n, dim)`` float32). New vectors go into a new
shard written atomically, so concurrent writers never corrupt one another; past
:data:`MAX_SHARDS` shards the directory is compacted into one.

The cache sits under ``data/processed/`` (outside git, removed by ``make clean``). A text maps
to the same vector whatever the cache holds, so a stale or deleted cache costs time, never
correctness.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

MAX_SHARDS = 16


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class EmbeddingCache:
    """The on-disk vectors of one encoder build (``directory`` is per digest)."""

    def __init__(self, directory: Path, dim: int):
        self.directory = Path(directory)
        self.dim = dim

    def _shards(self) -> list[Path]:
        return sorted(self.directory.glob("shard-*.npz")) if self.directory.is_dir() else []

    def load(self) -> dict[bytes, np.ndarray]:
        """Every cached vector by text key (an unreadable shard is skipped: it is only a cache)."""
        out: dict[bytes, np.ndarray] = {}
        for shard in self._shards():
            try:
                with np.load(shard, allow_pickle=False) as npz:
                    keys, vectors = npz["keys"], npz["vectors"]
            except (OSError, ValueError, KeyError):
                continue
            if keys.ndim != 2 or keys.shape[1] != 32 or vectors.shape != (len(keys), self.dim):
                continue
            out.update(zip((k.tobytes() for k in keys), vectors, strict=True))
        return out

    def add(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Write one new shard; compact when there are too many."""
        if not len(keys):
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self._write(np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 32),
                    np.asarray(vectors, dtype=np.float32))
        shards = self._shards()
        if len(shards) > MAX_SHARDS:
            merged = self.load()
            self._write(np.frombuffer(b"".join(merged), dtype=np.uint8).reshape(-1, 32),
                        np.stack(list(merged.values())).astype(np.float32))
            for shard in shards:
                shard.unlink(missing_ok=True)

    def _write(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".shard-", suffix=".npz", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, keys=keys, vectors=vectors)
            os.replace(tmp, self.directory / f"shard-{os.getpid()}-{secrets.token_hex(6)}.npz")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
