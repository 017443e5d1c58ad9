#!/usr/bin/env bash
# Every C program of the docs/guide-*.md pages compiles (C11, warnings as
# errors), runs under fork and spawn, and prints what the page says: a
# ```c block with a main() is a program; a ```text block right after it is
# its exact output ("```text unordered": the same lines in any order).
# Fragments (C blocks without main) are not built.
#
#   scripts/check-guides.sh [BUILD_DIR]     default build/docs
#
# Links the static library of BUILD_DIR (built here if needed, e.g. by the
# docs preset's configuration). Ends with "guides: N passed, N failed".
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
build=${1:-build/docs}
out=$build/guides
mkdir -p "$out"
passed=0
failed=0

if ! cmake --build "$build" --target mproc_static >"$out/lib.log" 2>&1; then
    cat "$out/lib.log"
    echo "guides: 0 passed, 1 failed (the static library did not build)"
    exit 1
fi
lib=$(find "$build" -name libmproc.a -path '*/lib/*' | head -n1)

for page in docs/guide-*.md; do
    name=$(basename "$page" .md)
    rm -f "$out/$name".*
    # Split the page into numbered blocks: NAME.N.c and NAME.N.text (with
    # NAME.N.unordered beside an unordered output).
    awk -v dir="$out" -v name="$name" '
        /^```/ && !inblock {
            lang = substr($0, 4); split(lang, w, " ")
            n++; inblock = 1
            if (w[1] == "c") file = dir "/" name "." n ".c"
            else if (w[1] == "text") {
                file = dir "/" name "." n ".text"
                if (w[2] == "unordered") printf "" > (dir "/" name "." n ".unordered")
            } else file = ""
            next
        }
        /^```$/ && inblock { inblock = 0; if (file != "") close(file); next }
        inblock && file != "" { print > file }
    ' "$page"
    for c in "$out/$name".*.c; do
        [ -e "$c" ] || continue
        grep -q 'int main(' "$c" || continue
        n=${c%.c}
        n=${n##*.}
        label="$page block $n"
        exe=${c%.c}
        if ! cc -std=c11 -Wall -Wextra -Wpedantic -Werror -Iinclude "$c" "$lib" \
            -pthread -ldl -lrt -o "$exe" >"$exe.log" 2>&1; then
            failed=$((failed + 1))
            echo "FAIL $label: does not compile"
            sed 's/^/     | /' "$exe.log"
            continue
        fi
        want=$out/$name.$((n + 1)).text
        for sm in fork spawn; do
            got=$(MPROC_START_METHOD=$sm timeout 60 "$exe" 2>&1)
            rc=$?
            ok=yes
            [ $rc -eq 0 ] || ok=no
            if [ $ok = yes ] && [ -e "$want" ]; then
                if [ -e "$out/$name.$((n + 1)).unordered" ]; then
                    [ "$(sort <<<"$got")" = "$(sort "$want")" ] || ok=no
                else
                    [ "$got" = "$(cat "$want")" ] || ok=no
                fi
            fi
            if [ $ok = yes ]; then
                passed=$((passed + 1))
                echo "ok   $label ($sm)"
            else
                failed=$((failed + 1))
                echo "FAIL $label ($sm): exit status $rc, output:"
                printf '%s\n' "$got" | sed 's/^/     | /'
                [ -e "$want" ] && { echo "     expected:"; sed 's/^/     | /' "$want"; }
            fi
        done
    done
done
echo "guides: $passed passed, $failed failed"
[ $failed -eq 0 ] && [ $passed -gt 0 ]
