#!/usr/bin/env python3
"""SIGKILL the real programs while they train, then resume them: no kill may
cost a loadable checkpoint, and the resumed run must end with exactly the
tensors of an uninterrupted one.

    kill_programs.py [--kills N] --charlm EXE --seq2seq EXE --rowseq EXE

For each program given (and built with --checkpoint support):
 1. an uninterrupted run with --checkpoint (a save every step) gives the
    reference checkpoint and its duration D;
 2. N times: start the run (fresh, or --resume of the checkpoint once there
    is one), SIGKILL it after a random time (up to 1.2 D / N). Every
    start after the first resumes from the file the previous kill left, so
    a checkpoint that did not load shows as the next process exiting with
    an error before its kill: that fails the test, as does more than one
    temporary file beside the checkpoint;
 3. a last --resume runs to the end: every tensor of its final checkpoint
    (parameters, optimizer state, carried arrays) must be bitwise equal to
    the reference run's.
"""
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

TIMEOUT = 120


def write_fixtures(d):
    rng = random.Random(1)
    words = "the lord said unto moses and his people went out of the land".split()
    with open(f"{d}/text.txt", "w") as f:
        f.write("\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(300)))
    os.makedirs(f"{d}/idx", exist_ok=True)

    def images(n):
        return struct.pack(">IIII", 0x803, n, 28, 28) + bytes((i * 7 + i // 97) % 256
                                                               for i in range(n * 784))

    def labels(n):
        return struct.pack(">II", 0x801, n) + bytes(i % 10 for i in range(n))
    for name, data in {"train-images-idx3-ubyte": images(40), "train-labels-idx1-ubyte": labels(40),
                       "t10k-images-idx3-ubyte": images(10),
                       "t10k-labels-idx1-ubyte": labels(10)}.items():
        with open(f"{d}/idx/{name}", "wb") as f:
            f.write(data)


def program_args(prog, d):
    """The training run of each program: small, a checkpoint every step."""
    return {
        "charlm": ["--text", f"{d}/text.txt", "--hidden", "16", "--embed", "8", "--batch", "4",
                   "--seq-len", "16", "--steps", "1000", "--dropout", "0.1"],
        "seq2seq": ["--pairs", "200", "--test-pairs", "10", "--hidden", "12", "--embed", "8",
                    "--batch", "8", "--epochs", "20", "--dropout", "0.1", "--seconds", "0",
                    "--show", "0"],
        "rowseq": ["--data", f"{d}/idx", "--hidden", "8", "--batch", "4", "--epochs", "60",
                   "--dropout", "0.1", "--layers", "2", "--threads", "1"],
    }[prog] + ["--every", "1"]


def child_env():
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1"
    env["OMP_NUM_THREADS"] = "1"
    env["OPENBLAS_NUM_THREADS"] = "1"
    return env


def tensors(path):
    """name -> raw bytes of every tensor of a safetensors file."""
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    data = b[8 + n:]
    return {k: data[v["data_offsets"][0]:v["data_offsets"][1]]
            for k, v in header.items() if k != "__metadata__"}


def run_to_end(exe, args):
    return subprocess.run([exe] + args, capture_output=True, text=True, errors="replace",
                          timeout=TIMEOUT, env=child_env(), stdin=subprocess.DEVNULL)


def temp_files(d, base):
    return [n for n in os.listdir(d) if n.startswith(base + ".tmp.")]


def kill_cycle(prog, exe, d, kills, rng):
    args = program_args(prog, d)
    ck, ref_ck = f"{d}/{prog}.tck", f"{d}/{prog}_ref.tck"
    t0 = time.monotonic()
    r = run_to_end(exe, args + ["--checkpoint", ref_ck])
    duration = time.monotonic() - t0
    if r.returncode != 0:
        return [f"reference run failed (exit {r.returncode}): {r.stderr.strip()[-300:]}"], {}
    problems, stats = [], {"kills": 0, "in_save": 0, "ended_first": 0}
    for k in range(kills):
        resume = ["--resume", ck] if os.path.exists(ck) else []
        p = subprocess.Popen([exe] + args + ["--checkpoint", ck] + resume,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env=child_env(), stdin=subprocess.DEVNULL)
        time.sleep(0.005 + rng.random() * 1.2 * duration / kills)
        p.send_signal(signal.SIGKILL)
        err = p.communicate()[1].decode(errors="replace")
        stats["kills"] += 1
        if p.returncode != -signal.SIGKILL:
            stats["ended_first"] += 1
            if p.returncode != 0:
                problems.append(f"kill {k}: the run {'resumed from the checkpoint ' if resume else ''}"
                                f"exited {p.returncode} before the kill: {err.strip()[-300:]}")
                break
        temps = temp_files(d, f"{prog}.tck")
        stats["in_save"] += bool(temps)
        if len(temps) > 1:
            problems.append(f"kill {k}: {len(temps)} temporary files beside the checkpoint")
    if problems:
        return problems, stats
    resume = ["--resume", ck] if os.path.exists(ck) else []
    r = run_to_end(exe, args + ["--checkpoint", ck] + resume)
    if r.returncode != 0:
        return [f"final resumed run failed (exit {r.returncode}): {r.stderr.strip()[-300:]}"], stats
    # The last training checkpoints of both runs (written at the end) hold
    # the parameters, the optimizer state and every registered array.
    ref, final = tensors(ref_ck), tensors(ck)
    if ref.keys() != final.keys():
        problems.append("the final checkpoint holds other tensors than the reference")
    for name in sorted(ref.keys() & final.keys()):
        if ref[name] != final[name]:
            problems.append(f"tensor '{name}' differs from the uninterrupted run")
    stats["tensors"] = len(ref)
    stats["seconds"] = time.monotonic() - t0
    return problems, stats


def has_checkpoint_flag(exe):
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, env=child_env())
    return "--resume" in r.stdout and "--checkpoint" in r.stdout


def main(argv):
    kills = int(argv[argv.index("--kills") + 1]) if "--kills" in argv else 12
    exes = {}
    for name in ("charlm", "seq2seq", "rowseq"):
        if f"--{name}" in argv:
            p = argv[argv.index(f"--{name}") + 1]
            if os.path.exists(p) and has_checkpoint_flag(p):
                exes[name] = os.path.abspath(p)
            else:
                print(f"kill_programs: {name}: not built or without --checkpoint/--resume: skipped")
    if not exes:
        return 77
    rng = random.Random(int(os.environ.get("KILL_SEED", str(os.getpid()))))
    failed = 0
    d = tempfile.mkdtemp(prefix="tg_kill_programs_")
    try:
        write_fixtures(d)
        for prog, exe in exes.items():
            problems, s = kill_cycle(prog, exe, d, kills, rng)
            if problems:
                failed += 1
                print(f"kill_programs: {prog}: FAILED")
                for p in problems:
                    print(f"  -> {p}")
            else:
                print(f"kill_programs: {prog}: {s['kills']} SIGKILLs ({s['in_save']} during a save, "
                      f"{s['ended_first']} after the run had ended); every checkpoint resumed; "
                      f"final {s['tensors']} tensors bitwise equal to the uninterrupted run "
                      f"({s['seconds']:.1f} s)")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
