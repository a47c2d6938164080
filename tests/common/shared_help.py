#!/usr/bin/env python3
"""The flags every training program shares read the same in each --help.

    shared_help.py --charlm EXE --rowseq EXE [--seq2seq EXE] [--echo EXE]

The wording comes from one place (TGX_HELP_* in examples/common/trainrun.h);
this checks that each program uses it: for every flag listed in SHARED, the
help text (without the default) of each program that has the flag is the
same. --log, --save, --load and the PyTorch flags name what their rows,
files or modules hold, so only their common start is compared. Programs still to move to the shared wording are
listed in PENDING (their flags are skipped, said so).
"""
import re
import subprocess
import sys

SHARED = {  # flag -> programs that must agree (those built)
    "checkpoint": ["charlm", "rowseq", "seq2seq", "echo"],
    "every": ["charlm", "rowseq", "seq2seq", "echo"],
    "skip-nonfinite": ["charlm", "rowseq", "seq2seq", "echo"],
    "threads": ["charlm", "rowseq", "seq2seq"],
    "resume": ["charlm", "rowseq", "seq2seq"],
}
PREFIX = {  # flag -> the common start of its help
    "log": ("write the training metrics to FILE as CSV, ", ["charlm", "rowseq", "seq2seq", "echo"]),
    "save": ("write to FILE (safetensors) ", ["charlm", "rowseq", "seq2seq"]),
    "load": ("start from the model in FILE (a --save or --checkpoint file: ",
             ["charlm", "rowseq", "seq2seq"]),
    "export-torch": ("write the model in the names and shapes of scripts/torch_models.py's ",
                     ["charlm", "rowseq"]),
    "import-torch": ("start from a ", ["charlm", "rowseq"]),
}
PENDING = set()


def flag_help(exe):
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=30).stdout
    helps = {}
    for line in out.splitlines():
        m = re.match(r"\s+--([a-z-]+)(?: [A-Z]+)?\s+(.*?)(?: \(one of [^)]*\))?(?: \[[^]]*\])?"
                     r"(?: \(default: .*\))?$", line)
        if m:
            helps[m.group(1)] = m.group(2)
    return helps


def main(argv):
    exes = {argv[i][2:]: argv[i + 1] for i in range(0, len(argv) - 1, 2)}
    helps = {p: flag_help(e) for p, e in exes.items()}
    bad = 0
    checks = [(f, progs, None) for f, progs in SHARED.items()]
    checks += [(f, progs, start) for f, (start, progs) in PREFIX.items()]
    for flag, progs, start in checks:
        seen = {}
        for p in progs:
            if p not in helps:
                continue
            if (p, flag) in PENDING:
                print(f"skip {p} --{flag}: pending (see PENDING)")
                continue
            if flag not in helps[p]:
                print(f"FAIL {p} has no --{flag} in its --help")
                bad += 1
                continue
            text = helps[p][flag]
            seen[p] = text[:len(start)] if start else text
        if len(set(seen.values())) > 1:
            bad += 1
            print(f"FAIL --{flag} reads differently:")
            for p, t in seen.items():
                print(f"    {p}: {t}")
        elif seen:
            print(f"ok   --{flag} ({', '.join(seen)}): {next(iter(seen.values()))}")
    print(f"{bad} failure(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
