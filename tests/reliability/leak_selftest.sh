#!/bin/sh
# Runs leak_selftest (argument 1) and checks that exactly the leaking test
# failed and the clean one passed.
out=$("$1" 2>&1); rc=$?
echo "$out"
[ "$rc" -ne 0 ] || { echo "leak_selftest: expected a failing run (a leak), got exit 0"; exit 1; }
echo "$out" | grep -q 'LeakSanitizer: this test leaked memory' ||
    { echo "leak_selftest: the leak hook did not report the leak"; exit 1; }
echo "$out" | grep -q 'Tested: 2 | Passing: 1 | Failing: 1 | Crashing: 0' ||
    { echo "leak_selftest: expected 1 passing and 1 failing test"; exit 1; }
echo "leak_selftest: the leak failed its test, the clean test passed"
