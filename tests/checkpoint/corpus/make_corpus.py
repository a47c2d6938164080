#!/usr/bin/env python3
"""Writes the seed corpus for the safetensors loader (tests and fuzzing).

valid_*   must parse; invalid_* must be rejected with a message.
Run from this directory: python3 make_corpus.py
"""
import json
import struct


def st(header, data, pad=True):
    h = json.dumps(header, separators=(",", ":")).encode() if not isinstance(header, bytes) else header
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def f32(vals):
    return struct.pack("<%df" % len(vals), *vals)


def f64(vals):
    return struct.pack("<%dd" % len(vals), *vals)


W = {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}
B = {"dtype": "F32", "shape": [3], "data_offsets": [24, 36]}
DATA = f32([0.5, -1.0, 2.0, 0.25, 3.0, -0.125, 1.0, 0.0, -2.0])
files = {
    "valid_f32.safetensors": st({"w": W, "b": B}, DATA),
    "valid_f64_meta.safetensors": st(
        {"w": {"dtype": "F64", "shape": [2, 2], "data_offsets": [0, 32]},
         "__metadata__": {"cell": "lstm", "optim.steps": "12"}},
        f64([1.0, -1.0, 0.5, 1e-300])),
    "valid_extras.safetensors": st(
        {"w": W, "optim.m": {"dtype": "F32", "shape": [6], "data_offsets": [24, 48]},
         "__metadata__": {"tapegrad.extra_tensors": '["optim.m"]', "optim.kind": "adam"}},
        f32([1, 2, 3, 4, 5, 6]) + f32([0.1] * 6)),
    "valid_unpadded.safetensors": st({"b": B | {"data_offsets": [0, 12]}}, f32([1, 2, 3]), pad=False),
    "invalid_truncated.safetensors": st({"w": W, "b": B}, DATA)[:60],
    "invalid_header_len.safetensors": struct.pack("<Q", 1 << 20) + b"{}",
    "invalid_not_json.safetensors": st(b'{"w": {"dtype": "F32", "shape": [2,', DATA),
    "invalid_dtype.safetensors": st({"w": W | {"dtype": "I64"}, "b": B}, DATA),
    "invalid_shape.safetensors": st({"w": W | {"shape": [2, 0]}, "b": B}, DATA),
    "invalid_offsets.safetensors": st({"w": W | {"data_offsets": [0, 4000]}, "b": B}, DATA),
    "invalid_overlap.safetensors": st({"w": W, "b": B | {"data_offsets": [20, 32]}}, DATA),
    "invalid_nan.safetensors": st({"w": W, "b": B}, DATA[:28] + f32([float("nan")]) + DATA[32:]),
    "invalid_metadata.safetensors": st({"w": W, "b": B, "__metadata__": {"step": 3}}, DATA),
}
for name, blob in files.items():
    with open(name, "wb") as f:
        f.write(blob)
