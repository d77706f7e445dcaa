#!/usr/bin/env bash
# The broker's parts include each other one way only. Fails when
#   - the modules of src/broker include each other in a circle (a
#     module is a header x.h with x.c, x_int.h and x_*.c, e.g. svc.h with
#     svc_msg.c; a file of no header, such as main.c, is one of its own);
#     the layers src/common, src/sp, src/store and src/broker are checked
#     the same way, each as one module;
#   - a file includes another module's x_int.h, which is its own files'
#     business only (STYLE.md, section 1).
# On success it prints the modules in an order where each uses only those
# before it.
#   include_test.sh TOP
set -euo pipefail
top=$1
cd "$top/src"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
: > "$work/problems"

# module FILE: broker/NAME for the broker's files, the directory for the
# other layers.
module() {
    local f=$1 dir base best="" h name
    dir=${f%%/*}
    if [ "$dir" != broker ]; then
        echo "$dir"
        return
    fi
    base=${f#broker/}
    base=${base%.[ch]}
    for h in broker/*.h; do
        name=${h#broker/}
        name=${name%.h}
        case "$name" in *_int) continue ;; esac
        case "$base" in
        "$name" | "${name}_"*)
            [ ${#name} -gt ${#best} ] && best=$name ;;
        esac
    done
    echo "broker/${best:-$base}"
}

for f in $(find common sp store broker -name '*.[ch]' | sort); do
    from=$(module "$f")
    echo "$from $from" >> "$work/edges" # every module, even one alone
    { grep -oE '^#include "(common|sp|store|broker)/[a-z_0-9]+\.h"' "$f" || true; } |
        sed -E 's/^#include "//; s/"$//' | while read -r inc; do
            to=$(module "$inc")
            [ "$to" = "$from" ] || echo "$from $to" >> "$work/edges"
            case "$inc" in
            *_int.h)
                [ "$to" = "$from" ] ||
                    echo "$f includes $inc, which belongs to $to alone" >> "$work/problems" ;;
            esac
        done
done
# tsort orders a graph whose edges point from user to used, and reports
# the members of any circle.
if ! tsort "$work/edges" > "$work/order" 2> "$work/tsort"; then
    echo "modules include each other in a circle" >> "$work/problems"
    sed -E 's/^tsort: .*input contains a loop:$/  a circle of:/; s/^tsort: /    /' \
        "$work/tsort" >> "$work/problems"
fi

if [ -s "$work/problems" ]; then
    cat "$work/problems"
    exit 1
fi
echo "no include circle; each module uses only those after it:"
tr '\n' ' ' < "$work/order"
echo
