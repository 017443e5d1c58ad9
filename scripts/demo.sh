#!/usr/bin/env bash
# Installs what is missing (as root; see scripts/deps.sh), builds the release
# preset and runs every example listed in examples/CMakeLists.txt
# (MPROC_EXAMPLES), each under a header line. Exits non-zero if any example
# fails. Works from any directory; builds into build/release.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=deps.sh
. scripts/deps.sh

mproc_deps demo

# The names in `set(MPROC_EXAMPLES ...)`, which may span several lines.
examples=$(sed -n '/set(MPROC_EXAMPLES/,/)/p' examples/CMakeLists.txt |
    sed -e 's/#.*//' -e 's/set(MPROC_EXAMPLES//' -e 's/)//' | tr -s ' \t\n' '\n' |
    sed '/^$/d')

cmake --preset release
if [ -z "$examples" ]; then
    cmake --build --preset release
    echo "demo: no examples are listed in examples/CMakeLists.txt yet"
    exit 0
fi
# shellcheck disable=SC2086 # one target per name
cmake --build --preset release --target $examples

failed=
for ex in $examples; do
    exe=build/release/bin/$ex
    echo
    echo "=== example: $ex ==="
    # A hung example must not hang the demo.
    if timeout 120 "$exe"; then
        :
    else
        rc=$?
        echo "=== $ex FAILED (exit status $rc) ==="
        failed="$failed $ex"
    fi
done

echo
if [ -n "$failed" ]; then
    echo "demo: failed:$failed"
    exit 1
fi
echo "demo: all $(echo "$examples" | wc -w) examples ran successfully"
