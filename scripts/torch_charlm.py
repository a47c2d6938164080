#!/usr/bin/python3
"""PyTorch's plain character-LSTM recipe, scored exactly as charlm scores.

    /usr/bin/python3 scripts/torch_charlm.py --text T.txt [--seconds 60] [--threads 2]

The anchor for charlm's defaults (issue 16): what a user who writes the
usual PyTorch char-RNN gets on the same text in the same time.

Recipe (PyTorch's plain one): CharRNN of scripts/torch_models.py, i.e.
nn.Embedding(V, --embed 256) -> nn.LSTM(256, --hidden 256, --layers 1,
time-major) -> nn.Linear(256, V), PyTorch's default initialisation; Adam
(lr --lr 2e-3, default betas/eps, no weight decay), no gradient clipping
(--clip 0; charlm clips at 5); each step draws --batch 32 random windows of
--seq-len 64 characters from the training split (uniform start positions,
from a zero state: nothing carried), mean cross-entropy over the 64 x 32
positions. charlm instead reads 32 consecutive streams with the state
carried from window to window (truncated BPTT); the batch, window length and
tokens per step are charlm's defaults.

Same data as charlm (examples/charlm/charlm.c, train.c):
  * the text is read as UTF-8 (one leading BOM skipped, line ends kept as
    they are), vocabulary = its distinct code points, ascending;
  * n_valid = floor(n * --valid-frac 0.05): the last n_valid characters are
    the validation split, the n - n_valid before them the training split;
  * validation: B = min(--batch, n_valid - 1) streams of L = (n_valid - 1)
    // B characters each (stream b starts at b * L; position t predicts the
    character after it), read from a zero state, without dropout; charlm
    walks them in windows of --seq-len with the state carried, which is one
    pass over each stream: the same L x B predicted characters, the same
    mean. Bits per character = mean nats / ln 2.

Evaluation every --eval-every steps (as charlm's default, 500) and at the
end; evaluation time is not counted in --seconds (nor is it in charlm).
Last line:
  result: best_val_bpc=... best_step=... final_val_bpc=... tokens_per_s=...
          steps=... seconds=... vocab=... chars=...
(best over the periodic evaluations and the final one).
"""

import argparse
import math
import os
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--text", required=True, help="UTF-8 text")
    p.add_argument("--seconds", type=float, default=60, help="training time budget")
    p.add_argument("--threads", type=int, default=1, help="torch and OpenBLAS threads")
    p.add_argument("--embed", type=int, default=256)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--cell", default="LSTM", choices=["LSTM", "GRU", "RNN"])
    p.add_argument("--dropout", type=float, default=0.0, help="between LSTM layers (nn.LSTM's)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--clip", type=float, default=0.0, help="global gradient norm (0: none)")
    p.add_argument("--valid-frac", type=float, default=0.05)
    p.add_argument("--eval-every", type=int, default=500, help="steps (0: at the end only)")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args()


ARGS = parse_args()
# Debian's torch does its GEMMs in OpenBLAS, whose thread pool
# torch.set_num_threads does not set: fix both before torch loads.
os.environ["OMP_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.threads)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import torch_models as tm  # noqa: E402


def load_splits(path, valid_frac):
    with open(path, encoding="utf-8-sig", newline="") as f:
        text = f.read()
    vocab = tm.vocab_of(text)
    ids = torch.tensor(tm.encode(vocab, text), dtype=torch.long)
    n_valid = int(len(ids) * valid_frac)
    return vocab, ids[:len(ids) - n_valid], ids[len(ids) - n_valid:]


def valid_streams(valid, batch):
    """charlm's validation layout: inputs and targets [L, B], time-major."""
    b = min(batch, len(valid) - 1)
    length = (len(valid) - 1) // b
    starts = torch.arange(b) * length
    pos = torch.arange(length).unsqueeze(1) + starts.unsqueeze(0)
    return valid[pos], valid[pos + 1]


@torch.no_grad()
def evaluate(model, x, y, seq_len):
    """Mean bits per character over [L, B], windows of seq_len, state carried."""
    model.eval()
    total, state = 0.0, None
    for t0 in range(0, x.shape[0], seq_len):
        logits, state = model(x[t0:t0 + seq_len], state)
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(),
                                       y[t0:t0 + seq_len].reshape(-1), reduction="sum"))
    model.train()
    return total / y.numel() / math.log(2)


def main():
    torch.set_num_threads(ARGS.threads)
    torch.manual_seed(ARGS.seed)
    vocab, train, valid = load_splits(ARGS.text, ARGS.valid_frac)
    T, B = ARGS.seq_len, ARGS.batch
    if len(train) < T + 2 or len(valid) < 2:
        sys.exit(f"{ARGS.text}: {len(train)} training / {len(valid)} validation characters: "
                 f"too few for windows of {T}")
    vx, vy = valid_streams(valid, B)
    model = tm.CharRNN(len(vocab), ARGS.embed, ARGS.hidden, ARGS.layers, ARGS.cell,
                       ARGS.dropout)
    opt = torch.optim.Adam(model.parameters(), lr=ARGS.lr)
    gen = torch.Generator().manual_seed(ARGS.seed)
    offsets = torch.arange(T).unsqueeze(1)
    print(f"torch_charlm: {ARGS.text}: {len(train) + len(valid)} characters, vocabulary "
          f"{len(vocab)}; {len(train)} train / {len(valid)} valid ({vx.numel()} scored); "
          f"{sum(p.numel() for p in model.parameters())} parameters; {torch.get_num_threads()} "
          f"thread(s)", file=sys.stderr, flush=True)

    step, seconds, best, best_step = 0, 0.0, math.inf, 0
    while seconds < ARGS.seconds:
        t0 = time.perf_counter()
        starts = torch.randint(0, len(train) - T, (B,), generator=gen)
        pos = offsets + starts.unsqueeze(0)  # [T, B]
        logits, _ = model(train[pos])
        loss = F.cross_entropy(logits.reshape(-1, len(vocab)), train[pos + 1].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if ARGS.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), ARGS.clip)
        opt.step()
        seconds += time.perf_counter() - t0
        step += 1
        if ARGS.eval_every and step % ARGS.eval_every == 0:
            bpc = evaluate(model, vx, vy, T)
            if bpc < best:
                best, best_step = bpc, step
            print(f"step {step}  valid {bpc:.4f} bpc  (train {float(loss) / math.log(2):.3f} "
                  f"bpc)  {step * T * B / seconds:.0f} tok/s", file=sys.stderr, flush=True)
    final = evaluate(model, vx, vy, T)
    if final <= best:
        best, best_step = final, step
    print(f"result: best_val_bpc={best:.4f} best_step={best_step} final_val_bpc={final:.4f} "
          f"tokens_per_s={step * T * B / seconds:.0f} steps={step} seconds={seconds:.1f} "
          f"vocab={len(vocab)} chars={len(train) + len(valid)}", flush=True)


if __name__ == "__main__":
    main()
