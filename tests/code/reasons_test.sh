#!/usr/bin/env bash
# Reason words are spelled once, in src/common/reasons.def. Fails, listing
# each problem as FILE:LINE, when
#   - the blocks generated from the list (in clients/c/include/hopper/
#     hopper.h and clients/cli/cli.h) differ from it
#     (scripts/gen-reasons.sh --check);
#   - a string literal (other than "", no reason) is passed as the reason of any function that takes
#     one (a parameter named `reason`: hp_status_set, hc_fail, cli_error,
#     ... found in the code, so a new one is checked too), or assigned to
#     a `reason` field, anywhere in src/ or clients/: it must be an
#     HP_R_*, HOPPER_R_* or CLI_R_* constant;
#   - a reason constant is defined by hand (#define X_R_WORD "WORD")
#     outside the generated blocks.
#   reasons_test.sh TOP
set -euo pipefail
top=$1
cd "$top"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
: > "$work/problems"

./scripts/gen-reasons.sh --check 2>> "$work/problems" || true

find src clients -name '*.[ch]' | sort > "$work/files"
[ "$(wc -l < "$work/files")" -gt 50 ] || echo "found too few sources" >> "$work/problems"

# Each file as one string with its comments blanked (newlines kept, for
# line numbers), then: the functions with a parameter named reason and
# its position; every call of them whose reason is a literal.
# shellcheck disable=SC2016 # awk's own $0
awk '
    # A line with its comments blanked; in_c carries a /* */ comment over
    # to the next line.
    function blank(s,   out, i, c, n, in_s) {
        out = ""; n = length(s)
        for (i = 1; i <= n; i++) {
            c = substr(s, i, 1)
            if (in_c) {
                if (c == "*" && substr(s, i + 1, 1) == "/") { in_c = 0; out = out "  "; i++ }
                else out = out " "
            } else if (in_s) {
                out = out c
                if (c == "\\") { out = out substr(s, i + 1, 1); i++ }
                else if (c == "\"") in_s = 0
            } else if (c == "/" && substr(s, i + 1, 1) == "*") { in_c = 1; out = out "  "; i++ }
            else if (c == "/" && substr(s, i + 1, 1) == "/") break
            else { if (c == "\"") in_s = 1; out = out c }
        }
        return out
    }
    function line_of(s, pos,   t) { t = substr(s, 1, pos); return gsub(/\n/, "\n", t) + 1 }
    # The arguments of the call whose "(" is at pos: arg[0..], returns n.
    function args(s, pos,   i, c, depth, n, cur, in_s) {
        n = 0; cur = ""; depth = 0
        for (i = pos + 1; i <= length(s); i++) {
            c = substr(s, i, 1)
            if (in_s) { cur = cur c; if (c == "\\") { cur = cur substr(s, i + 1, 1); i++ } else if (c == "\"") in_s = 0; continue }
            if (c == "\"") { in_s = 1; cur = cur c; continue }
            if (c == "(") depth++
            if (c == ")") { if (depth == 0) { arg[n++] = cur; return n } depth-- }
            if (c == "," && depth == 0) { arg[n++] = cur; cur = ""; continue }
            cur = cur c
        }
        return n
    }
    function trim(t) { gsub(/^[ \t\n]+|[ \t\n]+$/, "", t); return t }
    FNR == 1 { file = FILENAME; files[++nf] = file; in_c = 0 }
    { text[file] = text[file] blank($0) "\n" }
    END {
        # Pass 1: functions taking a reason.
        for (f = 1; f <= nf; f++) {
            s = text[files[f]]
            while (match(s, /[A-Za-z_][A-Za-z0-9_]*\([^();{}]*\*[ \t\n]*reason[ \t\n]*[,)]/)) {
                decl = substr(s, RSTART, RLENGTH); s = substr(s, RSTART + RLENGTH)
                name = decl; sub(/\(.*/, "", name)
                params = decl; sub(/^[^(]*\(/, "", params); sub(/\*[ \t\n]*reason[ \t\n]*[,)]$/, "", params)
                pos[name] = gsub(/,/, ",", params)
            }
        }
        for (name in pos) nfun++
        if (nfun < 3) print "found only " nfun " functions that take a reason"
        # Pass 2: their calls, and reason fields.
        for (f = 1; f <= nf; f++) {
            s = text[files[f]]; off = 0
            while (match(s, /[A-Za-z_][A-Za-z0-9_]*[ \t]*\(/)) {
                name = substr(s, RSTART, RLENGTH); sub(/[ \t]*\($/, "", name)
                at = off + RSTART + RLENGTH - 1
                if ((name in pos) && args(text[files[f]], at) > pos[name]) {
                    a = trim(arg[pos[name]])
                    if (a ~ /^"[^"]/)
                        print files[f] ":" line_of(text[files[f]], at) ": " name "() given the literal " a " as its reason: use its HP_R_/HOPPER_R_/CLI_R_ constant (src/common/reasons.def)"
                }
                off += RSTART + RLENGTH - 1; s = substr(s, RSTART + RLENGTH)
            }
            s = text[files[f]]; off = 0
            while (match(s, /(\.|->)reason[ \t\n]*=[ \t\n]*"[^"]/)) {
                print files[f] ":" line_of(text[files[f]], off + RSTART) ": a literal assigned to a reason field"
                off += RSTART + RLENGTH; s = substr(s, RSTART + RLENGTH)
            }
        }
    }
' $(cat "$work/files") >> "$work/problems"

# Hand-made reason constants, outside the generated blocks.
# shellcheck disable=SC2046 # file names have no spaces
awk '/BEGIN reasons/ { skip = 1 } /END reasons/ { skip = 0; next }
     !skip && /^#define [A-Z][A-Z0-9]*_R_[A-Z0-9_]+[ \t]+"/ {
         print FILENAME ":" FNR ": a reason constant defined by hand: add the word to src/common/reasons.def"
     }' $(cat "$work/files") >> "$work/problems"

if [ -s "$work/problems" ]; then
    cat "$work/problems"
    echo "reasons_test: $(wc -l < "$work/problems") problem(s)"
    exit 1
fi
echo "reasons are spelled once: $(grep -c '^HP_REASON(' src/common/reasons.def) words"
