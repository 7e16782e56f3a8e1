"""Build an ONNX sentence encoder straight from safetensors weights, without torch.

The graph is a BERT or MPNet encoder written out operator by operator from the weights'
``config.json``, followed by the sentence-transformers head these models use: mean pooling over
the attention mask, then L2 normalisation. Inputs ``input_ids`` and ``attention_mask`` (int64,
``batch × tokens``), output ``sentence_embedding`` (float32, ``batch × hidden``).

Writing the graph here, rather than tracing a torch model, means installing the accurate tier
needs only ``numpy``, ``safetensors`` and ``onnx``: no torch, no transformers, no code from the
weights' publisher. The graph is checked against sentence-transformers' own embeddings by the
slow test (``tests/unit/test_encoder.py``) and by ``benchmarks/encoder_speed.py``.

Install-time only: the prediction path runs the saved ``.onnx`` file with ONNX Runtime.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

OPSET = 17
ARCHITECTURES = ("bert", "mpnet")
# Added to masked-out attention scores; exp() of it is exactly 0 in float32.
MASK_VALUE = -1e4


class _Graph:
    """A small helper that names nodes and collects initialisers."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.count = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, kind: str, inputs: list[str], name: str = "", **attrs: Any) -> str:
        self.count += 1
        out = name or f"{kind.lower()}_{self.count}"
        self.nodes.append(self.helper.make_node(kind, inputs, [out], name=out, **attrs))
        return out

    def linear(self, x: str, weight: np.ndarray, bias: np.ndarray, name: str) -> str:
        # torch stores (out, in); MatMul wants (in, out). A constant B lets dynamic
        # quantisation turn the MatMul into an int8 one.
        w = self.const(f"{name}.weight_t", weight.T.astype(np.float32))
        b = self.const(f"{name}.bias", bias.astype(np.float32))
        # Named after the weight, so a quantiser can tell the layers apart.
        return self.op("Add", [self.op("MatMul", [x, w], name=f"{name}.matmul"), b])

    def layer_norm(self, x: str, weights: dict[str, np.ndarray], name: str, eps: float) -> str:
        scale = self.const(f"{name}.weight", weights[f"{name}.weight"])
        shift = self.const(f"{name}.bias", weights[f"{name}.bias"])
        return self.op("LayerNormalization", [x, scale, shift], axis=-1, epsilon=eps)

    def gelu(self, x: str) -> str:
        # Exact (erf) GELU, in the form ONNX Runtime fuses into one kernel.
        scaled = self.op("Div", [x, self.const(f"sqrt2_{self.count}", np.array(math.sqrt(2.0),
                                                                               np.float32))])
        one = self.const(f"one_{self.count}", np.array(1.0, np.float32))
        half = self.const(f"half_{self.count}", np.array(0.5, np.float32))
        return self.op("Mul", [self.op("Mul", [x, self.op("Add", [self.op("Erf", [scaled]),
                                                                   one])]), half])


def _bucket(relative: np.ndarray, num_buckets: int = 32, max_distance: int = 128) -> np.ndarray:
    """MPNet's (T5-style) relative-position bucket of ``key - query`` positions."""
    n = -relative
    half = num_buckets // 2
    ret = (n < 0).astype(np.int64) * half
    n = np.abs(n)
    max_exact = half // 2
    with np.errstate(divide="ignore"):
        large = max_exact + (np.log(np.maximum(n, 1) / max_exact)
                             / math.log(max_distance / max_exact)
                             * (half - max_exact)).astype(np.int64)
    large = np.minimum(large, half - 1)
    return ret + np.where(n < max_exact, n, large)


def build_encoder(weights_dir: Path, max_length: int) -> Any:
    """The ``onnx.ModelProto`` of the encoder in ``weights_dir`` (``config.json`` +
    ``model.safetensors``), accepting up to ``max_length`` tokens."""
    from onnx import TensorProto, helper
    from safetensors.numpy import load_file

    config = json.loads((weights_dir / "config.json").read_text(encoding="utf-8"))
    arch = config.get("model_type")
    if arch not in ARCHITECTURES:
        raise ValueError(f"{weights_dir / 'config.json'}: model_type {arch!r} is not one of "
                         f"{', '.join(ARCHITECTURES)}")
    if config.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"{weights_dir / 'config.json'}: activation {config['hidden_act']!r} "
                         "is not supported")
    w = load_file(str(weights_dir / "model.safetensors"))
    # Some checkpoints prefix every tensor with the architecture name.
    w = {k.removeprefix(f"{arch}."): v for k, v in w.items()}
    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    head_dim, eps = hidden // heads, float(config["layer_norm_eps"])
    if max_length + (2 if arch == "mpnet" else 0) > int(config["max_position_embeddings"]):
        raise ValueError(f"max_length {max_length} exceeds the model's position table")

    g = _Graph()
    ids, mask = "input_ids", "attention_mask"
    mask_f = g.op("Cast", [mask], to=TensorProto.FLOAT)
    x = g.op("Gather", [g.const("word_embeddings", w["embeddings.word_embeddings.weight"]), ids])
    positions_table = w["embeddings.position_embeddings.weight"]
    if arch == "bert":
        # Absolute positions 0..n-1; token type 0 everywhere (single sentences), folded in.
        table = positions_table + w["embeddings.token_type_embeddings.weight"][0]
        seq = g.op("Shape", [ids], start=1, end=2)
        zero = g.const("zero_i", np.array([0], np.int64))
        pos = g.op("Slice", [g.const("position_embeddings", table[:max_length]), zero, seq])
        x = g.op("Add", [x, g.op("Unsqueeze", [pos, zero])])
    else:
        # MPNet numbers real tokens from padding_idx + 1 (padding_idx = pad_token_id).
        pad = int(config.get("pad_token_id", 1))
        cum = g.op("CumSum", [mask, g.const("axis1", np.array(1, np.int64))])
        pos_ids = g.op("Add", [g.op("Mul", [cum, mask]),
                               g.const("pad_idx", np.array(pad, np.int64))])
        pos_table = g.const("position_embeddings", positions_table)
        x = g.op("Add", [x, g.op("Gather", [pos_table, pos_ids])])
    x = g.layer_norm(x, w, "embeddings.LayerNorm", eps)

    # Additive mask, broadcast over heads and query positions: (batch, 1, 1, keys).
    mask_add = g.op("Mul", [g.op("Sub", [g.const("one_m", np.array(1.0, np.float32)), mask_f]),
                            g.const("mask_value", np.array(MASK_VALUE, np.float32))])
    mask_add = g.op("Unsqueeze", [mask_add, g.const("axes12", np.array([1, 2], np.int64))])
    bias = None
    if arch == "mpnet":
        # Relative-position bias shared by every layer: (1, heads, n, n), looked up by key - query.
        span = np.arange(-(max_length - 1), max_length)
        table = w["encoder.relative_attention_bias.weight"][_bucket(span)]  # (2L-1, heads)
        n = g.op("Squeeze", [g.op("Shape", [ids], start=1, end=2)])
        rng = g.op("Range", [g.const("zero_s", np.array(0, np.int64)), n,
                             g.const("one_s", np.array(1, np.int64))])
        rel = g.op("Sub", [g.op("Unsqueeze", [rng, g.const("ax0", np.array([0], np.int64))]),
                           g.op("Unsqueeze", [rng, g.const("ax1", np.array([1], np.int64))])])
        rel = g.op("Add", [rel, g.const("offset", np.array(max_length - 1, np.int64))])
        bias = g.op("Gather", [g.const("relative_bias", table.astype(np.float32)), rel])
        bias = g.op("Unsqueeze", [g.op("Transpose", [bias], perm=[2, 0, 1]),
                                  g.const("ax0b", np.array([0], np.int64))])
        bias = g.op("Add", [bias, mask_add])
    split = g.const("split_heads", np.array([0, 0, heads, head_dim], np.int64))
    merge = g.const("merge_heads", np.array([0, 0, hidden], np.int64))
    scale = g.const("scale", np.array(1.0 / math.sqrt(head_dim), np.float32))

    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}"
        if arch == "bert":
            q, k, v = (f"{p}.attention.self.{s}" for s in ("query", "key", "value"))
            o, ln1 = f"{p}.attention.output.dense", f"{p}.attention.output.LayerNorm"
        else:
            q, k, v, o = (f"{p}.attention.attn.{s}" for s in "qkvo")
            ln1 = f"{p}.attention.LayerNorm"
        heads_of = {s: g.op("Reshape", [g.linear(x, w[f"{s}.weight"], w[f"{s}.bias"], s), split])
                    for s in (q, k, v)}
        qh = g.op("Transpose", [heads_of[q]], perm=[0, 2, 1, 3])
        kh = g.op("Transpose", [heads_of[k]], perm=[0, 2, 3, 1])
        vh = g.op("Transpose", [heads_of[v]], perm=[0, 2, 1, 3])
        scores = g.op("Mul", [g.op("MatMul", [qh, kh]), scale])
        scores = g.op("Add", [scores, bias if bias is not None else mask_add])
        ctx = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), vh])
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge])
        x = g.layer_norm(g.op("Add", [g.linear(ctx, w[f"{o}.weight"], w[f"{o}.bias"], o), x]),
                         w, ln1, eps)
        inner = g.gelu(g.linear(x, w[f"{p}.intermediate.dense.weight"],
                                w[f"{p}.intermediate.dense.bias"], f"{p}.intermediate.dense"))
        out = g.linear(inner, w[f"{p}.output.dense.weight"], w[f"{p}.output.dense.bias"],
                       f"{p}.output.dense")
        x = g.layer_norm(g.op("Add", [out, x]), w, f"{p}.output.LayerNorm", eps)

    # Mean over real tokens, then unit length (sentence-transformers' Pooling + Normalize).
    m3 = g.op("Unsqueeze", [mask_f, g.const("ax2", np.array([2], np.int64))])
    summed = g.op("ReduceSum", [g.op("Mul", [x, m3]), g.const("ax1r", np.array([1], np.int64))],
                  keepdims=0)
    count = g.op("Max", [g.op("ReduceSum", [m3, g.const("ax1c", np.array([1], np.int64))],
                              keepdims=0), g.const("tiny", np.array(1e-9, np.float32))])
    mean = g.op("Div", [summed, count])
    norm = g.op("Max", [g.op("ReduceL2", [mean], axes=[1], keepdims=1),
                        g.const("tiny_n", np.array(1e-12, np.float32))])
    g.nodes.append(helper.make_node("Div", [mean, norm], ["sentence_embedding"],
                                    name="normalize"))

    inputs = [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "tokens"])
              for name in (ids, mask)]
    output = helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT,
                                           ["batch", hidden])
    graph = helper.make_graph(g.nodes, f"{arch}-sentence-encoder", inputs, [output],
                              g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="newsevents")
    model.ir_version = 8  # readable by every ONNX Runtime of the last few years
    return model
