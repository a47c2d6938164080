#!/usr/bin/env python3
"""The echo example (examples/echo) end to end: a short program on the
training run must give everything a long run needs.

    test_echo.py ECHO_EXE

 1. it learns: accuracy 1 after the default 300 steps;
 2. resume is exact: 40 steps, then --resume to 100, ends with the weights
    (params_fnv1a) of 100 steps in one run;
 3. SIGINT stops it with exit 0, "interrupted at step N" and a checkpoint
    at step N that a --resume continues to the same weights;
 4. a non-finite gradient (ECHO_FAULT_STEP) stops it with exit 1 naming
    the step and keeps the last checkpoint; --skip-nonfinite skips it;
 5. a mismatched --resume is refused naming the setting; the log appends;
    a --log naming a training checkpoint is refused (exit 2), the file kept.
"""
import os
import re
import signal
import subprocess
import sys
import tempfile

EXE = os.path.abspath(sys.argv[1])
STARTED = []  # every process started in the background, killed at the end


def start(args, **kw):
    p = subprocess.Popen([EXE] + args, **kw)
    STARTED.append(p)
    return p


def run(args, env=None, check=0):
    e = dict(os.environ, **(env or {}))
    r = subprocess.run([EXE] + args, capture_output=True, text=True, timeout=120, env=e)
    if r.returncode != check:
        sys.exit(f"echo {' '.join(args)}: exit {r.returncode}, want {check}\n{r.stderr}")
    return r


def result(r):
    m = re.search(r"^result: (.*)$", r.stdout, re.M)
    assert m, r.stdout
    return dict(kv.split("=") for kv in m.group(1).split())


def read_to_first_step(p):
    """p's stderr up to and including its "step 1" line. Notes may come
    first: on a CPU OpenBLAS does not know, the advice to name its core."""
    seen = ""
    while True:
        line = p.stderr.readline()
        assert line, seen
        seen += line
        if line.startswith("step "):
            assert line.startswith("step 1 "), seen
            return seen


def main():
    os.chdir(tempfile.mkdtemp(prefix="echo_test."))
    full = result(run(["--steps", "300"]))
    assert float(full["accuracy"]) == 1.0, full
    # a --delay no step can echo (every target symbol 0) is refused, not
    # reported as accuracy 1.0 after 5 steps (helper-45)
    r = run(["--delay", "16", "--seq-len", "16", "--steps", "5"], check=2)
    assert "--delay 16 needs a --seq-len above it" in r.stderr, r.stderr

    ref = result(run(["--steps", "100"]))
    run(["--steps", "40", "--checkpoint", "a.ck", "--every", "15", "--log", "a.csv"])
    r = run(["--steps", "100", "--resume", "a.ck", "--checkpoint", "a.ck", "--log", "a.csv"])
    assert "resumed a.ck at step 40" in r.stderr, r.stderr
    assert result(r)["params_fnv1a"] == ref["params_fnv1a"], (result(r), ref)
    rows = open("a.csv").read().splitlines()
    assert rows[0] == "step,seconds,loss" and len(rows) == 101, rows[:3]
    r = run(["--steps", "100", "--resume", "a.ck", "--hidden", "33"], check=1)
    assert "config 'hidden' is '32' in the checkpoint, '33' in this run" in r.stderr, r.stderr
    kept = open("a.ck", "rb").read()
    r = run(["--steps", "10", "--log", "a.ck"], check=2)
    assert "echo: --log a.ck: that file is a training checkpoint (continue it with --resume)" \
        in r.stderr, r.stderr
    assert open("a.ck", "rb").read() == kept, "the training checkpoint was overwritten"

    # SIGINT: a run without a step limit, interrupted, resumed to a limit
    p = start(["--steps", "0", "--checkpoint", "i.ck", "--every", "0", "--seq-len", "64"],
              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # SIGINT only once training runs (the handler is set before step 1): a
    # fixed sleep raced the sanitizer build's slow start-up.
    first = read_to_first_step(p)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    err = first + err
    assert p.returncode == 0, (p.returncode, err)
    m = re.search(r"interrupted at step (\d+)", err)
    assert m and f"checkpoint i.ck at step {m.group(1)}" in err, err
    n = int(m.group(1))
    ref = result(run(["--steps", str(n + 20), "--seq-len", "64"]))
    r = run(["--steps", str(n + 20), "--seq-len", "64", "--resume", "i.ck"])
    assert result(r)["params_fnv1a"] == ref["params_fnv1a"], (result(r), ref)

    # SIGINT once training has ended (the last step's line is out): the run
    # still writes its final checkpoint, exit 0; the handler was put back to
    # the default before that write, and the signal killed it half-way (no
    # checkpoint, a temporary of the size of the model left)
    p = start(["--steps", "1", "--hidden", "1024", "--seq-len", "4", "--batch", "4",
               "--checkpoint", "e.ck", "--every", "0"],
              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = read_to_first_step(p)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, (p.returncode, first + err)
    assert "checkpoint e.ck at step 1" in err, err
    assert not [f for f in os.listdir(".") if f.startswith("e.ck.tmp")], os.listdir(".")
    assert "step 1" in run(["--steps", "1", "--hidden", "1024", "--seq-len", "4", "--batch", "4",
                            "--resume", "e.ck"]).stderr

    # stdout's reader gone before the result line (| head): SIGPIPE is
    # ignored while training, so the loss is said, exit 1, not exit 0 silently
    r_end, w_end = os.pipe()
    os.close(r_end)
    p = start(["--steps", "3"], stdout=w_end, stderr=subprocess.PIPE, text=True)
    os.close(w_end)
    err = p.communicate(timeout=60)[1]
    assert p.returncode == 1 and "echo: stdout: write error: output was lost" in err, \
        (p.returncode, err)

    # the guard
    r = run(["--steps", "30", "--checkpoint", "f.ck", "--every", "10"],
            env={"ECHO_FAULT_STEP": "25"}, check=1)
    assert "echo: step 25: gradient of 'embed.weight'[0] is not finite; stopping, last " \
           "checkpoint kept" in r.stderr, r.stderr
    assert "step 20" in run(["--steps", "20", "--resume", "f.ck"]).stderr
    r = run(["--steps", "30", "--skip-nonfinite"], env={"ECHO_FAULT_STEP": "25"})
    assert "step skipped (--skip-nonfinite)" in r.stderr and result(r)["skipped"] == "1", r.stderr
    # OpenBLAS on kernels older than the CPU (a model it does not know): a
    # note names OPENBLAS_CORETYPE (forced here with the variable itself)
    flags = open("/proc/cpuinfo").read().split("flags", 2)[1].split("\n")[0].split()
    if os.environ.get("TG_BLAS") == "openblas" and "avx2" in flags and "fma" in flags:
        r = run(["--steps", "2"], env={"OPENBLAS_CORETYPE": "Prescott"})
        assert "OpenBLAS runs its Prescott kernels" in r.stderr and \
            "OPENBLAS_CORETYPE=" in r.stderr, r.stderr
        # unset, the program names the core itself where OpenBLAS fell back
        # (tg_cli_adopt_blas_core: a Xeon model 207 gets Prescott), so no note
        env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
        r = subprocess.run([EXE, "--steps", "2"], capture_output=True, text=True, timeout=120,
                           env=env)
        assert r.returncode == 0 and "OPENBLAS_CORETYPE" not in r.stderr, r.stderr
    print("test_echo: learns, resumes exactly, stops on SIGINT and on a non-finite step")


# a failed assertion must not leave a run of --steps 0 going for ever
try:
    main()
finally:
    for child in STARTED:
        if child.poll() is None:
            child.kill()
