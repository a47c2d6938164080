#!/usr/bin/python3
"""Reference values for tests/seq2seq/test_scores.c, computed independently
of examples/seq2seq/bleu.c and chrf.c (sacreBLEU itself is not in Debian):

  - 13a tokenization: the four regular expressions of mteval-v13a as
    sacreBLEU's TokenizerRegexp states them, applied with Python's re, after
    the same language-independent clean-up (<skipped>, "-\\n", entities);
  - BLEU: NLTK's corpus_bleu (Debian python3-nltk) on those tokens, with
    SmoothingFunction().method3 (NIST geometric smoothing, the 'exp' of
    sacreBLEU) and with no smoothing;
  - chrF: written here from Popovic (2015) with sacreBLEU 2.x's corpus
    aggregation (statistics summed over sentences, precision and recall
    averaged over the orders that have n-grams on both sides), beta 2,
    orders 1..6, white space removed.

Run: /usr/bin/python3 tests/seq2seq/score_refs.py   (prints the C tables)
"""
import math
import re
from collections import Counter

from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu

RULES = [
    (re.compile(r'([\{-\~\[-\` -\&\(-\+\:-\@\/])'), r' \1 '),
    (re.compile(r'([^0-9])([\.,])'), r'\1 \2 '),
    (re.compile(r'([\.,])([^0-9])'), r' \1 \2'),
    (re.compile(r'([0-9])(-)'), r'\1 \2 '),
]


def tok13a(line):
    line = line.rstrip()
    for a, b in (('<skipped>', ''), ('-\n', ''), ('\n', ' '), ('&quot;', '"'),
                 ('&amp;', '&'), ('&lt;', '<'), ('&gt;', '>')):
        line = line.replace(a, b)
    line = ' ' + line + ' '
    for rx, rep in RULES:
        line = rx.sub(rep, line)
    return ' '.join(line.split())


def bleu(hyps, refs, smooth):
    f = SmoothingFunction().method3 if smooth else SmoothingFunction().method0
    return 100 * corpus_bleu([[tok13a(r).split()] for r in refs], [tok13a(h).split() for h in hyps],
                             smoothing_function=f)


def chrf(hyps, refs, order=6, beta=2.0):
    hyp_n, ref_n, match_n = [0] * order, [0] * order, [0] * order
    for h, r in zip(hyps, refs):
        h, r = ''.join(h.split()), ''.join(r.split())
        for n in range(1, order + 1):
            hc = Counter(h[i:i + n] for i in range(len(h) - n + 1))
            rc = Counter(r[i:i + n] for i in range(len(r) - n + 1))
            if rc:
                hyp_n[n - 1] += sum(hc.values())
            ref_n[n - 1] += sum(rc.values())
            match_n[n - 1] += sum((hc & rc).values())
    ps = [m / h for m, h, r in zip(match_n, hyp_n, ref_n) if h > 0 and r > 0]
    rs = [m / r for m, h, r in zip(match_n, hyp_n, ref_n) if h > 0 and r > 0]
    if not ps:
        return 0.0
    p, r = sum(ps) / len(ps), sum(rs) / len(rs)
    return 0.0 if p + r == 0 else 100 * (1 + beta ** 2) * p * r / (beta ** 2 * p + r)


def c_str(s):
    out = ''
    for ch in s:
        if ch == '"' or ch == '\\':
            out += '\\' + ch
        elif ch == '\n':
            out += '\\n'
        elif ord(ch) < 0x20 or ord(ch) > 0x7e:
            out += ''.join('\\x%02x' % b for b in ch.encode('utf-8')) + '""'
        else:
            out += ch
    return '"' + out + '"'


SETS = {
    # punctuation, numbers, quotes, brackets (the 13a rules at work)
    'punct': (["The cat sat on the mat.", "It's 3.5 km (about 2 miles) away!",
               "Prices rose by 1,000 dollars in 2009-10, didn't they?"],
              ["The cat sat on the mat.", "It is 3.5 km (2 miles) away.",
               "Prices rose by $1,000 in 2009-2010, did they not?"]),
    # accented Latin: German and French
    'latin': (["Der Hund läuft schnell über die Straße.", "Ich möchte einen Kaffee, bitte!",
               "L'été dernier, nous sommes allés à Paris.", "Ça coûte 12,50 €."],
              ["Der Hund rennt schnell über die Straße.", "Ich hätte gern einen Kaffee, bitte.",
               "L'été dernier, nous étions à Paris.", "Ça coûte 12,50 € ."]),
    # Hangul
    'hangul': (["나는 학교에 갑니다.", "그는 빨리 달립니다!", "오늘 날씨가 좋습니다.",
                "우리는 내일 서울로 갑니다."],
               ["나는 학교에 간다.", "그는 빠르게 달립니다.", "오늘은 날씨가 좋네요.",
                "우리는 내일 아침에 서울로 갑니다."]),
    # no matching 4-gram anywhere: only the smoothed BLEU is above 0
    'smoothing': (["the quick brown fox", "a b c d e"],
                  ["the quick red fox jumps", "a c b d e x"]),
    # entities, no-break space, tab, a trailing newline
    'entities': (["Tom &amp; Jerry said &quot;hi&quot;\u00a0there\t!\n", "x &lt; y &gt; z"],
                 ["Tom & Jerry said \"hi\" there!", "x < y > z"]),
    # the two sacreBLEU chrF examples of the Hugging Face chrF metric card
    # (huggingface/datasets metrics/chrf/README.md): published 61.576379378113785
    # and 84.64214891738334
    'hf_chrf_1': (["The relationship between Obama and Netanyahu is not exactly friendly."],
                  ["The ties between Obama and Netanyahu are not particularly friendly."]),
    'hf_chrf_2': (["The relationship between cats and dogs is not exactly friendly.",
                   "a good bookshop is just a genteel black hole that knows how to read."],
                  ["The relationship between dogs and cats is not exactly friendly.",
                   "A good bookshop is just a genteel Black Hole that knows how to read."]),
}

TOK_CASES = [
    "Hello, world!", "It's 3.5 km.", "1,000.00 and 3,5", "a.b,c", "x..y", "end.",
    "2009-10 well-known -5", "(a) [b] {c} <d> |e| ~f^ `g` _h_", "$5 @home #tag 100% a&b *c+ d=e",
    "a/b\\c", "Straße, Über; älter: ça?", "나는 학교에 갑니다.", "  many   spaces\t\ttabs ",
    "&quot;q&quot; &amp;amp; &lt;&gt;", "line<skipped>s", "hy-\nphen\nnext", "\u00a0nbsp\u3000ideo",
    "\u201cquoted\u201d \u2026 \u2013 dash", "", "3.", ".5", "a,1", "1,a",
]


if __name__ == '__main__':
    for name, (hyps, refs) in SETS.items():
        print('%s: bleu_exp %.10f bleu_none %.10f chrf %.10f' %
              (name, bleu(hyps, refs, True), bleu(hyps, refs, False), chrf(hyps, refs)))
    for line in TOK_CASES:
        print('{%s, %s},' % (c_str(line), c_str(tok13a(line))))
