#!/usr/bin/env python3
"""A build without MPI started by a launcher (issue 14, session-5 review).

Such a build cannot talk to the other ranks, so each would train alone and
all would write the same files. The program must refuse, naming the cause,
with a non-zero exit, whatever the launcher put in the environment:
Open MPI (OMPI_COMM_WORLD_SIZE), PMI (PMI_SIZE), or PMIx, which may give
only the rank (PMIX_RANK > 0). One process alone (no variable, a size of 1,
or PMIX_RANK=0 with nothing else) trains as usual. Registered only in a
build without MPI (tests/dist/meson.build); no mpirun is involved.
"""
import argparse
import os
import subprocess
import sys

FLAGS = ["--steps", "3", "--hidden", "8", "--seq-len", "4", "--batch", "4"]
LAUNCHER_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK")


def run(prog, extra_env):
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
    env.update(extra_env)
    p = subprocess.run([prog] + FLAGS, env=env, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--echo", required=True)
    args = ap.parse_args()
    failures = 0
    refused = [
        ({"OMPI_COMM_WORLD_SIZE": "2"}, "one of 2 ranks"),
        ({"PMI_SIZE": "4"}, "one of 4 ranks"),
        ({"PMIX_RANK": "1"}, "one of at least 2 ranks"),
    ]
    for env, words in refused:
        rc, err = run(args.echo, env)
        ok = rc != 0 and rc < 128 and words in err and "no MPI" in err
        print(f"{'ok  ' if ok else 'FAIL'} refused under {env}: exit {rc}; {err.strip()[-200:]}")
        failures += not ok
    for env in ({}, {"OMPI_COMM_WORLD_SIZE": "1"}, {"PMIX_RANK": "0"}):
        rc, err = run(args.echo, env)
        ok = rc == 0
        print(f"{'ok  ' if ok else 'FAIL'} one process trains under {env}: exit {rc}"
              + ("" if ok else f"; {err.strip()[-300:]}"))
        failures += not ok
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
