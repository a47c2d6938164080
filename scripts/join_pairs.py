#!/usr/bin/env python3
"""Makes a long-sentence corpus from a short one: every pair of IN.tsv is
joined with two others drawn at random from the same file (source sides
joined by a space, target sides likewise), so a corpus of 8-word pairs
becomes one of ~24-word pairs with the same vocabulary. Used to measure
attention against none on long sentences (examples/seq2seq/README.md).

    join_pairs.py IN.tsv OUT.tsv SEED     (the README used seed 1 for train, 2 for test)
"""
import random
import sys


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    src, dst, seed = argv[0], argv[1], int(argv[2])
    pairs = [l.rstrip('\n').split('\t') for l in open(src, encoding='utf-8')]
    pairs = [p for p in pairs if len(p) >= 2]
    if not pairs:
        sys.exit(f"join_pairs.py: {src}: no source<TAB>target lines")
    r = random.Random(seed)
    n = len(pairs)
    with open(dst, 'w', encoding='utf-8') as f:
        for i in range(n):
            trio = [pairs[i], pairs[r.randrange(n)], pairs[r.randrange(n)]]
            f.write(' '.join(p[0] for p in trio) + '\t' + ' '.join(p[1] for p in trio) + '\n')


if __name__ == '__main__':
    main(sys.argv[1:])
