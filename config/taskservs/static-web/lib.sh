# Shared by install.sh and remove.sh (sourced). POSIX sh.
home="${PRVNG_TASKSERV_HOME:-$PRVNG_SANDBOX/taskservs/static-web}"
www="$home/www"
pidfile="$PRVNG_SANDBOX/run/static-web.pid"
log="$PRVNG_SANDBOX/logs/static-web.log"

# running PID: true while PID runs and is our server (working in $www), so a reused pid
# from a stale pidfile is never signalled. Zombies count as stopped.
running() {
    kill -0 "$1" 2>/dev/null || return 1
    if [ -r "/proc/$1/stat" ]; then
        case "$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)" in Z | X) return 1 ;; esac
        [ "$(readlink "/proc/$1/cwd" 2>/dev/null)" = "$(cd "$www" 2>/dev/null && pwd -P)" ] || return 1
    fi
    return 0
}

# stop PID: SIGTERM its process group, SIGKILL after 5 s.
stop() {
    kill -TERM "-$1" 2>/dev/null || kill -TERM "$1" 2>/dev/null || true
    i=0
    while running "$1" && [ "$i" -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if running "$1"; then
        kill -KILL "-$1" 2>/dev/null || kill -KILL "$1" 2>/dev/null || true
    fi
}
