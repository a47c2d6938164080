#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<name>/: a few small valid files and a
few broken in the ways the readers must reject. Rerun after changing it
(python3 fuzz/make_seeds.py); the files are committed, so CI needs no Python.
"""
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(name, fname, data):
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, fname), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, mtime=0)


# ---------------------------------------------------------------- safetensors
def safetensors(tensors, meta=None, fmt="<f", dtype="F32", pad=True, raw_header=None,
                header_len=None, cut=None):
    """tensors: list of (name, shape, values)."""
    header, data = {}, b""
    for name, shape, values in tensors:
        blob = b"".join(struct.pack(fmt, v) for v in values)
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    if meta is not None:
        header["__metadata__"] = meta
    h = raw_header if raw_header is not None else json.dumps(header).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    n = len(h) if header_len is None else header_len
    out = struct.pack("<Q", n) + h + data
    return out[:cut] if cut is not None else out


def checksummed(tensors, meta):
    """A file with both of our checksums (data and header), as
    tg_checkpoint_save writes them, so the fuzzer reaches their checks."""
    sys.path.insert(0, os.path.join(os.path.dirname(ROOT), "..", "tests", "reliability"))
    from bad_inputs import header_crc  # the one Python copy of the canonical bytes
    raw = safetensors(tensors, meta)
    n = struct.unpack("<Q", raw[:8])[0]
    header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
    header["__metadata__"]["tapegrad.data_crc32"] = "%08x" % zlib.crc32(data)
    header["__metadata__"]["tapegrad.header_crc32"] = "%08x" % header_crc(header)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def checkpoint_seeds():
    w = ("w", [2, 3], [0.5, -1.0, 2.0, 0.25, 3.0, -0.125])
    b = ("b", [1, 3], [0.1, 0.2, 0.3])
    moments = [("optim.m", [9], [0.01] * 9), ("optim.v", [9], [0.001] * 9)]
    meta = {"tapegrad.extra_tensors": json.dumps(["optim.m", "optim.v"]),
            "optim.kind": "adam", "optim.steps": "7",
            "rng": "0123456789abcdef" * 4, "config": "hidden=3"}
    put("checkpoint", "valid_params.safetensors", safetensors([w, b]))
    put("checkpoint", "valid_training.safetensors", safetensors([w, b] + moments, meta))
    put("checkpoint", "valid_checksummed.safetensors", checksummed([w, b] + moments, meta))
    put("checkpoint", "valid_f64.safetensors", safetensors([w, b], fmt="<d", dtype="F64"))
    put("checkpoint", "valid_1d_bias.safetensors", safetensors([w, ("b", [3], b[2])]))
    put("checkpoint", "empty.safetensors", b"")
    put("checkpoint", "short.safetensors", b"\x10\x00\x00")
    put("checkpoint", "truncated.safetensors", safetensors([w, b], cut=60))
    put("checkpoint", "truncated_data.safetensors", safetensors([w, b])[:-4])
    put("checkpoint", "header_beyond_file.safetensors", safetensors([w, b], header_len=1 << 20))
    put("checkpoint", "header_len_huge.safetensors", safetensors([w, b], header_len=(1 << 63)))
    put("checkpoint", "bad_json.safetensors", safetensors([], raw_header=b'{"w": {"dtype": '))
    put("checkpoint", "wrong_dtype.safetensors", safetensors([w], dtype="I8"))
    put("checkpoint", "shape_of_other_model.safetensors",
        safetensors([("w", [3, 2], w[2]), b]))
    put("checkpoint", "nan_weight.safetensors",
        safetensors([("w", [2, 3], [0.5, float("nan"), 2.0, 0.25, 3.0, 1.0]), b]))
    put("checkpoint", "inf_weight.safetensors",
        safetensors([("w", [2, 3], [float("inf")] * 6), b]))
    over = json.dumps({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                       "b": {"dtype": "F32", "shape": [1, 3], "data_offsets": [12, 24]}}).encode()
    put("checkpoint", "overlap.safetensors",
        safetensors([], raw_header=over) + struct.pack("<6f", *w[2]))
    put("checkpoint", "meta_not_string.safetensors",
        safetensors([w, b], {"optim.steps": 7}))
    put("checkpoint", "extras_not_list.safetensors",
        safetensors([w, b] + moments, dict(meta, **{"tapegrad.extra_tensors": "optim.m"})))
    put("checkpoint", "unknown_tensor.safetensors", safetensors([w, b, ("zzz", [1], [1.0])]))


# ---------------------------------------------------------------- IDX
def idx_images(count, rows, cols, magic=0x00000803, extra=b""):
    px = bytes((i * 37) % 256 for i in range(count * rows * cols))
    return struct.pack(">IIII", magic, count, rows, cols) + px + extra


def idx_labels(labels, magic=0x00000801):
    return struct.pack(">II", magic, len(labels)) + bytes(labels)


def idx_seeds():
    im = idx_images(2, 4, 3)
    lb = idx_labels([3, 9, 0])
    put("idx", "images.idx", im)
    put("idx", "images.idx.gz", gz(im))
    put("idx", "labels.idx", lb)
    put("idx", "labels.idx.gz", gz(lb))
    put("idx", "labels_two_members.gz", gz(lb[:5]) + gz(lb[5:]))
    put("idx", "empty.idx", b"")
    put("idx", "wrong_magic.idx", idx_images(1, 2, 2, magic=0x00000813))
    put("idx", "truncated.idx", im[:-5])
    put("idx", "trailing_bytes.idx", idx_images(1, 2, 2, extra=b"xx"))
    put("idx", "zero_count.idx", idx_images(0, 2, 2))
    put("idx", "label_out_of_range.idx", idx_labels([1, 10, 2]))
    put("idx", "huge_dims.idx", struct.pack(">IIII", 0x803, 10000000, 4096, 4096))
    put("idx", "truncated.gz", gz(im)[:-6])
    put("idx", "gzip_garbage.gz", b"\x1f\x8b\x08\x00garbage-not-deflate")


# ---------------------------------------------------------------- TSV
def tsv_seeds():
    put("tsv", "valid.tsv", "I eat rice.\t나는 밥을 먹는다.\nGo!\tGo!\n")
    put("tsv", "crlf_bom.tsv", "\ufeffHello, world.\t안녕, 세계.\r\nWell-known, don't.\tx\r\n")
    put("tsv", "extra_columns.tsv", "Hi.\t안녕.\tCC-BY 2.0 (France) Attribution: tatoeba.org\n")
    put("tsv", "blank_lines.tsv", "\n   \na\tb\n\n")
    put("tsv", "numbers.tsv", "It costs 3.50, or 1,000 won.\t1,000원입니다.\n")
    put("tsv", "no_tab.tsv", "a\tb\nthis line has no tab\n")
    put("tsv", "empty_side.tsv", "a\t\n")
    put("tsv", "empty_source.tsv", "\tb\n")
    put("tsv", "invalid_utf8.tsv", b"ok\tfine\nbad \xc3\x28 byte\tx\n")
    put("tsv", "overlong.tsv", b"a\xc0\xafb\tc\n")
    put("tsv", "long_line.tsv", " ".join(["w"] * 80) + "\tshort\nok\tok\n")
    put("tsv", "no_final_newline.tsv", "a\tb")
    put("tsv", "empty.tsv", "")


# ---------------------------------------------------------------- text
def text_seeds():
    put("text", "ascii.txt", "In the beginning God created the heaven and the earth.\n")
    put("text", "multibyte.txt", "héllo wörld — 한국어 テキスト 😀\n")
    put("text", "bom.txt", "\ufeffwith a byte-order mark\n")
    put("text", "empty.txt", b"")
    put("text", "only_bom.txt", b"\xef\xbb\xbf")
    put("text", "overlong.txt", b"ab\xc0\x80cd")
    put("text", "surrogate.txt", b"x\xed\xa0\x80y")
    put("text", "above_max.txt", b"\xf4\x90\x80\x80")
    put("text", "truncated_seq.txt", b"line one\nline two \xe2\x82")
    put("text", "lone_continuation.txt", b"\x80abc")
    put("text", "nul_byte.txt", b"a\x00b\n")
    # vocabulary metadata strings (tg_vocab_parse reads the input too)
    put("text", "vocab_meta.txt", "10,32,33,65,97,233,54620")
    put("text", "vocab_meta_unsorted.txt", "97,65")
    put("text", "vocab_meta_surrogate.txt", "55296")
    put("text", "vocab_meta_garbage.txt", "1,,2,x,")


def spm_model(text, extra):
    """A small SentencePiece model trained by spm_train (identity
    normalization keeps it a few kB), as ModelProto bytes."""
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "in.txt"), "w", encoding="utf-8") as f:
            f.write(text)
        subprocess.run(["spm_train", "--input=" + os.path.join(d, "in.txt"),
                        "--model_prefix=" + os.path.join(d, "m"), "--vocab_size=80",
                        "--model_type=unigram", "--character_coverage=1.0",
                        "--normalization_rule_name=identity", "--hard_vocab_limit=false",
                        "--num_threads=1", "--minloglevel=2"] + extra, check=True,
                       stderr=subprocess.DEVNULL)
        with open(os.path.join(d, "m.model"), "rb") as f:
            return f.read()


def spm_text(model):
    """The checked text form of examples/seq2seq/subword.h."""
    return "spm1:%08x:%d:" % (zlib.crc32(model), len(model)) + \
        __import__("base64").b64encode(model).decode("ascii")


def subword_seeds():
    if not shutil.which("spm_train"):
        print("make_seeds: spm_train not found (Debian package sentencepiece): "
              "subword seeds kept as they are")
        return
    text = "\n".join(["Der Hund läuft über die Straße.", "Die Äpfel sind reif.",
                      "나는 학교에 갑니다.", "커피 한 잔 주세요.", "It's 3.5 km, isn't it?"] * 4)
    ours = spm_model(text, ["--pad_id=0", "--unk_id=1", "--bos_id=2", "--eos_id=3"])
    foreign = spm_model(text, [])  # SentencePiece's defaults: unk=0 bos=1 eos=2, no pad
    good = spm_text(ours)
    put("subword", "valid.txt", good)
    put("subword", "valid.model", ours)
    put("subword", "foreign_ids.txt", spm_text(foreign))
    put("subword", "foreign_ids.model", foreign)
    mid = len(good) // 2
    put("subword", "flipped.txt", good[:mid] + ("B" if good[mid] == "A" else "A") + good[mid + 1:])
    put("subword", "truncated.txt", good[:len(good) - 40])
    put("subword", "truncated.model", ours[:len(ours) // 2])
    put("subword", "bad_header.txt", "spm1:xyz:12:" + good[20:])
    put("subword", "bad_base64.txt", good[:30] + "*" + good[31:])
    put("subword", "zero_crc_garbage.txt", "spm1:ff41d912:3:AAAA")
    put("subword", "empty.model", b"")
    put("subword", "junk.model", bytes([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02]))


if __name__ == "__main__":
    checkpoint_seeds()
    idx_seeds()
    tsv_seeds()
    text_seeds()
    subword_seeds()
