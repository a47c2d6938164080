"""PyTorch interchange, both ways (examples/common/torch_io.h).

usage: test_torch_io.py TORCH_DRIVER SCRIPTS_DIR

For each cell with a PyTorch module (LSTM, GRU, RNN):
  export: tapegrad makes a model, exports it and its logits on fixed inputs;
          PyTorch builds the module from the file with strict=True and must
          give the same logits.
  import: PyTorch makes a module and saves it; tapegrad imports it and its
          logits on the same inputs must be PyTorch's.
for charlm's CharRNN and rowseq's RowRNN; then the refusals (mgu, a file
with an extra tensor, one with a missing vocabulary). Exit 77 (skipped)
without python3-torch.
"""

import os
import subprocess
import sys
import tempfile

DRIVER, SCRIPTS = sys.argv[1], sys.argv[2]
sys.path.insert(0, SCRIPTS)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_or_skip  # noqa: E402,F401  (exits 77 without PyTorch)
import torch  # noqa: E402
import numpy as np  # noqa: E402  (after the skip check)

import torch_models as tm  # noqa: E402

torch.set_num_threads(1)
TOL = 2e-5  # float32 both sides, logits of order 1
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def driver(*args, expect_ok=True):
    r = subprocess.run([DRIVER, *args], capture_output=True, text=True, timeout=60)
    if expect_ok and r.returncode != 0:
        raise SystemExit(f"torch_driver {' '.join(args)} failed: {r.stderr}")
    return r


def close(a, b, what):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    err = float(np.max(np.abs(a - b))) if a.shape == b.shape else float("inf")
    check(a.shape == b.shape and err <= TOL * max(1.0, float(np.max(np.abs(b)))),
          f"{what}: max |diff| {err:.2e} (shapes {a.shape} {b.shape})")


def char_logits(model, ids):
    with torch.no_grad():
        out, _ = model(torch.from_numpy(ids.astype(np.int64)))
    return out.reshape(-1, out.shape[-1]).numpy()


def test_char(tmp, cell):
    model_path, ref_path = os.path.join(tmp, "c.st"), os.path.join(tmp, "c_ref.st")
    driver("export-char", cell.lower(), model_path, ref_path)
    ref, _ = tm.read_safetensors(ref_path)
    model, meta = tm.load_model(model_path)  # strict=True inside
    check(isinstance(model, tm.CharRNN) and model.cell == cell and meta["torch.cell"] == cell,
          f"CharRNN {cell}: module and cell from the file")
    check(tm.decode(model.vocab, range(len(model.vocab))) == "\n ,dehlortw\u00e9\uae00\ud55c",
          f"CharRNN {cell}: vocabulary in the metadata")
    check(model.rnn.num_layers == 2 and abs(model.rnn.dropout - 0.25) < 1e-12,
          f"CharRNN {cell}: layers and dropout")
    close(char_logits(model, ref["ids"]), ref["logits"], f"CharRNN {cell} export -> PyTorch")

    torch.manual_seed(3)
    theirs = tm.CharRNN(len(model.vocab), 5, 9, layers=3, cell=cell).eval()
    with torch.no_grad():  # nonzero biases everywhere, larger than the default init
        for p in theirs.parameters():
            p.add_(0.3 * torch.randn_like(p))
    made = os.path.join(tmp, "c_torch.st")
    tm.save_char_rnn(theirs, made, model.vocab)
    out = os.path.join(tmp, "c_out.st")
    driver("logits-char", made, ref_path, out)
    got, _ = tm.read_safetensors(out)
    close(got["logits"], char_logits(theirs, ref["ids"]), f"CharRNN {cell} PyTorch -> import")


def test_row(tmp, cell):
    model_path, ref_path = os.path.join(tmp, "r.st"), os.path.join(tmp, "r_ref.st")
    driver("export-row", cell.lower(), model_path, ref_path)
    ref, _ = tm.read_safetensors(ref_path)
    model, _ = tm.load_model(model_path)
    images = torch.from_numpy((ref["images"].astype(np.float32) / 255).reshape(3, 6, 5))
    with torch.no_grad():
        close(model(images).numpy(), ref["logits"], f"RowRNN {cell} export -> PyTorch")
    torch.manual_seed(5)
    theirs = tm.RowRNN(5, 4, 3, layers=2, cell=cell).eval()
    made, out = os.path.join(tmp, "r_torch.st"), os.path.join(tmp, "r_out.st")
    tm.save_row_rnn(theirs, made)
    driver("logits-row", made, ref_path, out)
    got, _ = tm.read_safetensors(out)
    with torch.no_grad():
        close(got["logits"], theirs(images).numpy(), f"RowRNN {cell} PyTorch -> import")


def test_refusals(tmp):
    r = driver("export-char", "mgu", os.path.join(tmp, "m.st"), os.path.join(tmp, "m_ref.st"),
               expect_ok=False)
    check(r.returncode == 1 and "'mgu' has no PyTorch module" in r.stderr,
          f"mgu export refused by name: {r.stderr.strip()}")
    check(not os.path.exists(os.path.join(tmp, "m.st")), "no file left by a refused export")

    ref_path = os.path.join(tmp, "c_ref.st")
    driver("export-char", "lstm", os.path.join(tmp, "c.st"), ref_path)
    tensors, meta = tm.read_safetensors(os.path.join(tmp, "c.st"))

    def refused(what, changed_tensors, changed_meta, *wants):
        bad = os.path.join(tmp, "bad.st")
        tm.write_safetensors(bad, changed_tensors, changed_meta)
        r = driver("logits-char", bad, ref_path, os.path.join(tmp, "o.st"), expect_ok=False)
        check(r.returncode == 1 and all(w in r.stderr for w in wants),
              f"{what} refused: {r.stderr.strip()}")

    refused("extra tensor (strict)",
            dict(tensors, **{"rnn.weight_ih_l0_reverse": tensors["rnn.weight_ih_l0"]}), meta,
            "rnn.weight_ih_l0_reverse", "bidirectional")
    refused("missing vocabulary", tensors,
            {k: v for k, v in meta.items() if k != "charmodel.vocab"}, "'charmodel.vocab'")
    refused("missing tensor", {k: v for k, v in tensors.items() if k != "rnn.bias_hh_l1"}, meta,
            "'rnn.bias_hh_l1'", "missing")
    refused("short bias", dict(tensors, **{"head.bias": tensors["head.bias"][:-1]}), meta,
            "'head.bias' has shape [13]", "expects [14]")
    refused("cell metadata against the shapes", tensors, dict(meta, **{"torch.cell": "GRU"}),
            "'torch.cell' is 'GRU'", "nn.LSTM")


with tempfile.TemporaryDirectory() as tmp:
    for cell in ("LSTM", "GRU", "RNN"):
        test_char(tmp, cell)
        test_row(tmp, cell)
    test_refusals(tmp)
print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
