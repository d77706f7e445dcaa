#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang-14 in build/fuzz
# (-DHOPPER_FUZZ=ON: every library instrumented, ASan + UBSan) and runs
# each one.
#
#   ./scripts/fuzz.sh [SECONDS]   each target for SECONDS (default 60) on a
#                                 scratch corpus in build/fuzz/work/<target>
#                                 seeded from tests/fuzz/corpus/<target>;
#                                 prints executions and crash files, exits
#                                 non-zero if any target crashed
#   ./scripts/fuzz.sh --smoke     what scripts/test.sh runs: a fixed number
#                                 of executions of each target over its
#                                 seeds, then every input saved in
#                                 tests/fuzz/regressions/<target>/ once
#
# FUZZ_TARGETS="fuzz_token fuzz_record" picks targets; extra libFuzzer
# flags go in FUZZ_FLAGS (e.g. FUZZ_FLAGS="-jobs=2 -workers=2"). A crash
# is written to build/fuzz/work/<target>/artifacts/; rerun it with
# build/fuzz/tests/fuzz/<target> FILE, minimise it with -minimize_crash=1
# -runs=10000 FILE, and keep it in tests/fuzz/regressions/<target>/.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

smoke=0
secs=60
case "${1:-}" in
--smoke) smoke=1 ;;
'') ;;
*[!0-9]* | 0)
    echo "usage: $0 [SECONDS] | --smoke" >&2
    exit 2
    ;;
*) secs=$1 ;;
esac

read -r -a targets <<<"${FUZZ_TARGETS:-fuzz_record fuzz_token fuzz_dispatch fuzz_frame}"
# Executions per target in --smoke: the dispatch target does a round trip
# through an in-process broker per input (about a thousand a second).
declare -A smoke_runs=([fuzz_record]=20000 [fuzz_token]=20000
                       [fuzz_dispatch]=3000 [fuzz_frame]=50000)
# Per-input time limit: fuzz_dispatch itself gives up on a reply after 10 s.
declare -A input_timeout=([fuzz_record]=10 [fuzz_token]=10
                          [fuzz_dispatch]=30 [fuzz_frame]=10)

./scripts/setup.sh
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

build=build/fuzz
CC=clang-14 cmake -S . -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang-14 \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHOPPER_FUZZ=ON -DHOPPER_TESTS=OFF \
    >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"
bin=$build/tests/fuzz

# stat NAME LOG: a -print_final_stats=1 value from a libFuzzer log.
stat() {
    sed -n "s/^stat::$1: *//p" "$2" | tail -n 1
}

if [ "$smoke" -eq 1 ]; then
    for t in "${targets[@]}"; do
        # New inputs go to the first (scratch) directory, never to the
        # seeds in the repo.
        scratch=$build/smoke/$t
        rm -rf "$scratch"
        mkdir -p "$scratch"
        log=$build/smoke/$t.log
        if ! "$bin/$t" -runs="${smoke_runs[$t]}" -seed=1 \
            -timeout="${input_timeout[$t]}" -print_final_stats=1 \
            -artifact_prefix="$scratch/" "$scratch" "tests/fuzz/corpus/$t" \
            >"$log" 2>&1; then
            cat "$log" >&2
            echo "fuzz smoke: $t failed; the input is in $scratch/" >&2
            exit 1
        fi
        echo "fuzz smoke: $t ok, $(stat number_of_executed_units "$log") executions"
        regs=()
        if [ -d "tests/fuzz/regressions/$t" ]; then
            mapfile -t regs < <(find "tests/fuzz/regressions/$t" -type f \
                ! -name '*.md' | sort)
        fi
        if [ ${#regs[@]} -gt 0 ]; then
            if ! "$bin/$t" -timeout="${input_timeout[$t]}" "${regs[@]}" \
                >"$log" 2>&1; then
                cat "$log" >&2
                echo "fuzz smoke: a regression input of $t fails" >&2
                exit 1
            fi
            echo "fuzz smoke: $t ok on ${#regs[@]} regression inputs"
        fi
    done
    exit 0
fi

failed=0
summary=()
for t in "${targets[@]}"; do
    work=$build/work/$t
    mkdir -p "$work/corpus" "$work/artifacts"
    rm -f "$work/artifacts/"*
    cp -n "tests/fuzz/corpus/$t/"* "$work/corpus/"
    log=$work/fuzz.log
    echo "fuzz: $t for ${secs}s (log: $log)"
    rc=0
    # shellcheck disable=SC2086 # FUZZ_FLAGS is a list of flags
    "$bin/$t" -max_total_time="$secs" -timeout="${input_timeout[$t]}" \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
        ${FUZZ_FLAGS:-} "$work/corpus" >"$log" 2>&1 || rc=$?
    execs=$(stat number_of_executed_units "$log")
    rate=$(stat average_exec_per_sec "$log")
    new=$(stat new_units_added "$log")
    summary+=("$(printf '%-14s %12s execs %8s/s %6s new inputs  %s' "$t" \
        "${execs:-?}" "${rate:-?}" "${new:-?}" \
        "$([ "$rc" -eq 0 ] && echo ok || echo "CRASHED (exit $rc)")")")
    mapfile -t found < <(find "$work/artifacts" -type f | sort)
    if [ "$rc" -ne 0 ] || [ ${#found[@]} -gt 0 ]; then
        failed=1
        grep -E -m 5 'ERROR|invariant failed|SUMMARY' "$log" >&2 || true
        for f in "${found[@]}"; do
            echo "fuzz: $t found $f" >&2
        done
    fi
done

echo
echo "fuzz summary (${secs}s per target):"
printf '  %s\n' "${summary[@]}"
exit "$failed"
