#!/usr/bin/python3
"""Training curves from a tapegrad program's CSV log (--log), as a PNG.

usage: python3 scripts/plot_log.py LOG.csv [-o curve.png] [--title TEXT]

Reads the log of charlm, rowseq, seq2seq or hello: a header line, then one
row per step or epoch. Plots every known metric column present, against
`step` (or `epoch`) and, when the log has it, against `seconds`:

  loss (nats)       loss, train_loss, test_loss, valid_loss, ...
  bits per char     bpc, train_bpc, valid_bpc, ...
  accuracy          acc, test_acc, test_exact, valid_acc, ... (fractions or %)
  BLEU / chrF       bleu, test_bleu, chrf, valid_chrf, ...

A metric is recognised by its name's last part (after the last '_'), so new
columns such as valid_bleu or test_chrf are plotted without a change here.
A loss with a bits-per-char twin (loss and bpc, as charlm logs) is shown
once, in bits. Empty cells (a metric logged only at evaluations) are skipped, and noisy
per-step series get a smoothed line over the faint raw one. Columns that
are not metrics (lr, grad_norm, tokens, tokens_per_s) are left out, and
unknown ones are named on stderr and left out.

Exit status 0 with the image written; 1 with a message naming the file and
line for a malformed log (ragged row, a cell that is not a number, no
header, no rows) or an unwritable output; 2 for bad arguments.
Needs python3-matplotlib (Debian), drawn with the Agg backend (no display).
"""

import argparse
import csv
import math
import os
import sys

# Panels: (title, y-axis label, last parts of the column names it takes).
PANELS = [
    ("loss", "loss (nats)", {"loss", "nll", "xent"}),
    ("bits per character", "bits / char", {"bpc"}),
    ("perplexity", "perplexity", {"ppl", "perplexity"}),
    ("accuracy / exact match", "fraction", {"acc", "accuracy", "exact"}),
    ("BLEU / chrF", "score", {"bleu", "chrf", "chrf2", "chrfpp"}),
]
X_COLUMNS = ("step", "epoch", "window")
TIME_COLUMN = "seconds"
NOT_METRICS = {"lr", "grad_norm", "tokens", "tokens_per_s", "skipped", "wall_seconds",
               "ms_per_step", "steps"}


class LogError(Exception):
    """A malformed log; the message names the file and line."""


def parse_number(text, path, line, column):
    if text.strip() == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise LogError(f"{path}:{line}: column '{column}' holds '{text[:40]}', "
                       f"not a number") from None


def read_log(path):
    """Returns (columns, {column: [float, ...]}); empty cells are NaN."""
    try:
        f = open(path, newline="", encoding="utf-8")
    except OSError as e:
        raise LogError(f"{path}: cannot read: {e.strerror}") from None
    with f:
        try:
            rows = list(csv.reader(f))
        except (csv.Error, UnicodeDecodeError) as e:
            raise LogError(f"{path}: not a CSV text file: {e}") from None
    if not rows or not rows[0] or not any(c.strip() for c in rows[0]):
        raise LogError(f"{path}:1: no header line (expected e.g. 'step,seconds,loss,...')")
    header = [c.strip() for c in rows[0]]
    if len(set(header)) != len(header) or "" in header:
        raise LogError(f"{path}:1: header has an empty or repeated column name: {rows[0]}")
    if not any(c in header for c in X_COLUMNS):
        raise LogError(f"{path}:1: header has no '{X_COLUMNS[0]}' or '{X_COLUMNS[1]}' column: "
                       f"{','.join(header)}")
    data = {c: [] for c in header}
    for line, row in enumerate(rows[1:], start=2):
        if not row or [c.strip() for c in row] == header:
            continue  # a blank line, or the header again where runs were appended
        if len(row) != len(header):
            raise LogError(f"{path}:{line}: {len(row)} fields, the header has {len(header)}")
        for column, cell in zip(header, row):
            data[column].append(parse_number(cell, path, line, column))
    if not data[header[0]]:
        raise LogError(f"{path}: a header but no rows: nothing to plot")
    return header, data


def panel_of(column):
    last = column.lower().rsplit("_", 1)[-1]
    for i, (_, _, names) in enumerate(PANELS):
        if last in names or column.lower() in names:
            return i
    return None


def smooth(values, span):
    """Exponential moving average over the finite values (NaN kept)."""
    out, avg, alpha = [], None, 2.0 / (span + 1)
    for v in values:
        if math.isfinite(v):
            avg = v if avg is None else avg + alpha * (v - avg)
        out.append(avg if math.isfinite(v) else math.nan)
    return out


def plot_series(ax, xs, ys, label, color):
    pts = [(x, y) for x, y in zip(xs, ys) if math.isfinite(x) and math.isfinite(y)]
    if not pts:
        return
    px, py = zip(*pts)
    sparse = len(pts) < 0.5 * len(xs) or len(pts) <= 30
    if sparse:  # evaluations: every point is a measurement
        ax.plot(px, py, "o-", color=color, label=label, markersize=3.5, linewidth=1.5)
    elif len(pts) > 60:  # noisy per-step values: faint raw, smoothed on top
        ax.plot(px, py, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(px, smooth(py, max(5, len(py) // 40)), color=color, linewidth=1.8,
                label=f"{label} (smoothed)")
    else:
        ax.plot(px, py, color=color, label=label, linewidth=1.5)


def draw(path, header, data, out, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xcol = next(c for c in X_COLUMNS if c in header)
    xaxes = [xcol] + ([TIME_COLUMN] if TIME_COLUMN in header else [])
    panels = {}
    for column in header:
        p = panel_of(column)
        if panel_of(column) == 0 and column[:-4] + "bpc" in header:
            continue  # loss in nats beside the same in bits per char: shown once
        if p is not None and any(math.isfinite(v) for v in data[column]):
            panels.setdefault(p, []).append(column)
    unknown = [c for c in header if panel_of(c) is None and c not in NOT_METRICS
               and c not in X_COLUMNS and c != TIME_COLUMN]
    if unknown:
        print(f"plot_log: {path}: columns not plotted: {', '.join(unknown)}", file=sys.stderr)
    if not panels:
        raise LogError(f"{path}: no metric column with a finite value to plot (loss, bpc, acc, "
                       f"bleu, ...): {','.join(header)}")
    order = sorted(panels)
    fig, axes = plt.subplots(len(order), len(xaxes), squeeze=False,
                             figsize=(6.2 * len(xaxes), 3.6 * len(order)))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for r, p in enumerate(order):
        ptitle, ylabel, _ = PANELS[p]
        for c, xname in enumerate(xaxes):
            ax = axes[r][c]
            for k, column in enumerate(panels[p]):
                plot_series(ax, data[xname], data[column], column, colors[k % len(colors)])
            ax.set_title(f"{ptitle} vs {xname}", fontsize=11)
            ax.set_xlabel(xname if xname != TIME_COLUMN else "seconds of training")
            ax.set_ylabel(ylabel)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=9)
    fig.suptitle(title or os.path.basename(path), fontsize=13)
    try:
        fig.tight_layout()
        fig.savefig(out, dpi=100, format="png")
    except OSError as e:
        raise LogError(f"{out}: cannot write the image: {e.strerror}") from None
    except (ValueError, IndexError, OverflowError) as e:  # matplotlib on extreme values
        raise LogError(f"{path}: cannot draw these values ({type(e).__name__}: {e})") from None
    finally:
        plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Plot a tapegrad CSV log (--log) as a PNG.")
    ap.add_argument("log", help="the CSV log a program wrote with --log")
    ap.add_argument("-o", "--output", help="PNG to write, a name ending in .png (default: LOG "
                    "with .png)")
    ap.add_argument("--title", help="figure title (default: the log's file name)")
    a = ap.parse_args(argv)
    out = a.output or os.path.splitext(a.log)[0] + ".png"
    if os.path.splitext(out)[1].lower() != ".png":
        ap.error(f"-o {out}: the image is a PNG: give a name ending in .png")
    if os.path.abspath(out) == os.path.abspath(a.log) or (
            os.path.exists(out) and os.path.exists(a.log) and os.path.samefile(out, a.log)):
        ap.error(f"{out} is the log itself: give the image another name with -o")
    try:
        header, data = read_log(a.log)
        draw(a.log, header, data, out, a.title)
    except LogError as e:
        print(f"plot_log: {e}", file=sys.stderr)
        return 1
    except ImportError as e:
        system = "/usr/bin/python3"
        if os.path.realpath(sys.executable) != os.path.realpath(system) and \
                os.path.exists(system) and not os.environ.get("PLOT_LOG_REEXEC"):
            # another python3 first on PATH (pyenv, a venv): Debian's has matplotlib
            os.environ["PLOT_LOG_REEXEC"] = "1"
            os.execv(system, [system, os.path.abspath(__file__), *(argv or sys.argv[1:])])
        print(f"plot_log: needs python3-matplotlib (apt-get install python3-matplotlib): {e}",
              file=sys.stderr)
        return 1
    print(f"plot_log: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
