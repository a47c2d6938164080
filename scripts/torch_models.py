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

  Seq2Seq (seq2seq) an encoder-decoder with optional attention, in the
                    names of examples/seq2seq/torch_s2s.h (see the class);
                    forward(src [S, B], src_len [B], dec_in [T, B])
                        -> logits [T, B, tgt vocab] (teacher forcing),
                    greedy(ids, max_len) -> ids; load_seq2seq / save_seq2seq

CharRNN and RowRNN apply dropout only between recurrent layers in training, as nn.LSTM
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
    tensors, spans = {}, []
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
        spans.append((a, b, name))
    end = 0  # the tensors tile the data: no overlap, no hole, nothing after (tapegrad's check)
    for a, b, name in sorted(spans):
        if a != end:
            what = "overlaps the tensor before it" if a < end else \
                f"leaves bytes [{end}, {a}) of the data to no tensor"
            raise SafetensorsError(f"{path}: tensor '{name}' at [{a}, {b}] {what}")
        end = b
    if end != len(body):
        raise SafetensorsError(f"{path}: {len(body) - end} bytes follow the last tensor's data "
                               f"(the file was appended to, or its offsets edited)")
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


# ---------------------------------------------------------------- seq2seq

S2S_SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>"]  # ids 0..3
S2S_PAD, S2S_UNK, S2S_BOS, S2S_EOS = 0, 1, 2, 3
S2S_ATTENTION = ("none", "dot", "general", "mlp")


def _final_h(state):
    return state[0] if isinstance(state, tuple) else state


if nn is not None:
    class Attention(nn.Module):
        """Luong dot / general and Bahdanau mlp attention over a memory of
        width H, with the attentional output (OpenNMT's GlobalAttention;
        layers/attention.c computes the same):
            dot:     score[s] = h . m_s
            general: score[s] = h . (W_in m_s)
            mlp:     score[s] = v . tanh(W_q h + b_q + U m_s)
            a   = softmax over the unpadded s (padding weight 0)
            ctx = sum_s a[s] m_s
            out = tanh(W_c [ctx; h] (+ b_c, mlp only))"""

        def __init__(self, kind, hidden):
            super().__init__()
            if kind not in S2S_ATTENTION[1:]:
                raise ValueError(f"attention '{kind}': expected dot, general or mlp")
            self.kind = kind
            if kind == "general":
                self.linear_in = nn.Linear(hidden, hidden, bias=False)
            if kind == "mlp":
                self.linear_context = nn.Linear(hidden, hidden, bias=False)
                self.linear_query = nn.Linear(hidden, hidden)
                self.v = nn.Linear(hidden, 1, bias=False)
            self.linear_out = nn.Linear(2 * hidden, hidden, bias=kind == "mlp")

        def keys(self, memory):
            """What a step scores against, once per batch: [S, B, H]."""
            if self.kind == "general":
                return self.linear_in(memory)
            if self.kind == "mlp":
                return self.linear_context(memory)
            return memory

        def forward(self, h, memory, keys, pad):
            """h [B, H], memory and keys [S, B, H], pad [S, B] (True: padding)
            -> (attentional output [B, H], weights [B, S])."""
            if self.kind == "mlp":
                scores = self.v(torch.tanh(keys + self.linear_query(h)[None])).squeeze(-1)
            else:
                scores = (keys * h[None]).sum(-1)
            scores = scores.masked_fill(pad, float("-inf"))
            a = torch.softmax(scores, dim=0)
            ctx = (a[..., None] * memory).sum(0)
            return torch.tanh(self.linear_out(torch.cat([ctx, h], -1))), a.t()

    class Bridge(nn.Module):
        """One layer's bridge from a bidirectional encoder to the decoder:
        h = tanh(W_h [h_fwd; h_bwd] + b_h), c = W_c [c_fwd; c_bwd] + b_c."""

        def __init__(self, hidden, lstm):
            super().__init__()
            self.h = nn.Linear(hidden, hidden)
            self.c = nn.Linear(hidden, hidden) if lstm else None

    class BiEncoder(nn.Module):
        """Two stacks of H/2 units, fwd over each source and bwd over it
        reversed within its length, meeting only at the top: memory step s
        is [fwd_h(s); bwd_h(s)] (bwd_h(s): after reading len-1 .. s); the
        final states of each layer, joined, go through that layer's Bridge."""

        def __init__(self, cell, embed, hidden, layers, dropout):
            super().__init__()
            if hidden % 2:
                raise ValueError(f"bidirectional: hidden {hidden} is odd")
            self.fwd = _recurrent(cell, embed, hidden // 2, layers, dropout, False)
            self.bwd = _recurrent(cell, embed, hidden // 2, layers, dropout, False)
            self.bridge = nn.ModuleList(Bridge(hidden, cell.upper() == "LSTM")
                                        for _ in range(layers))

    class Seq2Seq(nn.Module):
        """seq2seq's model (examples/seq2seq/model.h), time-major, in the
        names of examples/seq2seq/torch_s2s.h:

          src_embed  nn.Embedding(V_s, E)       tgt_embed  nn.Embedding(V_t, E)
          encoder    nn.X(E, H, L), or BiEncoder (encoder.fwd, encoder.bwd,
                     encoder.bridge.<l>.h / .c) when bidirectional
          decoder    nn.X(E + F, H, L): F = H with attention (input feeding:
                     [emb(y_t); out_{t-1}], out_0 = 0) or feed_context
                     ([emb(y_t); encoder's top final h]), else F = 0
          attn       Attention (attention != "none")
          out        nn.Linear(H, V_t)

        The decoder starts from the encoder's final states (each row's at its
        own length; bridged when bidirectional). reverse_source reads every
        source backwards within its length. Ids: <pad> 0, <unk> 1, <bos> 2,
        <eos> 3. Dropout (training only, where seq2seq has it): on the
        source embeddings, between layers, and either on the attentional
        output (attention) or on the target embeddings and before out."""

        def __init__(self, src_vocab, tgt_vocab, embed, hidden, layers=1, cell="LSTM",
                     attention="none", bidirectional=False, feed_context=True,
                     reverse_source=False, dropout=0.0):
            super().__init__()
            self.cell, self.attention = cell.upper(), attention
            self.bidirectional, self.feed_context = bool(bidirectional), bool(feed_context)
            self.reverse_source, self.hidden, self.layers = bool(reverse_source), hidden, layers
            self.dropout = float(dropout)
            self.src_embed = nn.Embedding(src_vocab, embed)
            self.tgt_embed = nn.Embedding(tgt_vocab, embed)
            self.encoder = (BiEncoder(cell, embed, hidden, layers, dropout) if bidirectional
                            else _recurrent(cell, embed, hidden, layers, dropout, False))
            fed = attention != "none" or feed_context
            self.decoder = _recurrent(cell, embed + (hidden if fed else 0), hidden, layers,
                                      dropout, False)
            if attention != "none":
                self.attn = Attention(attention, hidden)
            self.out = nn.Linear(hidden, tgt_vocab)
            self.drop = nn.Dropout(dropout)

        # ---- encoder

        @staticmethod
        def _reverse_within(src, lengths):
            """Each column (ids [S, B] or outputs [S, B, H]) reversed within
            its length, padding left at the end."""
            S = src.shape[0]
            s = torch.arange(S)[:, None]
            n = lengths[None, :]
            idx = torch.where(s < n, n - 1 - s, s)
            if src.dim() == 3:  # [S, B, H]: the same rows for every column
                idx = idx[..., None].expand(-1, -1, src.shape[2])
            return torch.gather(src, 0, idx)

        def _run(self, rnn, x, lengths):
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
            y, state = rnn(packed)
            y, _ = nn.utils.rnn.pad_packed_sequence(y, total_length=x.shape[0])
            return y, state

        def encode(self, src, src_len):
            """src [S, B] in reading order as given, src_len [B] ->
            (memory [S, B, H], decoder start state, pad mask [S, B])."""
            src_len = torch.as_tensor(src_len)
            if self.reverse_source:
                src = self._reverse_within(src, src_len)
            pad = torch.arange(src.shape[0])[:, None] >= src_len[None, :]
            if not self.bidirectional:
                memory, state = self._run(self.encoder, self.drop(self.src_embed(src)), src_len)
                return memory, state, pad
            enc = self.encoder
            rev = self._reverse_within(src, src_len)
            yf, sf = self._run(enc.fwd, self.drop(self.src_embed(src)), src_len)
            yb, sb = self._run(enc.bwd, self.drop(self.src_embed(rev)), src_len)
            memory = torch.cat([yf, self._reverse_within(yb, src_len)], -1)
            hf, hb = _final_h(sf), _final_h(sb)
            h = torch.stack([torch.tanh(b.h(torch.cat([hf[l], hb[l]], -1)))
                             for l, b in enumerate(enc.bridge)])
            if self.cell != "LSTM":
                return memory, h, pad
            c = torch.stack([b.c(torch.cat([sf[1][l], sb[1][l]], -1))
                             for l, b in enumerate(enc.bridge)])
            return memory, (h, c), pad

        # ---- decoder

        def start(self, src, src_len):
            """Everything a decoder step needs, from the sources."""
            memory, state, pad = self.encode(src, src_len)
            B = memory.shape[1]
            ctx = torch.zeros(B, self.hidden, dtype=memory.dtype)
            keys = None
            if self.attention != "none":
                keys = self.attn.keys(memory)
            elif self.feed_context:
                ctx = _final_h(state)[-1]
            return {"memory": memory, "keys": keys, "pad": pad, "state": state, "feed": ctx}

        def step(self, y, d):
            """One decoder step for tokens y [B]: logits [B, V_t]; d updated."""
            x = self.tgt_embed(y)
            if self.attention == "none":
                x = self.drop(x)
            if self.attention != "none" or self.feed_context:
                x = torch.cat([x, d["feed"]], -1)
            h, d["state"] = self.decoder(x[None], d["state"])
            h = h[0]
            if self.attention == "none":
                return self.out(self.drop(h))
            o, d["weights"] = self.attn(h, d["memory"], d["keys"], d["pad"])
            o = self.drop(o)
            d["feed"] = o
            return self.out(o)

        def forward(self, src, src_len, dec_in):
            """Teacher forcing: src [S, B], src_len [B], dec_in [T, B]
            (<bos> y_1 .. y_n, then <pad>) -> logits [T, B, V_t]."""
            d = self.start(src, src_len)
            return torch.stack([self.step(dec_in[t], d) for t in range(dec_in.shape[0])])

        @torch.no_grad()
        def greedy(self, ids, max_len=60):
            """Greedy decoding of one source (a list of ids) as seq2seq
            --translate does it: the argmax each step until <eos>, never
            <pad> or <bos> (examples/seq2seq/decode.c; ties: the lower id)."""
            d = self.start(torch.tensor(ids)[:, None], torch.tensor([len(ids)]))
            y, out = torch.tensor([S2S_BOS]), []
            for _ in range(max_len):
                logits = self.step(y, d)[0]
                logits[[S2S_PAD, S2S_BOS]] = -float("inf")
                v = int(torch.argmax(logits))
                if v == S2S_EOS:
                    break
                out.append(v)
                y = torch.tensor([v])
            return out


def s2s_batch(src, tgt):
    """Padded time-major tensors of a batch as seq2seq builds it
    (s2s_batch_make) from id lists: src [S, B], src_len [B], dec_in [T, B]
    (<bos> y), dec_out [T, B] (y <eos>); the loss ignores <pad> (0)."""
    B, S, T = len(src), max(map(len, src)), max(map(len, tgt)) + 1
    s = torch.zeros(S, B, dtype=torch.long)
    di = torch.zeros(T, B, dtype=torch.long)
    do = torch.zeros(T, B, dtype=torch.long)
    for b, (x, y) in enumerate(zip(src, tgt)):
        s[:len(x), b] = torch.tensor(x, dtype=torch.long)
        di[:len(y) + 1, b] = torch.tensor([S2S_BOS] + list(y), dtype=torch.long)
        do[:len(y) + 1, b] = torch.tensor(list(y) + [S2S_EOS], dtype=torch.long)
    return s, torch.tensor([len(x) for x in src]), di, do


def s2s_words(meta, side):
    """The id -> word list of a seq2seq file's side ("src" or "tgt")."""
    text = meta.get(f"s2s.{side}_vocab", "")
    return S2S_SPECIALS + (text.split("\n") if text else [])


def s2s_encode(words, text):
    """Ids of a tokenized text (white-space separated words; <unk> 1 for
    a word the vocabulary lacks)."""
    index = {w: i for i, w in enumerate(words)}
    ids = [index.get(w, S2S_UNK) for w in text.split()]
    return [i if i > S2S_EOS else S2S_UNK for i in ids]  # "<bos>" in text is a word


def load_seq2seq(path, dtype=None):
    """Builds the Seq2Seq a seq2seq --export-torch file (or save_seq2seq's)
    describes and loads it with strict=True. Returns (model in eval mode,
    metadata); the model gets .src_words and .tgt_words (id -> word)."""
    tensors, meta = read_safetensors(path)
    if meta.get("torch.module") != "Seq2Seq":
        raise SafetensorsError(f"{path}: metadata 'torch.module' is "
                               f"{meta.get('torch.module')!r}, not 'Seq2Seq'")
    src_words, tgt_words = s2s_words(meta, "src"), s2s_words(meta, "tgt")
    model = Seq2Seq(len(src_words), len(tgt_words), int(meta["s2s.embed"]),
                    int(meta["s2s.hidden"]), int(meta["s2s.layers"]), meta["torch.cell"],
                    meta.get("s2s.attention", "none"), meta.get("s2s.bidirectional") == "1",
                    meta["s2s.feed_context"] == "1", meta["s2s.reverse_source"] == "1",
                    float(meta.get("s2s.dropout", 0)))
    model.load_state_dict(to_torch(tensors, dtype), strict=True)
    model.src_words, model.tgt_words = src_words, tgt_words
    return model.eval(), meta


def save_seq2seq(model, path, src_words, tgt_words, lowercase=False, split_punct=True,
                 extra_meta=None):
    """Writes a Seq2Seq in the form seq2seq --import-torch reads: the
    tensors, the shape, and the vocabularies (id -> word lists starting with
    <pad> <unk> <bos> <eos>, one per embedding row). extra_meta: more keys,
    e.g. a subword model's s2s.src_pieces / s2s.tgt_pieces from an export."""
    for side, words, emb in (("src", src_words, model.src_embed),
                             ("tgt", tgt_words, model.tgt_embed)):
        if list(words[:4]) != S2S_SPECIALS or len(words) != emb.num_embeddings:
            raise ValueError(f"{side}_words: {emb.num_embeddings} words needed, the first "
                             f"four {S2S_SPECIALS}")
    meta = {"torch.module": "Seq2Seq", "torch.cell": model.cell,
            "s2s.cell": model.cell.lower(), "s2s.embed": str(model.src_embed.embedding_dim),
            "s2s.hidden": str(model.hidden), "s2s.layers": str(model.layers),
            "s2s.dropout": repr(model.dropout), "s2s.feed_context": str(int(model.feed_context)),
            "s2s.reverse_source": str(int(model.reverse_source)),
            "s2s.lowercase": str(int(lowercase)), "s2s.split_punct": str(int(split_punct)),
            "s2s.src_vocab": "\n".join(src_words[4:]), "s2s.tgt_vocab": "\n".join(tgt_words[4:]),
            "s2s.attention": model.attention,
            "s2s.bidirectional": str(int(model.bidirectional))}
    meta.update(extra_meta or {})
    write_safetensors(path, {k: v.float() for k, v in model.state_dict().items()}, meta)
