"""seq2seq's PyTorch interchange end to end (examples/seq2seq/torch_s2s.h).

usage: test_seq2seq.py SEQ2SEQ S2S_TORCH_DRIVER SCRIPTS_DIR

For several architectures (cells, attention none/dot/general/mlp, one and
two layers, a bidirectional encoder, a reversed source, no fed context):
  export: seq2seq trains a tiny model on the built-in corpus for a few
          steps and writes --save and --export-torch; PyTorch builds
          scripts/torch_models.py's Seq2Seq from the export (strict=True)
          and must give the program's teacher-forced logits and loss on a
          padded batch (s2s_torch_driver computes them with the program's
          code) and its greedy --translate output, word for word.
  import: PyTorch makes a Seq2Seq of another size (random values) and
          saves it; s2s_torch_driver and `seq2seq --import-torch` must give
          PyTorch's logits and greedy translations; the program trains it
          on and exports it again. With its output bias raised far for
          <bos> and <pad> (and lowered for <eos>), both still translate
          alike and neither outputs <bos> or <pad>.
Then the refusals: a missing tensor, an extra one, a wrong shape, a cell
without a PyTorch module, charlm's CharRNN, a --save file, --import-torch
with --load: exit 1 or 2 with one line naming the file and the problem.
Exit 77 (skipped) without python3-torch.
"""

import copy
import os
import subprocess
import sys
import tempfile

SEQ2SEQ, DRIVER, SCRIPTS = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, SCRIPTS)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_or_skip  # noqa: E402,F401  (exits 77 without PyTorch)
import torch  # noqa: E402
import numpy as np  # noqa: E402  (after the skip check)

import torch_models as tm  # noqa: E402

torch.set_num_threads(1)
ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
TOL = 5e-5  # float32 on both sides, logits of order 1 through a few recurrent steps
failures = []

# (cell, attention, bidirectional, layers, extra flags)
ARCHS = [
    ("lstm", "general", False, 1, []),
    ("gru", "none", False, 2, []),
    ("lstm", "mlp", True, 1, []),
    ("rnn", "dot", False, 1, ["--reverse"]),
    ("gru", "general", True, 2, []),
    ("lstm", "none", True, 1, ["--feed-context=false"]),
]
TINY = ["--pairs", "300", "--test-pairs", "20", "--hidden", "16", "--embed", "8", "--batch", "16",
        "--threads", "1", "--shards", "1", "--show", "0", "--seed", "3"]
DATA = [a for i, a in enumerate(TINY) if a not in ("--hidden", "--embed") and
        TINY[i - 1] not in ("--hidden", "--embed")]  # TINY without the model's sizes
SENTENCES = ["I study deeplearning", "next week the student will have kimchi in the cafe",
             "my friend loves chemistry", "the cat", "Minsu eats kimchi every day"]


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def run(*args, expect=0, cwd=None, stdin=None):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=120, env=ENV,
                       cwd=cwd, stdin=stdin if stdin is not None else subprocess.DEVNULL)
    if expect is not None and r.returncode != expect:
        raise SystemExit(f"{' '.join(args)}: exit {r.returncode}, expected {expect}:\n"
                         f"{r.stderr}")
    return r


def refused(r, code, *wants):
    lines = r.stderr.strip().splitlines()
    ok = r.returncode == code and len(lines) == 1 and all(w in lines[0] for w in wants)
    if not ok:
        print(f"     exit {r.returncode}, stderr: {r.stderr.strip()}")
    return ok


def batch_pairs(model):
    """A padded batch of pairs of different lengths, unknown words included."""
    tgts = ["나 는 딥러닝 을 공부 한다", "학생 은 다음 주 에 카페 에서 김치 가 있을 것이다",
            "내 친구 는 화학 을 사랑 한다", "고양이", "민수 는 매일 김치 를 먹는다"]
    src = [tm.s2s_encode(model.src_words, s) for s in SENTENCES]
    tgt = [tm.s2s_encode(model.tgt_words, t) for t in tgts]
    return src, tgt


def torch_logits(model, src, tgt):
    s, n, di, do = tm.s2s_batch(src, tgt)
    with torch.no_grad():
        logits = model(s, n, di)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 do.reshape(-1), ignore_index=tm.S2S_PAD)
    return logits.reshape(-1, logits.shape[-1]).numpy(), float(loss)


def c_logits(kind, model_path, src, tgt, tmp):
    pairs = os.path.join(tmp, "pairs.txt")
    with open(pairs, "w") as f:
        for x, y in zip(src, tgt):
            f.write(" ".join(map(str, x)) + " | " + " ".join(map(str, y)) + "\n")
    out = os.path.join(tmp, "logits.st")
    run(DRIVER, kind, model_path, pairs, out)
    t, _ = tm.read_safetensors(out)
    return t["logits"], float(t["loss"][0, 0])


def torch_translate(model, sentences, max_len=60):
    outs = []
    for s in sentences:
        ids = model.greedy(tm.s2s_encode(model.src_words, s), max_len)
        outs.append(" ".join(model.tgt_words[i] for i in ids))
    return outs


def c_translate(flag, path, sentences, tmp, *more):
    r = run(SEQ2SEQ, flag, path, *more, "--translate", *sentences, cwd=tmp)
    lines = r.stdout.split("\n")  # one a sentence (empty ones too), then the result line
    return lines[:[i for i, x in enumerate(lines) if x.startswith("result: ")][0]]


def compare(model, path, kind, tmp, what):
    src, tgt = batch_pairs(model)
    ours, our_loss = c_logits(kind, path, src, tgt, tmp)
    theirs, their_loss = torch_logits(model, src, tgt)
    diff = float(np.max(np.abs(ours - theirs))) if ours.shape == theirs.shape else float("inf")
    check(diff <= TOL and abs(our_loss - their_loss) <= TOL,
          f"{what}: logits {ours.shape} within {diff:.2e}, loss {our_loss:.6f} / "
          f"{their_loss:.6f}")


def arch_flags(cell, attention, bidirectional, layers, extra):
    return (["--cell", cell, "--attention", attention, "--layers", str(layers)] +
            (["--bidirectional"] if bidirectional else []) + extra)


def test_arch(tmp, cell, attention, bidirectional, layers, extra):
    name = f"{cell}/{attention}/{'bi' if bidirectional else 'uni'}/{layers}L{''.join(extra)}"
    flags = arch_flags(cell, attention, bidirectional, layers, extra)
    # tapegrad -> PyTorch
    run(SEQ2SEQ, *TINY, *flags, "--steps", "200", "--save", "m.st", "--export-torch",
        "m.torch.st", cwd=tmp)
    model, meta = tm.load_seq2seq(os.path.join(tmp, "m.torch.st"))
    check(meta["torch.cell"] == cell.upper() and model.attention == attention and
          model.bidirectional == bidirectional and model.decoder.num_layers == layers,
          f"{name}: the export loads as its Seq2Seq (strict=True)")
    compare(model, os.path.join(tmp, "m.torch.st"), "torch", tmp, f"{name} export in PyTorch")
    native, _ = c_logits("native", os.path.join(tmp, "m.st"), *batch_pairs(model), tmp)
    imported, _ = c_logits("torch", os.path.join(tmp, "m.torch.st"), *batch_pairs(model), tmp)
    check(np.array_equal(native, imported), f"{name}: --save and --export-torch files give "
          f"the same logits")
    c_out = c_translate("--load", "m.st", SENTENCES, tmp)
    check(len(c_out) == len(SENTENCES) and c_out == torch_translate(model, SENTENCES) and
          sum(len(x.split()) for x in c_out) >= 5,
          f"{name}: PyTorch's greedy translations are seq2seq --translate's ({c_out[0]!r} ...)")
    check(c_translate("--import-torch", "m.torch.st", SENTENCES, tmp) == c_out,
          f"{name}: --import-torch --translate as --load --translate")

    # PyTorch -> tapegrad: another size, random values
    torch.manual_seed(5)
    made = tm.Seq2Seq(len(model.src_words), len(model.tgt_words), 6, 12, layers, cell,
                      attention, bidirectional, "--feed-context=false" not in extra,
                      "--reverse" in extra)
    with torch.no_grad():
        for p in made.parameters():
            p.mul_(3.0)  # values of order 1: outputs that differ between words
    made.eval()
    made.src_words, made.tgt_words = model.src_words, model.tgt_words
    p_path = os.path.join(tmp, "p.torch.st")
    tm.save_seq2seq(made, p_path, model.src_words, model.tgt_words)
    compare(made, p_path, "torch", tmp, f"{name} PyTorch-made file in seq2seq")
    c_made = c_translate("--import-torch", p_path, SENTENCES, tmp)
    check(c_made == torch_translate(made, SENTENCES),
          f"{name}: a PyTorch-made model translates the same in seq2seq ({c_made[0][:30]!r} ...)")
    check_no_bos_pad(made, tmp, name)
    # a model flag the file contradicts is refused, not silently overridden
    r = run(SEQ2SEQ, *TINY, "--import-torch", p_path, "--steps", "3", expect=None, cwd=tmp)
    check(refused(r, 2, "--hidden 16", "hidden=12"),
          f"{name}: --import-torch refuses a --hidden the file contradicts")
    # trains on from it (the file's sizes, no size flags), and exports again
    run(SEQ2SEQ, *DATA, "--import-torch", p_path, "--steps", "3", "--export-torch",
        "again.torch.st", cwd=tmp)
    again, _ = tm.load_seq2seq(os.path.join(tmp, "again.torch.st"))
    moved = any(not torch.equal(a, b) for a, b in zip(again.state_dict().values(),
                                                      made.state_dict().values()))
    check(again.hidden == 12 and moved, f"{name}: --import-torch --steps 3 trains the model on")


def check_no_bos_pad(made, tmp, name):
    """A copy of made whose generator favours <bos> and <pad> over every
    word and <eos> least: seq2seq and PyTorch translate it alike, max_len
    words each, none of them <bos> or <pad> (never outputs)."""
    favoured, max_len = copy.deepcopy(made), 8
    with torch.no_grad():
        favoured.out.bias[[tm.S2S_BOS, tm.S2S_PAD]] += 100.0
        favoured.out.bias[tm.S2S_EOS] -= 100.0
    path = os.path.join(tmp, "favoured.torch.st")
    tm.save_seq2seq(favoured, path, made.src_words, made.tgt_words)
    c_out = c_translate("--import-torch", path, SENTENCES, tmp, "--max-len", str(max_len))
    words = [w for x in c_out for w in x.split()]
    check(c_out == torch_translate(favoured, SENTENCES, max_len) and
          len(words) == max_len * len(SENTENCES) and not {"<bos>", "<pad>"} & set(words),
          f"{name}: a model favouring <bos> and <pad> outputs neither, in seq2seq as in "
          f"PyTorch ({c_out[0][:30]!r} ...)")


def test_subwords(tmp):
    """A subword model: the export carries its piece models, so --import-torch
    translates text as --load does; PyTorch gets the pieces as words."""
    os.makedirs(os.path.join(tmp, "cor"), exist_ok=True)
    run(SEQ2SEQ, *TINY, "--write-corpus", "cor", "--steps", "1", cwd=tmp)
    run(SEQ2SEQ, *TINY, "--train", "cor/train.tsv", "--subwords", "80", "--steps", "100",
        "--save", "sw.st", "--export-torch", "sw.torch.st", cwd=tmp)
    model, meta = tm.load_seq2seq(os.path.join(tmp, "sw.torch.st"))
    check("s2s.src_pieces" in meta and "s2s.tgt_pieces" in meta,
          "subwords: the export carries both piece models")
    compare(model, os.path.join(tmp, "sw.torch.st"), "torch", tmp, "subwords export in PyTorch")
    check(c_translate("--import-torch", "sw.torch.st", SENTENCES, tmp) ==
          c_translate("--load", "sw.st", SENTENCES, tmp),
          "subwords: --import-torch --translate as --load --translate")


def write_variant(src, dst, edit):
    t, meta = tm.read_safetensors(src)
    t = dict(t)
    edit(t, meta)
    tm.write_safetensors(dst, t, meta)


def test_refusals(tmp):
    run(SEQ2SEQ, *TINY, "--attention", "general", "--steps", "5", "--save", "m.st",
        "--export-torch", "m.torch.st", cwd=tmp)
    base = os.path.join(tmp, "m.torch.st")

    def imported(path):
        return run(SEQ2SEQ, "--import-torch", path, "--translate", "a", expect=None, cwd=tmp)

    cases = [
        ("missing.st", lambda t, m: t.pop("attn.linear_in.weight"), 1,
         ["missing.st", "'attn.linear_in.weight'", "missing"], "a missing tensor"),
        ("extra.st", lambda t, m: t.update({"attn.extra": np.zeros((2, 2), np.float32)}), 1,
         ["extra.st", "'attn.extra'", "not a parameter"], "an extra tensor"),
        ("shape.st", lambda t, m: t.update({"out.weight": t["out.weight"][:, :-1]}), 1,
         ["shape.st", "'out.weight'", "[", "expects"], "a tensor of the wrong shape"),
        ("bias2d.st", lambda t, m: t.update({"out.bias": t["out.bias"][:-1]}), 1,
         ["bias2d.st", "'out.bias'", "expects"], "a bias of the wrong length"),
        ("mgu.st", lambda t, m: m.update({"s2s.cell": "mgu"}), 1,
         ["mgu.st", "'mgu'", "no PyTorch module"], "a cell without a PyTorch module"),
        ("novocab.st", lambda t, m: m.pop("s2s.tgt_vocab"), 1,
         ["novocab.st", "s2s.tgt_vocab"], "no target vocabulary"),
    ]
    for name, edit, code, wants, what in cases:
        write_variant(base, os.path.join(tmp, name), edit)
        check(refused(imported(name), code, "--import-torch", *wants),
              f"--import-torch refuses {what}")
    char = tm.CharRNN(5, 3, 4)
    tm.save_char_rnn(char, os.path.join(tmp, "char.st"), [97, 98, 99, 100, 101])
    check(refused(imported("char.st"), 1, "char.st", "CharRNN", "Seq2Seq"),
          "--import-torch refuses charlm's CharRNN")
    check(refused(imported("m.st"), 1, "m.st", "--load"),
          "--import-torch of a --save file points to --load")
    r = run(SEQ2SEQ, "--import-torch", "m.torch.st", "--load", "m.st", "--translate", "a",
            expect=None, cwd=tmp)
    check(refused(r, 2, "--import-torch", "--load"), "--import-torch with --load is refused")
    r = run(SEQ2SEQ, *TINY, "--cell", "mgu", "--steps", "2", "--export-torch", "x.st",
            expect=None, cwd=tmp)
    check(refused(r, 2, "--export-torch", "'mgu'") and not os.path.exists(
        os.path.join(tmp, "x.st")), "--export-torch of an mgu model is refused before training")
    # a word model saved with split_punct=False whose text held a U+2581 word
    # is no subword model that lost its pieces: it loads (pieces.c)
    def marked(t, m):
        m["s2s.split_punct"] = "0"
        words = m["s2s.src_vocab"].split("\n")
        m["s2s.src_vocab"] = "\n".join(words[:-1] + ["\u2581" + words[-1]])
    write_variant(base, os.path.join(tmp, "marked.st"), marked)
    r = imported("marked.st")
    check(r.returncode == 0 and r.stdout.strip(),
          f"a word model with one U+2581 word translates ({r.returncode}: {r.stderr[-200:]!r})")
    # a --load'ed model converts without training or evaluating
    r = run(SEQ2SEQ, "--load", "m.st", "--translate", "--export-torch", "conv.st", cwd=tmp)
    a, _ = tm.read_safetensors(base)
    b, _ = tm.read_safetensors(os.path.join(tmp, "conv.st"))
    check(a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a),
          "--load m.st --translate --export-torch: the same tensors as the run's export")


def main():
    with tempfile.TemporaryDirectory(prefix="tg_torch_s2s_") as tmp:
        for arch in ARCHS:
            test_arch(tmp, *arch)
        test_subwords(tmp)
        test_refusals(tmp)
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("all seq2seq PyTorch interchange checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
