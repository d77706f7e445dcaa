#!/bin/sh
# gen-reasons.sh - writes the reason words of src/common/reasons.def into
# the blocks marked for them: in clients/c/include/hopper/hopper.h the
# HOPPER_R_* words a libhopper user may get (WIRE and LIB), in
# clients/cli/cli.h the CLI_R_* words only the hopper command reports, and
# in the Python client's errors.py the same words as hopper.h. Those
# cannot include src/, so their copies are generated text; the broker's
# HP_R_* come from the list by the preprocessor (src/common/reasons.h).
#
#   scripts/gen-reasons.sh          rewrite the blocks
#   scripts/gen-reasons.sh --check  change nothing; fail, showing the
#                                   difference, when a block is stale
#                                   (reasons_test runs this)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
def=$top/src/common/reasons.def
check=0
[ "${1:-}" = --check ] && check=1

# gen TARGET PREFIX INCLUDE EXCLUDE: TARGET with its block rewritten, on
# stdout. A word goes in when its WHO names INCLUDE and not EXCLUDE
# (a regular expression; "-" for none); a .py TARGET gets Python.
gen() {
    awk -v prefix="$2" -v inc="$3" -v exc="$4" -v py="${1%.py}" -v file="$1" '
        function flush(   i, pad, t) {
            if (n == 0) return
            if (out != "") out = out "\n"
            t = title
            if (python) { sub(/^\/\* /, "# ", t); sub(/ \*\/$/, "", t) }
            out = out t "\n"
            for (i = 1; i <= n; i++) {
                pad = sprintf("%-" width "s", prefix word[i])
                if (python) out = out prefix word[i] " = \"" word[i] "\"\n"
                else out = out "#define " pad " \"" word[i] "\"\n"
            }
            n = 0; width = 0
        }
        BEGIN { python = py != file }
        FNR == NR {
            if ($0 ~ /^\/\* .* \*\/$/) { flush(); title = $0; next }
            if ($0 !~ /^HP_REASON\(/) next
            line = $0
            sub(/^HP_REASON\(/, "", line); sub(/\)[ \t]*$/, "", line)
            w = line; sub(/,.*/, "", w)
            who = line; sub(/^[^,]*,/, "", who)
            if (who !~ inc || (exc != "-" && who ~ exc)) next
            word[++n] = w
            if (length(prefix w) > width) width = length(prefix w)
            next
        }
        FNR == 1 { flush() }
        /BEGIN reasons/ { print; printf "%s", out; skip = 1; next }
        /END reasons/ { skip = 0 }
        !skip { print }
    ' "$def" "$1"
}

status=0
for spec in "clients/c/include/hopper/hopper.h HOPPER_R_ WIRE|LIB -" \
            "clients/cli/cli.h CLI_R_ CLI WIRE|LIB" \
            "clients/python/hopper/errors.py - WIRE|LIB -"; do
    # shellcheck disable=SC2086 # the spec is four words on purpose
    set -- $spec
    file=$top/$1
    tmp=$(mktemp)
    prefix=$2
    [ "$prefix" = - ] && prefix=""
    gen "$file" "$prefix" "$3" "$4" > "$tmp"
    grep -q "BEGIN reasons" "$file" || { echo "$1: no BEGIN reasons marker" >&2; status=1; }
    if [ "$check" = 1 ]; then
        if ! diff -u "$file" "$tmp" >&2; then
            echo "$1 is out of date with src/common/reasons.def: run scripts/gen-reasons.sh" >&2
            status=1
        fi
        rm -f "$tmp"
    elif cmp -s "$file" "$tmp"; then
        rm -f "$tmp"
    else
        cat "$tmp" > "$file"
        rm -f "$tmp"
        echo "wrote $1"
    fi
done
exit "$status"
