#!/bin/sh
# Remove static-web: stop the server named by the pidfile, delete its files. Idempotent.
set -eu
. "$PRVNG_TASKSERV_DIR/lib.sh"
if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    if running "$pid"; then
        stop "$pid"
        echo "static-web stopped (pid $pid)"
    fi
fi
rm -f "$pidfile" "$log"
rm -rf "$home"
echo "static-web removed"
