#!/usr/bin/env python3
"""The programs under mpirun (issue 14): one model trained by 2 ranks.

1. echo (no shards: every rank runs the whole batch) under mpirun -np 2
   against one process: the --checkpoint files hold the same state
   (everything but f64.train_seconds, a clock reading) and the same results;
2. echo resumed under mpirun from a one-process checkpoint at step 15 ends
   at step 30 with the uninterrupted run's state;
3. charlm --shards 2, 20 steps, under mpirun -np 2 (rank r runs shard r,
   tg_dist_run) against one process: --save files byte-identical, and only
   rank 0 wrote --log;
4. (--cases ckpt) charlm --checkpoint under mpirun: each shard's carried
   TBPTT state and dropout generator live on the rank that runs the shard
   and are brought to rank 0 before it writes: 10 steps under mpirun -np 2
   checkpoint the same state as one process; that checkpoint resumed in one
   process and under -np 4, and the one-process checkpoint resumed under
   -np 2, end at step 20 with the uninterrupted run's state; other
   --shards, or ranks that do not divide them, are refused naming the
   settings; rowseq --dropout likewise (its shards' dropout streams);
5. rowseq --shards 2, 2 epochs on tiny IDX files, under mpirun -np 2
   against one process: --save bytes equal; and one epoch in one process
   with --checkpoint, resumed to 2 epochs under mpirun -np 2 and in one
   process: the same --save bytes (a resumed --save records its resume, so
   it is compared with a resumed one);
6. seq2seq --shards 2 with dropout, 10 steps, under mpirun -np 2 against
   one process: --save bytes equal; 5 steps with --checkpoint resumed to
   10 under mpirun -np 2 and in one process: the same --save bytes; with
   --eval-every and --beam, rank 0 alone decodes: the test sentences and
   the arena report are printed once, the evaluation lines equal one
   process's;
7. SIGTERM to one echo rank only: every rank stops at the same step,
   mpirun exits 0 within seconds, rank 0 says "interrupted" and writes the
   checkpoint, which resumes;
8. ranks started with other flags (an MPMD launch; also after 8800 bytes of
   --prime), with other data of the same size, or resuming other files of
   the same model (another --lr), are refused at start-up
   naming the rank that differs; rank 1 started where the output paths'
   directory does not exist does not stop the run (rank 0 alone writes, and
   checks); rank 1 started where the text does not exist stops the job, its
   message naming rank 1; a program started without mpirun but with a
   launcher's variables left in its environment (rank 1 of 2) is refused
   before any work; rank 0's --log failing mid-run (a FIFO whose reader
   left) stops both ranks at one step, the checkpoint and --save written,
   exit 1, no process left;
9. (--cases ckpt) charlm under mpirun -np 2 checkpointing every step, rank 0
   (the writer) killed with SIGKILL mid-run: mpirun exits non-zero within
   seconds, no rank process is left, and the last checkpoint loads.
Every run is bounded by a timeout and its process group is killed after it.
"""
import argparse
import json
import os
import random
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_dist_tests import (FAILURES, alive, check, check_job_ends, env_for_mpi,  # noqa: E402
                            kill_group, mpi, read, run, wait_for_line)


def ckpt_state(path):
    """A training checkpoint's header (less its clock reading, and the
    header's checksum, which covers it) and data."""
    b = read(path)
    n = struct.unpack("<Q", b[:8])[0]
    head = json.loads(b[8:8 + n])
    head.get("__metadata__", {}).pop("f64.train_seconds", None)
    head.get("__metadata__", {}).pop("tapegrad.header_crc32", None)
    return json.dumps(head, sort_keys=True), b[8 + n:]


def result_line(out):
    return [l for l in out.splitlines() if l.startswith("result:")]


def echo_cases(args, tmp):
    one, two, part, resumed = (os.path.join(tmp, n) for n in ("e1.ck", "e2.ck", "ep.ck", "er.ck"))
    flags = ["--steps", "30", "--every", "10", "--hidden", "16"]
    rc, out1, err = run([args.echo] + flags + ["--checkpoint", one])
    check(rc == 0, "echo: one process trains", err)
    rc, out2, err = run(mpi(args, 2, args.echo, *flags, "--checkpoint", two))
    check(rc == 0, "echo: mpirun -np 2 trains", err)
    if rc == 0:
        check(ckpt_state(one) == ckpt_state(two), "echo: mpirun -np 2 checkpoint = one process")
        check(result_line(out2) == result_line(out1), "echo: only rank 0 reports, same result",
              out1 + out2)
    rc, _, err = run([args.echo, "--steps", "15", "--hidden", "16", "--checkpoint", part])
    check(rc == 0, "echo: 15 steps", err)
    rc, out3, err = run(mpi(args, 2, args.echo, *flags, "--resume", part, "--checkpoint",
                            resumed))
    check(rc == 0, "echo: resume under mpirun -np 2", err)
    if rc == 0:
        check(ckpt_state(resumed) == ckpt_state(one), "echo: resumed under mpirun = one run")


def write_text(tmp):
    text = os.path.join(tmp, "t.txt")
    rng = random.Random(1)
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran"]
    with open(text, "w") as f:
        f.write(" ".join(rng.choice(words) for _ in range(3000)))
    return text


def charlm_cases(args, tmp):
    text = write_text(tmp)
    one, two, log = (os.path.join(tmp, n) for n in ("c1.st", "c2.st", "c2.csv"))
    flags = ["--text", text, "--hidden", "16", "--steps", "20", "--shards", "2", "--batch", "4",
             "--seq-len", "16"]
    rc, out1, err = run([args.charlm] + flags + ["--save", one])
    check(rc == 0, "charlm: one process, 2 shards", err)
    rc, out2, err = run(mpi(args, 2, args.charlm, *flags, "--save", two, "--log", log))
    check(rc == 0, "charlm: mpirun -np 2, 2 shards", err)
    if rc == 0:
        check(read(one) == read(two), "charlm: mpirun -np 2 --save bytes = one process")
        rows = read(log, "r").splitlines()
        check(len(rows) == 21, "charlm: rank 0 alone wrote --log (header + 20 rows)", str(rows))
        check(len(result_line(out2)) == 1, "charlm: one result line", out2)
    # the end's sample printed by rank 0 alone; a model that only samples
    # (no training flag) is refused under mpirun, where each rank did all of
    # it, printed it, and the job exited 1 without MPI_Finalize (helper-45)
    rc, out, err = run(mpi(args, 2, args.charlm, *flags, "--sample", "30", "--prime", "the "))
    lines = [l for l in out.splitlines() if l.startswith("the ")]
    check(rc == 0 and len(lines) == 1, "charlm: mpirun -np 2 --sample: one sample", out + err)
    rc, out, err = run(mpi(args, 2, args.charlm, "--load", one, "--sample", "30", "--prime",
                           "the "))
    check(rc == 2 and "runs in one process: start it without mpirun" in err and not out.strip(),
          "charlm: mpirun -np 2 of a model that only samples: refused", out + err)
    rc, out, err = run(mpi(args, 1, args.charlm, "--load", one, "--sample", "30", "--prime",
                           "the "))
    lines = [l for l in out.splitlines() if l.startswith("the ")]
    check(rc == 0 and len(lines) == 1, "charlm: mpirun -np 1 of a model that only samples: "
          "exit 0 (it exited 1 without MPI_Finalize, helper-46)", out + err)
    rc, out, err = run(mpi(args, 2, args.seq2seq, "--translate", "--load", one, "a line"))
    check(rc == 2 and "--translate runs in one process" in err and not out.strip(),
          "seq2seq: mpirun -np 2 --translate: refused (each rank translated and printed all)",
          out + err)


def charlm_ckpt_cases(args, tmp):
    """Checkpoints under mpirun hold every shard's carried state: the
    same state as one process's, resumable with 1, 2 or 4 ranks."""
    text = write_text(tmp)
    full, half1, half2, r1, r2, r4 = (os.path.join(tmp, n) for n in (
        "cf.ck", "ch1.ck", "ch2.ck", "cr1.ck", "cr2.ck", "cr4.ck"))
    # dropout: each shard's generator is state too; 4 shards: 1, 2 and 4 ranks divide them
    flags = ["--text", text, "--hidden", "16", "--shards", "4", "--batch", "4", "--seq-len",
             "16", "--dropout", "0.2"]
    rc, _, err = run([args.charlm] + flags + ["--steps", "20", "--checkpoint", full])
    check(rc == 0, "charlm ckpt: one process, 20 steps", err)
    rc1, _, err = run([args.charlm] + flags + ["--steps", "10", "--checkpoint", half1])
    check(rc1 == 0, "charlm ckpt: one process, 10 steps", err)
    rc2, _, err = run(mpi(args, 2, args.charlm, *flags, "--steps", "10", "--every", "5",
                          "--checkpoint", half2))
    check(rc2 == 0, "charlm ckpt: mpirun -np 2, 10 steps with --checkpoint", err)
    if rc != 0 or rc1 != 0 or rc2 != 0:
        return
    check(ckpt_state(half2) == ckpt_state(half1),
          "charlm ckpt: mpirun -np 2 checkpoint = one process's (every shard's TBPTT state "
          "and dropout generator)")
    check(ckpt_state(half1) != ckpt_state(full), "charlm ckpt: step 10 differs from step 20 "
          "(the comparisons can fail)")
    for name, cmd, out in (
            ("one process resumes the mpirun -np 2 checkpoint",
             [args.charlm, "--steps", "20", "--resume", half2, "--checkpoint", r1], r1),
            ("mpirun -np 4 resumes the mpirun -np 2 checkpoint",
             mpi(args, 4, args.charlm, "--steps", "20", "--resume", half2, "--checkpoint", r4),
             r4),
            ("mpirun -np 2 resumes the one-process checkpoint",
             mpi(args, 2, args.charlm, "--steps", "20", "--resume", half1, "--checkpoint", r2),
             r2)):
        rc, _, err = run(cmd + ["--text", text], timeout=120)
        check(rc == 0, "charlm ckpt: %s" % name, err)
        if rc == 0:
            check(ckpt_state(out) == ckpt_state(full),
                  "charlm ckpt: %s: step 20 = the uninterrupted run" % name)
    rc, _, err = run(mpi(args, 2, args.charlm, "--text", text, "--steps", "20", "--resume",
                         half2, "--shards", "2"))
    check(rc != 0 and "config 'shards' is '4' in the checkpoint, '2' in this run" in err,
          "charlm ckpt: resume with other --shards refused naming both", err)
    rc, _, err = run(mpi(args, 3, args.charlm, "--text", text, "--steps", "20", "--resume",
                         half2))
    check(rc != 0 and "--shards 4 is not a multiple of the 3 ranks" in err and
          "a number of ranks that divides 4" in err,
          "charlm ckpt: resume with 3 ranks for 4 shards refused naming both", err)


def rowseq_ckpt_cases(args, tmp):
    """rowseq --dropout: its shards' dropout streams reach rank 0's
    checkpoint."""
    data = os.path.join(tmp, "idx_d")
    os.mkdir(data)
    rng = random.Random(3)
    write_idx(data, "train", 64, rng)
    write_idx(data, "t10k", 32, rng)
    p1, p2, r11, r21, r12 = (os.path.join(tmp, n) for n in (
        "dp1.ck", "dp2.ck", "dr11.ck", "dr21.ck", "dr12.ck"))
    # dropout acts between layers: 2 of them, or the streams never draw
    flags = ["--data", data, "--hidden", "16", "--batch", "8", "--shards", "2", "--dropout",
             "0.3", "--layers", "2"]
    rc1, _, err = run([args.rowseq] + flags + ["--epochs", "1", "--checkpoint", p1])
    check(rc1 == 0, "rowseq ckpt: one process, 1 epoch", err)
    rc2, _, err = run(mpi(args, 2, args.rowseq, *flags, "--epochs", "1", "--checkpoint", p2))
    check(rc2 == 0, "rowseq ckpt: mpirun -np 2, 1 epoch with --dropout --checkpoint", err)
    if rc1 != 0 or rc2 != 0:
        return
    check(ckpt_state(p2) == ckpt_state(p1),
          "rowseq ckpt: mpirun -np 2 checkpoint = one process's (both shards' dropout streams)")
    # a 1-epoch run's schedule is not a 2-epoch run's: resumed runs are
    # compared with a resumed run
    for name, cmd in (("one process resumes the one-process checkpoint", [args.rowseq] + [
            "--epochs", "2", "--resume", p1, "--checkpoint", r11]),
            ("one process resumes the mpirun -np 2 checkpoint", [args.rowseq] + [
                "--epochs", "2", "--resume", p2, "--checkpoint", r21]),
            ("mpirun -np 2 resumes the one-process checkpoint", mpi(
                args, 2, args.rowseq, "--epochs", "2", "--resume", p1, "--checkpoint", r12))):
        rc, _, err = run(cmd)
        check(rc == 0, "rowseq ckpt: %s" % name, err)
        if rc != 0:
            return
    check(ckpt_state(r21) == ckpt_state(r11) and ckpt_state(r12) == ckpt_state(r11),
          "rowseq ckpt: every resumed run ends with the same state")
    check(ckpt_state(r11) != ckpt_state(p1), "rowseq ckpt: the resumed runs trained")


def rank_of(pid):
    """OMPI_COMM_WORLD_RANK of a process mpirun started (None if unknown)."""
    try:
        env = read("/proc/%d/environ" % pid).split(b"\0")
    except OSError:
        return None
    for kv in env:
        if kv.startswith(b"OMPI_COMM_WORLD_RANK="):
            return int(kv.split(b"=", 1)[1])
    return None


def killed_rank_case(args, tmp):
    """SIGKILL to rank 0 (the checkpoint writer) of charlm under mpirun -np
    2, checkpointing every step: the job ends non-zero within seconds,
    nothing is left running, the last checkpoint on disk loads."""
    text = write_text(tmp)
    ck = os.path.join(tmp, "killed.ck")
    cmd = mpi(args, 2, args.charlm, "--text", text, "--hidden", "16", "--shards", "2",
              "--batch", "4", "--seq-len", "16", "--steps", "100000000", "--every", "1",
              "--checkpoint", ck)
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env=env_for_mpi(), start_new_session=True)
    ranks = {}
    try:
        deadline = time.monotonic() + 120  # the sanitizer build starts slowly
        while time.monotonic() < deadline and p.poll() is None and (
                len(ranks) < 2 or not os.path.exists(ck)):
            time.sleep(0.1)
            out = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True,
                                 text=True).stdout
            ranks = {rank_of(int(x)): int(x) for x in out.split()}
            ranks.pop(None, None)
        check(sorted(ranks) == [0, 1] and os.path.exists(ck),
              "killed rank: two ranks train and checkpoint", str(ranks))
        if sorted(ranks) != [0, 1] or not os.path.exists(ck):
            return
        time.sleep(1.0)  # mid-run: checkpoints being written step after step
        check(p.poll() is None, "killed rank: job still training before the kill")
        os.kill(ranks[0], signal.SIGKILL)
        check_job_ends(p, list(ranks.values()), "killed rank", 15)
    finally:
        kill_group(p.pid)
        p.communicate()
        for q in ranks.values():
            if alive(q):
                os.kill(q, signal.SIGKILL)
    leftovers = [n for n in os.listdir(tmp) if n.startswith("killed.ck.tmp")]
    rc, _, err = run([args.charlm, "--text", text, "--steps", "1", "--resume", ck])
    check(rc == 0 and "nothing to train" in err,
          "killed rank: the last checkpoint loads (temporary files left: %d)" % len(leftovers),
          err)


def write_idx(folder, prefix, n, rng):
    with open(os.path.join(folder, prefix + "-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 8, 8) + bytes(rng.randrange(256)
                                                             for _ in range(n * 64)))
    with open(os.path.join(folder, prefix + "-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(rng.randrange(10) for _ in range(n)))


def rowseq_cases(args, tmp):
    data = os.path.join(tmp, "idx")
    os.mkdir(data)
    rng = random.Random(2)
    write_idx(data, "train", 64, rng)
    write_idx(data, "t10k", 32, rng)
    one, two, part, resumed = (os.path.join(tmp, n) for n in ("r1.st", "r2.st", "rp.ck", "rr.st"))
    flags = ["--data", data, "--hidden", "16", "--batch", "8", "--shards", "2"]
    rc, _, err = run([args.rowseq] + flags + ["--epochs", "2", "--save", one])
    check(rc == 0, "rowseq: one process, 2 shards", err)
    rc, _, err = run(mpi(args, 2, args.rowseq, *flags, "--epochs", "2", "--save", two))
    check(rc == 0, "rowseq: mpirun -np 2, 2 shards", err)
    if rc == 0:
        check(read(one) == read(two), "rowseq: mpirun -np 2 --save bytes = one process")
    rc, _, err = run([args.rowseq] + flags + ["--epochs", "1", "--checkpoint", part])
    check(rc == 0, "rowseq: one epoch with --checkpoint", err)
    rc, _, err = run(mpi(args, 2, args.rowseq, *flags, "--epochs", "2", "--resume", part,
                         "--save", resumed))
    check(rc == 0, "rowseq: resume under mpirun -np 2", err)
    single = os.path.join(tmp, "rs.st")
    rc2, _, err = run([args.rowseq] + flags + ["--epochs", "2", "--resume", part, "--save",
                                               single])
    check(rc2 == 0, "rowseq: resume in one process", err)
    if rc == 0 and rc2 == 0:
        check(read(resumed) == read(single),
              "rowseq: resumed under mpirun --save = resumed in one process")


def seq2seq_cases(args, tmp):
    one, two, part, res2, res1 = (os.path.join(tmp, n) for n in
                                  ("s1.st", "s2.st", "sp.ck", "sr2.st", "sr1.st"))
    flags = ["--pairs", "300", "--test-pairs", "20", "--batch", "16", "--show", "0", "--hidden",
             "16", "--embed", "8", "--dropout", "0.3", "--shards", "2"]
    rc, _, err = run([args.seq2seq] + flags + ["--steps", "10", "--save", one], timeout=120)
    check(rc == 0, "seq2seq: one process, 2 shards", err)
    rc, _, err = run(mpi(args, 2, args.seq2seq, *flags, "--steps", "10", "--save", two),
                     timeout=120)
    check(rc == 0, "seq2seq: mpirun -np 2, 2 shards", err)
    if rc == 0:
        check(read(one) == read(two), "seq2seq: mpirun -np 2 --save bytes = one process")
    rc, _, err = run([args.seq2seq] + flags + ["--steps", "5", "--checkpoint", part],
                     timeout=120)
    check(rc == 0, "seq2seq: 5 steps with --checkpoint", err)
    rc, _, err = run(mpi(args, 2, args.seq2seq, *flags, "--steps", "10", "--resume", part,
                         "--save", res2), timeout=120)
    check(rc == 0, "seq2seq: resume under mpirun -np 2", err)
    rc1, _, err = run([args.seq2seq] + flags + ["--steps", "10", "--resume", part, "--save",
                                                res1], timeout=120)
    check(rc1 == 0, "seq2seq: resume in one process", err)
    if rc == 0 and rc1 == 0:
        check(read(res2) == read(res1),
              "seq2seq: resumed under mpirun --save = resumed in one process")
    seq2seq_eval_case(args, flags)


def scores(out):
    """The evaluation lines, less their speeds and times."""
    drop = re.compile(r"\d+ tok/s|\b[\d.]+s\b|tokens_per_s=\S+|seconds=\S+")
    return [drop.sub("", line).split() for line in out.splitlines()
            if line.startswith(("epoch", "greedy:", "beam:", "result:")) and "bleu" in line]


def seq2seq_eval_case(args, flags):
    """Rank 0 alone decodes the test set (--eval-every, the final beam search)
    and prints its sentences once; every rank gets its scores, so the kept
    model and the lines are those of one process."""
    more = ["--steps", "10", "--eval-every", "5", "--beam", "2", "--show", "2"]
    flags = [f for i, f in enumerate(flags) if f != "--show" and flags[i - 1] != "--show"]
    rc1, out1, err1 = run([args.seq2seq] + flags + more, timeout=120)
    check(rc1 == 0, "seq2seq: evaluation in one process", err1)
    rc, out, err = run(mpi(args, 2, args.seq2seq, *flags, *more), timeout=120)
    check(rc == 0, "seq2seq: evaluation under mpirun -np 2", err)
    if rc == 0 and rc1 == 0:
        check(out.count("test sentences") == 1 and out.count("  src: ") == 2,
              "seq2seq: mpirun -np 2 shows the test sentences once", out)
        check(err.count("arena high water") == 1, "seq2seq: one arena report", err)
        check(len(scores(out)) == 5 and scores(out) == scores(out1),
              "seq2seq: mpirun -np 2 evaluation lines = one process's",
              f"{scores(out)} against {scores(out1)}")


def signal_case(args, tmp):
    ck = os.path.join(tmp, "sig.ck")
    cmd = mpi(args, 2, args.echo, "--steps", "100000000", "--every", "0", "--checkpoint", ck)
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env=env_for_mpi(), start_new_session=True)
    ranks = []
    for _ in range(100):  # the ranks start, and train a little
        time.sleep(0.1)
        out = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout
        ranks = [int(x) for x in out.split()]
        if len(ranks) == 2:
            break
    # signal only once the job trains (rank 0's first step line): a fixed
    # sleep raced the sanitizer build's slow MPI start-up
    seen = wait_for_line(p, "step ", 120)
    check(len(ranks) == 2, "signal: two rank processes found", str(ranks))
    if ranks:
        os.kill(ranks[-1], signal.SIGTERM)
    try:
        _, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        kill_group(p.pid)
        _, err = p.communicate()
        err += "\n[timed out]"
    kill_group(p.pid)
    err = seen + err
    check(p.returncode == 0, "signal on one rank: mpirun exits 0 (%s)" % p.returncode, err)
    check("interrupted at step" in err, "signal on one rank: rank 0 says interrupted", err)
    rc, _, err = run([args.echo, "--steps", "1", "--resume", ck])
    check(rc == 0 and "nothing to train" in err, "signal on one rank: its checkpoint resumes",
          err)


def mismatch_case(args):
    cmd = mpi(args, 1, args.echo, "--steps", "5", "--hidden", "8") + [
        ":", "-np", "1", args.echo, "--steps", "5", "--hidden", "9"]
    rc, _, err = run(cmd)
    check(rc != 0 and "rank 1 differs from rank 0 in its command line" in err,
          "other flags on rank 1: refused naming it", err)


def long_line_mismatch_case(args, tmp):
    """A flag that differs after 8800 bytes of --prime: the whole command
    line is compared (helper-45: only its first 8192 bytes were, so rank 0
    stopped after its --steps and rank 1 waited in the exchange for ever)."""
    text, prime = write_text(tmp), "the cat " * 1100
    flags = ["--text", text, "--hidden", "8", "--embed", "8", "--shards", "2", "--batch", "4",
             "--seq-len", "16", "--threads", "1", "--sample", "5", "--prime", prime]
    cmd = mpi(args, 1, args.charlm, *flags, "--steps", "3") + [
        ":", "-np", "1", args.charlm, *flags, "--steps", "4"]
    rc, _, err = run(cmd)
    check(rc != 0 and "rank 1 differs from rank 0 in its command line" in err,
          "other flags on rank 1 after a long --prime: refused naming it", err)


def charlm_two_dirs(args, tmp, texts):
    """charlm --shards 2 under mpirun -np 2, rank r started in a directory of
    its own that holds texts[r] as t.txt (None: no such file); (rc, stderr)."""
    dirs = [tempfile.mkdtemp(dir=tmp) for _ in texts]
    for d, text in zip(dirs, texts):
        if text is not None:
            with open(os.path.join(d, "t.txt"), "w") as f:
                f.write(text)
    flags = ["--text", "t.txt", "--hidden", "8", "--steps", "3", "--shards", "2", "--batch", "4",
             "--seq-len", "16"]
    charlm = os.path.abspath(args.charlm)  # --wdir moves the ranks
    cmd = mpi(args, 1, "--wdir", dirs[0], charlm, *flags) + [
        ":", "-np", "1", "--wdir", dirs[1], charlm, *flags]
    rc, _, err = run(cmd)
    return rc, err


def data_mismatch_case(args, tmp):
    """Rank 1 given another text of the same size and vocabulary ("cat" and
    "dog" swapped): the same flags, the same model, so only the hash of the
    data tells; it trained, silently, on a mix of the two."""
    text = read(write_text(tmp), "r")
    swapped = text.replace("cat", "@").replace("dog", "cat").replace("@", "dog")
    rc, err = charlm_two_dirs(args, tmp, [text, swapped])
    check(rc != 0 and "rank 1 differs from rank 0 in its configuration" in err,
          "other data on rank 1 (same size): refused naming it", err)
    # every rank says it, each in one line of its own (three writes a line
    # ran into one another: "charlm: charlm: rank 1 ..."), naming its rank
    said = [line for line in err.splitlines() if "differs from rank 0" in line]
    check(said and all(re.match(r"charlm: rank [01]: rank 1 differs", line) for line in said),
          "each rank's message is one whole line, naming its rank", err)


def missing_data_case(args, tmp):
    """Rank 1 started where the text does not exist (a host without the
    file): the job stops, and the message names rank 1, not only the file."""
    rc, err = charlm_two_dirs(args, tmp, [read(write_text(tmp), "r"), None])
    check(rc != 0 and re.search(r"^charlm: rank 1: .*t\.txt", err, re.M) is not None,
          "text missing on rank 1 only: refused, the message names rank 1", err)


def resume_mismatch_case(args, tmp):
    """Each rank resuming its own checkpoint of the same model at step 0,
    written with another --lr: the same flags, parameters and step, so only
    the files tell (helper-45: each rank trained at its own rate, exit 0)."""
    text = read(write_text(tmp), "r")
    flags = ["--text", "t.txt", "--hidden", "8", "--embed", "8", "--shards", "2", "--batch", "4",
             "--seq-len", "16", "--threads", "1"]
    charlm = os.path.abspath(args.charlm)
    dirs = []
    for k, lr in enumerate(("0.01", "0.05")):
        d = os.path.join(tmp, "resume%d" % k)
        os.makedirs(d)
        with open(os.path.join(d, "t.txt"), "w") as f:
            f.write(text)
        p = subprocess.run([charlm, *flags, "--steps", "0", "--lr", lr, "--checkpoint", "r.ck"],
                           cwd=d, capture_output=True, text=True, timeout=60)
        check(p.returncode == 0, "resume mismatch: checkpoint %d written" % k, p.stderr)
        dirs.append(d)
    resume = ["--text", "t.txt", "--steps", "5", "--resume", "r.ck"]
    cmd = mpi(args, 1, "--wdir", dirs[0], charlm, *resume) + [
        ":", "-np", "1", "--wdir", dirs[1], charlm, *resume]
    rc, _, err = run(cmd)
    check(rc != 0 and "rank 1 differs from rank 0 in its --resume file" in err,
          "another --resume file on rank 1 (same model, other --lr): refused naming it", err)


def output_paths_case(args, tmp):
    """Rank 0 alone writes the outputs, so it alone checks their paths: rank 1
    started in a directory without the checkpoint's sub-directory (as a rank
    on another host may see another file system, or meet a probe file of the
    same name when PIDs are equal in identical containers) does not stop
    the run."""
    here, there = os.path.join(tmp, "rank0"), os.path.join(tmp, "rank1")
    os.makedirs(os.path.join(here, "sub"))
    os.makedirs(there)
    flags = ["--steps", "5", "--hidden", "8", "--checkpoint", "sub/o.ck", "--log", "sub/o.csv"]
    echo = os.path.abspath(args.echo)  # --wdir moves the ranks
    cmd = mpi(args, 1, "--wdir", here, echo, *flags) + [
        ":", "-np", "1", "--wdir", there, echo, *flags]
    rc, _, err = run(cmd)
    check(rc == 0 and os.path.exists(os.path.join(here, "sub", "o.ck")) and
          os.path.exists(os.path.join(here, "sub", "o.csv")) and os.listdir(there) == [],
          "output paths checked and written by rank 0 only", err)


def running_in_session(sid):
    """The processes of session sid that still run: not the zombies of ranks
    mpirun killed, which this container's init reaps when it will."""
    out = subprocess.run(["ps", "-s", str(sid), "-o", "pid=,stat="], capture_output=True,
                         text=True).stdout
    return [line.split()[0] for line in out.splitlines() if not line.split()[1].startswith("Z")]


def log_stop_case(args, tmp):
    """charlm --shards 2 under mpirun -np 2, rank 0's --log a FIFO whose
    reader takes the header and leaves (a log that fails mid-run, as a full
    disk would): every later row is EPIPE, and rank 0's write error is
    agreed by the ranks at the step's end (TGX_STOP_LOG through
    tg_dist_max), so both stop at the same step; the final checkpoint,
    which brings rank 1's shard state to rank 0, and --save are written,
    the job exits 1, and mpirun leaves no process behind. Rank 1 training
    on would hang that checkpoint, or run the 10^8 steps: the timeout."""
    d = os.path.join(tmp, "logstop")
    os.makedirs(d)
    text, fifo = write_text(d), os.path.join(d, "log.fifo")
    os.mkfifo(fifo)
    ck, save = os.path.join(d, "c.ck"), os.path.join(d, "m.st")
    reader = subprocess.Popen(["head", "-n", "1", fifo], stdout=subprocess.DEVNULL,
                              start_new_session=True)
    cmd = mpi(args, 2, args.charlm, "--text", text, "--hidden", "8", "--shards", "2",
              "--batch", "4", "--seq-len", "16", "--steps", "100000000", "--log", fifo,
              "--checkpoint", ck, "--save", save)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env_for_mpi(), start_new_session=True)
    try:
        _, err = p.communicate(timeout=120)
        left = running_in_session(p.pid)
    except subprocess.TimeoutExpired:
        kill_group(p.pid)
        _, err = p.communicate()
        err, left = err + "\n[timed out after 120 s]", []
    finally:
        kill_group(p.pid)
        kill_group(reader.pid)  # still waiting for a writer if the run never opened the log
        reader.wait()
    said = re.search(r"^charlm: --log \S*log\.fifo: write error: Broken pipe; training stopped "
                     r"at step (\d+), checkpoint \S*c\.ck kept", err, re.M)
    check(p.returncode == 1 and said is not None and not left,
          "--log write error on rank 0 under mpirun -np 2: the job stops, exit 1, no process "
          "left", "exit %s, left running: %s\n%s" % (p.returncode, left, err))
    if p.returncode != 1 or said is None:
        return
    head = json.loads(read(ck)[8:8 + struct.unpack("<Q", read(ck)[:8])[0]])
    step = head["__metadata__"]["u64.step"]
    check(step == said.group(1) and int(step) < 100000000 and os.path.exists(save),
          "--log write error under mpirun: checkpoint at the step it stopped (%s), --save "
          "written" % step, err)
    rc, _, err = run([args.charlm, "--text", text, "--steps", step, "--resume", ck])
    check(rc == 0 and "nothing to train" in err,
          "--log write error under mpirun: the checkpoint resumes", err)


def stale_launcher_case(args, tmp):
    """A program started without mpirun where a launcher's variables were
    left in the environment (rank 1 of 2): MPI makes it a world of one, rank
    0, so it is refused before any work (exit 2, naming the variables). It
    trusted them: checked no output path as rank 1, then trained, wrote
    everything as rank 0, and lost a --save or --export-torch it could not
    write."""
    text, save = write_text(tmp), os.path.join(tmp, "no", "such", "m.st")
    env = dict(env_for_mpi(), OMPI_COMM_WORLD_SIZE="2", OMPI_COMM_WORLD_RANK="1")
    for prog, flags in ((args.charlm, ["--text", text, "--hidden", "8", "--steps", "2"]),
                        (args.seq2seq, ["--pairs", "200", "--test-pairs", "20", "--hidden", "8",
                                        "--embed", "4", "--steps", "2", "--export-torch",
                                        save])):
        name = os.path.basename(prog)
        p = subprocess.run([prog] + flags + ["--save", save], capture_output=True, text=True,
                           env=env, timeout=60, start_new_session=True)
        check(p.returncode == 2 and "the environment says this process is rank 1 of 2" in
              p.stderr and "started it as rank 0 of 1" in p.stderr and "step" not in p.stderr
              and not p.stdout.strip(),
              "%s: stale OMPI_COMM_WORLD_RANK=1 and _SIZE=2 without mpirun: refused before "
              "any work" % name, "exit %d\n%s%s" % (p.returncode, p.stdout, p.stderr))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mpirun", required=True)
    ap.add_argument("--echo", required=True)
    ap.add_argument("--charlm", required=True)
    ap.add_argument("--rowseq", required=True)
    ap.add_argument("--seq2seq", required=True)
    ap.add_argument("--cases", choices=("main", "ckpt"), default="main",
                    help="main: bitwise, resume, signal, mismatch; ckpt: charlm and rowseq "
                    "checkpoints under mpirun, other rank counts, a killed rank")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.cases == "main":
            echo_cases(args, tmp)
            charlm_cases(args, tmp)
            rowseq_cases(args, tmp)
            seq2seq_cases(args, tmp)
            signal_case(args, tmp)
            mismatch_case(args)
            long_line_mismatch_case(args, tmp)
            resume_mismatch_case(args, tmp)
            data_mismatch_case(args, tmp)
            missing_data_case(args, tmp)
            output_paths_case(args, tmp)
            stale_launcher_case(args, tmp)
            log_stop_case(args, tmp)
        else:
            charlm_ckpt_cases(args, tmp)
            rowseq_ckpt_cases(args, tmp)
            killed_rank_case(args, tmp)
    if FAILURES:
        print("%d failure(s)" % len(FAILURES))
        return 1
    print("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
