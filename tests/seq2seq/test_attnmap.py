#!/usr/bin/env python3
"""--attention-map (issue 12): the SVG is well-formed XML a browser opens,
with one cell per weight and every label intact.

    test_attnmap.py ATTNMAP_TOOL SEQ2SEQ

 1. the writer (attnmap_tool): tokens with & < > " ' escape and read back
    unchanged; a control character and invalid UTF-8 become U+FFFD; cells
    and labels counted per sentence; weights 0 and 1 (and out of range,
    clamped) shade white and dark blue; an unwritable file is an error;
 2. the program: a tiny --attention general model's --show sentences, one
    block each whose output labels are the printed greedy output (+ <eos>)
    and whose source labels are the sentence's tokens; --translate of a
    saved model; --attention none and an unwritable path refused before
    any training, with exit 2 and 1.
"""
import os
import re
import subprocess
import threading
import sys
import tempfile
import xml.etree.ElementTree as ET

TOOL, S2S = (os.path.abspath(a) for a in sys.argv[1:3])
NS = "{http://www.w3.org/2000/svg}"
TINY = ["--pairs", "300", "--test-pairs", "20", "--hidden", "24", "--embed", "8",
        "--epochs", "1", "--max-len", "12", "--threads", "1"]


def fail(msg):
    sys.exit("FAIL: " + msg)


def run(cmd, want):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=100)
    if r.returncode != want:
        fail(f"{' '.join(cmd)}: exit {r.returncode}, want {want}\n{r.stdout}\n{r.stderr}")
    return r


def blocks(path):
    """[(source labels, output labels, cell fills)] per sentence."""
    root = ET.parse(path).getroot()  # raises on malformed XML
    if root.tag != NS + "svg":
        fail(f"{path}: root element {root.tag}")
    out = []
    for g in root.findall(NS + "g"):
        if g.get("class") != "sentence":
            continue
        texts = g.findall(NS + "text")
        src = [t.text or "" for t in texts if t.get("class") == "src"]
        outs = [t.text or "" for t in texts if t.get("class") == "out"]
        cells = [r.get("fill") for r in g.findall(NS + "rect") if r.get("class") == "cell"]
        if len(cells) != len(src) * len(outs):
            fail(f"{path}: {len(cells)} cells for {len(src)} x {len(outs)} labels")
        out.append((src, outs, cells))
    return root, out


def heads(path):
    """The sentence numbers of the blocks' heads ("sentence N: ...")."""
    root = ET.parse(path).getroot()
    return [int(re.match(r"sentence (\d+):", t.text).group(1))
            for g in root.findall(NS + "g") if g.get("class") == "sentence"
            for t in g.findall(NS + "text") if t.get("class") == "head"]


def check_writer(tmp):
    path = os.path.join(tmp, "tool.svg")
    run([TOOL, path], 0)
    root, bl = blocks(path)
    if len(bl) != 2:
        fail(f"writer: {len(bl)} sentence blocks, want 2")
    (s1, o1, c1), (s2, o2, c2) = bl
    want_src1 = ["a&b", "<tag>", '"q"', "it's", "x\ufffdy"]
    if s1 != want_src1:
        fail(f"writer: source labels {s1!r}, want {want_src1!r}")
    if o1 != ["학생", "&amp;", "<eos>"]:
        fail(f"writer: output labels {o1!r}")
    if s2 != ["\ufffdbad", "café"] or o2 != ["]]>"]:
        fail(f"writer: second block {s2!r} {o2!r}")
    if len(c1) != 15 or len(c2) != 2:
        fail(f"writer: {len(c1)} + {len(c2)} cells, want 15 + 2")
    if heads(path) != [1, 7]:
        fail(f"writer: sentence numbers {heads(path)}, want [1, 7] (a place, a given number)")
    white, blue = "rgb(255,255,255)", "rgb(31,78,158)"
    if c1[0] != blue or c1[1] != white or c1[13] != blue or c1[14] != white:
        fail(f"writer: fills {c1[0]} {c1[1]} {c1[13]} {c1[14]} (weights 1 0 2 -1)")
    title = [t.text for t in root.findall(NS + "text")]
    if 'map <&> "test"' not in title:
        fail(f"writer: title {title!r}")
    raw = open(path, encoding="utf-8").read()
    if "\x01" in raw:
        fail("writer: a raw control character in the file")
    r = run([TOOL, os.path.join(tmp, "no", "such", "dir.svg")], 1)
    if "cannot write --attention-map" not in r.stderr:
        fail(f"writer: unwritable path message {r.stderr!r}")


def shown(stdout):
    """(source tokens, output tokens) of the printed test sentences."""
    src = re.findall(r"^  src: (.*)$", stdout, re.M)
    out = re.findall(r"^  out[:!] (.*)$", stdout, re.M)
    return [(s.split(), o.split()) for s, o in zip(src, out)]


def check_fifo(tmp, model):
    """--attention-map into a FIFO a reader holds open: the reader gets the
    whole map (a test open and close before the work once ended its input
    and left the program blocked on the real open, helper-42)."""
    fifo = os.path.join(tmp, "map.fifo")
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()), daemon=True)
    reader.start()
    r = subprocess.run([S2S, "--translate", "--load", model, "--attention-map", fifo, "the student"],
                       capture_output=True, text=True, timeout=60)
    reader.join(10)
    if r.returncode != 0 or not got or not got[0].rstrip().endswith(b"</svg>"):
        fail(f"--attention-map FIFO: exit {r.returncode}, the reader got "
             f"{len(got[0]) if got else 'nothing'} bytes\n{r.stderr}")


def check_program(tmp):
    svg, model = os.path.join(tmp, "show.svg"), os.path.join(tmp, "m.bin")
    r = run([S2S] + TINY + ["--attention", "general", "--show", "3", "--save", model,
                            "--attention-map", svg], 0)
    if "attention map of 3 test sentences" not in r.stderr:
        fail(f"program: no map message\n{r.stderr}")
    _, bl = blocks(svg)
    sh = shown(r.stdout)
    if len(bl) != 3 or len(sh) != 3:
        fail(f"program: {len(bl)} blocks, {len(sh)} shown sentences, want 3")
    for (src, outs, _), (s_tok, o_tok) in zip(bl, sh):
        if len(src) != len(s_tok):
            fail(f"program: source labels {src!r} for the sentence {s_tok!r}")
        want = o_tok + (["<eos>"] if len(o_tok) < 12 else [])
        if outs != want:
            fail(f"program: output labels {outs!r}, the greedy output {want!r}")
    tr = os.path.join(tmp, "tr.svg")
    r = run([S2S, "--translate", "--load", model, "--attention-map", tr,
             "the student", "I study deeplearning"], 0)
    _, bl = blocks(tr)
    if [len(b[0]) for b in bl] != [2, 3]:
        fail(f"--translate: blocks of {[len(b[0]) for b in bl]} source tokens, want [2, 3]")
    got = [b[1][:-1] if b[1] and b[1][-1] == "<eos>" else b[1] for b in bl]
    lines = r.stdout.splitlines()[:2]
    if [" ".join(g) for g in got] != lines:
        fail(f"--translate: map rows {got!r}, printed {lines!r}")
    # a file of 90 lines of unequal lengths (decoded in a window, shortest
    # first): the map's blocks are the lines in the file's order
    words = ["the", "student", "I", "study", "deeplearning", "see", "a", "cat"]
    lines_in = [" ".join(words[(i + j) % len(words)] for j in range(1 + (i * 7) % 9))
                for i in range(90)]
    src_txt = os.path.join(tmp, "src.txt")
    with open(src_txt, "w") as f:
        f.write("\n".join(lines_in) + "\n")
    with open(src_txt) as f:
        r = subprocess.run([S2S, "--translate", "--load", model, "--attention-map", tr],
                           stdin=f, capture_output=True, text=True, timeout=100)
    if r.returncode != 0:
        fail(f"--translate < file with a map: exit {r.returncode}\n{r.stderr}")
    _, bl = blocks(tr)
    if [len(b[0]) for b in bl] != [len(x.split()) for x in lines_in]:
        fail(f"--translate < file: blocks of {[len(b[0]) for b in bl]} source tokens")
    got = [" ".join(b[1][:-1] if b[1] and b[1][-1] == "<eos>" else b[1]) for b in bl]
    if got != r.stdout.splitlines()[:90]:
        fail("--translate < file: the map's rows are not the printed lines, in order")
    # refusals before any work
    none_svg = os.path.join(tmp, "none.svg")
    r = run([S2S] + TINY + ["--attention-map", none_svg], 2)
    if "--attention-map" not in r.stderr or "none" not in r.stderr or os.path.exists(none_svg):
        fail(f"--attention none: {r.stderr!r}")
    r = run([S2S] + TINY + ["--attention", "dot", "--hidden", "8", "--embed", "8",
                            "--attention-map", os.path.join(tmp, "nodir", "x.svg")], 1)
    if ("--attention-map" not in r.stderr or "nodir" not in r.stderr
            or "No such file" not in r.stderr or "epoch" in r.stdout):
        fail(f"unwritable --attention-map: {r.stderr!r}")
    check_fifo(tmp, model)
    # an empty line has no block, and the blocks keep their lines' numbers
    # (helper-42: line 3 was drawn as sentence 2)
    r = subprocess.run([S2S, "--translate", "--load", model, "--attention-map", tr],
                       input="the student\n\nI study deeplearning\n", capture_output=True,
                       text=True, timeout=100)
    if r.returncode != 0 or heads(tr) != [1, 3]:
        fail(f"--translate with an empty line: exit {r.returncode}, sentence numbers "
             f"{heads(tr) if r.returncode == 0 else '-'}, want [1, 3]\n{r.stderr}")
    plain = os.path.join(tmp, "plain.bin")
    run([S2S] + TINY + ["--show", "0", "--save", plain], 0)
    r = run([S2S, "--translate", "--load", plain, "--attention-map", tr, "the student"], 2)
    if "--attention none" not in r.stderr:
        fail(f"--translate of a model without attention: {r.stderr!r}")


with tempfile.TemporaryDirectory() as tmp:
    check_writer(tmp)
    check_program(tmp)
print("ok")
