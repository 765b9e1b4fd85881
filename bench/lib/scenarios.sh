# The scenarios of issue 5, one run of one relay each. Sourced by bench/run, which sets work,
# results, here, repo and the loads. A relay is sombra, postfix, or sink: smtp-source straight
# at smtp-sink, the machine's ceiling.

install_missing() {
  command -v dotnet > /dev/null || fail "the .NET 10 SDK is needed (dotnet not found)"
  local package missing=()
  # smtp-source and smtp-sink come with Postfix; ss and ps wait for ports and find processes.
  for package in postfix python3 iproute2 procps; do
    [ "$(dpkg-query -W -f='${Status}' "$package" 2> /dev/null)" = "install ok installed" ] \
      || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return
  echo "installing: ${missing[*]}"
  # Postfix asks how to configure the system's own instance; the bench runs a private one.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

thousands() { sed ':a; s/\B[0-9]\{3\}\>/,&/; ta' <<< "$1"; }

# record KEY RELAY RUN VALUE
record() {
  local column=$2
  [ "$column" = sink ] && column=ceiling
  printf 'value\t%s\t%s\t%s\t%s\n' "$1" "$column" "$3" "$4" >> "$results"
}

rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.1f", n / (b - a) }'; }

# start_sink PORT COUNT SECONDS: smtp-sink exits after COUNT messages (0: never), which marks
# the end of an end-to-end run; timeout ends it when the relay never delivers them all.
start_sink() {
  local count=()
  [ "$2" -eq 0 ] || count=(-M "$2")
  timeout "$3" smtp-sink -u nobody "${count[@]}" "127.0.0.1:$1" 1024 >> "$work/sink.log" 2>&1 &
  SINK_PID=$!
  track "$SINK_PID"
  wait_port "$1" || fail "smtp-sink does not listen on $1"
}

# start_relay RELAY SINKPORT: sets RELAY_PORT, and MEM_PID and MEM_TREE to measure its memory.
start_relay() {
  instances=$((instances + 1))
  RELAY_DIR=$work/$1.$instances
  case $1 in
    sink) RELAY_PORT=$2 ;;
    sombra)
      RELAY_PORT=$(free_port)
      sombra_start "$work/sombra-bin" "$RELAY_DIR" "$RELAY_PORT" "$2"
      MEM_PID=$SOMBRA_PID MEM_TREE="" ;;
    postfix)
      RELAY_PORT=$(free_port)
      POSTFIX_DIR=$RELAY_DIR
      postfix_configure "$RELAY_DIR" "$RELAY_PORT" "$2"
      postfix_start "$RELAY_DIR" "$RELAY_PORT"
      MEM_PID=$POSTFIX_PID MEM_TREE=--tree ;;
  esac
}

# stop_relay RELAY: and its directory goes, so that no run inherits another's queue.
stop_relay() {
  case $1 in
    sombra) sombra_stop ;;
    postfix) postfix_stop "$RELAY_DIR" ;;
  esac
  [ $keep -eq 1 ] || rm -rf "$RELAY_DIR"
}

# source_to PORT ARGS...: smtp-source with the fixed envelope; fails when it complains.
source_to() {
  local port=$1 err=$work/source.err
  shift
  timeout 900 smtp-source "$@" -f a@client.example -t b@dest.example "127.0.0.1:$port" 2> "$err" \
    && [ ! -s "$err" ] && return
  echo "smtp-source: $(head -1 "$err")" >&2
  return 1
}

# queue_empty RELAY: nothing of the warm-up is left to deliver.
queue_empty() {
  case $1 in
    sombra) "$work/sombra-bin/sombra" queue list --config "$RELAY_DIR/sombra.json" 2> /dev/null \
              | tail -1 | grep -q '^0 message' ;;
    postfix) [ -z "$(find "$RELAY_DIR/queue/"{maildrop,incoming,active,deferred} -type f | head -1)" ] ;;
  esac
}

# warm_up RELAY SESSIONS MESSAGES SIZE: the timed load once through the sink already running,
# until the queue is empty, then that sink goes. A relay runs for days: its steady state is
# what counts, not the first seconds of a fresh process (JIT compilation was a sixth of
# Sombra's CPU samples in an unwarmed 10,000-message run), nor Postfix's first forks. A tenth
# of the load was not enough for .NET's tiered compilation to settle: after it, one session of
# 100 KiB messages ran at 326 msg/s; after the whole load, at 445-515.
warm_up() {
  source_to "$RELAY_PORT" -s "$2" -d -m "$3" -l "$4" || fail "$1 refused the warm-up"
  wait_until 120 "queue_empty $1" || fail "$1 did not deliver the warm-up"
  stop_pids "$SINK_PID"
}

# load_scenario RELAY RUN ACCEPT_KEY E2E_KEY SESSIONS MESSAGES SIZE: MESSAGES in all, as
# smtp-source counts them, shared among the SESSIONS
load_scenario() {
  local relay=$1 run=$2 n=$6 sink_port t0 t1 t2
  sink_port=$(free_port)
  # Straight at the sink, its last 250 is the end: one that exits after the last message would
  # drop the connection before smtp-source has its reply.
  if [ "$relay" = sink ]; then
    start_relay sink "$sink_port"
    start_sink "$sink_port" 0 600
  else
    start_sink "$sink_port" 0 120
    start_relay "$relay" "$sink_port"
    warm_up "$relay" "$5" "$6" "$7"
    start_sink "$sink_port" "$n" 600
  fi
  t0=$(now)
  if source_to "$RELAY_PORT" -s "$5" -d -m "$6" -l "$7"; then
    t1=$(now)
    record "$3" "$relay" "$run" "$(rate "$n" "$t0" "$t1")"
    if [ "$relay" = sink ]; then
      record "$4" "$relay" "$run" "$(rate "$n" "$t0" "$t1")"
    elif wait "$SINK_PID"; then
      t2=$(now)
      record "$4" "$relay" "$run" "$(rate "$n" "$t0" "$t2")"
    else
      record "$4" "$relay" "$run" "not all within 600 s"
    fi
  else
    record "$3" "$relay" "$run" "failed"
    record "$4" "$relay" "$run" "failed"
  fi
  stop_pids "$SINK_PID"
  stop_relay "$relay"
}

# memory_scenario RELAY RUN SIZE: one small message first, so that the idle level already has
# the code paths loaded and Postfix its smtpd, cleanup and smtp processes running.
memory_scenario() {
  local relay=$1 run=$2 sink_port watcher idle peak
  sink_port=$(free_port)
  start_sink "$sink_port" 1 120
  start_relay "$relay" "$sink_port"
  source_to "$RELAY_PORT" -m 1 -l 4096 || fail "$relay refused the warm-up message"
  wait "$SINK_PID" || fail "$relay did not relay the warm-up message"
  start_sink "$sink_port" 1 600
  python3 "$here/lib/memwatch.py" "$MEM_PID" $MEM_TREE > "$work/memwatch.out" &
  watcher=$!
  track "$watcher"
  wait_until 10 "grep -q idle '$work/memwatch.out'" || fail "memwatch did not start"
  if source_to "$RELAY_PORT" -m 1 -l "$3" && wait "$SINK_PID"; then
    stop_pids "$watcher"
    idle=$(awk '$1 == "idle" { print $2 }' "$work/memwatch.out")
    peak=$(awk '$1 == "peak" { print $2 }' "$work/memwatch.out")
    record 4 "$relay" "$run" "$(awk -v a="$idle" -v b="$peak" 'BEGIN { printf "%.1f", (b - a) / 1024 }')"
  else
    record 4 "$relay" "$run" "not relayed"
  fi
  stop_pids "$watcher" "$SINK_PID"
  stop_relay "$relay"
}

# idle_scenario RELAY RUN COUNT WAIT
idle_scenario() {
  local relay=$1 run=$2 sink_port out=$work/idle.out
  sink_port=$(free_port)
  start_sink "$sink_port" 1 $(($4 * 3 + 60))
  start_relay "$relay" "$sink_port"
  python3 "$here/lib/idle.py" "$RELAY_PORT" "$3" "$4" "$MEM_PID" $MEM_TREE > "$out"
  local idle held
  idle=$(awk '$1 == "idle_kib" { print $2 }' "$out")
  held=$(awk '$1 == "held_kib" { print $2 }' "$out")
  record 5a "$relay" "$run" "$(awk -v h="$held" 'BEGIN { printf "%.1f", h / 1024 }')"
  record 5b "$relay" "$run" "$(awk -v a="$idle" -v h="$held" 'BEGIN { printf "%.1f", (h - a) / 1024 }')"
  record 5c "$relay" "$run" "$(awk '$1 == "greeted" { print $2 }' "$out")"
  record 5d "$relay" "$run" "$(sed -n 's/^new_250_s //p' "$out")"
  echo "  $(tr '\n' ' ' < "$out")"
  stop_pids "$SINK_PID"
  stop_relay "$relay"
}

# anonymizer_scenario BDN_ARGS...: BenchmarkDotNet does its own runs and statistics.
anonymizer_scenario() {
  local log=$work/bdn.log
  dotnet run -c Release --project "$here/Sombra.Bench" -- --artifacts "$here/out/bdn" "$@" \
    > "$log" 2>&1 || { tail -30 "$log" >&2; fail "the anonymizer benchmark failed"; }
  grep '^|' "$log" || true
  record 6a sombra 1 "$(awk '$1 == "MBps" && $2 == "Desktop4K" { print $3 }' "$log")"
  record 6b sombra 1 "$(awk '$1 == "MBps" && $2 == "Attachments10M" { print $3 }' "$log")"
}

describe_machine() {
  local commit runtime
  runtime=$(dotnet --list-runtimes | awk '/NETCore.App/ { v = $2 } END { print v }')
  commit=$(git -C "$repo" rev-parse --short HEAD)
  git -C "$repo" diff --quiet HEAD -- src || commit="$commit with uncommitted changes in src/"
  cat <<EOF
- date: $(date -u '+%Y-%m-%d %H:%M UTC')
- Sombra: commit $commit, Release
- cores: $(nproc) ($(lscpu 2> /dev/null | sed -n 's/^Model name: *//p'))
- memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
- kernel: $(uname -srm)
- system: $(. /etc/os-release && echo "$PRETTY_NAME")
- dotnet: SDK $(dotnet --version), runtime $runtime
- Postfix: $(postconf -d -h mail_version 2> /dev/null)
- load average when the run began: $(cut -d ' ' -f 1-3 /proc/loadavg) (the machine is shared)
EOF
}

describe_commands() {
  local envelope="-f a@client.example -t b@dest.example"
  cat <<EOF
All on 127.0.0.1; PORT is the relay's (or, for the ceiling, the sink's), SINK the sink's.

- sink: \`smtp-sink -u nobody -M COUNT 127.0.0.1:SINK 1024\` (exits after COUNT messages: the end
  of an end-to-end run), a fresh one per run
- 1, 2: \`smtp-source -s $sessions -d -m $messages -l $size $envelope 127.0.0.1:PORT\`
- 3: \`smtp-source -s 1 -d -m $big_messages -l $big_size $envelope 127.0.0.1:PORT\`
- 4: \`smtp-source -m 1 -l 4096 ...\` to warm up, then \`bench/lib/memwatch.py PID\` around
  \`smtp-source -m 1 -l $huge ...\` until the sink has it
- 5: \`bench/lib/idle.py PORT $idle $wait PID\`: $idle connections held after their greeting,
  then one message on a new connection (each reply awaited at most $wait s)
- 6: \`dotnet run -c Release --project bench/Sombra.Bench -- ${bdn_job[*]}\`
- Sombra: \`sombra serve --config sombra.json\`, fresh DataDirectory per run (see bench/lib/sombra.sh)
- Postfix: \`postfix -c DIR start-fg\`, fresh configuration and queue per run (bench/lib/postfix.sh)
EOF
}
