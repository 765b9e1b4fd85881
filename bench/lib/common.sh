# Process bookkeeping and small waits for bench/run. Every process the harness starts is
# recorded by PID and ended by PID: never by name, since other relays may run on this machine.

TRACKED=()

fail() { echo "bench: $*" >&2; exit 1; }

track() { TRACKED+=("$1"); }

# stop_pids PID...: TERM, a grace period, then KILL, and forget them.
stop_pids() {
  local pid alive
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 100); do
    alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  for pid in "$@"; do kill -KILL "$pid" 2>/dev/null || true; done
  local keep=() t
  for t in "${TRACKED[@]}"; do
    [[ " $* " == *" $t "* ]] || keep+=("$t")
  done
  TRACKED=("${keep[@]}")
}

stop_all() { [ ${#TRACKED[@]} -eq 0 ] || stop_pids "${TRACKED[@]}"; }

# descendants PID: the PIDs of every process below PID.
descendants() {
  ps -e -o pid=,ppid= | awk -v root="$1" '
    { parent[$1] = $2 }
    END { for (p in parent) { q = parent[p]
            while (q != "" && q != 0 && q != 1) { if (q == root) { print p; break } ; q = parent[q] } } }'
}

# wait_until SECONDS COMMAND: polls COMMAND every 50 ms; fails after SECONDS.
wait_until() {
  local deadline=$((SECONDS + $1))
  until eval "$2"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.05
  done
}

wait_port() { wait_until 60 "ss -Hltn 'sport = :$1' | grep -q LISTEN"; }

# free_port: a port on 127.0.0.1 that nothing listens on now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# now: seconds since the epoch, to the nanosecond.
now() { date +%s.%N; }

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
