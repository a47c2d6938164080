"""scripts/plot_log.py on good and malformed logs.

usage: test_plot_log.py PLOT_LOG_PY FIXTURE_DIR
Good logs must give a PNG (exit 0) and name the columns left out; malformed
ones exit 1 with a message naming the file and line. Exit 77 (skipped) when
python3-matplotlib is absent (the malformed cases are still checked).
"""
import os
import subprocess
import sys
import tempfile

SCRIPT, FIXTURES = sys.argv[1], sys.argv[2]
failures = []


def run(log, out):
    return subprocess.run([sys.executable, SCRIPT, os.path.join(FIXTURES, log), "-o", out],
                          capture_output=True, text=True, timeout=60)


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


BAD = {  # log -> text its message must hold
    "bad_ragged.csv": "bad_ragged.csv:3: 6 fields, the header has 8",
    "bad_number.csv": "bad_number.csv:4: column 'loss' holds 'lossy', not a number",
    "bad_empty.csv": "bad_empty.csv:1: no header line",
    "bad_norows.csv": "bad_norows.csv: a header but no rows",
    "missing.csv": "missing.csv: cannot read",
}

try:
    import matplotlib  # noqa: F401
    have_plot = True
except ImportError:
    have_plot = False

with tempfile.TemporaryDirectory() as tmp:
    for log, want in BAD.items():
        out = os.path.join(tmp, log + ".png")
        r = run(log, out)
        check(r.returncode == 1 and want in r.stderr and not os.path.exists(out),
              f"{log}: exit {r.returncode}, {r.stderr.strip()!r}")
    if have_plot:
        for log, note in (("good_charlm.csv", None), ("good_seq2seq.csv", "beam_width")):
            out = os.path.join(tmp, log + ".png")
            r = run(log, out)
            png = open(out, "rb").read() if os.path.exists(out) else b""
            check(r.returncode == 0 and png.startswith(b"\x89PNG") and len(png) > 10000,
                  f"{log}: exit {r.returncode}, {len(png)} bytes of PNG {r.stderr.strip()!r}")
            if note:
                check(f"columns not plotted: {note}" in r.stderr,
                      f"{log}: unknown column named on stderr")
    r = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True, timeout=60)
    check(r.returncode == 2 and "usage" in r.stderr, "no arguments: usage, exit 2")
    # the image never replaces the log, and is written where it is said to be
    # (helper-42: a log named run.png became its own plot; -o noext wrote
    # noext.png and said "wrote noext")
    good = open(os.path.join(FIXTURES, "good_charlm.csv"), "rb").read()
    own = os.path.join(tmp, "run.png")
    with open(own, "wb") as f:
        f.write(good)
    for args, name in (([own], "the log itself"), ([own, "-o", own], "the log itself"),
                       ([own, "-o", os.path.join(tmp, "noext")], "ending in .png"),
                       ([own, "-o", os.path.join(tmp, "out.xyz")], "ending in .png")):
        r = subprocess.run([sys.executable, SCRIPT] + args, capture_output=True, text=True,
                           timeout=60)
        check(r.returncode == 2 and name in r.stderr and open(own, "rb").read() == good
              and not os.path.exists(os.path.join(tmp, "noext.png"))
              and not os.path.exists(os.path.join(tmp, "out.xyz")),
              f"{args[1:]}: exit {r.returncode}, {r.stderr.strip()[-80:]!r}, the log kept")
    # values no metric can be drawn from, or too large to draw
    for name, rows, want in (("nonfinite.csv", "1,inf\n2,nan\n", (1, "with a finite value")),
                             ("extreme.csv", "1,1e308\n2,-1e308\n", None)):
        log = os.path.join(tmp, name)
        with open(log, "w") as f:
            f.write("step,loss\n" + rows)
        r = subprocess.run([sys.executable, SCRIPT, log], capture_output=True, text=True,
                           timeout=60)
        if want:
            ok = r.returncode == want[0] and want[1] in r.stderr
        else:  # drawn, or refused with a message: never a traceback
            ok = r.returncode in (0, 1) and "Traceback" not in r.stderr and (
                r.returncode == 1 or (have_plot and os.path.exists(log[:-4] + ".png")))
        if want or have_plot:
            check(ok, f"{name}: exit {r.returncode}, {r.stderr.strip()[-120:]!r}")

print(f"{len(failures)} failure(s)")
if failures:
    sys.exit(1)
if not have_plot:
    print("SKIP: python3-matplotlib is not installed; only the malformed logs were checked")
    sys.exit(77)
