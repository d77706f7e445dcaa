#!/usr/bin/env bash
# Keeps README.md and docs/*.md true to the code. Fails, listing every
# problem as FILE:LINE, when the docs name
#   - a flag that the relevant program's --help does not list: in a
#     command (a line of a code block, or an inline `span`) that runs
#     hopperd, hopper (then the help of that very command, e.g. hopper
#     lane set --help), hopper-bench, or a script that execs one of them;
#     a flag on its own, in prose or a table, must be in one of the three;
#   - a relative link, #anchor, repository path or *.md file that does
#     not exist;
#   - a status code or reason word the code does not define: code names
#     and numbers come from src/common/status.h, reason words from the
#     list of them, src/common/reasons.def, and the other ALL_CAPS string
#     literals of src/, clients/c/src/ and clients/cli/ (hopperd,
#     libhopper and the CLI), and macro names are allowed; a status
#     table's numbers and its `hopper` exits column are checked against
#     status.h and the exit codes in hopper --help; every code hopperd answers with must have a
#     row in a status table; HOPPER_* names must occur in the code;
#   - a systemd unit whose ReadWritePaths= would keep it from starting
#     when an optional directory is missing.
# It compares docs with the programs and the code as they are, so it
# keeps working as flags and reasons come and go.
#   docs_test.sh TOP HOPPERD HOPPER HOPPER_BENCH
set -euo pipefail
top=$1
hopperd=$2
hopper=$3
bench=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$top"
docs=(README.md docs/*.md)
# bad may run in a pipeline's subshell: problems are kept in a file.
: > "$work/problems"
bad() { echo "FAIL: $*" | tee -a "$work/problems"; }
# The fields of the files below are separated by US (\037): a table cell
# or a code line may hold a tab or a |.
us=$'\037'

# ---- the programs' help -----------------------------------------------------
flags_in() { { grep -oE -- '--[a-z][a-z0-9-]*' "$@" || true; } | sort -u; }
"$hopperd" --help > "$work/help.hopperd"
"$bench" --help > "$work/help.hopper-bench" 2>&1 || true
"$hopper" --help > "$work/help.hopper"
# hopper's commands: the leading lower-case words of its command list.
awk '/^Commands:/ { on = 1; next } on && /^$/ { exit }
     on && /^  [a-z]/ {
         n = split(substr($0, 3, 27), w, " "); c = ""
         for (i = 1; i <= n && w[i] ~ /^[a-z]+$/; i++) c = c (c == "" ? "" : " ") w[i]
         print c
     }' "$work/help.hopper" > "$work/commands"
[ "$(wc -l < "$work/commands")" -gt 10 ] || bad "no commands in hopper --help"
# Allowed flags as "PROGRAM<US>FLAG"; PROGRAM "hopper COMMAND" for each
# command, "hopper" for any of them, "any" for any of the programs.
{
    for p in hopperd hopper-bench; do
        flags_in "$work/help.$p" | sed "s/^/$p$us/"
    done
    flags_in "$work/help.hopper" | sed "s/^/hopper$us/"
    while read -r cmd; do
        # shellcheck disable=SC2086 # "lane set" is two words on purpose
        "$hopper" $cmd --help > "$work/help.cmd"
        flags_in "$work/help.cmd" | sed "s/^/hopper $cmd$us/; p; s/^[^$us]*/hopper/"
    done < "$work/commands"
} | sort -u > "$work/allowed"
awk -F"$us" -v OFS="$us" '{ print; print "any", $2 }' "$work/allowed" |
    sort -u > "$work/allowed.all"
for p in hopperd hopper-bench hopper; do
    grep -q "^$p$us--" "$work/allowed.all" || bad "no flags in $p --help"
done
# Scripts that end in `exec .../PROGRAM "$@"` take PROGRAM's flags.
for s in scripts/*.sh; do
    p=$(sed -n 's|^exec .*/\([a-z-]*\) "\$@"$|\1|p' "$s" | tail -n 1)
    [ -z "$p" ] || echo "$s$us$p"
done > "$work/forwards"

# ---- flags -----------------------------------------------------------------
# Each doc's code block lines (continuations joined) and inline spans
# (paragraphs joined, so a span may wrap) as KIND<US>FILE:LINE<US>TEXT;
# kind P is a flag in prose outside any span.
for f in "${docs[@]}"; do
    awk -v OFS="$us" -v F="$f" '
        function flush(   p, rest, tok) {
            if (para == "") return
            rest = para
            while (match(rest, /`[^`]+`/)) {
                print "S", F ":" pline, substr(rest, RSTART + 1, RLENGTH - 2)
                rest = substr(rest, RSTART + RLENGTH)
            }
            p = para; gsub(/`[^`]*`/, " ", p)
            while (match(p, /(^|[^-A-Za-z0-9])--[a-z][a-z0-9-]*/)) {
                tok = substr(p, RSTART, RLENGTH); sub(/^[^-]/, "", tok)
                print "P", F ":" pline, tok
                p = substr(p, RSTART + RLENGTH)
            }
            para = ""
        }
        /^```/ { flush(); fence = !fence; next }
        fence {
            line = $0; n = NR
            while (line ~ /\\$/ && (getline more) > 0) {
                sub(/\\$/, "", line); line = line " " more
            }
            print "C", F ":" n, line; next
        }
        /^[ \t]*$/ { flush(); next }
        { if (para == "") pline = NR; para = para " " $0 }
        END { flush() }' "$f"
done > "$work/snippets"
# Every flag named, as FILE:LINE<US>PROGRAM<US>FLAG, PROGRAM as in
# $work/allowed ("-": another program's, not ours to check).
awk -F"$us" -v OFS="$us" '
    FILENAME == ARGV[1] { cmd[$0] = 1; next }
    FILENAME == ARGV[2] { fwd[$1] = $2; next }
    function base(t) { sub(/.*\//, "", t); return t }
    $1 == "P" { print $2, "any", $3; next }
    {
        n = split($3, piece, /\$\(|&&|\|\||[|;()]/)
        for (k = 1; k <= n; k++) {
            m = split(piece[k], w, " ")
            prog = ""; i = 1
            for (; i <= m; i++) {
                t = w[i]; gsub(/["\047]/, "", t)
                if (t ~ /^(sudo|exec|env|time|\$|#)$/) continue
                if (t ~ /^[A-Za-z_]+=.*\/hopperd?$/) { prog = base(t); break }
                if (t ~ /^[A-Za-z_][A-Za-z0-9_]*=/) continue
                if (t ~ /^--/) { prog = "any"; break }
                prog = base(t)
                if (prog ~ /\.sh$/) { s = t; sub(/^\.\//, "", s); prog = (s in fwd) ? fwd[s] : "-" }
                break
            }
            if (prog !~ /^(hopperd|hopper|hopper-bench|any)$/) prog = "-"
            if (prog == "hopper") {
                for (j = i + 1; j <= m; j++) {
                    if ((w[j] " " w[j + 1]) in cmd) { prog = "hopper " w[j] " " w[j + 1]; break }
                    if (w[j] in cmd) { prog = "hopper " w[j]; break }
                }
            }
            for (j = 1; j <= m; j++) {
                t = w[j]; gsub(/["\047]/, "", t)
                if (match(t, /^--[a-z][a-z0-9-]*/)) print $2, prog, substr(t, 1, RLENGTH)
            }
        }
    }' "$work/commands" "$work/forwards" "$work/snippets" > "$work/flag_uses"
awk -F"$us" '
    FILENAME == ARGV[1] { ok[$1 FS $2] = 1; next }
    $2 == "-" { next }
    !(($2 FS $3) in ok) {
        what = $2 == "any" ? "hopperd, hopper or hopper-bench" : $2
        print "FAIL: " $1 ": " $3 " is not in " what " --help"
    }' "$work/allowed.all" "$work/flag_uses" | tee -a "$work/problems"
n_flags=$(awk -F"$us" '$2 != "-"' "$work/flag_uses" | wc -l)
[ "$n_flags" -gt 50 ] || bad "found only $n_flags flags of ours in the docs: is the parser broken?"

# ---- links, anchors and repository paths -------------------------------------
slugs() { # GitHub's anchors for a markdown file's headings
    awk '/^```/ { fence = !fence } !fence && /^#+ / {
        sub(/^#+ +/, ""); s = tolower($0)
        gsub(/[^a-z0-9 _-]/, "", s); gsub(/ /, "-", s); print s }' "$1"
}
for f in "${docs[@]}"; do
    dir=$(dirname "$f")
    { grep -noE '\]\([^) ]+\)' "$f" || true; } | while IFS=: read -r line link; do
        target=${link#](}
        target=${target%)}
        case "$target" in
        *://* | mailto:*) continue ;;
        esac
        path=${target%%#*}
        anchor=${target#"$path"}
        anchor=${anchor#\#}
        file=$f
        if [ -n "$path" ]; then
            file=$dir/$path
            if [ ! -e "$file" ]; then
                bad "$f:$line: link to $path, which does not exist"
                continue
            fi
        fi
        if [ -n "$anchor" ] && ! slugs "$file" | grep -qxF -- "$anchor"; then
            bad "$f:$line: link to #$anchor, which is no heading of $file"
        fi
    done
    # Paths into the repository, cut before a placeholder (<target>,
    # {unit,integration}); and *.md files, at the top or in docs/.
    { grep -noE '(^|[^A-Za-z0-9_./$-])(\./)?(docs|src|tests|scripts|clients|proto|docker|\.ci)/[A-Za-z0-9_./-]*' "$f" || true; } |
        sed -E 's/^([0-9]+):[^.a-z]?(\.\/)?/\1:/; s/[.,:]+$//' |
        while IFS=: read -r line ref; do
            [ -e "$ref" ] || bad "$f:$line: $ref does not exist"
        done
    { grep -noE '(^|[^A-Za-z0-9_./-])[A-Za-z][A-Za-z0-9_-]*\.md\b' "$f" || true; } |
        sed -E 's/^([0-9]+):[^A-Za-z]?/\1:/' |
        while IFS=: read -r line ref; do
            [ -e "$ref" ] || [ -e "docs/$ref" ] ||
                bad "$f:$line: $ref is not in the repository"
        done
done

# ---- status codes and reason words -------------------------------------------
sed -nE 's/^ *HP_([A-Z_]+) = ([0-9]+),?.*/\1 \2/p' src/common/status.h \
    > "$work/codes"
[ "$(wc -l < "$work/codes")" -eq 17 ] || bad "src/common/status.h: not 17 codes"
# Reason words, and the macro names the code defines (a doc may name
# STORE_SCHEMA_VERSION; a misspelt reason is still neither).
{
    sed -n 's/^HP_REASON(\([A-Z0-9_]*\),.*/\1/p' src/common/reasons.def
    grep -rhoE '"[A-Z][A-Z0-9_]*"' src clients/c/src clients/cli || true
    grep -rhoE '^#define [A-Z][A-Z0-9_]*' src clients || true
} | sed 's/^#define //' | tr -d '"' | sort -u > "$work/words"
grep -qx LOST_CLAIM "$work/words" || bad "no reason words in src/common/reasons.def"
# HOPPER_* names (variables, API) that occur in the code or scripts.
{ grep -rhoE '\bHOPPER_[A-Z0-9_]+' src clients scripts tests docker || true; } |
    sort -u > "$work/hopper_names"
# hopper --help's "Exit codes:" lines, as "EXIT TEXT".
awk '/^Exit codes:/ { on = 1; next } on && !/^  [0-9]/ { exit }
     on { sub(/^ +/, ""); print }' "$work/help.hopper" > "$work/exits"
[ -s "$work/exits" ] || bad "no exit codes in hopper --help"
for f in "${docs[@]}"; do
    awk -v F="$f" '
        FILENAME == ARGV[1] { code[$1] = $2; next }
        FILENAME == ARGV[2] { word[$1] = 1; next }
        FILENAME == ARGV[3] { ours[$1] = 1; next }
        FILENAME == ARGV[4] {
            x = $1; $1 = ""; exits[x] = $0 " "
            if ($0 ~ /any other failure/) other = x
            next
        }
        function fail(msg) { print "FAIL: " F ":" FNR ": " msg }
        function is_code(c) { return c in code }
        function exit_for(c,   x) {
            for (x in exits)
                if (index(exits[x], " " c " ") || (c == "OK" && exits[x] ~ /^ success/))
                    return x
            return other
        }
        # Names of other programs: LMDB (MDB_*), the system (AF_*, RLIMIT_*,
        # SIG*, the flags of open, mmap and fcntl: O_*, PROT_*, MAP_*, F_*),
        # the toolchain (LD_*, PKG_CONFIG_*, CMAKE_*, *SAN_OPTIONS),
        # containers (CONTAINERS_*, DOCKER_*).
        function foreign(w) {
            return w ~ /^(MDB_|AF_|RLIMIT_|SIG|O_|PROT_|MAP_|F_|LD_|PKG_CONFIG_|CMAKE_|[A-Z]*SAN_OPTIONS|CONTAINERS_|DOCKER_)/
        }
        /^```/ { fence = !fence }
        # Every ALL_CAPS_WORD with an underscore is a code or a reason,
        # but for other programs names and ours that are no reasons
        # (HOPPER_* variables and API, FUZZ_TARGETS of scripts/fuzz.sh).
        {
            rest = $0
            while (match(rest, /[A-Za-z0-9_]*[A-Z][A-Z0-9]*(_[A-Z0-9]+)+[A-Za-z0-9_]*/)) {
                w = substr(rest, RSTART, RLENGTH); rest = substr(rest, RSTART + RLENGTH)
                if (w !~ /^[A-Z][A-Z0-9_]*$/ || foreign(w)) continue
                if (w ~ /^HOPPER_/) { if (!(w in ours)) fail(w " occurs nowhere in the code or scripts"); continue }
                if (w == "FUZZ_TARGETS") continue
                if (!(w in word)) fail(w " is no status code or reason the code defines")
            }
        }
        # CODE/REASON and `CODE`/`REASON` name a code first.
        {
            rest = $0
            while (match(rest, /[A-Z][A-Z_]+`?\/`?[A-Z][A-Z0-9_]+/)) {
                pair = substr(rest, RSTART, RLENGTH); rest = substr(rest, RSTART + RLENGTH)
                c = pair; sub(/`?\/.*/, "", c); r = pair; sub(/.*\/`?/, "", r)
                if (foreign(c) || foreign(r)) continue
                if (!is_code(c)) fail(c " (in " pair ") is no status code")
                if (!(r in word)) fail(r " (in " pair ") is no reason the code defines")
            }
        }
        # The CLI prints "hopper: CODE REASON: message".
        match($0, /hopper: [A-Z_]+ [A-Z_-]+:/) {
            split(substr($0, RSTART + 8, RLENGTH - 9), cr, " ")
            if (!is_code(cr[1])) fail(cr[1] " is no status code")
            if (cr[2] != "-" && !(cr[2] in word)) fail(cr[2] " is no reason the code defines")
        }
        # Table rows that start with a bare ALL_CAPS cell name a code.
        !fence && /^\| *[A-Z][A-Z_]+ *\|/ {
            split($0, cell, "|"); c = cell[2]; gsub(/ /, "", c)
            if (!is_code(c)) fail(c " (first cell of a table row) is no status code")
        }
        # A status table: | NUMBER | NAME |, and its `hopper` exits column.
        !fence && /^\|/ && /`hopper` exits/ {
            n = split($0, cell, "|")
            for (i = 2; i < n; i++) if (cell[i] ~ /`hopper` exits/) col = i
        }
        !fence && /^\| *[0-9]+ *\| *[A-Z_]+ *\|/ {
            split($0, cell, "|"); num = cell[2]; c = cell[3]
            gsub(/ /, "", num); gsub(/ /, "", c)
            if (!is_code(c) || code[c] != num) fail("code " num " is not " c " in src/common/status.h")
            if (col) {
                e = cell[col]; gsub(/ /, "", e)
                if (e != exit_for(c)) fail("hopper exits " exit_for(c) " for " c " (hopper --help), not " e)
            }
        }
        !/^\|/ { col = 0 }
    ' "$work/codes" "$work/words" "$work/hopper_names" "$work/exits" "$f" |
        tee -a "$work/problems"
done

# Every code hopperd answers with has a row in a status table.
{ grep -rhoE 'hp_status_set\([^,]*, *HP_[A-Z_]+' src || true; } |
    sed -E 's/.*HP_//' | sort -u > "$work/codes_sent"
{ grep -hoE '^\| *[0-9]+ *\| *[A-Z_]+ *\|' "${docs[@]}" || true; } |
    awk -F'|' '{ gsub(/ /, "", $3); print $3 }' | sort -u > "$work/codes_documented"
[ "$(wc -l < "$work/codes_sent")" -gt 8 ] || bad "found too few codes in src/"
comm -23 "$work/codes_sent" "$work/codes_documented" | while read -r c; do
    bad "hopperd answers $c (src/), but no status table in the docs has a row for it"
done

# ---- systemd units ---------------------------------------------------------
# ReadWritePaths= may name what the unit creates itself (StateDirectory=,
# under /var/lib) and optional paths ("-" first): systemd refuses to start
# a unit when any other one is missing.
for f in "${docs[@]}"; do
    awk -v F="$f" '
        /^```/ { fence = !fence }
        fence && /^StateDirectory=/ { sub(/^StateDirectory=/, ""); state = "/var/lib/" $0 }
        fence && /^ReadWritePaths=/ {
            sub(/^ReadWritePaths=/, ""); n = split($0, p, " ")
            for (i = 1; i <= n; i++)
                if (p[i] !~ /^-/ && p[i] != state && index(p[i], state "/") != 1)
                    print "FAIL: " F ":" NR ": ReadWritePaths=" p[i] \
                        ": systemd will not start the unit while it is missing; write -" p[i]
        }' "$f" | tee -a "$work/problems"
done

if [ -s "$work/problems" ]; then
    echo "$(wc -l < "$work/problems") problem(s) in README.md and docs/"
    exit 1
fi
echo "docs agree with the code: $n_flags flags in ${#docs[@]} files"
