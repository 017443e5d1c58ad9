#!/usr/bin/env bash
# Runs one test program of a cross build under its emulator (Wine):
#
#   tests/emulated.sh EMULATOR PROGRAM [ARGS...]
#
# Under load Wine now and then returns at once without having run the
# program at all: no output, not a word from the runner, whose every run
# prints a result line ("ok - ...", "not ok - ..." or a SKIP line). Such a
# run says nothing about the test, so it is made once more, and says so.
# Any run that printed something (a pass, a failure, a crash report) is
# the test's result, as is the second run whatever it prints.
set -u
emu=$1
shift
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT
for attempt in 1 2; do
    "$emu" "$@" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    if [ -s "$out" ] || [ "$attempt" -eq 2 ]; then
        exit "$rc"
    fi
    echo "emulated.sh: $emu printed nothing and exited $rc: the program" \
        "never ran; running it once more"
done
