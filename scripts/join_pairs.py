#!/usr/bin/env python3
"""Makes a long-sentence corpus from a short one: every pair of IN.tsv is
joined with two others drawn at random from the same file (source sides
joined by a space, target sides likewise), so a corpus of 8-word pairs
becomes one of ~24-word pairs with the same vocabulary. Used to measure
attention against none on long sentences (examples/seq2seq/README.md).

    join_pairs.py IN.tsv OUT.tsv SEED     (the README used seed 1 for train, 2 for test)
"""
import os
import random
import sys


def fail(msg):
    sys.exit(f"join_pairs.py: {msg}")


def read_pairs(path):
    try:
        with open(path, encoding='utf-8') as f:
            return [p for p in (l.rstrip('\n').split('\t') for l in f) if len(p) >= 2]
    except OSError as e:
        fail(f"{path}: {e.strerror}")
    except UnicodeDecodeError as e:
        fail(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})")


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    src, dst = argv[0], argv[1]
    try:
        seed = int(argv[2])
    except ValueError:
        fail(f"SEED '{argv[2]}' is not an integer")
    if os.path.abspath(src) == os.path.abspath(dst) or (
            os.path.exists(src) and os.path.exists(dst) and os.path.samefile(src, dst)):
        fail(f"OUT.tsv {dst} is IN.tsv: give the joined corpus another name")
    pairs = read_pairs(src)
    if not pairs:
        fail(f"{src}: no source<TAB>target lines")
    r = random.Random(seed)
    n = len(pairs)
    try:
        with open(dst, 'w', encoding='utf-8') as f:
            for i in range(n):
                trio = [pairs[i], pairs[r.randrange(n)], pairs[r.randrange(n)]]
                f.write(' '.join(p[0] for p in trio) + '\t' + ' '.join(p[1] for p in trio) + '\n')
    except OSError as e:
        fail(f"{dst}: {e.strerror}")


if __name__ == '__main__':
    main(sys.argv[1:])
