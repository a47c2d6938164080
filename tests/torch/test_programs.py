"""PyTorch interchange through the programs' flags, end to end.

usage: test_programs.py CHARLM ROWSEQ SCRIPTS_DIR

charlm: a model trained by `charlm --export-torch` loads in PyTorch
(scripts/torch_models.py, strict=True) and gives charlm's validation bits
per character and its greedy continuation; a CharRNN made in PyTorch goes
through `charlm --import-torch` to the same figures, trains on, and comes
back out of `--export-torch` unchanged.
rowseq: the same with test loss and accuracy of a RowRNN.
Then the refusals (a truncated file, the other program's module, shapes
that do not fit the data, --import-torch with --load): exit 1 or 2 with one
line naming the file. Exit 77 (skipped) without python3-torch.
"""

import math
import os
import re
import struct
import subprocess
import sys
import tempfile

CHARLM, ROWSEQ, SCRIPTS = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, SCRIPTS)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_or_skip  # noqa: E402,F401  (exits 77 without PyTorch)
import torch  # noqa: E402
import numpy as np  # noqa: E402  (after the skip check)

import torch_models as tm  # noqa: E402

torch.set_num_threads(1)
ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
# The programs print 4 decimals; float32 on both sides differs far below that.
TOL = 2e-4
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def run(exe, *args, expect=0, cwd=None):
    r = subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, env=ENV,
                       cwd=cwd)
    if expect is not None and r.returncode != expect:
        raise SystemExit(f"{os.path.basename(exe)} {' '.join(args)}: exit {r.returncode}, "
                         f"expected {expect}:\n{r.stderr}")
    return r


def result_value(stdout, key):
    m = re.search(rf"^result: .*\b{key}=(\S+)", stdout, re.M)
    if not m:
        raise SystemExit(f"no {key}= in the result line:\n{stdout}")
    return float(m.group(1))


def refused(r, code, *wants):
    lines = r.stderr.strip().splitlines()
    return r.returncode == code and len(lines) == 1 and all(w in lines[0] for w in wants)


# ---------------------------------------------------------------- charlm

BATCH, SEQ, VALID_FRAC = 4, 16, 0.1
CH_SIZE = ["--batch", str(BATCH), "--seq-len", str(SEQ), "--valid-frac", str(VALID_FRAC)]


def write_text(path):
    rng = np.random.default_rng(7)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "saw", "\ud55c\uad6d\uc5b4",
             "\ub9d0", "caf\u00e9", "dog."]
    text = " ".join(words[i] for i in rng.integers(0, len(words), 1500)) + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return text


def charlm_valid_bpc(model, vocab, text):
    """charlm's validation: the last --valid-frac of the text as
    min(batch, n-1) streams read from a zero state (state carried from
    window to window: the same as one pass over each stream)."""
    ids = tm.encode(vocab, text)
    n_valid = int(len(ids) * VALID_FRAC)
    valid = ids[len(ids) - n_valid:]
    b = min(BATCH, n_valid - 1)
    length = (n_valid - 1) // b
    x = torch.tensor([[valid[s * length + t] for s in range(b)] for t in range(length)])
    y = torch.tensor([[valid[s * length + t + 1] for s in range(b)] for t in range(length)])
    with torch.no_grad():
        logits, _ = model(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(),
                                                 y.reshape(-1))
    return float(loss) / math.log(2)


def greedy(model, vocab, prime, n):
    ids = tm.encode(vocab, prime)
    out = []
    with torch.no_grad():
        logits, state = model(torch.tensor(ids).reshape(-1, 1))
        for _ in range(n):
            nxt = int(torch.argmax(logits[-1, 0]))
            out.append(nxt)
            logits, state = model(torch.tensor([[nxt]]), state)
    return (prime + tm.decode(vocab, out)).rstrip("\n")


def charlm_sample(model_flag, path, prime, n, tmp):
    r = run(CHARLM, model_flag, path, "--sample", str(n), "--temperature", "0", "--prime",
            prime, cwd=tmp)
    return r.stdout.split("result: ")[0].rstrip("\n")


def test_charlm(tmp):
    text = write_text(os.path.join(tmp, "t.txt"))
    vocab = tm.vocab_of(text)
    # tapegrad -> PyTorch: the final model (--eval-every 0: --save keeps it)
    r = run(CHARLM, "--text", "t.txt", "--cell", "lstm", "--hidden", "24", "--embed", "12",
            "--layers", "2", "--dropout", "0.1", *CH_SIZE, "--steps", "40", "--eval-every", "0",
            "--save", "m.st", "--export-torch", "m.torch.st", cwd=tmp)
    ours = result_value(r.stdout, "valid_bpc")
    model, meta = tm.load_model(os.path.join(tmp, "m.torch.st"))
    check(isinstance(model, tm.CharRNN) and model.vocab == vocab and model.rnn.num_layers == 2,
          "charlm --export-torch: a CharRNN with the text's vocabulary, 2 layers")
    theirs = charlm_valid_bpc(model, vocab, text)
    check(abs(theirs - ours) <= TOL, f"charlm model in PyTorch: valid bpc {theirs:.5f}, "
          f"charlm {ours:.4f}")
    check(greedy(model, vocab, "the ", 60) == charlm_sample("--load", "m.st", "the ", 60, tmp),
          "charlm model in PyTorch: the same greedy continuation")
    # --load then --export-torch without training: the same tensors
    run(CHARLM, "--load", "m.st", "--export-torch", "again.torch.st", cwd=tmp)
    a, _ = tm.read_safetensors(os.path.join(tmp, "m.torch.st"))
    b, _ = tm.read_safetensors(os.path.join(tmp, "again.torch.st"))
    check(a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a),
          "charlm --load m.st --export-torch: the trained tensors")

    # PyTorch -> tapegrad: a GRU trained a few steps in PyTorch
    torch.manual_seed(11)
    made = tm.CharRNN(len(vocab), 10, 20, layers=2, cell="GRU")
    ids = torch.tensor(tm.encode(vocab, text[:2000]))
    opt = torch.optim.Adam(made.parameters(), 1e-2)
    for step in range(20):
        x = ids[step * 64:step * 64 + 64].reshape(16, 4)
        y = ids[step * 64 + 1:step * 64 + 65].reshape(16, 4)
        logits, _ = made(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, len(vocab)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    made.eval()
    tm.save_char_rnn(made, os.path.join(tmp, "p.torch.st"), vocab)
    r = run(CHARLM, "--import-torch", "p.torch.st", "--text", "t.txt", *CH_SIZE, cwd=tmp)
    ours = result_value(r.stdout, "valid_bpc")
    theirs = charlm_valid_bpc(made, vocab, text)
    check(abs(theirs - ours) <= TOL and "steps=0" in r.stdout,
          f"PyTorch CharRNN in charlm (evaluated, not trained): valid bpc {ours:.4f}, "
          f"PyTorch {theirs:.5f}")
    check(greedy(made, vocab, "a ", 60) == charlm_sample("--import-torch", "p.torch.st", "a ",
                                                         60, tmp),
          "PyTorch CharRNN in charlm: the same greedy continuation")
    run(CHARLM, "--import-torch", "p.torch.st", "--export-torch", "back.torch.st", cwd=tmp)
    a, _ = tm.read_safetensors(os.path.join(tmp, "p.torch.st"))
    b, _ = tm.read_safetensors(os.path.join(tmp, "back.torch.st"))
    check(a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a),
          "charlm --import-torch then --export-torch: PyTorch's tensors unchanged")
    r = run(CHARLM, "--import-torch", "p.torch.st", "--text", "t.txt", *CH_SIZE, "--steps", "5",
            "--save", "trained.st", cwd=tmp)
    check("steps=5" in r.stdout and result_value(r.stdout, "valid_bpc") < ours + 0.5,
          "charlm trains on from PyTorch's weights (--import-torch --steps 5)")
    return text


def test_charlm_refusals(tmp):
    whole = open(os.path.join(tmp, "p.torch.st"), "rb").read()
    with open(os.path.join(tmp, "cut.torch.st"), "wb") as f:
        f.write(whole[:len(whole) - 100])
    r = run(CHARLM, "--import-torch", "cut.torch.st", "--sample", "5", "--prime", "a", expect=None,
            cwd=tmp)
    check(refused(r, 1, "charlm: --import-torch cut.torch.st"), f"truncated file: {r.stderr!r}")
    r = run(CHARLM, "--import-torch", "r.torch.st", "--sample", "5", "--prime", "a", expect=None,
            cwd=tmp)
    check(refused(r, 1, "charlm: --import-torch r.torch.st", "embed"),
          f"rowseq's RowRNN to charlm: {r.stderr!r}")
    r = run(CHARLM, "--import-torch", "p.torch.st", "--hidden", "8", "--sample", "5", "--prime",
            "a", expect=None, cwd=tmp)
    check(refused(r, 2, "--hidden 8 does not match", "p.torch.st"),
          f"--hidden against the file's shapes: {r.stderr!r}")
    r = run(CHARLM, "--import-torch", "p.torch.st", "--load", "m.st", expect=None, cwd=tmp)
    check(refused(r, 2, "--import-torch and --load exclude each other"),
          f"--import-torch with --load: {r.stderr!r}")
    r = run(CHARLM, "--import-torch", "p.torch.st", "--text", "t.txt", "--cell", "mgu",
            expect=None, cwd=tmp)
    check(refused(r, 2, "--cell mgu does not match"), f"--cell against the file: {r.stderr!r}")
    r = run(CHARLM, "--load", "m.st", "--cell", "lstm", "--export-torch", "no/such/x.st",
            expect=None, cwd=tmp)
    check(refused(r, 1, "--export-torch no/such/x.st", "no/such"),
          f"--export-torch into a missing folder, before any work: {r.stderr!r}")


# ---------------------------------------------------------------- rowseq

ROWS, COLS = 7, 6


def write_idx(folder):
    """Small IDX files: images of ROWS x COLS whose class shows in the rows."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(3)
    for prefix, count in (("train", 96), ("t10k", 64)):
        labels = rng.integers(0, 10, count).astype(np.uint8)
        images = rng.integers(0, 120, (count, ROWS, COLS)).astype(np.uint8)
        for i, c in enumerate(labels):
            images[i, c % ROWS, :] += 100 + 10 * (c // ROWS)
        with open(os.path.join(folder, f"{prefix}-images-idx3-ubyte"), "wb") as f:
            f.write(struct.pack(">IIII", 0x803, count, ROWS, COLS) + images.tobytes())
        with open(os.path.join(folder, f"{prefix}-labels-idx1-ubyte"), "wb") as f:
            f.write(struct.pack(">II", 0x801, count) + labels.tobytes())
    return images.astype(np.float32) / 255, labels


def test_loss_acc(model, images, labels):
    with torch.no_grad():
        logits = model(torch.from_numpy(images)).double()
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels).long())
        acc = float((logits.argmax(1).numpy() == labels).mean())
    return float(loss), acc


def rowseq_eval(stdout):
    m = re.findall(r"test_loss (\S+)\s+test_acc (\S+)", stdout)
    if not m:
        raise SystemExit(f"no test_loss/test_acc in rowseq's output:\n{stdout}")
    return float(m[-1][0]), float(m[-1][1])


def test_rowseq(tmp):
    images, labels = write_idx(os.path.join(tmp, "idx"))
    r = run(ROWSEQ, "--data", "idx", "--cell", "lstm", "--hidden", "12", "--layers", "2",
            "--batch", "16", "--epochs", "2", "--export-torch", "r.torch.st", cwd=tmp)
    ours = rowseq_eval(r.stdout)
    model, _ = tm.load_model(os.path.join(tmp, "r.torch.st"))
    check(isinstance(model, tm.RowRNN) and model.rnn.num_layers == 2,
          "rowseq --export-torch: a RowRNN, 2 layers")
    theirs = test_loss_acc(model, images, labels)
    check(abs(theirs[0] - ours[0]) <= TOL and abs(theirs[1] - ours[1]) <= 5e-5,
          f"rowseq model in PyTorch: test loss {theirs[0]:.5f} acc {theirs[1]:.4f}, rowseq "
          f"{ours[0]:.4f} {ours[1]:.4f}")

    torch.manual_seed(5)
    made = tm.RowRNN(COLS, 9, 10, layers=2, cell="GRU").eval()
    with torch.no_grad():
        for p in made.parameters():
            p.add_(0.3 * torch.randn_like(p))
    tm.save_row_rnn(made, os.path.join(tmp, "p_row.torch.st"))
    r = run(ROWSEQ, "--data", "idx", "--import-torch", "p_row.torch.st", cwd=tmp)
    ours = rowseq_eval(r.stdout)
    theirs = test_loss_acc(made, images, labels)
    check(abs(theirs[0] - ours[0]) <= TOL and abs(theirs[1] - ours[1]) <= 5e-5 and
          "steps=0" in r.stdout,
          f"PyTorch RowRNN in rowseq (evaluated, not trained): test loss {ours[0]:.4f} acc "
          f"{ours[1]:.4f}, PyTorch {theirs[0]:.5f} {theirs[1]:.4f}")
    r = run(ROWSEQ, "--data", "idx", "--import-torch", "p_row.torch.st", "--epochs", "1",
            "--batch", "16", "--export-torch", "p_row2.torch.st", cwd=tmp)
    check("steps=6" in r.stdout, "rowseq trains on from PyTorch's weights (--epochs 1)")


def test_rowseq_refusals(tmp):
    r = run(ROWSEQ, "--data", "idx", "--import-torch", "p.torch.st", expect=None, cwd=tmp)
    check(refused(r, 1, "rowseq: --import-torch p.torch.st", "CharRNN"),
          f"charlm's CharRNN to rowseq: {r.stderr!r}")
    torch.manual_seed(1)
    tm.save_row_rnn(tm.RowRNN(COLS + 1, 9, 10, cell="LSTM"), os.path.join(tmp, "wide.torch.st"))
    r = run(ROWSEQ, "--data", "idx", "--import-torch", "wide.torch.st", expect=None, cwd=tmp)
    check(refused(r, 1, "wide.torch.st", f"reads {COLS + 1} pixels a step", f"{ROWS}x{COLS}"),
          f"images of another width: {r.stderr!r}")
    tm.save_row_rnn(tm.RowRNN(COLS, 9, 3, cell="LSTM"), os.path.join(tmp, "three.torch.st"))
    r = run(ROWSEQ, "--data", "idx", "--import-torch", "three.torch.st", expect=None, cwd=tmp)
    check(refused(r, 1, "three.torch.st", "'head.weight' is [3, 9]", "10 classes"),
          f"another number of classes: {r.stderr!r}")
    whole = open(os.path.join(tmp, "p_row.torch.st"), "rb").read()
    with open(os.path.join(tmp, "cut_row.torch.st"), "wb") as f:
        f.write(whole[:-64])
    r = run(ROWSEQ, "--data", "idx", "--import-torch", "cut_row.torch.st", expect=None, cwd=tmp)
    check(refused(r, 1, "rowseq: --import-torch cut_row.torch.st"),
          f"truncated file: {r.stderr!r}")
    r = run(ROWSEQ, "--data", "idx", "--import-torch", "p_row.torch.st", "--resume", "x.tck",
            expect=None, cwd=tmp)
    check(refused(r, 2, "--import-torch and --resume exclude each other"),
          f"--import-torch with --resume: {r.stderr!r}")


with tempfile.TemporaryDirectory() as tmp:
    test_charlm(tmp)
    test_rowseq(tmp)
    test_charlm_refusals(tmp)
    test_rowseq_refusals(tmp)
print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
