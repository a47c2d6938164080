"""PyTorch modules for tapegrad's models, and a safetensors reader/writer.

tapegrad exports (examples/common/torch_io.h) write a model in the names and
shapes of the modules below, so that

    import torch_models as tm
    model, meta = tm.load_model("model.torch.safetensors")   # strict=True inside

or, by hand,

    tensors, meta = tm.read_safetensors(path)
    model = tm.CharRNN(vocab, embed, hidden, layers, cell="LSTM")
    model.load_state_dict(tm.to_torch(tensors), strict=True)

gives the same logits as tapegrad (float tolerance). The reverse: train or
change a model in PyTorch, then `save_char_rnn(model, path, vocab)` or
`save_row_rnn(model, path)` writes a file tapegrad imports.

Modules (the state_dict names are the file's tensor names):

  CharRNN (charlm)  embed = nn.Embedding(vocab, embed)
                    rnn   = nn.LSTM | nn.GRU | nn.RNN(nonlinearity="tanh")
                            (embed, hidden, layers, dropout), time-major
                            (batch_first=False, as tapegrad's batches)
                    head  = nn.Linear(hidden, vocab)
                    forward(ids [T, B] long, state=None)
                        -> (logits [T, B, vocab], state)
  RowRNN (rowseq)   rnn   = nn.LSTM | nn.GRU | nn.RNN (cols, hidden, layers,
                            dropout, batch_first=True)
                    head  = nn.Linear(hidden, classes)
                    forward(images [B, rows, cols] float in [0, 1], i.e. the
                        bytes / 255 as rowseq scales them)
                        -> logits [B, classes] from the top layer's last h

Both apply dropout only between recurrent layers in training, as nn.LSTM
does; tapegrad also drops before the head in training (evaluation is the
same). A CharRNN file carries its vocabulary in the metadata key
"charmodel.vocab": the code points of the characters, ascending, joined by
commas; id i is the i-th code point (see vocab_of / encode / decode).

The safetensors format: 8 bytes little-endian header length N, N bytes of
JSON {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
"__metadata__": {str: str}}, then the raw little-endian data. Debian 12 has
no python3-safetensors, so read_safetensors / write_safetensors below do it
with numpy.
"""

import json
import os
import struct

import numpy as np

try:
    import torch
    from torch import nn
except ImportError:  # the reader/writer still work without torch
    torch = None
    nn = None

_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16,
           "I64": np.int64, "I32": np.int32, "U8": np.uint8}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}
MAX_HEADER = 100 * 1024 * 1024


class SafetensorsError(ValueError):
    """A file that is not a valid safetensors file (the message names it)."""


def read_safetensors(path):
    """Returns ({name: numpy array}, {metadata key: str})."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise SafetensorsError(f"{path}: {len(data)} bytes, too short for a header length")
    (hlen,) = struct.unpack("<Q", data[:8])
    if hlen > MAX_HEADER or 8 + hlen > len(data):
        raise SafetensorsError(f"{path}: header length {hlen} does not fit the file "
                               f"({len(data)} bytes)")
    try:
        header = json.loads(data[8:8 + hlen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"{path}: header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header is not a JSON object")
    meta = header.pop("__metadata__", {}) or {}
    body = data[8 + hlen:]
    tensors = {}
    for name, e in header.items():
        try:
            dtype = np.dtype(_DTYPES[e["dtype"]]).newbyteorder("<")
            shape = [int(s) for s in e["shape"]]
            a, b = (int(x) for x in e["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"{path}: tensor '{name}': bad or unsupported entry {e}") \
                from None
        count = int(np.prod(shape)) if shape else 1
        if not 0 <= a <= b <= len(body) or b - a != count * dtype.itemsize:
            raise SafetensorsError(f"{path}: tensor '{name}': data_offsets [{a}, {b}] do not "
                                   f"match shape {shape} x {e['dtype']} in {len(body)} bytes")
        tensors[name] = np.frombuffer(body, dtype=dtype, count=count, offset=a).reshape(shape)
    return tensors, {str(k): str(v) for k, v in meta.items()}


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: numpy array or torch tensor} and {str: str} metadata."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        if torch is not None and isinstance(t, torch.Tensor):
            t = t.detach().cpu().numpy()
        arr = np.ascontiguousarray(t)
        if arr.dtype not in _NAMES:
            raise SafetensorsError(f"{path}: tensor '{name}': dtype {arr.dtype} not supported")
        raw = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _NAMES[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def to_torch(tensors, dtype=None):
    """numpy arrays -> torch tensors (float32 unless dtype says otherwise)."""
    dtype = dtype or torch.float32
    return {k: torch.from_numpy(np.array(v)).to(dtype) for k, v in tensors.items()}


# ---------------------------------------------------------------- vocabulary

def vocab_of(text):
    """The vocabulary of a text, as tapegrad builds it: its distinct code
    points, ascending; id i is the i-th."""
    return sorted({ord(c) for c in text})


def vocab_format(vocab):
    return ",".join(str(int(c)) for c in vocab)


def vocab_parse(s):
    return [int(x) for x in s.split(",")] if s else []


def encode(vocab, text):
    index = {c: i for i, c in enumerate(vocab)}
    return [index[ord(ch)] for ch in text]


def decode(vocab, ids):
    return "".join(chr(vocab[i]) for i in ids)


# ---------------------------------------------------------------- modules

def _recurrent(cell, in_size, hidden, layers, dropout, batch_first):
    cell = cell.upper()
    kinds = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN": nn.RNN}
    if cell not in kinds:
        raise ValueError(f"cell '{cell}': expected one of LSTM, GRU, RNN (mgu and user cells "
                         f"have no PyTorch module)")
    extra = {"nonlinearity": "tanh"} if cell == "RNN" else {}
    return kinds[cell](in_size, hidden, layers, dropout=dropout if layers > 1 else 0.0,
                       batch_first=batch_first, **extra)


if nn is not None:
    class CharRNN(nn.Module):
        """charlm's model: embedding, recurrent stack (time-major), linear."""

        def __init__(self, vocab, embed, hidden, layers=1, cell="LSTM", dropout=0.0):
            super().__init__()
            self.cell = cell.upper()
            self.embed = nn.Embedding(vocab, embed)
            self.rnn = _recurrent(cell, embed, hidden, layers, dropout, batch_first=False)
            self.head = nn.Linear(hidden, vocab)

        def forward(self, ids, state=None):
            y, state = self.rnn(self.embed(ids), state)
            return self.head(y), state

    class RowRNN(nn.Module):
        """rowseq's model: an image's rows as time steps, the last hidden
        state of the top layer to class logits."""

        def __init__(self, cols, hidden, classes, layers=1, cell="LSTM", dropout=0.0):
            super().__init__()
            self.cell = cell.upper()
            self.rnn = _recurrent(cell, cols, hidden, layers, dropout, batch_first=True)
            self.head = nn.Linear(hidden, classes)

        def forward(self, images):
            _, state = self.rnn(images)
            h = state[0] if isinstance(state, tuple) else state
            return self.head(h[-1])


def _cell_of(tensors):
    """LSTM, GRU or RNN from rnn.weight_hh_l0's shape [G*H, H]."""
    gh, h = tensors["rnn.weight_hh_l0"].shape
    return {4: "LSTM", 3: "GRU", 1: "RNN"}[gh // h]


def _layers_of(tensors):
    k = 0
    while f"rnn.weight_ih_l{k}" in tensors:
        k += 1
    return k


def load_model(path, dtype=None):
    """Builds the module a tapegrad export (or save_*) describes and loads
    it with strict=True. Returns (model in eval mode, metadata); a CharRNN
    also gets .vocab (list of code points)."""
    tensors, meta = read_safetensors(path)
    for need in ("rnn.weight_ih_l0", "rnn.weight_hh_l0", "head.weight"):
        if need not in tensors:
            raise SafetensorsError(f"{path}: tensor '{need}' is missing: not a CharRNN/RowRNN")
    cell, layers = _cell_of(tensors), _layers_of(tensors)
    out, hidden = tensors["head.weight"].shape
    dropout = float(meta.get("charmodel.dropout", 0))
    if "embed.weight" in tensors:
        vocab, embed = tensors["embed.weight"].shape
        model = CharRNN(vocab, embed, hidden, layers, cell, dropout)
        model.vocab = vocab_parse(meta.get("charmodel.vocab", ""))
    else:
        cols = tensors["rnn.weight_ih_l0"].shape[1]
        model = RowRNN(cols, hidden, out, layers, cell, dropout)
    model.load_state_dict(to_torch(tensors, dtype), strict=True)
    return model.eval(), meta


def save_char_rnn(model, path, vocab):
    """Writes a CharRNN and its vocabulary (code points, ascending, one per
    embedding row) in the form tapegrad imports."""
    vocab = [int(c) for c in vocab]
    if vocab != sorted(set(vocab)) or len(vocab) != model.embed.num_embeddings:
        raise ValueError(f"vocab: {len(vocab)} distinct ascending code points needed, one per "
                         f"embedding row ({model.embed.num_embeddings})")
    meta = {"torch.module": "CharRNN", "torch.cell": model.cell,
            "charmodel.vocab": vocab_format(vocab),
            "charmodel.dropout": repr(float(model.rnn.dropout))}
    write_safetensors(path, {k: v.float() for k, v in model.state_dict().items()}, meta)


def save_row_rnn(model, path):
    """Writes a RowRNN in the form tapegrad imports."""
    meta = {"torch.module": "RowRNN", "torch.cell": model.cell}
    write_safetensors(path, {k: v.float() for k, v in model.state_dict().items()}, meta)
