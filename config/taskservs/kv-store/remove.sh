#!/bin/sh
# Remove kv-store: its command, program and data. Idempotent.
set -eu
home="${PRVNG_TASKSERV_HOME:-$PRVNG_SANDBOX/taskservs/kv-store}"
rm -f "$PRVNG_SANDBOX/bin/kv"
rm -rf "$home"
echo "kv-store removed"
