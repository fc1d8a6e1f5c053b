#!/bin/sh
# Install static-web: write the site, start the server detached, record its pid.
# Idempotent: a server already running on the wanted port is kept; on another port it is
# restarted. Exits non-zero (with the server's log) if the server cannot start.
set -eu
. "$PRVNG_TASKSERV_DIR/lib.sh"
port="$PRVNG_SETTING_PORT"
mkdir -p "$www" "$(dirname "$pidfile")" "$(dirname "$log")"

title=$(printf '%s' "$PRVNG_SETTING_TITLE" |
    sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g')
tmp="$www/.index.html.$$"
cat >"$tmp" <<HTML
<!doctype html>
<html><head><meta charset="utf-8"><title>$title</title></head>
<body><h1>$title</h1><p>static-web on server ${PRVNG_SERVER:-?}</p></body></html>
HTML
mv -f "$tmp" "$www/index.html"

if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    if running "$pid"; then
        if [ "$(cat "$home/port" 2>/dev/null)" = "$port" ]; then
            echo "static-web already serving $www on http://127.0.0.1:$port (pid $pid)"
            exit 0
        fi
        echo "static-web: moving from port $(cat "$home/port" 2>/dev/null) to $port"
        stop "$pid"
    fi
    rm -f "$pidfile"
fi

cd "$www"
: >"$log"
setsid "$PRVNG_PYTHON" -u -m http.server "$port" --bind 127.0.0.1 --directory "$www" \
    </dev/null >>"$log" 2>&1 &
pid=$!
echo "$pid" >"$pidfile.tmp" && mv -f "$pidfile.tmp" "$pidfile"
echo "$port" >"$home/port"

# Wait until it listens (it logs "Serving HTTP" once bound) or dies, at most 10 s.
i=0
until grep -q "Serving HTTP" "$log"; do
    if ! running "$pid" || [ "$i" -ge 100 ]; then
        echo "static-web failed to start on port $port:" >&2
        tail -n 20 "$log" >&2
        stop "$pid"
        rm -f "$pidfile"
        exit 1
    fi
    sleep 0.1
    i=$((i + 1))
done
echo "static-web serving $www on http://127.0.0.1:$port (pid $pid)"
