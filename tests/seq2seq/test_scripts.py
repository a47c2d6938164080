"""scripts/join_pairs.py and scripts/anchor_bleu.py on good and bad input:
bad input exits 1 with one line naming the file or argument (never a
traceback), and join_pairs.py never writes over its own input (helper-42).

usage: test_scripts.py JOIN_PAIRS_PY ANCHOR_BLEU_PY
"""
import os
import subprocess
import sys
import tempfile

JOIN, BLEU = sys.argv[1], sys.argv[2]
failures = []


def run(script, *args):
    return subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                          timeout=60)


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def refused(r, want, what):
    check(r.returncode == 1 and want in r.stderr and "Traceback" not in r.stderr,
          f"{what}: exit {r.returncode}, {r.stderr.strip()[-100:]!r}")


with tempfile.TemporaryDirectory() as tmp:
    def put(name, data):
        path = os.path.join(tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path
    pairs = put("p.tsv", "a b\tx y\nc d\tz w\nä e\tü v\n".encode())
    joined = os.path.join(tmp, "j.tsv")
    r = run(JOIN, pairs, joined, "1")
    out = open(joined, encoding="utf-8").read().splitlines() if os.path.exists(joined) else []
    check(r.returncode == 0 and len(out) == 3 and all(len(l.split("\t")[0].split()) == 6
                                                      for l in out),
          f"join_pairs: 3 pairs joined in threes: {out!r}")
    before = open(pairs, "rb").read()
    refused(run(JOIN, pairs, pairs, "1"), "is IN.tsv", "join_pairs onto its input")
    refused(run(JOIN, pairs, os.path.join(tmp, ".", "p.tsv"), "1"), "is IN.tsv",
            "join_pairs onto its input by another name")
    check(open(pairs, "rb").read() == before, "join_pairs: the input kept")
    refused(run(JOIN, pairs, joined, "x"), "SEED 'x'", "join_pairs: a SEED not a number")
    refused(run(JOIN, os.path.join(tmp, "absent.tsv"), joined, "1"), "absent.tsv",
            "join_pairs: a missing input")
    refused(run(JOIN, tmp, joined, "1"), "Is a directory", "join_pairs: a directory")
    refused(run(JOIN, put("bad.tsv", b"\xff\tx\n"), joined, "1"), "not UTF-8",
            "join_pairs: invalid UTF-8")
    refused(run(JOIN, put("e.tsv", b""), joined, "1"), "no source<TAB>target",
            "join_pairs: no pairs")

    hyp = put("h.txt", "a b c d\nz w\nü v\n".encode())
    ref = put("r.tsv", "s\ta b c d\ns\tz w\ns\tü v\n".encode())
    r = run(BLEU, ref, hyp)
    check(r.returncode == 0 and "anchor_bleu=100.00 pairs=3" in r.stdout,
          f"anchor_bleu: identical translations score 100: {r.stdout.strip()!r}")
    refused(run(BLEU, ref, os.path.join(tmp, "absent.txt")), "absent.txt",
            "anchor_bleu: a missing file")
    refused(run(BLEU, tmp, hyp), "Is a directory", "anchor_bleu: a directory")
    refused(run(BLEU, ref, put("bad.txt", b"\xff\n\n\n")), "not UTF-8",
            "anchor_bleu: invalid UTF-8")
    refused(run(BLEU, put("e.tsv", b""), put("e.txt", b"")), "no source<TAB>target pair",
            "anchor_bleu: nothing to score")
    refused(run(BLEU, ref, put("two.txt", b"a\nb\n")), "3 test pairs but 2 translations",
            "anchor_bleu: a translation missing")

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
