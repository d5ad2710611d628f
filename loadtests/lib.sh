# loadtests/lib.sh — what the benchmark scripts share, sourced after their `cd` to the project
# root: a free loopback port, waiting for a `weft serve` they started, and stopping it.

# A TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Returns once the `weft serve` with pid $1, logging to $2, listens; at most $3 × 0.2 s (default
# 150: migrations on an empty database included). If it exits or never listens, prints its log
# and ends the script: every measurement after it would be of nothing.
wait_listening() {
    local pid="$1" log="$2" tries="${3:-150}"
    for _ in $(seq "$tries"); do
        grep -q "weft: listening on" "$log" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    echo "weft serve (pid $pid) is not listening; its log $log:" >&2
    cat "$log" >&2
    exit 1
}

# Stops the process $1 (none when empty) and waits for it.
stop_pid() {
    [ -z "$1" ] || { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null || true; }
}
