#!/usr/bin/env python3
"""tg_dist under mpirun (issue 14), with tests/dist/dist_trainee.

1. bitwise: one process (no mpirun) with 4 shards against mpirun -np 2 and
   -np 4 (and -np 2 with 2 threads per rank): every rank's final parameters
   equal the one-process run's, byte for byte, and the losses agree;
2. start-up checks: a rank with other parameter values, or another
   configuration string, ends the run non-zero with a message naming it;
3. a rank that cannot read its data ends the job with its message;
4. a stop requested by rank 1 stops every rank at that step, equal to a
   one-process run of that many steps;
5. a rank killed with SIGKILL mid-run: mpirun exits non-zero within
   seconds and no rank process is left.
Every run is bounded by a timeout and its process group is killed after it.
"""
import argparse
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

FAILURES = []


def env_for_mpi():
    env = dict(os.environ)
    env.update({
        "OMPI_ALLOW_RUN_AS_ROOT": "1",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
        # containers without CMA (ptrace) print "Read -1 ... errno = 1"
        "OMPI_MCA_btl_vader_single_copy_mechanism": "none",
        "OMPI_MCA_rmaps_base_oversubscribe": "1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    })
    if "ASAN_OPTIONS" in env:  # the sanitizer build: Open MPI's leaks are not ours
        # Open MPI's libraries have no frame pointers: the fast unwinder stops
        # inside them and the suppressions would never see their names.
        env["ASAN_OPTIONS"] += ":fast_unwind_on_malloc=0"
        supp = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lsan_open_mpi.supp")
        env["LSAN_OPTIONS"] = "suppressions=%s:print_suppressions=0" % supp
    return env


def run(cmd, timeout=60):
    """Runs cmd in its own process group; kills the group afterwards."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env_for_mpi(), start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(p.pid)
        out, err = p.communicate()
        return 124, out, err + "\n[timed out after %d s]" % timeout
    kill_group(p.pid)
    return p.returncode, out, err


def wait_for_line(p, prefix, timeout):
    """Reads p's stderr (raw, so nothing stays buffered for a later
    communicate) until a line starts with prefix; returns what was read."""
    seen, deadline = b"", time.monotonic() + timeout
    fd = p.stderr.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        chunk = os.read(fd, 4096) if ready else b""
        if ready and not chunk:
            break
        seen += chunk
        if any(line.startswith(prefix.encode()) for line in seen.split(b"\n")[:-1]):
            break
    return seen.decode(errors="replace")


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def check(cond, what, detail=""):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        if detail:
            print("     " + detail.strip().replace("\n", "\n     "), flush=True)
        FAILURES.append(what)


def mpi(args, n, *rest):
    return [args.mpirun, "-np", str(n), "--oversubscribe", "--bind-to", "none"] + list(rest)


def read(path, mode="rb"):
    with open(path, mode) as f:
        return f.read()


def bitwise_cases(args, tmp):
    base = os.path.join(tmp, "one")
    rc, out, err = run([args.trainee, "--steps", "8", "--out", base])
    check(rc == 0, "one process, 4 shards: trains", err)
    if rc != 0:
        return
    ref, ref_txt = read(base + ".rank0.bin"), read(base + ".rank0.txt", "r")
    for n, threads in ((2, 1), (4, 1), (2, 2)):
        pre = os.path.join(tmp, "np%d_t%d" % (n, threads))
        rc, out, err = run(mpi(args, n, args.trainee, "--steps", "8", "--threads", str(threads),
                               "--out", pre))
        check(rc == 0, "mpirun -np %d, %d thread(s): trains" % (n, threads), err)
        if rc != 0:
            continue
        for r in range(n):
            same = read("%s.rank%d.bin" % (pre, r)) == ref
            check(same, "mpirun -np %d, %d thread(s): rank %d parameters bitwise = one process"
                  % (n, threads, r))
            txt = read("%s.rank%d.txt" % (pre, r), "r")
            check(txt == ref_txt, "mpirun -np %d: rank %d loss and steps = one process" % (n, r),
                  "%r vs %r" % (txt, ref_txt))
    # the check is not vacuous: other shard counts give other bits
    pre = os.path.join(tmp, "s2")
    rc, _, err = run([args.trainee, "--steps", "8", "--shards", "2", "--out", pre])
    check(rc == 0 and read(pre + ".rank0.bin") != ref, "2 shards differ from 4 (test can fail)",
          err)


def refusal_cases(args, tmp):
    cases = [
        (["--perturb-rank", "1"], 2, "rank 1 differs from rank 0 in its parameters", "parameters"),
        (["--config-rank", "2"], 4, "rank 2 differs from rank 0 in its configuration",
         "configuration"),
        (["--fail-read-rank", "1"], 2, "rank 1: cannot read the data file", "unreadable data"),
        (["--shards", "3"], 2, "not a multiple of the 2 ranks", "shards not divisible"),
    ]
    for flags, n, message, name in cases:
        t0 = time.monotonic()
        rc, out, err = run(mpi(args, n, args.trainee, "--steps", "3", "--out",
                               os.path.join(tmp, "bad")) + flags, timeout=60)
        took = time.monotonic() - t0
        check(rc not in (0, 124), "%s on one rank: non-zero exit (%d)" % (name, rc), err)
        check(message in err, "%s: message '%s'" % (name, message), err)
        check(took < 30, "%s: ends in %.1f s" % (name, took))


def stop_case(args, tmp):
    pre, one = os.path.join(tmp, "stop"), os.path.join(tmp, "stop1")
    rc, _, err = run(mpi(args, 2, args.trainee, "--steps", "12", "--stop-rank", "1",
                         "--stop-step", "5", "--out", pre))
    check(rc == 0, "stop on rank 1 at step 5: exits 0", err)
    rc1, _, err1 = run([args.trainee, "--steps", "5", "--out", one])
    if rc != 0 or rc1 != 0:
        check(False, "stop case runs", err + err1)
        return
    for r in range(2):
        txt = read("%s.rank%d.txt" % (pre, r), "r")
        check(txt.startswith("steps 5 "), "stop: rank %d stopped after 5 steps" % r, txt)
        check(read("%s.rank%d.bin" % (pre, r)) == read(one + ".rank0.bin"),
              "stop: rank %d parameters = one process after 5 steps" % r)


def alive(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in f)
    except FileNotFoundError:
        return False


def check_job_ends(p, pids, what, limit):
    """After one of the rank processes pids was killed: mpirun (p) exits
    non-zero within limit seconds and leaves none of them running."""
    t0 = time.monotonic()
    try:
        p.wait(timeout=2 * limit)
    except subprocess.TimeoutExpired:
        pass
    took = time.monotonic() - t0
    rc = p.poll()
    check(rc is not None and rc != 0, "%s: mpirun exits non-zero (%s)" % (what, rc))
    check(took < limit, "%s: job ended %.1f s after the kill" % (what, took))
    time.sleep(0.5)
    check(not any(alive(q) for q in pids), "%s: no rank process left" % what,
          str([q for q in pids if alive(q)]))


def kill_case(args, tmp):
    pidfile = os.path.join(tmp, "pid")
    cmd = mpi(args, 2, args.trainee, "--steps", "100000", "--sleep-ms", "5", "--pidfile",
              pidfile, "--out", os.path.join(tmp, "killed"))
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env_for_mpi(), start_new_session=True)
    pids = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(pids) < 2 and p.poll() is None:
            pids = [int(read("%s.rank%d" % (pidfile, r), "r"))
                    for r in range(2) if os.path.exists("%s.rank%d" % (pidfile, r))
                    and read("%s.rank%d" % (pidfile, r), "r").endswith("\n")]
            time.sleep(0.05)
        check(len(pids) == 2, "killed rank: both ranks started")
        if len(pids) != 2:
            return
        time.sleep(1.0)  # mid-run: in the step loop
        check(p.poll() is None, "killed rank: job still training before the kill")
        os.kill(pids[1], signal.SIGKILL)
        check_job_ends(p, pids, "killed rank", 10)
    finally:
        kill_group(p.pid)
        p.communicate()
        for q in pids:
            if alive(q):
                os.kill(q, signal.SIGKILL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trainee", required=True)
    ap.add_argument("--mpirun", required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tg_dist_") as tmp:
        bitwise_cases(args, tmp)
        refusal_cases(args, tmp)
        stop_case(args, tmp)
        kill_case(args, tmp)
    if FAILURES:
        print("%d check(s) failed" % len(FAILURES))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
