#!/usr/bin/env python3
"""Scores translations the way ../shared/anchors/torch_seq2seq_budget.py
scores its own, so that our program's output and the PyTorch anchor's BLEU
can be compared on one scale: both sides lowercased and cut with the
anchor's regex (punctuation split off), corpus BLEU-4 with the brevity
penalty and NO smoothing (0 when any n-gram order has no match).

    anchor_bleu.py TEST.tsv HYPOTHESES.txt

HYPOTHESES.txt: one translation per line of TEST.tsv, in order (e.g.
`cut -f1 TEST.tsv | seq2seq --load m.tg --translate | grep -v '^result:'`).
Pairs the anchor drops (a side over 60 tokens) are dropped here too.
The program's own BLEU (13a, sacreBLEU's exp smoothing, cased) is the one to
quote elsewhere; this exists only for the side-by-side.
"""
import collections
import math
import re
import sys

TOK = re.compile(r"\d+(?:[.,]\d+)+|\w+(?:['’-]\w+)*|[^\w\s]", re.UNICODE)
MAX_TOKENS = 60  # the anchor's --max-tokens default


def tok(s):
    return TOK.findall(s.lower())


def bleu(hyps, refs):
    match, total, hl, rl = [0] * 4, [0] * 4, 0, 0
    for h, r in zip(hyps, refs):
        hl += len(h)
        rl += len(r)
        for n in range(1, 5):
            hc = collections.Counter(tuple(h[i:i + n]) for i in range(len(h) - n + 1))
            rc = collections.Counter(tuple(r[i:i + n]) for i in range(len(r) - n + 1))
            match[n - 1] += sum(min(c, rc[g]) for g, c in hc.items())
            total[n - 1] += max(len(h) - n + 1, 0)
    if min(match) == 0:
        return 0.0, match, total
    lp = sum(math.log(match[i] / total[i]) for i in range(4)) / 4
    bp = 1.0 if hl > rl else math.exp(1 - rl / max(hl, 1))
    return 100 * bp * math.exp(lp), match, total


def lines(path):
    try:
        with open(path, encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f]
    except OSError as e:
        sys.exit(f"anchor_bleu: {path}: {e.strerror}")
    except UnicodeDecodeError as e:
        sys.exit(f"anchor_bleu: {path}: not UTF-8 text ({e.reason} at byte {e.start})")


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    pairs = [line.split("\t") for line in lines(argv[1])]
    hyps_all = lines(argv[2])
    if len(hyps_all) != len(pairs):
        sys.exit(f"anchor_bleu: {len(pairs)} test pairs but {len(hyps_all)} translations")
    hyps, refs = [], []
    for p, h in zip(pairs, hyps_all):
        if len(p) < 2:
            continue
        s, t = tok(p[0]), tok(p[1])
        if s and t and len(s) <= MAX_TOKENS and len(t) <= MAX_TOKENS:
            hyps.append(tok(h))
            refs.append(t)
    if not refs:
        sys.exit(f"anchor_bleu: {argv[1]}: no source<TAB>target pair to score")
    score, match, total = bleu(hyps, refs)
    prec = " ".join(f"{m}/{t}" for m, t in zip(match, total))
    print(f"anchor_bleu={score:.2f} pairs={len(refs)} matches(1-4)={prec}")


if __name__ == "__main__":
    main(sys.argv)
