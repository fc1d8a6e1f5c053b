#!/bin/sh
# Install kv-store: its program and data directory in the sandbox, and `bin/kv` to run it.
# Idempotent: files are rewritten whole (write, then rename); existing data is kept.
set -eu
home="${PRVNG_TASKSERV_HOME:-$PRVNG_SANDBOX/taskservs/kv-store}"
bin="$PRVNG_SANDBOX/bin"
mkdir -p "$home/data" "$bin"

cp "$PRVNG_TASKSERV_DIR/kv.py" "$home/.kv.py.tmp"
mv -f "$home/.kv.py.tmp" "$home/kv.py"

# quote WORD: WORD as one single-quoted shell word.
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
cat >"$bin/.kv.tmp" <<EOF2
#!/bin/sh
exec $(quote "$PRVNG_PYTHON") $(quote "$home/kv.py") --data $(quote "$home/data") \\
    --max-value-bytes $(quote "$PRVNG_SETTING_MAX_VALUE_BYTES") "\$@"
EOF2
chmod 0755 "$bin/.kv.tmp"
mv -f "$bin/.kv.tmp" "$bin/kv"
echo "kv-store installed: $bin/kv (data in $home/data)"
