#!/usr/bin/env bash
# Every change to the store's tables must reach the write-ahead log
# (src/store/wal.h), or a crash replays a history without it. The store
# writes through db_put, db_del and msg_put (msg.c), the reply cache's
# put (replies.c) and store_probe_write (env.c), each of which notes its
# operation; the rest of env.c writes only while the store opens, before
# logging starts, and so does migrate.c's mdb_drop. Fails, listing
# FILE:LINE, when an LMDB write call appears anywhere else in src/.
#   logged_writes_test.sh TOP
set -euo pipefail
cd "$1"
allowed='^src/store/(msg|replies|env|wal|migrate)\.c:'
hits=$(grep -rnE '\bmdb_(put|del|drop|cursor_put|cursor_del)\(' src |
       grep -vE "$allowed" || true)
if [ -n "$hits" ]; then
    echo "LMDB writes outside the logged wrappers (use db_put/db_del):"
    echo "$hits"
    exit 1
fi
# The wrappers themselves: each write call in msg.c and replies.c has a
# wal_note_* within the next 12 lines.
bad=0
for f in src/store/msg.c src/store/replies.c; do
    while IFS=: read -r line _; do
        if ! sed -n "${line},$((line + 12))p" "$f" | grep -q 'wal_note_'; then
            echo "$f:$line: an LMDB write with no wal_note_* after it"
            bad=1
        fi
    done < <(grep -nE '\bmdb_(put|del)\(' "$f")
done
exit $bad
